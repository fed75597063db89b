import {
  ConversationKind,
  ErrorCode,
  Limits,
  type Conversation,
  type Envelope,
  type SendResult,
  type SyncFetchResult,
  type SocketData,
} from '@curbside/shared';
import type { z } from 'zod';
import type {
  ConversationCreateRequestSchema,
  EnvelopeSendRequestSchema,
  SyncFetchRequestSchema,
} from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';

/** Who is asking: what the handshake bound to the socket. */
export type Caller = Pick<SocketData, 'orgId' | 'userId' | 'deviceId'>;

/** What the gateway must push after a successful send. */
export interface SendOutcome {
  result: SendResult;
  envelope: Envelope;
  /** Members whose devices (all but the sender's) get the envelope live. */
  recipientUserIds: string[];
}

const NOT_MEMBER = 'Not a member of this conversation';

/**
 * The message path, free of socket.io: membership checks, durable append, sync paging.
 * Inputs are already schema-validated by the gateway.
 */
export class MessageRelay {
  constructor(
    private readonly storage: Storage,
    private readonly now: () => number = Date.now,
  ) {}

  async createConversation(caller: Caller, req: z.output<typeof ConversationCreateRequestSchema>): Promise<{ conversation: Conversation; created: boolean }> {
    if (req.kind === ConversationKind.DIRECT) {
      if (req.peerUserId === caller.userId) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'A direct conversation needs another clinician');
      return this.storage.createConversation({
        orgId: caller.orgId,
        kind: 'direct',
        createdBy: caller.userId,
        memberUserIds: [req.peerUserId],
        now: this.now(),
      });
    }
    return this.storage.createConversation({
      orgId: caller.orgId,
      kind: 'group',
      title: req.title,
      createdBy: caller.userId,
      memberUserIds: req.memberUserIds,
      now: this.now(),
    });
  }

  listConversations(caller: Caller): Promise<Conversation[]> {
    return this.storage.listConversationsForUser(caller.orgId, caller.userId);
  }

  /**
   * Another organisation's conversation, a missing one and one the caller is not in all get the
   * same answer, so ids cannot be probed across tenants.
   */
  private async memberConversation(caller: Caller, conversationId: string): Promise<Conversation> {
    const conversation = await this.storage.getConversation(caller.orgId, conversationId);
    if (!conversation || !conversation.memberUserIds.includes(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, NOT_MEMBER, { conversationId });
    }
    return conversation;
  }

  async send(caller: Caller, req: z.output<typeof EnvelopeSendRequestSchema>): Promise<SendOutcome> {
    const conversation = await this.memberConversation(caller, req.conversationId);
    const appended = await this.storage.appendEnvelope({
      orgId: caller.orgId,
      conversationId: conversation.id,
      senderUserId: caller.userId,
      senderDeviceId: caller.deviceId,
      clientMessageId: req.clientMessageId,
      ciphertext: req.ciphertext,
      now: this.now(),
    });
    if (appended.status === 'conflict') {
      throw new HubError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This client message id was already used by this device for another conversation', {
        clientMessageId: req.clientMessageId,
      });
    }
    const { envelope } = appended;
    return {
      result: {
        messageId: envelope.messageId,
        conversationId: envelope.conversationId,
        seq: envelope.seq,
        sentAt: envelope.sentAt,
        duplicate: appended.status === 'duplicate',
      },
      envelope,
      recipientUserIds: conversation.memberUserIds,
    };
  }

  /**
   * Envelopes after the caller's cursors, conversation by conversation, up to the page limit.
   * Cursors for conversations the caller is not in are ignored (a removed member's SDK still has them).
   */
  async sync(caller: Caller, req: z.output<typeof SyncFetchRequestSchema>): Promise<SyncFetchResult> {
    const limit = req.limit ?? Limits.MAX_SYNC_PAGE;
    const cursors = new Map(req.cursors.map((c) => [c.conversationId, c.afterSeq]));
    const conversations = await this.storage.listConversationsForUser(caller.orgId, caller.userId);
    const envelopes: Envelope[] = [];
    let more = false;
    for (const conversation of conversations) {
      const after = cursors.get(conversation.id) ?? 0;
      if (conversation.lastSeq <= after) continue;
      const room = limit - envelopes.length;
      const page = await this.storage.envelopesAfter(caller.orgId, conversation.id, after, room);
      envelopes.push(...page);
      if (page.length === room) {
        more = true;
        break;
      }
    }
    return { envelopes, more };
  }
}
