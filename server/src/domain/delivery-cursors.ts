import { compositeKey } from '@curbside/shared';
import type { Storage } from '../ports/storage.js';
import type { Logger } from '../logger.js';

export interface DeliveryCursorsOptions {
  storage: Pick<Storage, 'getConversation' | 'ackDelivered'>;
  /** How often noted acks are written. @default 30000 */
  flushMs?: number | undefined;
  /** Device-conversation pairs kept before a write is started early. @default 50000 */
  maxPending?: number | undefined;
  logger?: Pick<Logger, 'warn'> | undefined;
}

/** The longest pause between two devices' cursor writes on the timer. */
const MAX_GAP_MS = 50;

interface Pending {
  orgId: string;
  userId: string;
  deviceId: string;
  conversationId: string;
  seq: number;
}

/**
 * Devices' delivery acks (`sync:ack`), written to storage in batches. Every device acks what it
 * processed about twice a second while messages flow, so in a care team each message would cost one
 * database write per member device; here acks are merged per device and conversation (the highest seq
 * wins) and written every `flushMs`, at most one write per pair per period, one device at a time.
 *
 * Nothing a client sees depends on the stored cursors: they only let the retention sweeper delete
 * envelopes that every recipient device acked (`Hub.sweep` writes pending acks first). An ack lost
 * in a crash only keeps envelopes until the device's next ack (acks carry the highest processed
 * seq, so a later one covers it) or until retention ends.
 */
export class DeliveryCursors {
  private readonly storage: DeliveryCursorsOptions['storage'];
  private readonly flushMs: number;
  private readonly maxPending: number;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  /** Key: org SPACE device SPACE conversation (ids contain no spaces). */
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(options: DeliveryCursorsOptions) {
    this.storage = options.storage;
    this.flushMs = options.flushMs ?? 30_000;
    this.maxPending = options.maxPending ?? 50_000;
    this.logger = options.logger;
  }

  /** Note that the device processed these conversations up to these seqs. */
  note(caller: { orgId: string; userId: string; deviceId: string }, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>): void {
    for (const c of cursors) {
      const key = compositeKey(caller.orgId, caller.deviceId, c.conversationId);
      const prior = this.pending.get(key);
      if (prior) prior.seq = Math.max(prior.seq, c.afterSeq);
      else this.pending.set(key, { orgId: caller.orgId, userId: caller.userId, deviceId: caller.deviceId, conversationId: c.conversationId, seq: c.afterSeq });
    }
    if (this.pending.size >= this.maxPending || this.flushMs <= 0) void this.flush().catch(() => {});
    else this.schedule();
  }

  /** Start the timer for the next write, unless one is running. */
  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush({ paced: true }).catch(() => {});
    }, this.flushMs);
    this.timer.unref();
  }

  /**
   * Write every ack noted so far; resolves once they are stored (or failed and were put back).
   * `paced` (the timer's writes) spreads the device writes over up to half the period.
   */
  flush(options: { paced?: boolean } = {}): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = new Map();
    const run = this.writing.then(() => this.write(batch, options.paced ?? false));
    this.writing = run.catch(() => {});
    return run;
  }

  private async write(batch: Map<string, Pending>, paced: boolean): Promise<void> {
    if (batch.size === 0) return;
    // Only conversations the device's user is a member of count (one look-up by id per conversation).
    const convKeys = [...new Set([...batch.values()].map((p) => compositeKey(p.orgId, p.conversationId)))];
    const members = new Map<string, Set<string>>();
    const byDevice = new Map<string, { orgId: string; deviceId: string; cursors: Array<{ conversationId: string; afterSeq: number }> }>();
    try {
      await inLanes(convKeys, 4, async (k) => {
        const [orgId, conversationId] = k.split(' ') as [string, string];
        const conversation = await this.storage.getConversation(orgId, conversationId);
        members.set(k, new Set(conversation?.memberUserIds ?? []));
      });
      for (const p of batch.values()) {
        if (!members.get(compositeKey(p.orgId, p.conversationId))!.has(p.userId)) continue;
        const dk = compositeKey(p.orgId, p.deviceId);
        const entry = byDevice.get(dk) ?? { orgId: p.orgId, deviceId: p.deviceId, cursors: [] };
        entry.cursors.push({ conversationId: p.conversationId, afterSeq: p.seq });
        byDevice.set(dk, entry);
      }
      // One device at a time, and on the timer with a pause after each: a background write must not
      // hold the database while sends (durable writes clients wait for) queue behind it. On FerretDB's
      // SQLite a burst of cursor writes held sends' acks back by seconds (docs/benchmarks.md).
      const gapMs = paced ? Math.min(MAX_GAP_MS, this.flushMs / 2 / byDevice.size) : 0;
      for (const d of byDevice.values()) {
        await this.storage.ackDelivered(d.orgId, d.deviceId, d.cursors);
        if (gapMs >= 1) await new Promise((r) => setTimeout(r, gapMs).unref());
      }
    } catch (err) {
      // Put them back (newer acks noted meanwhile win) for the next write.
      for (const [k, p] of batch) {
        const now = this.pending.get(k);
        if (!now) this.pending.set(k, p);
        else now.seq = Math.max(now.seq, p.seq);
      }
      this.logger?.warn({ err: (err as Error).message, pairs: batch.size }, 'delivery acks not written; will retry');
      if (this.flushMs > 0) this.schedule();
      throw err;
    }
  }

  /** Acks noted but not written yet (device-conversation pairs). */
  get size(): number {
    return this.pending.size;
  }

  /** Write what is pending and stop the timer. */
  async close(): Promise<void> {
    await this.flush().catch(() => {});
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

async function inLanes<T>(items: T[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
