/**
 * Receiving, in order and once: envelopes pushed live and those fetched by sequence after a
 * (re)connect or a gap go through one ordered inbox; each is handled (decrypted) and only then is its
 * conversation's cursor saved and, in batches, acknowledged to the hub (which deletes what every
 * device acknowledged). An envelope the handler defers (the client stopped mid-check) stops the
 * stream: nothing after it is handled or saved until the next connect hands it out again.
 */
import { ClientEvent, EnvelopeSchema, ErrorCode, syncAckDelayMs, type Envelope } from '@curbside/shared';
import { CurbsideError, asCurbsideError } from '../errors.js';
import type { CursorStore } from '../cursor-store.js';
import { OrderedInbox } from '../ordered-inbox.js';
import type { HubConnection } from './connection.js';

/** A gap in a conversation's seqs waits this long for the missing envelope before a resync. */
const GAP_RESYNC_DELAY_MS = 300;

export interface SyncDeps {
  connection: HubConnection;
  cursors: CursorStore;
  /** Handle one envelope, in order; throwing `isDeferral` errors stops the stream until the next connect. */
  handle(envelope: Envelope): Promise<void>;
  isDeferral(error: unknown): boolean;
  /** A resync after a (re)connect finished: everything the hub had was handled. */
  synced(): void;
  /** A problem with one envelope or push; the sync goes on. */
  error(error: CurbsideError): void;
  /** The resync itself failed (not a lost connection: the next connect resyncs): nothing more comes of it. */
  failed(error: CurbsideError): void;
}

export class Sync {
  private readonly inbox: OrderedInbox;
  /** Handling and cursor saves, in delivery order: a cursor moves only after its envelope was handled. */
  private pipeline: Promise<void> = Promise.resolve();
  private deferred = false;
  private restored = false;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  /** Conversations whose processed seq the hub has not heard yet. */
  private readonly unacked = new Map<string, number>();
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the last ack went: acks are batched, at most one per interval while messages keep coming (shared/src/sync-acks.ts). */
  private lastAckAt = -Infinity;

  constructor(private readonly deps: SyncDeps) {
    this.inbox = new OrderedInbox(
      (envelope) =>
        this.enqueue(async () => {
          if (this.deferred) return;
          await deps.handle(envelope);
        }),
      (conversationId, seq) =>
        this.enqueue(async () => {
          if (this.deferred) return; // not handled: the cursor stays, the envelope comes again
          await deps.cursors.save(conversationId, seq);
          this.scheduleAck(conversationId, seq);
        }),
      () => this.scheduleGapResync(),
    );
  }

  /** Before a connect: load the saved cursors once, and pick up where a deferred envelope stopped the stream. */
  async prepare(): Promise<void> {
    if (!this.restored) {
      this.inbox.restore(await this.deps.cursors.load());
      this.restored = true;
    }
    if (this.deferred) {
      await this.pipeline;
      this.inbox.resetTo(await this.deps.cursors.load());
      this.deferred = false;
    }
    if (this.unacked.size > 0) this.startAckTimer();
  }

  /** The highest seq handled, without gaps, for a conversation. */
  cursor(conversationId: string): number {
    return this.inbox.cursor(conversationId);
  }

  /** An envelope the hub pushed. */
  receiveLive(raw: unknown): void {
    const parsed = EnvelopeSchema.safeParse(raw);
    if (!parsed.success) {
      this.deps.error(new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'Hub pushed an envelope that does not match the schema'));
      return;
    }
    this.inbox.receiveLive(parsed.data);
  }

  /** This device's own send was stored at `seq`: nothing to fetch or hand out for it. */
  markOwn(conversationId: string, seq: number): void {
    this.inbox.markOwn(conversationId, seq);
  }

  /** Everything received so far has been handled and its cursor saved. */
  settled(): Promise<void> {
    return this.pipeline;
  }

  stop(): void {
    if (this.gapTimer) clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    // Acks not sent yet wait for the next connect (`prepare`): a stopped client keeps no timer running.
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
  }

  /** Fetch everything after our cursors, page by page. Single-flight: a request during a run schedules one more. */
  resync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.syncAgain = false;
          let more = true;
          while (more) {
            const page = await this.deps.connection.request(ClientEvent.SYNC_FETCH, { cursors: this.inbox.snapshot() });
            const seen = new Set<string>();
            for (const raw of page.envelopes) {
              const envelope = EnvelopeSchema.parse(raw);
              this.inbox.receiveSynced(envelope, !seen.has(envelope.conversationId));
              seen.add(envelope.conversationId);
            }
            more = page.more;
          }
        } while (this.syncAgain);
        await this.pipeline;
        this.deps.synced();
      } catch (e) {
        const error = asCurbsideError(e);
        // Offline mid-sync: the next connect resyncs. Anything else the app should hear about.
        if (error.code !== ErrorCode.NOT_CONNECTED && error.code !== ErrorCode.TIMEOUT) this.deps.failed(error);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private enqueue(task: () => Promise<void>): void {
    this.pipeline = this.pipeline.then(task).catch((e: unknown) => {
      if (this.deps.isDeferral(e)) this.deferred = true;
      else this.deps.error(asCurbsideError(e));
    });
  }

  private scheduleAck(conversationId: string, seq: number): void {
    this.unacked.set(conversationId, seq);
    this.startAckTimer();
  }

  private startAckTimer(): void {
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      if (!this.deps.connection.connected || this.unacked.size === 0) return;
      const cursors = [...this.unacked].map(([id, afterSeq]) => ({ conversationId: id, afterSeq }));
      this.unacked.clear();
      this.lastAckAt = Date.now();
      this.deps.connection.request(ClientEvent.SYNC_ACK, { cursors }).catch(() => {
        // Not acked this time: merge back (newer progress wins) and try with the next one.
        for (const c of cursors) if ((this.unacked.get(c.conversationId) ?? 0) < c.afterSeq) this.unacked.set(c.conversationId, c.afterSeq);
      });
    }, syncAckDelayMs(Date.now(), this.lastAckAt));
  }

  private scheduleGapResync(): void {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if (this.inbox.hasGaps() && this.deps.connection.connected) void this.resync();
    }, GAP_RESYNC_DELAY_MS);
  }
}
