/**
 * How often a device tells the hub what it processed (`sync:ack`). The hub only uses these cursors to
 * delete envelopes every recipient device acked, and writes them in batches (`ACK_FLUSH_MS`, 30 s by
 * default), so a device need not ack each message: the first ack after a quiet spell goes shortly
 * after the message, and while messages keep coming at most one goes per `SYNC_ACK_MIN_INTERVAL_MS`.
 * Each ack is a rate-limited event on the hub (three budgets in Redis), so this is most of what a
 * busy device costs the hub beyond its messages.
 */

/** A processed seq is reported at the earliest this long after it (acks made meanwhile join it). */
export const SYNC_ACK_DELAY_MS = 500;
/** At most one ack per this long while messages keep coming. */
export const SYNC_ACK_MIN_INTERVAL_MS = 5_000;

/** How long to wait before the next ack, given when the previous one went (`-Infinity`: never). */
export function syncAckDelayMs(now: number, lastAckAt: number): number {
  return Math.max(SYNC_ACK_DELAY_MS, lastAckAt + SYNC_ACK_MIN_INTERVAL_MS - now);
}
