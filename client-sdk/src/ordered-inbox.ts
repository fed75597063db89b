import type { Envelope } from '@curbside/shared';

/**
 * Turns envelopes that arrive live (possibly out of order, possibly twice) and through sync into
 * one stream per conversation that is in seq order and has no duplicates.
 *
 * The hub assigns seqs without gaps, so after handing out 1..n the inbox knows n+1 comes next.
 * A later seq waits in `pending` until the gap closes; `onGap` asks the client to resync.
 */
export class OrderedInbox {
  private readonly cursors = new Map<string, number>();
  /** conversation → seq → envelope, or `null` for the caller's own sends (acked, not delivered back). */
  private readonly pending = new Map<string, Map<number, Envelope | null>>();

  constructor(
    private readonly deliver: (envelope: Envelope) => void,
    private readonly onAdvance: (conversationId: string, seq: number) => void,
    private readonly onGap: (conversationId: string) => void,
  ) {}

  /** Seed cursors from a persisted store. */
  restore(cursors: Record<string, number>): void {
    for (const [id, seq] of Object.entries(cursors)) {
      if (seq > (this.cursors.get(id) ?? 0)) this.cursors.set(id, seq);
    }
  }

  /** Forget everything handed out after these cursors (what was saved): it is fetched and handed out again. */
  resetTo(cursors: Record<string, number>): void {
    this.cursors.clear();
    this.pending.clear();
    for (const [id, seq] of Object.entries(cursors)) this.cursors.set(id, seq);
  }

  cursor(conversationId: string): number {
    return this.cursors.get(conversationId) ?? 0;
  }

  /** All cursors, for a sync request. */
  snapshot(): Array<{ conversationId: string; afterSeq: number }> {
    return [...this.cursors].map(([conversationId, afterSeq]) => ({ conversationId, afterSeq }));
  }

  /** Whether any conversation is waiting for a missing seq. */
  hasGaps(): boolean {
    for (const m of this.pending.values()) if (m.size > 0) return true;
    return false;
  }

  /** A live envelope pushed by the hub. */
  receiveLive(envelope: Envelope): void {
    this.accept(envelope.conversationId, envelope.seq, envelope, false);
  }

  /**
   * An envelope from a sync page. Sync pages are contiguous from the cursor we sent, so a first
   * seq beyond cursor+1 means the hub no longer holds the ones between (retention): skip ahead.
   */
  receiveSynced(envelope: Envelope, firstOfConversationInPage: boolean): void {
    this.accept(envelope.conversationId, envelope.seq, envelope, firstOfConversationInPage);
  }

  /** Our own send was acked with this seq: count it as processed without delivering it. */
  markOwn(conversationId: string, seq: number): void {
    this.accept(conversationId, seq, null, false);
  }

  private accept(conversationId: string, seq: number, envelope: Envelope | null, mayJump: boolean): void {
    const cursor = this.cursor(conversationId);
    if (seq <= cursor) return; // seen
    if (seq === cursor + 1 || mayJump) {
      this.advance(conversationId, seq, envelope);
      this.drain(conversationId);
      return;
    }
    let waiting = this.pending.get(conversationId);
    if (!waiting) this.pending.set(conversationId, (waiting = new Map()));
    if (!waiting.has(seq)) waiting.set(seq, envelope);
    this.onGap(conversationId);
  }

  private advance(conversationId: string, seq: number, envelope: Envelope | null): void {
    this.cursors.set(conversationId, seq);
    const waiting = this.pending.get(conversationId);
    if (waiting) for (const s of waiting.keys()) if (s <= seq) waiting.delete(s);
    if (envelope) this.deliver(envelope);
    this.onAdvance(conversationId, seq);
  }

  private drain(conversationId: string): void {
    const waiting = this.pending.get(conversationId);
    if (!waiting) return;
    for (;;) {
      const next = this.cursor(conversationId) + 1;
      if (!waiting.has(next)) break;
      const envelope = waiting.get(next)!;
      waiting.delete(next);
      this.advance(conversationId, next, envelope);
    }
    if (waiting.size === 0) this.pending.delete(conversationId);
  }
}
