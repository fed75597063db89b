/**
 * Escalation under end-to-end encryption (issue #20). The sender's device seals the content once
 * more under a fresh message key (`sealMessage`: the same format as a 1:1 message, bound to the
 * conversation, sender and client message id), and wraps that key for every device of every later
 * tier over its 1:1 session with it, at send time. The hub holds each tier's wrapped keys and hands
 * them out only when the tier activates; it never holds a key that opens the content. A hostile hub
 * can release a tier early, but only to the devices the sender wrapped keys for.
 */
import { ErrorCode, type AckPolicy, type AlertContent, type AlertPriority, type Envelope } from '@curbside/shared';
import { CurbsideError } from '../errors.js';
import type { AlertPayload } from '../hub/outbox.js';
import { openMessage, sealMessage, type MessageContent } from './message-crypto.js';
import { untrustedIdentity, type TeamContext } from './types.js';

/** What the app asks of an urgent message: its priority and, optionally, who to escalate to. */
export interface AlertRequest {
  priority: AlertPriority;
  ackPolicy?: AckPolicy;
  /** Later tiers, in order: asked if nobody acknowledged within `afterMs` of the send. */
  escalate?: Array<{ afterMs: number; userIds: string[] }>;
}

/** A message an escalation brought to this user, decrypted. */
export interface EscalatedMessage {
  conversationId: string;
  seq: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  sentAt: number;
  text: string;
  priority: AlertPriority | 'routine';
}

export class Escalations {
  constructor(private readonly core: TeamContext) {}

  /** The alert payload for a send: sealed content and wrapped keys when it escalates. */
  async payload(conversationId: string, clientMessageId: string, content: MessageContent, request: AlertRequest): Promise<AlertPayload> {
    const base: AlertPayload = { priority: request.priority, ...(request.ackPolicy ? { ackPolicy: request.ackPolicy } : {}) };
    if (!request.escalate?.length) return base;
    const me = this.core.self();
    for (const userId of request.escalate.flatMap((t) => t.userIds)) {
      if (await this.core.trust.isBlocked(userId)) {
        throw untrustedIdentity(userId, 'escalating to them');
      }
    }
    const { body, keyPackage } = sealMessage(content, { conversationId, senderUserId: me.userId, senderDeviceId: me.deviceId, clientMessageId });
    const tiers: NonNullable<AlertPayload['escalation']>['tiers'] = [];
    for (const tier of request.escalate) {
      const devices = (await this.core.listDevices(tier.userIds)).filter((d) => d.deviceId !== me.deviceId);
      const shares = new Map<string, Uint8Array>();
      await this.core.encryptShares(devices, keyPackage, shares);
      const recipients = devices.filter((d) => shares.has(d.deviceId)).map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
      if (recipients.length === 0) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, `Nobody in escalation tier ${tiers.length + 1} has a device to escalate to`, { userIds: tier.userIds });
      tiers.push({ afterMs: tier.afterMs, userIds: [...tier.userIds], recipients });
    }
    return { ...base, escalation: { body, tiers } };
  }

  /**
   * Open what an activated tier released to this device. The sender's device must be one its user's
   * signed list names, as for any message.
   * @throws CurbsideError DECRYPTION_FAILED (no key for this device, or the content does not open), UNLISTED_DEVICE
   */
  async open(content: AlertContent): Promise<EscalatedMessage> {
    if (!content.ciphertext) throw new CurbsideError(ErrorCode.DECRYPTION_FAILED, 'The sender wrapped no key for this device (it was linked after the message was sent)');
    if (!(await this.core.deviceLists.isListed(content.senderUserId, content.senderDeviceId))) {
      throw new CurbsideError(ErrorCode.DECRYPTION_FAILED, 'The escalated message comes from a device its user has not listed');
    }
    const envelope: Envelope = { ...content, ciphertext: content.ciphertext };
    const keyPackage = await this.core.decryptShare(envelope);
    const opened = openMessage(content.body, keyPackage, { conversationId: content.conversationId, senderUserId: content.senderUserId, senderDeviceId: content.senderDeviceId, clientMessageId: content.clientMessageId });
    if (opened.kind !== 'text') throw new CurbsideError(ErrorCode.DECRYPTION_FAILED, 'An escalated message must be a text');
    return {
      conversationId: content.conversationId,
      seq: content.seq,
      messageId: content.messageId,
      senderUserId: content.senderUserId,
      senderDeviceId: content.senderDeviceId,
      sentAt: content.sentAt,
      text: opened.text,
      priority: opened.priority ?? 'routine',
    };
  }
}
