/**
 * The hub's requests, typed: conversations (with a cache of each one's members), keys, devices and
 * signed device lists, care-team statements, typing and presence. Large requests go in pages of what
 * the hub takes. The end-to-end messengers reach the hub only through this (their `HubTransport`).
 */
import {
  ClientEvent,
  DeviceListsResultSchema,
  DevicesListResultSchema,
  DirectoryResultSchema,
  ErrorCode,
  Limits,
  PrekeyBundleSchema,
  RoleLogResultSchema,
  RoleSearchResultSchema,
  PoolSearchResultSchema,
  type PoolSummary,
  type RoleSummary,
  type AlertAckRequest,
  type Conversation,
  type ConversationCreateRequest,
  type DeviceIdentity,
  type DeviceListChain,
  type DeviceRevokeResult,
  type DirectoryProfile,
  type KeysClaimRequest,
  type KeysPublishRequest,
  type OwnDevice,
  type PrekeyBundle,
  type PseudonymRequest,
  type SignedStatement,
} from '@curbside/shared';
import { CurbsideError } from '../errors.js';
import type { SignedDeviceListData } from '../crypto/index.js';
import type { HubConnection } from './connection.js';

export class HubApi {
  /** Members of each conversation, as the hub last said. */
  private readonly members = new Map<string, string[]>();
  /** Threads with on-call roles: the role and the requester (these never change). */
  private readonly roleThreads = new Map<string, { roleId: string; requesterUserId: string }>();

  constructor(private readonly connection: HubConnection) {}

  /** The hub said who is in a conversation (a push, or an answer). */
  noteMembers(conversation: Pick<Conversation, 'id' | 'memberUserIds' | 'roleId' | 'createdBy'>): void {
    this.members.set(conversation.id, conversation.memberUserIds);
    if (conversation.roleId !== undefined) this.roleThreads.set(conversation.id, { roleId: conversation.roleId, requesterUserId: conversation.createdBy });
  }

  /** The on-call role a conversation is a thread with, and who opened it; undefined for any other conversation. */
  async roleThread(conversationId: string): Promise<{ roleId: string; requesterUserId: string } | undefined> {
    if (!this.members.has(conversationId)) await this.conversationMembers(conversationId).catch(() => undefined);
    return this.roleThreads.get(conversationId);
  }

  /** `credentials:get`: the credentialing key and these users' signed attestations and revocations (unchecked). */
  async credentials(userIds: string[]): Promise<unknown> {
    return this.connection.request(ClientEvent.CREDENTIALS_GET, { userIds });
  }

  /** `credentials:search`: signed attestations by specialty (unchecked). */
  async credentialSearch(query: string): Promise<unknown> {
    return this.connection.request(ClientEvent.CREDENTIALS_SEARCH, { query });
  }

  /** `pseudonym:keys`: the office's certified token keys and epoch revocations (unchecked). */
  async pseudonymKeys(): Promise<unknown> {
    return this.connection.request(ClientEvent.PSEUDONYM_KEYS, {});
  }

  /** `pseudonym:request`: a signed request for blind-signed tokens. */
  async pseudonymRequest(req: PseudonymRequest): Promise<unknown> {
    return this.connection.request(ClientEvent.PSEUDONYM_REQUEST, req);
  }

  /** `pseudonym:collect`: the office's answers to these requests of this device (unchecked). */
  async pseudonymCollect(requestIds: string[]): Promise<unknown> {
    return this.connection.request(ClientEvent.PSEUDONYM_COLLECT, { requestIds });
  }

  /** `role:search`: the organisation's on-call roles whose name matches (all, without a query). */
  async roleSearch(query?: string, limit?: number): Promise<RoleSummary[]> {
    const req = { ...(query !== undefined && query.trim() !== '' ? { query: query.trim() } : {}), ...(limit !== undefined ? { limit } : {}) };
    return RoleSearchResultSchema.parse(await this.connection.request(ClientEvent.ROLE_SEARCH, req)).roles;
  }

  /** `role:log`: every signed statement of a role from `fromIndex`, all pages. */
  roleLog(roleId: string, fromIndex = 0): Promise<SignedStatement[]> {
    return this.logPages(fromIndex, (from) => this.connection.request(ClientEvent.ROLE_LOG, { roleId, fromIndex: from }));
  }

  /** A team log a page at a time (`role:log`, `pool:log`), from `fromIndex` to its end. */
  private async logPages(fromIndex: number, page: (from: number) => Promise<unknown>): Promise<SignedStatement[]> {
    const out: SignedStatement[] = [];
    for (;;) {
      const answer = RoleLogResultSchema.parse(await page(fromIndex + out.length));
      out.push(...answer.statements);
      if (!answer.more || answer.statements.length === 0) return out;
    }
  }

  /** `pool:search`: the organisation's consult pools whose topic matches (all, without a query). */
  async poolSearch(query?: string, limit?: number): Promise<PoolSummary[]> {
    const req = { ...(query !== undefined && query.trim() !== '' ? { query: query.trim() } : {}), ...(limit !== undefined ? { limit } : {}) };
    return PoolSearchResultSchema.parse(await this.connection.request(ClientEvent.POOL_SEARCH, req)).pools;
  }

  /** `pool:log`: every signed statement of a consult pool from `fromIndex`, all pages. */
  poolLog(poolId: string, fromIndex = 0): Promise<SignedStatement[]> {
    return this.logPages(fromIndex, (from) => this.connection.request(ClientEvent.POOL_LOG, { poolId, fromIndex: from }));
  }

  /** `role:open`: this user's thread with a role. */
  async roleOpen(roleId: string): Promise<Conversation> {
    const conversation = await this.connection.request(ClientEvent.ROLE_OPEN, { roleId });
    this.noteMembers(conversation);
    return conversation;
  }

  async createConversation(request: ConversationCreateRequest): Promise<Conversation> {
    const conversation = await this.connection.request(ClientEvent.CONVERSATION_CREATE, request);
    this.noteMembers(conversation);
    return conversation;
  }

  async leaveConversation(conversationId: string): Promise<Conversation> {
    const conversation = await this.connection.request(ClientEvent.CONVERSATION_LEAVE, { conversationId });
    this.members.delete(conversation.id);
    return conversation;
  }

  async listConversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let after: string | undefined;
    do {
      // The hub answers a page at a time (each well under a frame); this gathers them all.
      const page = await this.connection.request(ClientEvent.CONVERSATION_LIST, after === undefined ? {} : { after });
      all.push(...page.conversations);
      after = page.next;
    } while (after !== undefined);
    for (const c of all) this.noteMembers(c);
    return all;
  }

  /** Members as the hub sees them; `fresh` asks the hub instead of the cache. */
  async conversationMembers(conversationId: string, fresh = false): Promise<string[]> {
    const cached = this.members.get(conversationId);
    if (cached && !fresh) return cached;
    if (fresh) {
      const conversation = await this.connection.request(ClientEvent.CONVERSATION_GET, { conversationId });
      this.noteMembers(conversation);
      return conversation.memberUserIds;
    }
    await this.listConversations();
    const members = this.members.get(conversationId);
    if (!members) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this conversation', { conversationId });
    return members;
  }

  publishKeys(request: KeysPublishRequest): Promise<{ oneTimePrekeys: number }> {
    return this.connection.request(ClientEvent.KEYS_PUBLISH, request);
  }

  async countPrekeys(): Promise<number> {
    return (await this.connection.request(ClientEvent.KEYS_COUNT, {})).oneTimePrekeys;
  }

  async claimBundles(request: KeysClaimRequest): Promise<PrekeyBundle[]> {
    const out: PrekeyBundle[] = [];
    for (const userIds of pages(request.userIds, Limits.MAX_KEY_QUERY_USERS)) {
      const { bundles } = await this.connection.request(ClientEvent.KEYS_CLAIM, { ...request, userIds });
      out.push(...bundles.map((b) => PrekeyBundleSchema.parse(b)));
    }
    return out;
  }

  /** The hub's `devices:list`, unverified, with each signed list's version. */
  async hubDevices(userIds: string[]): Promise<{ devices: DeviceIdentity[]; listVersions: Array<{ userId: string; version: number }> }> {
    const devices: DeviceIdentity[] = [];
    const listVersions: Array<{ userId: string; version: number }> = [];
    for (const page of pages(userIds, Limits.MAX_KEY_QUERY_USERS)) {
      const result = DevicesListResultSchema.parse(await this.connection.request(ClientEvent.DEVICES_LIST, { userIds: page }));
      devices.push(...result.devices);
      listVersions.push(...(result.listVersions ?? []));
    }
    return { devices, listVersions };
  }

  async deviceListChains(users: Array<{ userId: string; after: number }>): Promise<DeviceListChain[]> {
    const out: DeviceListChain[] = [];
    for (const page of pages(users, Limits.MAX_KEY_QUERY_USERS)) out.push(...DeviceListsResultSchema.parse(await this.connection.request(ClientEvent.DEVICE_LISTS, { users: page })).chains);
    return out;
  }

  publishDeviceList(list: SignedDeviceListData): Promise<{ version: number }> {
    return this.connection.request(ClientEvent.DEVICE_LIST_PUBLISH, { list });
  }

  async myDevices(): Promise<OwnDevice[]> {
    return (await this.connection.request(ClientEvent.DEVICES_MINE, {})).devices;
  }

  revokeDevice(deviceId: string): Promise<DeviceRevokeResult> {
    return this.connection.request(ClientEvent.DEVICE_REVOKE, { deviceId });
  }

  async teamRequest(event: 'team:create' | 'team:change', request: { signed: SignedStatement }): Promise<{ seq: number }> {
    const res = await this.connection.request(event === 'team:create' ? ClientEvent.TEAM_CREATE : ClientEvent.TEAM_CHANGE, request);
    this.noteMembers(res.conversation);
    return { seq: res.seq };
  }

  async setTyping(conversationId: string, typing: boolean): Promise<void> {
    await this.connection.request(ClientEvent.TYPING, { conversationId, typing });
  }

  async presence(conversationId: string): Promise<Array<{ userId: string; deviceIds: string[] }>> {
    return (await this.connection.request(ClientEvent.PRESENCE_QUERY, { conversationId })).online;
  }

  /** Acknowledge an alert (an urgent or emergent message). */
  async acknowledgeAlert(conversationId: string, seq: number, confirmation?: AlertAckRequest['confirmation']): Promise<unknown> {
    return this.connection.request(ClientEvent.ALERT_ACK, { conversationId, seq, ...(confirmation ? { confirmation } : {}) });
  }

  /** What an activated escalation tier released to this device. */
  async alertContent(conversationId: string, seq: number): Promise<unknown> {
    return this.connection.request(ClientEvent.ALERT_CONTENT, { conversationId, seq });
  }

  /** This user's open alerts. */
  async openAlerts(): Promise<unknown> {
    return this.connection.request(ClientEvent.ALERT_LIST, {});
  }

  /** Directory profiles of these users (in pages the hub takes); users without a profile are left out. */
  async directoryLookup(userIds: readonly string[]): Promise<DirectoryProfile[]> {
    const out: DirectoryProfile[] = [];
    for (const page of pages(userIds, Limits.MAX_KEY_QUERY_USERS)) {
      out.push(...DirectoryResultSchema.parse(await this.connection.request(ClientEvent.DIRECTORY_LOOKUP, { userIds: page })).profiles);
    }
    return out;
  }

  /** Search the organisation's directory. */
  async directorySearch(query: string, limit?: number): Promise<DirectoryProfile[]> {
    const req = limit === undefined ? { query } : { query, limit };
    return DirectoryResultSchema.parse(await this.connection.request(ClientEvent.DIRECTORY_SEARCH, req)).profiles;
  }
}

function pages<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
