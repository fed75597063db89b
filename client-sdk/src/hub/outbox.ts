/**
 * Sends not yet acknowledged by the hub. Each is persisted in the device store's `outbox` before its
 * first attempt, so a send the app was told is queued survives a restart; it is retried with the same
 * client message id (the hub stores and delivers it once) after a dropped connection, or with backoff
 * while connected, until the hub acks it or refuses it for good.
 */
import { ClientEvent, ErrorCode, Limits, backoffMs, type AckPolicy, type AlertPriority, type SendResult } from '@curbside/shared';
import { CurbsideError, asCurbsideError } from '../errors.js';
import { deleteOp, putOp, type DeviceStore } from '../stores/index.js';
import type { HubConnection } from './connection.js';

/** Options of one `CurbsideClient.sendEnvelope`. */
export interface SendOptions {
  /** Idempotency key; reuse it to retry a send safely. @default a random UUID */
  clientMessageId?: string;
}

/** The alert an envelope raises (see `EnvelopeSendRequest.alert`), as the SDK builds it. */
export interface AlertPayload {
  priority: AlertPriority;
  ackPolicy?: AckPolicy;
  /** The content sealed for later tiers, and each tier's wrapped keys. */
  escalation?: { body: Uint8Array; tiers: Array<{ afterMs: number; userIds: string[]; recipients: Array<{ deviceId: string; ciphertext: Uint8Array }> }> };
}

/** What one envelope carries: a body for every device, per-device ciphertexts, or both. */
export interface EnvelopePayload {
  body?: Uint8Array;
  recipients?: Array<{ deviceId: string; ciphertext: Uint8Array }>;
  /** `recipients` names only some devices on purpose (see the wire contract). */
  partial?: boolean;
  /** `receipt` marks a receipt, which devices it does not name ignore. @default 'message' */
  kind?: 'message' | 'receipt';
  /** Care teams: the membership epoch the body was encrypted for (the SDK's team messages set it). */
  epoch?: string;
  /** Raise an alert (urgent or emergent) with this message: the hub re-notifies until acknowledged. */
  alert?: AlertPayload;
  /** On-call role threads: this send hands the pending alerts at these seqs to the devices it names. */
  handoff?: { seqs: number[] };
  /** Finished uploads of this device the message names (see `client.attachments`): the hub keeps them with the message. */
  attachmentIds?: string[];
}

/** An outbox entry as the device store keeps it. */
interface PersistedSend {
  conversationId: string;
  payload: EnvelopePayload;
  queuedAt: number;
}

/** The payload without undefined fields (the store refuses them). */
function storablePayload(p: EnvelopePayload): EnvelopePayload {
  return {
    ...(p.body ? { body: p.body } : {}),
    ...(p.recipients ? { recipients: p.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: r.ciphertext })) } : {}),
    ...(p.partial ? { partial: true } : {}),
    ...(p.kind ? { kind: p.kind } : {}),
    ...(p.epoch ? { epoch: p.epoch } : {}),
    ...(p.alert ? { alert: storableAlert(p.alert) } : {}),
    ...(p.handoff ? { handoff: { seqs: [...p.handoff.seqs] } } : {}),
    ...(p.attachmentIds ? { attachmentIds: [...p.attachmentIds] } : {}),
  };
}

function storableAlert(a: AlertPayload): AlertPayload {
  return {
    priority: a.priority,
    ...(a.ackPolicy ? { ackPolicy: a.ackPolicy } : {}),
    ...(a.escalation
      ? { escalation: { body: a.escalation.body, tiers: a.escalation.tiers.map((t) => ({ afterMs: t.afterMs, userIds: [...t.userIds], recipients: t.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: r.ciphertext })) })) } }
      : {}),
  };
}

interface OutboxEntry {
  conversationId: string;
  clientMessageId: string;
  payload: EnvelopePayload;
  inFlight: boolean;
  attempts: number;
  resolve: (r: SendResult) => void;
  reject: (e: CurbsideError) => void;
  /** Restored from the persisted outbox: no caller waits for it, so a failure is only told by `sendFailed`. */
  restored?: boolean;
}

export interface OutboxDeps {
  store: DeviceStore;
  connection: HubConnection;
  /** The hub stored a send (the seq is this device's own: sync skips it). */
  acked(result: SendResult): void;
  sent(info: { clientMessageId: string; result: SendResult }): void;
  sendFailed(info: { clientMessageId: string; conversationId: string; error: CurbsideError }): void;
  /** Keep `op` among the operations `close()` waits for. */
  track<T>(op: Promise<T>): Promise<T>;
  /** A send was persisted (a queued text's envelope is now the outbox's to deliver). */
  queued?(clientMessageId: string): void;
}

const queued = () => new CurbsideError(ErrorCode.NOT_CONNECTED, 'Disconnected before the hub acknowledged this message; it stays queued', { queued: true });

export class Outbox {
  private readonly entries = new Map<string, OutboxEntry>();
  private restored = false;

  constructor(private readonly deps: OutboxDeps) {}

  /** Number of sends not yet acknowledged by the hub. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Queue a send; resolves with the hub's ack. A send with a client message id already queued joins it.
   * @throws CurbsideError PAYLOAD_TOO_LARGE locally; whatever the hub answers for good
   */
  send(conversationId: string, payload: EnvelopePayload, options: SendOptions = {}): Promise<SendResult> {
    const tooBig =
      (payload.body && payload.body.byteLength > Limits.MAX_CIPHERTEXT_BYTES) ||
      payload.recipients?.some((r) => r.ciphertext.byteLength > Limits.MAX_DEVICE_CIPHERTEXT_BYTES);
    if (tooBig) {
      return Promise.reject(
        new CurbsideError(ErrorCode.PAYLOAD_TOO_LARGE, `Envelope exceeds the limits (body ${Limits.MAX_CIPHERTEXT_BYTES} bytes, per device ${Limits.MAX_DEVICE_CIPHERTEXT_BYTES})`),
      );
    }
    const clientMessageId = options.clientMessageId ?? globalThis.crypto.randomUUID();
    const existing = this.entries.get(clientMessageId);
    if (existing) return new Promise((resolve, reject) => chain(existing, resolve, reject));
    return new Promise<SendResult>((resolve, reject) => {
      const entry: OutboxEntry = { conversationId, clientMessageId, payload, inFlight: false, attempts: 0, resolve, reject };
      this.entries.set(clientMessageId, entry);
      // Persist before the first attempt: a send the app was told is queued survives a crash.
      const saved: PersistedSend = { conversationId, payload: storablePayload(payload), queuedAt: Date.now() };
      // A text queued while offline (pendingTexts) becomes this entry in the same transaction.
      const persisted = this.deps.store.transaction([putOp('outbox', clientMessageId, saved), deleteOp('pendingTexts', clientMessageId)]).then(
        () => {
          this.deps.queued?.(clientMessageId);
          if (this.deps.connection.stopped && this.entries.get(clientMessageId) === entry) {
            // Started after the client stopped: kept for the next client with this store, as `stop()` promises.
            this.entries.delete(clientMessageId);
            reject(queued());
            return;
          }
          this.transmit(entry);
        },
        (e: unknown) => {
          this.entries.delete(clientMessageId);
          reject(asCurbsideError(e));
        },
      );
      void this.deps.track(persisted);
    });
  }

  /** Whether a send with this client message id is queued (persisted, not yet acked). */
  has(clientMessageId: string): boolean {
    return this.entries.has(clientMessageId);
  }

  /** Sends a previous run (or `stop()`) left in the persisted outbox go out again, with their ids. */
  async restore(): Promise<void> {
    if (this.restored) return;
    this.restored = true;
    for (const [clientMessageId, saved] of await this.deps.store.list<PersistedSend>('outbox')) {
      if (this.entries.has(clientMessageId)) continue;
      const entry: OutboxEntry = { conversationId: saved.conversationId, clientMessageId, payload: saved.payload, inFlight: false, attempts: 0, resolve: () => {}, reject: () => {}, restored: true };
      this.entries.set(clientMessageId, entry);
      this.transmit(entry);
    }
  }

  /** Connected (again): everything queued goes out. */
  flush(): void {
    for (const entry of this.entries.values()) this.transmit(entry);
  }

  /** The connection dropped: nothing is in flight any more (the next connect sends it all again). */
  offline(): void {
    for (const entry of this.entries.values()) entry.inFlight = false;
  }

  /**
   * The client stopped: callers waiting on a send are told NOT_CONNECTED (`details.queued: true`); the
   * sends stay persisted and go out when a client with the same store connects.
   */
  stop(): void {
    for (const entry of this.entries.values()) entry.reject(queued());
    this.entries.clear();
    this.restored = false;
  }

  /**
   * Send one entry. Entries of one conversation go one at a time, in the order they were queued, so
   * the hub sequences them in that order even after a reconnect sends a backlog.
   */
  private transmit(entry: OutboxEntry): void {
    const { connection } = this.deps;
    if (!connection.connected || entry.inFlight || this.headOf(entry.conversationId) !== entry) return;
    entry.inFlight = true;
    entry.attempts += 1;
    connection.request(ClientEvent.ENVELOPE_SEND, { conversationId: entry.conversationId, clientMessageId: entry.clientMessageId, ...entry.payload }).then(
      (result) => {
        this.forget(entry);
        this.deps.acked(result);
        entry.resolve(result);
        this.deps.sent({ clientMessageId: entry.clientMessageId, result });
      },
      (error: CurbsideError) => {
        entry.inFlight = false;
        if (!this.entries.has(entry.clientMessageId)) return;
        if (error.retryable) {
          // Stays queued: sent again on reconnect, or after a backoff (at least the hub's retry hint,
          // e.g. from an overloaded node) if still connected.
          setTimeout(() => this.transmit(entry), Math.max(Math.min(error.retryAfterMs, 60_000), backoffMs(entry.attempts, { baseMs: 250, maxMs: 10_000 })));
          return;
        }
        this.forget(entry);
        entry.reject(error);
        // A live care-team send re-encrypts for the new membership and resends by itself: no failure to report.
        if (error.code === ErrorCode.STALE_EPOCH && !entry.restored) return;
        this.deps.sendFailed({ clientMessageId: entry.clientMessageId, conversationId: entry.conversationId, error });
      },
    );
  }

  private forget(entry: OutboxEntry): void {
    this.entries.delete(entry.clientMessageId);
    void this.deps.store.delete('outbox', entry.clientMessageId).catch(() => {});
    // The next send of that conversation may go.
    const next = this.headOf(entry.conversationId);
    if (next) this.transmit(next);
  }

  /** The oldest queued send of a conversation. */
  private headOf(conversationId: string): OutboxEntry | undefined {
    for (const entry of this.entries.values()) if (entry.conversationId === conversationId) return entry;
    return undefined;
  }
}

/** A second caller of the same send hears what the first hears. */
function chain(entry: OutboxEntry, resolve: (r: SendResult) => void, reject: (e: CurbsideError) => void): void {
  const prevResolve = entry.resolve;
  const prevReject = entry.reject;
  entry.resolve = (r) => {
    prevResolve(r);
    resolve(r);
  };
  entry.reject = (e) => {
    prevReject(e);
    reject(e);
  };
}
