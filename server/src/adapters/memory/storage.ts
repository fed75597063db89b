import { randomUUID } from 'node:crypto';
import type { Conversation, Envelope } from '@curbside/shared';
import type {
  AppendResult,
  DeviceRecord,
  NewConversation,
  NewEnvelope,
  Storage,
  UserRecord,
} from '../../ports/storage.js';
import { directKey, uniqueMembers } from '../../ports/storage-rules.js';

/** In-process storage for the embedded dev mode and fast logic tests. Keeps nothing across restarts. */
export class MemoryStorage implements Storage {
  private readonly users = new Map<string, UserRecord>();
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly conversations = new Map<string, Conversation & { orgId: string }>();
  private readonly directIndex = new Map<string, string>();
  private readonly envelopes = new Map<string, Envelope[]>();
  private readonly byClientId = new Map<string, { orgId: string; envelope: Envelope }>();

  async init(): Promise<void> {}
  async ping(): Promise<void> {}
  async close(): Promise<void> {}

  async touchDevice(input: { orgId: string; userId: string; deviceId: string; displayName?: string | undefined; now: number }) {
    const uk = key(input.orgId, input.userId);
    const prevUser = this.users.get(uk);
    const user: UserRecord = {
      orgId: input.orgId,
      userId: input.userId,
      displayName: input.displayName ?? prevUser?.displayName,
      createdAt: prevUser?.createdAt ?? input.now,
      lastSeenAt: input.now,
    };
    this.users.set(uk, user);
    const dk = key(input.orgId, input.deviceId);
    const prevDevice = this.devices.get(dk);
    const device: DeviceRecord = {
      orgId: input.orgId,
      userId: prevDevice?.userId ?? input.userId,
      deviceId: input.deviceId,
      createdAt: prevDevice?.createdAt ?? input.now,
      lastSeenAt: input.now,
    };
    this.devices.set(dk, device);
    return { user: { ...user }, device: { ...device } };
  }

  async getUser(orgId: string, userId: string) {
    const u = this.users.get(key(orgId, userId));
    return u && { ...u };
  }

  async listDevices(orgId: string, userId: string) {
    return [...this.devices.values()]
      .filter((d) => d.orgId === orgId && d.userId === userId)
      .map((d) => ({ ...d }))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  async createConversation(input: NewConversation) {
    const members = uniqueMembers(input.createdBy, input.memberUserIds);
    const dk = input.kind === 'direct' ? key(input.orgId, directKey(members)) : undefined;
    if (dk) {
      const existing = this.directIndex.get(dk);
      if (existing) return { conversation: strip(this.conversations.get(existing)!), created: false };
    }
    const conversation: Conversation & { orgId: string } = {
      orgId: input.orgId,
      id: randomUUID(),
      kind: input.kind,
      ...(input.title !== undefined ? { title: input.title } : {}),
      memberUserIds: members,
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
    };
    this.conversations.set(conversation.id, conversation);
    if (dk) this.directIndex.set(dk, conversation.id);
    return { conversation: strip(conversation), created: true };
  }

  async getConversation(orgId: string, conversationId: string) {
    const c = this.conversations.get(conversationId);
    return c && c.orgId === orgId ? strip(c) : undefined;
  }

  async listConversationsForUser(orgId: string, userId: string) {
    return [...this.conversations.values()]
      .filter((c) => c.orgId === orgId && c.memberUserIds.includes(userId))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
      .map(strip);
  }

  async appendEnvelope(input: NewEnvelope): Promise<AppendResult> {
    const conv = this.conversations.get(input.conversationId);
    if (!conv || conv.orgId !== input.orgId) throw new Error(`conversation ${input.conversationId} not found`);
    const ck = key(input.orgId, input.senderDeviceId, input.clientMessageId);
    const prior = this.byClientId.get(ck);
    if (prior) {
      return prior.envelope.conversationId === input.conversationId
        ? { status: 'duplicate', envelope: copyEnvelope(prior.envelope) }
        : { status: 'conflict' };
    }
    conv.lastSeq += 1;
    const envelope: Envelope = {
      messageId: randomUUID(),
      conversationId: input.conversationId,
      seq: conv.lastSeq,
      senderUserId: input.senderUserId,
      senderDeviceId: input.senderDeviceId,
      clientMessageId: input.clientMessageId,
      sentAt: input.now,
      ciphertext: new Uint8Array(input.ciphertext),
    };
    const list = this.envelopes.get(conv.id) ?? [];
    list.push(envelope);
    this.envelopes.set(conv.id, list);
    this.byClientId.set(ck, { orgId: input.orgId, envelope });
    return { status: 'stored', envelope: copyEnvelope(envelope) };
  }

  async envelopesAfter(orgId: string, conversationId: string, afterSeq: number, limit: number) {
    const conv = this.conversations.get(conversationId);
    if (!conv || conv.orgId !== orgId) return [];
    const list = this.envelopes.get(conversationId) ?? [];
    // seqs are 1..n without gaps, so index = seq - 1
    return list.slice(afterSeq, afterSeq + limit).map(copyEnvelope);
  }
}

function key(...parts: string[]): string {
  return parts.join('\u0000');
}

function strip(c: Conversation & { orgId: string }): Conversation {
  const { orgId: _org, ...rest } = c;
  return { ...rest, memberUserIds: [...rest.memberUserIds] };
}

function copyEnvelope(e: Envelope): Envelope {
  return { ...e, ciphertext: new Uint8Array(e.ciphertext) };
}
