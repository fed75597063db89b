import {
  compositeKey,
  ConversationKind,
  ErrorCode,
  Limits,
  SEALED_SENDER,
  type Conversation,
  type DeviceIdentity,
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
import type { Storage, StoredEnvelope } from '../ports/storage.js';
import { DeviceDirectory, type TagReadAhead } from './device-directory.js';
import { DeliveryCursors } from './delivery-cursors.js';
import { statementHash } from './team-epoch.js';

/** Who is asking: what the handshake bound to the socket. */
export type Caller = Pick<SocketData, 'orgId' | 'userId' | 'deviceId'>;

/** What the gateway must push after a successful send. */
export interface SendOutcome {
  result: SendResult;
  envelope: StoredEnvelope;
  /** Members whose devices (all but the sender's) get the envelope live. */
  recipientUserIds: string[];
  /** The conversation as the send checked it. */
  conversation: Conversation;
}

/** The envelope as one device sees it: the common body and only that device's share. */
export function projectForDevice(stored: StoredEnvelope, deviceId: string): Envelope {
  const { recipients, expiresAt: _expiresAt, ...rest } = stored;
  const mine = recipients?.find((r) => r.deviceId === deviceId);
  return mine ? { ...rest, ciphertext: mine.ciphertext } : rest;
}

const NOT_MEMBER = 'Not a member of this conversation';
const MAX_KNOWN_SENDERS = 100_000;
const DEFAULT_CONVERSATION_PAGE = 100;

function listCursor(c: Conversation): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');
}

function parseListCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdAt === 'number' && typeof id === 'string') return { createdAt, id };
  } catch {
    // answered below
  }
  throw new HubError(ErrorCode.INVALID_PAYLOAD, 'after is not a cursor this hub gave out');
}

function staleEpoch(conversation: Conversation): HubError {
  return new HubError(ErrorCode.STALE_EPOCH, 'This care team’s membership changed: apply the new statements, then encrypt again for the current members', {
    conversationId: conversation.id,
  });
}

/**
 * The message path, free of socket.io: membership checks, durable append, sync paging.
 * Inputs are already schema-validated by the gateway.
 */
export class MessageRelay {
  private readonly directory: DeviceDirectory;
  private readonly cursors: DeliveryCursors;
  /** `compositeKey(org, conversation, user)` already noted as senders by this node. */
  private readonly knownSenders = new Set<string>();

  constructor(
    private readonly storage: Storage,
    private readonly now: () => number = Date.now,
    /** How long the hub keeps an envelope that some device never acked. */
    private readonly retentionMs: number = 30 * 24 * 3600 * 1000,
    directory?: DeviceDirectory,
    cursors?: DeliveryCursors,
  ) {
    this.directory = directory ?? new DeviceDirectory({ storage });
    this.cursors = cursors ?? new DeliveryCursors({ storage });
  }

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
      createdBy: caller.userId,
      memberUserIds: req.memberUserIds,
      now: this.now(),
    });
  }

  /**
   * The device processed these conversations up to these seqs. Noted at once, written in batches
   * (see `DeliveryCursors`); conversations the caller is not in are dropped when written.
   */
  ack(caller: Caller, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>): void {
    this.cursors.note(caller, cursors);
  }

  /** Write the acks noted so far (before a sweep, and when the node closes). */
  flushAcks(): Promise<void> {
    return this.cursors.flush();
  }

  async close(): Promise<void> {
    await this.cursors.close();
  }

  /**
   * The caller's conversations a page at a time, oldest first, each page under `limit` and about
   * MAX_SYNC_PAGE_BYTES. `after` is the opaque `next` of the previous page: (createdAt, id) of its last.
   */
  async listConversations(caller: Caller, page: { limit?: number | undefined; after?: string | undefined } = {}): Promise<{ conversations: Conversation[]; next?: string }> {
    const all = await this.storage.listConversationsForUser(caller.orgId, caller.userId);
    const after = page.after === undefined ? undefined : parseListCursor(page.after);
    const rest = after ? all.filter((c) => c.createdAt > after.createdAt || (c.createdAt === after.createdAt && c.id > after.id)) : all;
    const limit = page.limit ?? DEFAULT_CONVERSATION_PAGE;
    const conversations: Conversation[] = [];
    let bytes = 0;
    for (const c of rest) {
      const size = 200 + (c.title?.length ?? 0) + c.memberUserIds.reduce((n, u) => n + u.length + 3, 0) * (c.roles ? 2 : 1);
      if (conversations.length >= limit || (conversations.length > 0 && bytes + size > Limits.MAX_SYNC_PAGE_BYTES)) break;
      bytes += size;
      conversations.push(c);
    }
    const last = conversations.at(-1);
    return conversations.length < rest.length && last ? { conversations, next: listCursor(last) } : { conversations };
  }

  /**
   * Leave a group: anyone may, at any time. A care team is left with a signed remove statement
   * (`team:change`), a direct conversation not at all. Returns the conversation after, and who was in it.
   */
  async leave(caller: Caller, conversationId: string): Promise<{ conversation: Conversation; notifyUserIds: string[] }> {
    const before = await this.memberConversation(caller, conversationId);
    if (before.kind !== ConversationKind.GROUP) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'Only group conversations can be left', { conversationId });
    if (before.signed) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'A care team is left with a signed remove statement (team:change; the SDK: leaveTeam)', { conversationId });
    if (before.roleId !== undefined) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'A thread with an on-call role follows the role’s members: leave the role instead', { conversationId });
    const after = await this.storage.leaveGroup(caller.orgId, conversationId, caller.userId);
    if (!after) throw new HubError(ErrorCode.CONFLICT, 'The conversation changed; try again', { conversationId });
    await this.directory.conversationChanged(caller.orgId, conversationId);
    return { conversation: after, notifyUserIds: [...new Set([...after.memberUserIds, caller.userId])] };
  }

  /**
   * Another organisation's conversation, a missing one and one the caller is not in all get the
   * same answer, so ids cannot be probed across tenants.
   */
  async memberConversation(caller: Caller, conversationId: string): Promise<Conversation> {
    const conversation = await this.storage.getConversation(caller.orgId, conversationId);
    if (!conversation || !conversation.memberUserIds.includes(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, NOT_MEMBER, { conversationId });
    }
    return conversation;
  }

  /**
   * Start the directory-tag read a send of this conversation will need, now (see
   * `DeviceDirectory.readAhead`): the gateway calls it in the same turn as the send's rate-limit
   * check, so both share one Redis round trip. Pass the result to `send`.
   */
  readAhead(caller: Caller, req: { conversationId: string }): TagReadAhead | undefined {
    return this.directory.readAhead(caller.orgId, req.conversationId);
  }

  async send(caller: Caller, req: z.output<typeof EnvelopeSendRequestSchema>, ahead?: TagReadAhead): Promise<SendOutcome> {
    // Membership and devices from the node's directory (one tag read when cached, started ahead by
    // the gateway); its lastSeq is a hint.
    const { conversation, devices, signedUsers, fence } = await this.directory.conversationWithDevices(caller.orgId, req.conversationId, ahead);
    if (!conversation || !conversation.memberUserIds.includes(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, NOT_MEMBER, { conversationId: req.conversationId });
    }
    // A device the user's signed list does not name (not linked yet, or inserted behind the user's
    // back) is sent nothing, and sends nothing either.
    if (signedUsers.has(caller.userId) && !devices.some((d) => d.userId === caller.userId && d.deviceId === caller.deviceId)) throw notLinked();
    return this.sequence(caller, req, conversation, devices, fence);
  }

  /**
   * A sealed post (sealed-posts.ts): a consult pool's message from the reserved sender, whose
   * authority (a pseudonym token and the posting key's signature) the caller checked. The pool's
   * epoch, the named devices and idempotency are checked as for any member's send; the hub's records
   * name no account.
   */
  async sendSealed(orgId: string, req: z.output<typeof EnvelopeSendRequestSchema>): Promise<SendOutcome> {
    const { conversation, devices, fence } = await this.directory.conversationWithDevices(orgId, req.conversationId);
    if (!conversation?.pool) throw new HubError(ErrorCode.NOT_FOUND, 'No such consult pool', { poolId: req.conversationId });
    return this.sequence({ orgId, userId: SEALED_SENDER, deviceId: SEALED_SENDER }, req, conversation, devices, fence);
  }

  private async sequence(caller: Caller, req: z.output<typeof EnvelopeSendRequestSchema>, conversation: Conversation, devices: DeviceIdentity[], fence: string | undefined): Promise<SendOutcome> {
    // A care team's message body is readable by every holder of the sender's key, removed members'
    // too: it must be bound to the current membership (the epoch is in its associated data). A
    // receipt's body opens only with the key its named recipients get over their 1:1 sessions.
    const epochBound = conversation.signed === true && req.body !== undefined && req.kind !== 'receipt';
    if (epochBound && req.epoch !== conversation.epoch) throw staleEpoch(conversation);
    const known = devices.filter((d) => d.deviceId !== caller.deviceId);
    if (req.recipients) await this.checkDeviceList(caller, req, known);
    const now = this.now();
    const appended = await this.storage.appendEnvelope({
      orgId: caller.orgId,
      conversationId: conversation.id,
      senderUserId: caller.userId,
      senderDeviceId: caller.deviceId,
      clientMessageId: req.clientMessageId,
      body: req.body,
      recipients: req.recipients,
      partial: req.partial,
      kind: req.kind,
      // Delivery state: the devices registered now. It may go once they all acked, or at retention.
      deliverTo: req.recipients && req.partial ? req.recipients.map((r) => r.deviceId) : known.map((d) => d.deviceId),
      expiresAt: now + this.retentionMs,
      lastSeqSeen: conversation.lastSeq,
      ...(epochBound ? { epoch: req.epoch } : {}),
      now,
    });
    if (appended.status === 'conflict') {
      throw new HubError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This client message id was already used by this device for another conversation', {
        clientMessageId: req.clientMessageId,
      });
    }
    const { envelope } = appended;
    if (!conversation.signed) this.noteSender(caller, conversation.id);
    if (epochBound) await this.fenceEpoch(caller, conversation, envelope, appended.status === 'stored' ? fence : undefined);
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
      conversation,
    };
  }

  /**
   * An escalation tier user's sealed confirmation of their acknowledgement (checked by
   * `Alerts.checkConfirmation`): put into the conversation's sequence as a receipt from them, for the
   * sender's devices only (the other members get it without a share, and ignore it).
   */
  async appendConfirmation(caller: Caller, conversationId: string, confirmation: { clientMessageId: string; body: Uint8Array; recipients: Array<{ deviceId: string; ciphertext: Uint8Array }> }): Promise<StoredEnvelope> {
    const now = this.now();
    const appended = await this.storage.appendEnvelope({
      orgId: caller.orgId,
      conversationId,
      senderUserId: caller.userId,
      senderDeviceId: caller.deviceId,
      clientMessageId: confirmation.clientMessageId,
      body: confirmation.body,
      recipients: confirmation.recipients,
      partial: true,
      kind: 'receipt',
      deliverTo: confirmation.recipients.map((r) => r.deviceId),
      expiresAt: now + this.retentionMs,
      now,
    });
    if (appended.status === 'conflict') throw new HubError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This client message id was already used by this device for another conversation', { clientMessageId: confirmation.clientMessageId });
    return appended.envelope;
  }

  /**
   * Having written in a conversation someone else started is what accepts it (presence shows there
   * from then on). Written once per member and conversation, remembered per node; never holds up a send.
   */
  private noteSender(caller: Caller, conversationId: string): void {
    const key = compositeKey(caller.orgId, conversationId, caller.userId);
    if (this.knownSenders.has(key)) return;
    if (this.knownSenders.size >= MAX_KNOWN_SENDERS) this.knownSenders.clear();
    this.knownSenders.add(key);
    this.storage.noteSender(caller.orgId, conversationId, caller.userId).catch(() => this.knownSenders.delete(key));
  }

  /**
   * The second half of the epoch check, after the append: was a membership change sequenced before
   * this envelope? The check before the append and the append are not one atomic step (FerretDB has
   * no transactions, and two hub nodes append to one team), so a removal can slip in between. A
   * membership change bumps the conversation's tag after it is stored and before its statement is
   * sequenced: an unchanged tag now proves that no statement precedes the envelope (one Redis read,
   * no database read). Otherwise, or for a retried send, storage says which statement precedes it;
   * if that moved the epoch, the envelope is withdrawn before anyone heard of it, and the client
   * resends under the new epoch. Nothing readable by a removed member stays sequenced after its removal.
   */
  private async fenceEpoch(caller: Caller, conversation: Conversation, envelope: StoredEnvelope, fence: string | undefined): Promise<void> {
    if ((await this.directory.unchangedSince(caller.orgId, conversation.id, fence)) === true) return;
    // Still the team's epoch: no statement moved it (heads never repeat: each hashes its index and predecessor).
    if ((await this.storage.getTeamState(caller.orgId, conversation.id))?.head === envelope.epoch) return;
    // Moved, but by a statement sequenced after this envelope: the envelope came first, as it should.
    const statement = await this.storage.statementBefore(caller.orgId, conversation.id, envelope.seq);
    if (statement?.membership && statementHash(statement.membership.statement) === envelope.epoch) return;
    await this.storage.withdrawEnvelope(caller.orgId, caller.deviceId, envelope.clientMessageId);
    await this.directory.conversationChanged(caller.orgId, conversation.id);
    throw staleEpoch(conversation);
  }

  /**
   * Signal's Sesame rule: an encrypted send names exactly the devices the hub knows for the
   * conversation (every member's devices with published keys, less the sending one). Anything else
   * is refused with what is missing and extra, so the client fetches bundles and retries.
   * A retry of a send the hub already stored is let through: it will be answered as a duplicate.
   */
  private async checkDeviceList(caller: Caller, req: z.output<typeof EnvelopeSendRequestSchema>, known: DeviceIdentity[]): Promise<void> {
    const named = new Set(req.recipients!.map((r) => r.deviceId));
    const missing = known.filter((d) => !named.has(d.deviceId)).map((d) => ({ userId: d.userId, deviceId: d.deviceId }));
    const knownIds = new Set(known.map((d) => d.deviceId));
    const extra = [...named].filter((id) => !knownIds.has(id));
    if (req.partial) {
      // A partial send only has to name member devices; the rest get the envelope without a share.
      if (extra.length === 0) return;
      throw new HubError(ErrorCode.DEVICE_LIST_STALE, 'Some named devices are not devices of this conversation', { missing: [], extra });
    }
    if (missing.length === 0 && extra.length === 0) return;
    if (await this.storage.findSent(caller.orgId, caller.deviceId, req.clientMessageId)) return;
    throw new HubError(ErrorCode.DEVICE_LIST_STALE, 'The recipient device list is out of date', { missing, extra });
  }

  /**
   * Envelopes after the caller's cursors, conversation by conversation, up to the page limit.
   * Cursors for conversations the caller is not in are ignored (a removed member's SDK still has them).
   */
  async sync(caller: Caller, req: z.output<typeof SyncFetchRequestSchema>): Promise<SyncFetchResult> {
    const page = await this.syncStored(caller, req);
    return { envelopes: page.envelopes.map((e) => projectForDevice(e, caller.deviceId)), more: page.more };
  }

  private async syncStored(caller: Caller, req: z.output<typeof SyncFetchRequestSchema>): Promise<{ envelopes: StoredEnvelope[]; more: boolean }> {
    const limit = req.limit ?? Limits.MAX_SYNC_PAGE;
    const cursors = new Map(req.cursors.map((c) => [c.conversationId, c.afterSeq]));
    const conversations = await this.storage.listConversationsForUser(caller.orgId, caller.userId);
    const envelopes: StoredEnvelope[] = [];
    let more = false;
    let bytes = 0;
    for (const conversation of conversations) {
      const after = cursors.get(conversation.id) ?? 0;
      if (conversation.lastSeq <= after) continue;
      const room = limit - envelopes.length;
      const page = await this.storage.envelopesAfter(caller.orgId, conversation.id, after, room);
      for (const e of page) {
        // Pages stay well under a frame: large envelopes end a page early (never before the first).
        const size = (e.body?.byteLength ?? 0) + (e.recipients?.find((r) => r.deviceId === caller.deviceId)?.ciphertext.byteLength ?? 0);
        if (envelopes.length > 0 && bytes + size > Limits.MAX_SYNC_PAGE_BYTES) return { envelopes, more: true };
        bytes += size;
        envelopes.push(e);
      }
      if (page.length === room) {
        more = true;
        break;
      }
    }
    return { envelopes, more };
  }
}

function notLinked(): HubError {
  return new HubError(ErrorCode.DEVICE_NOT_LINKED, "This device is not in its user's signed device list yet: link it from another of the user's devices");
}
