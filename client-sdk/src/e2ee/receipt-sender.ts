/**
 * Receipts this device sends: every message shown to the app is acknowledged to its sender
 * (`delivered`, batched per conversation and sender, retried with backoff until the client closes),
 * `markRead` tells senders what the user read, and a sibling's team message that carried its sender
 * key here is confirmed to this user's devices (siblings send no delivered receipts for their own
 * messages). The statuses of what this device sent are kept by the `ReceiptBook`.
 */
import { ErrorCode, backoffMs, type SendResult } from '@curbside/shared';
import { isCurbsideError } from '../errors.js';
import { MAX_RECEIPT_IDS, type MessageContent } from './message-crypto.js';
import type { ReceiptBook } from './receipts.js';
import type { ChatMessage, SdkLogger } from './types.js';

/** Delivered receipts are batched this long, so a burst of messages costs one receipt. */
const RECEIPT_BATCH_MS = 150;
/** Tries of one delivered receipt before giving up (each after a longer wait). */
const RECEIPT_ATTEMPTS = 5;

export interface ReceiptSenderDeps {
  book: ReceiptBook;
  /** Seal `content` and send it to these users' devices (and this user's other devices) only. */
  send(conversationId: string, content: MessageContent, toUserIds: string[]): Promise<SendResult>;
  /** The app closed the client: nothing more goes out. */
  stopped(): boolean;
  self(): { userId: string };
  logger: SdkLogger;
}

export class ReceiptSender {
  /** Delivered receipts waiting to go out, per conversation and original sender. */
  private readonly pending = new Map<string, { conversationId: string; senderUserId: string; ids: Set<string> }>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly deps: ReceiptSenderDeps) {}

  /** Remember who sent a message shown to the app (before the app can call markRead for it). */
  noteReceived(m: ChatMessage): void {
    this.deps.book.noteReceived(m.conversationId, m.messageId, m.senderUserId).catch((err: unknown) => this.deps.logger.warn({ err: String(err) }, 'could not keep the sender of a received message'));
  }

  /** Acknowledge a message shown to the app to its sender, in the next batch. */
  queueDelivered(m: ChatMessage): void {
    const key = `${m.conversationId}\n${m.senderUserId}`;
    const batch = this.pending.get(key) ?? { conversationId: m.conversationId, senderUserId: m.senderUserId, ids: new Set<string>() };
    batch.ids.add(m.messageId);
    this.pending.set(key, batch);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const batches = [...this.pending.values()];
      this.pending.clear();
      for (const b of batches) void this.deliver(b.conversationId, b.senderUserId, [...b.ids], 1);
    }, RECEIPT_BATCH_MS);
  }

  /** A team message from another of this user's devices carried its sender key here and decrypted. */
  confirmSiblingShare(conversationId: string, messageId: string): void {
    void this.deliver(conversationId, this.deps.self().userId, [messageId], 1);
  }

  /** Tell the senders of these messages that the user read them. */
  async markRead(conversationId: string, messageIds: string[]): Promise<void> {
    const bySender = new Map<string, string[]>();
    for (const id of messageIds) {
      const from = await this.deps.book.senderOf(id);
      if (!from || from.conversationId !== conversationId) continue;
      bySender.set(from.senderUserId, [...(bySender.get(from.senderUserId) ?? []), id]);
    }
    for (const [sender, ids] of bySender) {
      for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) await this.send(conversationId, sender, 'read', ids.slice(i, i + MAX_RECEIPT_IDS));
    }
  }

  /**
   * Tell the sender of a received urgent message, end to end, that the user acknowledged it (the hub
   * records the acknowledgement too, but only this receipt proves it came from the user's device).
   * False when this device did not receive the message in that conversation (an escalation from a
   * conversation the user is not in): there is nowhere to send it.
   */
  async acknowledged(conversationId: string, messageId: string): Promise<boolean> {
    const from = await this.deps.book.senderOf(messageId);
    if (!from || from.conversationId !== conversationId) return false;
    await this.send(conversationId, from.senderUserId, 'acknowledged', [messageId]);
    return true;
  }

  /** Follow the receipts of a message this device sent. */
  async noteSent(conversationId: string, messageId: string, recipientUserIds: string[]): Promise<void> {
    // The message is sent either way: a store that cannot keep its status costs only the status.
    await this.deps.book.noteSent(conversationId, messageId, recipientUserIds).catch((err: unknown) => this.deps.logger.warn({ err: String(err) }, 'could not keep the status of a sent message'));
  }

  private send(conversationId: string, senderUserId: string, status: 'delivered' | 'read' | 'acknowledged', messageIds: string[]): Promise<SendResult> {
    return this.deps.send(conversationId, { kind: 'receipt', status, messageIds }, [senderUserId]);
  }

  /**
   * Send a delivered receipt; a failure (a timeout under load, a dropped connection) is retried with
   * backoff, unless the app closed the client: a closed client sends nothing more, and no retry timer
   * keeps a Node process alive after `close()`.
   */
  private async deliver(conversationId: string, senderUserId: string, ids: string[], attempt: number): Promise<void> {
    try {
      await this.send(conversationId, senderUserId, 'delivered', ids);
    } catch (err) {
      const refused = isCurbsideError(err) && (err.code === ErrorCode.FORBIDDEN || err.code === ErrorCode.UNTRUSTED_IDENTITY);
      const final = attempt >= RECEIPT_ATTEMPTS || refused || this.deps.stopped();
      this.deps.logger.debug({ err: String(err), conversationId, attempt }, final ? 'delivered receipt not sent' : 'delivered receipt failed, retrying');
      if (final) return;
      const retry = setTimeout(() => {
        if (!this.deps.stopped()) void this.deliver(conversationId, senderUserId, ids, attempt + 1);
      }, backoffMs(attempt, { baseMs: 500, maxMs: 30_000 }));
      // Node: a live client's socket keeps the process running; a retry alone does not.
      (retry as { unref?: () => void }).unref?.();
    }
  }
}
