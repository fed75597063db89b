/**
 * Texts the app sends, kept until they are encrypted: `sendText` first stores the text (with its
 * client message id, the idempotency key) in the device store's `pendingTexts`, then encrypts it.
 * Encrypting needs the hub (device lists, prekey bundles); while the hub cannot be reached the text
 * waits and is encrypted after the next connect, by this client or, after a restart, by the next one
 * on the same store. Once encrypted, the text becomes its outbox entry in one transaction, and the
 * outbox delivers it once. Sent while offline, during a failover or across a restart: nothing the app
 * was told is queued is refused or sent twice.
 */
import { ErrorCode, RETRYABLE_ERROR_CODES, backoffMs, sleep, type AttachmentDescriptor, type ConsultPart, type SendResult } from '@curbside/shared';
import type { SealedExtras } from './e2ee/message-crypto.js';
import type { AlertRequest } from './e2ee/escalation.js';
import { CurbsideError, asCurbsideError } from './errors.js';
import type { DeviceStore } from './stores/index.js';

interface PendingText {
  conversationId: string;
  text: string;
  queuedAt: number;
  /** Urgent or emergent: the alert the message raises. */
  alert?: AlertRequest;
  /** A finished upload the message carries (`text` is its caption). */
  attachment?: AttachmentDescriptor;
  /** In a consult pool: what the message is in a consult. */
  consult?: ConsultPart;
}

interface Waiter {
  resolve(result: SendResult): void;
  reject(error: CurbsideError): void;
}

export interface TextQueueDeps {
  store: DeviceStore;
  /** Encrypt and queue the text's envelope under this client message id; resolves with the hub's ack. */
  encryptAndSend(conversationId: string, text: string, clientMessageId: string, alert: AlertRequest | undefined, extras: SealedExtras): Promise<SendResult>;
  /** Whether the outbox already holds this send (encrypted before a restart). */
  inOutbox(clientMessageId: string): boolean;
  connected(): boolean;
  stopped(): boolean;
  sendFailed(info: { clientMessageId: string; conversationId: string; error: CurbsideError }): void;
  /** Keep `op` among the operations `close()` waits for. */
  track<T>(op: Promise<T>): Promise<T>;
}

const queued = () => new CurbsideError(ErrorCode.NOT_CONNECTED, 'Disconnected before the hub acknowledged this message; it stays queued', { queued: true });

export class TextQueue {
  private readonly waiters = new Map<string, Waiter[]>();
  /** The texts waiting, as stored in `pendingTexts` (read from the store once, at a connect). */
  private readonly pending = new Map<string, PendingText>();
  /** One text at a time is encrypted, oldest first, so texts reach the outbox in the order they were sent. */
  private chain: Promise<void> = Promise.resolve();
  private readonly scheduled = new Set<string>();
  /** Texts whose envelope is being encrypted: resolved once it is in the outbox. */
  private readonly handedOver = new Map<string, () => void>();

  constructor(private readonly deps: TextQueueDeps) {}

  /**
   * Keep the text, then encrypt and send it (now if connected, else after the next connect).
   * Resolves with the hub's ack; a send with a client message id already queued joins it.
   * @throws CurbsideError the hub's or the messenger's verdict when it is final (UNTRUSTED_IDENTITY,
   *   FORBIDDEN, PAYLOAD_TOO_LARGE, ...); NOT_CONNECTED with `details.queued: true` when the app
   *   stopped the client first (the text stays queued for the next client on this store)
   */
  async send(conversationId: string, text: string, clientMessageId: string, alert?: AlertRequest, extras: SealedExtras = {}): Promise<SendResult> {
    const done = new Promise<SendResult>((resolve, reject) => this.waiters.set(clientMessageId, [...(this.waiters.get(clientMessageId) ?? []), { resolve, reject }]));
    if (!this.pending.has(clientMessageId)) {
      const entry: PendingText = { conversationId, text, queuedAt: Date.now(), ...(alert ? { alert } : {}), ...(extras.attachment ? { attachment: extras.attachment } : {}), ...(extras.consult ? { consult: extras.consult } : {}) };
      this.pending.set(clientMessageId, entry);
      await this.deps.track(this.deps.store.put('pendingTexts', clientMessageId, entry));
    }
    if (this.deps.stopped()) this.settle(clientMessageId, undefined, queued());
    else this.schedule(clientMessageId);
    return done;
  }

  /** Connected (again): every text still waiting is encrypted and sent, oldest first. */
  async flush(): Promise<void> {
    // Texts a previous client on this store left, besides this one's.
    for (const [id, entry] of await this.deps.store.list<PendingText>('pendingTexts')) if (!this.pending.has(id)) this.pending.set(id, entry);
    const oldestFirst = [...this.pending].sort(([, a], [, b]) => a.queuedAt - b.queuedAt);
    for (const [clientMessageId] of oldestFirst) this.schedule(clientMessageId);
  }

  /** The outbox now holds this text's envelope (persisted): the next text may be encrypted. */
  handedToOutbox(clientMessageId: string): void {
    // The outbox's transaction deleted it from the store too.
    this.pending.delete(clientMessageId);
    this.handedOver.get(clientMessageId)?.();
  }

  /** The client stopped: callers waiting are told the texts stay queued. */
  stop(): void {
    for (const id of [...this.waiters.keys()]) this.settle(id, undefined, queued());
  }

  private schedule(clientMessageId: string): void {
    if (this.scheduled.has(clientMessageId)) return;
    this.scheduled.add(clientMessageId);
    this.chain = this.chain
      .then(() => this.deps.track(this.attempt(clientMessageId)))
      .catch(() => {})
      .finally(() => this.scheduled.delete(clientMessageId));
  }

  /**
   * Encrypt one text and hand it to the outbox. Waits for that (not for the hub's ack), so the next
   * text follows in order. Until the hub can be asked it tries again here, holding later texts back;
   * offline, it leaves the text for the next connect's `flush`.
   */
  private async attempt(clientMessageId: string): Promise<void> {
    for (let tries = 0; ; tries++) {
      if (!this.deps.connected() || this.deps.stopped()) return;
      const pending = this.pending.get(clientMessageId);
      if (!pending) return; // handed over already
      if (this.deps.inOutbox(clientMessageId)) {
        // Encrypted before a restart, and its outbox entry written: nothing left to do here.
        this.pending.delete(clientMessageId);
        await this.deps.store.delete('pendingTexts', clientMessageId);
        return;
      }
      const handedOver = new Promise<void>((resolve) => this.handedOver.set(clientMessageId, resolve));
      const sending = this.deps.encryptAndSend(pending.conversationId, pending.text, clientMessageId, pending.alert, { ...(pending.attachment ? { attachment: pending.attachment } : {}), ...(pending.consult ? { consult: pending.consult } : {}) });
      const outcome = sending.then(
        (result) => ({ result }),
        (e: unknown) => ({ error: asCurbsideError(e) }),
      );
      let inBox = false;
      void handedOver.then(() => (inBox = true));
      // Acked, or refused once in the outbox (which reports that itself): the caller hears it.
      void outcome.then((o) => ('result' in o ? this.settle(clientMessageId, o.result) : inBox ? this.settle(clientMessageId, undefined, o.error) : undefined));
      const first = await Promise.race([handedOver.then(() => undefined), outcome]);
      this.handedOver.delete(clientMessageId);
      if (first === undefined || 'result' in first) return; // in the outbox, or acked
      const error = first.error;
      if (error.details?.queued === true) return; // stopped: still queued (here or in the outbox)
      if (RETRYABLE_ERROR_CODES.has(error.code)) {
        // Not encrypted yet (the hub could not be asked): again soon, later texts waiting behind it.
        await sleep(backoffMs(tries, { baseMs: 250, maxMs: 10_000 }));
        continue;
      }
      this.pending.delete(clientMessageId);
      await this.deps.store.delete('pendingTexts', clientMessageId).catch(() => {});
      this.settle(clientMessageId, undefined, error);
      this.deps.sendFailed({ clientMessageId, conversationId: pending.conversationId, error });
      return;
    }
  }

  private settle(clientMessageId: string, result?: SendResult, error?: CurbsideError): void {
    const waiting = this.waiters.get(clientMessageId) ?? [];
    this.waiters.delete(clientMessageId);
    for (const w of waiting) {
      if (result) w.resolve(result);
      else w.reject(error!);
    }
  }
}
