/**
 * The Storage port in memory: the embedded dev-mode default and the reference every contract suite
 * holds the MongoDB adapter to.
 * Long file: one class implements the whole port (users and devices, keys, conversations and teams,
 * envelopes, cursors, device lists, administration) over one set of maps, so each area's invariants
 * can be checked against the same state; each area is a section.
 */
import { randomUUID } from 'node:crypto';
import { compositeKey, type Conversation, type DeviceIdentity, type OneTimePrekey, type PrekeyBundle, type SignedPrekey, type SignedStatement, type TeamState } from '@curbside/shared';
import type {
  AppendResult,
  DeviceRecord,
  NewConversation,
  NewEnvelope,
  PublishKeysInput,
  PublishKeysResult,
  Storage,
  StoredEnvelope,
  UserRecord,
} from '../../ports/storage.js';
import { SWEEP_GRACE_MS, directKey, roleThreadKey, sameMembers, uniqueMembers } from '../../ports/storage-rules.js';
import { MemoryProfiles } from './profiles.js';
import { MemoryAlerts } from './alerts.js';
import { MemoryCredentials } from './credentials.js';
import { MemoryPseudonyms } from './pseudonyms.js';
import { MemoryAttachments } from './attachments.js';

/** In-process storage for the embedded dev mode and fast logic tests. Keeps nothing across restarts. */
export class MemoryStorage implements Storage {
  private readonly users = new Map<string, UserRecord>();
  private readonly devices = new Map<string, DeviceRecord>();
  /** org NUL user → that user's device keys (a device's owner never changes), so lookups by user do not scan every device. */
  private readonly devicesByUser = new Map<string, Set<string>>();
  /** By `key(orgId, conversationId)`: conversation ids are scoped per organisation. */
  private readonly conversations = new Map<string, Conversation & { orgId: string; team?: TeamState }>();
  private readonly directIndex = new Map<string, string>();
  /** By `key(orgId, conversationId)`. */
  private readonly envelopes = new Map<string, StoredEnvelope[]>();
  /** `key(orgId, conversationId, userId)` of members who sent something. */
  private readonly senders = new Set<string>();
  private readonly byClientId = new Map<string, { orgId: string; envelope: StoredEnvelope }>();
  /** org NUL device NUL conversation → highest seq the device acked */
  private readonly acks = new Map<string, number>();
  /** message id → devices it is for (delivery state, not part of what clients see) */
  private readonly delivery = new Map<string, { deliverTo: string[] }>();
  /** device key → published keys */
  private readonly deviceKeys = new Map<string, { identityKey: Uint8Array; signedPrekey: SignedPrekey }>();
  /** device key → one-time prekeys by key id, in upload order */
  private readonly prekeys = new Map<string, Map<number, OneTimePrekey>>();

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
    if (!prevDevice) {
      const owner = key(input.orgId, device.userId);
      const set = this.devicesByUser.get(owner) ?? new Set<string>();
      set.add(dk);
      this.devicesByUser.set(owner, set);
    }
    return { user: { ...user }, device: { ...device } };
  }

  async getUser(orgId: string, userId: string) {
    const u = this.users.get(key(orgId, userId));
    return u && { ...u };
  }

  /** The devices of these users (through the index, not a scan of every device). */
  private devicesOf(orgId: string, userIds: Iterable<string>): DeviceRecord[] {
    const out: DeviceRecord[] = [];
    for (const userId of new Set(userIds)) for (const dk of this.devicesByUser.get(key(orgId, userId)) ?? []) out.push(this.devices.get(dk)!);
    return out;
  }

  async listDevices(orgId: string, userId: string) {
    return this.devicesOf(orgId, [userId])
      .map((d) => ({ ...d }))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  async createConversation(input: NewConversation) {
    const members = uniqueMembers(input.createdBy, input.memberUserIds);
    const dk = input.kind === 'direct' ? key(input.orgId, directKey(members)) : input.roleId !== undefined ? key(input.orgId, roleThreadKey(input.roleId, input.createdBy)) : undefined;
    if (dk) {
      const existing = this.directIndex.get(dk);
      if (existing) return { conversation: strip(this.conversations.get(key(input.orgId, existing))!), created: false };
    }
    const conversation: Conversation & { orgId: string } = {
      orgId: input.orgId,
      id: randomUUID(),
      kind: input.kind,
      memberUserIds: members,
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
      ...(input.roleId !== undefined ? { roleId: input.roleId } : {}),
    };
    this.conversations.set(key(input.orgId, conversation.id), conversation);
    if (dk) this.directIndex.set(dk, conversation.id);
    return { conversation: strip(conversation), created: true };
  }

  async leaveGroup(orgId: string, conversationId: string, userId: string) {
    const c = this.conversations.get(key(orgId, conversationId));
    if (!c || c.kind !== 'group' || c.team) return undefined;
    c.memberUserIds = c.memberUserIds.filter((u) => u !== userId);
    return strip(c);
  }

  async noteSender(orgId: string, conversationId: string, userId: string) {
    this.senders.add(key(orgId, conversationId, userId));
  }

  async sendersAmong(orgId: string, conversationId: string, userIds: readonly string[]) {
    return userIds.filter((u) => this.senders.has(key(orgId, conversationId, u)));
  }

  async getConversation(orgId: string, conversationId: string) {
    const c = this.conversations.get(key(orgId, conversationId));
    return c && strip(c);
  }

  async listConversationsForUser(orgId: string, userId: string) {
    return [...this.conversations.values()]
      .filter((c) => c.orgId === orgId && c.memberUserIds.includes(userId))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
      .map(strip);
  }

  async appendEnvelope(input: NewEnvelope): Promise<AppendResult> {
    const conv = this.conversations.get(key(input.orgId, input.conversationId));
    if (!conv) throw new Error(`conversation ${input.conversationId} not found`);
    const ck = key(input.orgId, input.senderDeviceId, input.clientMessageId);
    const prior = this.byClientId.get(ck);
    if (prior) {
      return prior.envelope.conversationId === input.conversationId
        ? { status: 'duplicate', envelope: copyEnvelope(prior.envelope) }
        : { status: 'conflict' };
    }
    conv.lastSeq += 1;
    const envelope: StoredEnvelope = {
      messageId: randomUUID(),
      conversationId: input.conversationId,
      seq: conv.lastSeq,
      senderUserId: input.senderUserId,
      senderDeviceId: input.senderDeviceId,
      clientMessageId: input.clientMessageId,
      sentAt: input.now,
      ...(input.body ? { body: new Uint8Array(input.body) } : {}),
      ...(input.partial ? { partial: true } : {}),
      ...(input.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
      ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
      ...(input.membership ? { membership: { statement: input.membership.statement, signature: new Uint8Array(input.membership.signature) } } : {}),
      ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
      ...(input.recipients ? { recipients: input.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: new Uint8Array(r.ciphertext) })) } : {}),
    };
    const ek = key(input.orgId, conv.id);
    const list = this.envelopes.get(ek) ?? [];
    list.push(envelope);
    if (input.deliverTo) this.delivery.set(envelope.messageId, { deliverTo: [...input.deliverTo] });
    this.envelopes.set(ek, list);
    this.byClientId.set(ck, { orgId: input.orgId, envelope });
    return { status: 'stored', envelope: copyEnvelope(envelope) };
  }

  async envelopesAfter(orgId: string, conversationId: string, afterSeq: number, limit: number) {
    const list = this.envelopes.get(key(orgId, conversationId)) ?? [];
    return list
      .filter((e) => e.seq > afterSeq)
      .slice(0, Math.max(0, limit))
      .map(copyEnvelope);
  }

  async ackDelivered(orgId: string, deviceId: string, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>) {
    for (const c of cursors) {
      const k = key(orgId, deviceId, c.conversationId);
      this.acks.set(k, Math.max(this.acks.get(k) ?? 0, c.afterSeq));
    }
  }

  async sweepEnvelopes(now: number) {
    let deleted = 0;
    for (const [ck, list] of this.envelopes) {
      const conv = this.conversations.get(ck);
      if (!conv) continue;
      const conversationId = conv.id;
      const last = list[list.length - 1]?.seq;
      const keep = list.filter((e) => {
        // Nothing younger than the grace (the rule every adapter keeps; SWEEP_GRACE_MS).
        if (e.membership || e.seq === last || e.sentAt > now - SWEEP_GRACE_MS) return true;
        if (e.expiresAt !== undefined && e.expiresAt <= now) return false;
        const meta = this.delivery.get(e.messageId);
        if (!meta || meta.deliverTo.length === 0) return true;
        return !meta.deliverTo.every((d) => (this.acks.get(key(conv.orgId, d, conversationId)) ?? 0) >= e.seq);
      });
      deleted += list.length - keep.length;
      this.envelopes.set(ck, keep);
    }
    return { deleted };
  }

  async createTeam(input: { orgId: string; state: TeamState; createdBy: string; now: number }) {
    const ck = key(input.orgId, input.state.teamId);
    if (this.conversations.has(ck)) return { status: 'exists' as const };
    const conversation: Conversation & { orgId: string; team: TeamState } = {
      orgId: input.orgId,
      id: input.state.teamId,
      kind: 'group',
      memberUserIds: Object.keys(input.state.members),
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
      team: structuredClone(input.state),
    };
    this.conversations.set(ck, conversation);
    return { status: 'created' as const, conversation: strip(conversation) };
  }

  async getTeamState(orgId: string, teamId: string) {
    const c = this.conversations.get(key(orgId, teamId));
    return c?.team ? structuredClone(c.team) : undefined;
  }

  async advanceTeam(orgId: string, teamId: string, expectedIndex: number, next: TeamState) {
    const c = this.conversations.get(key(orgId, teamId));
    if (!c?.team) throw new Error(`team ${teamId} not found`);
    if (c.team.index !== expectedIndex) return 'conflict' as const;
    c.team = structuredClone(next);
    c.memberUserIds = Object.keys(next.members);
    return 'ok' as const;
  }

  async statementBefore(orgId: string, teamId: string, seq: number) {
    const list = this.envelopes.get(key(orgId, teamId)) ?? [];
    const found = list.filter((e) => e.membership && e.seq < seq).at(-1);
    return found && copyEnvelope(found);
  }

  async withdrawEnvelope(orgId: string, senderDeviceId: string, clientMessageId: string) {
    const ck = key(orgId, senderDeviceId, clientMessageId);
    const prior = this.byClientId.get(ck);
    if (!prior) return;
    this.byClientId.delete(ck);
    const list = this.envelopes.get(key(orgId, prior.envelope.conversationId)) ?? [];
    const at = list.indexOf(prior.envelope);
    const { body: _b, recipients: _r, epoch: _e, partial: _p, ...kept } = prior.envelope;
    if (at >= 0) list[at] = { ...kept, clientMessageId: `withdrawn-${kept.messageId}` };
    this.delivery.delete(kept.messageId);
  }

  async findSent(orgId: string, senderDeviceId: string, clientMessageId: string) {
    const prior = this.byClientId.get(key(orgId, senderDeviceId, clientMessageId));
    return prior && copyEnvelope(prior.envelope);
  }

  async publishKeys(input: PublishKeysInput): Promise<PublishKeysResult> {
    const dk = key(input.orgId, input.deviceId);
    if (!this.devices.has(dk)) throw new Error(`device ${input.deviceId} not found`);
    const existing = this.deviceKeys.get(dk);
    if (existing && !sameBytes(existing.identityKey, input.identityKey)) return { status: 'identity_mismatch' };
    if (!existing && !input.signedPrekey) return { status: 'signed_prekey_required' };
    const stored = this.prekeys.get(dk) ?? new Map<number, OneTimePrekey>();
    const fresh = (input.oneTimePrekeys ?? []).filter((k) => !stored.has(k.keyId));
    const freshIds = new Set(fresh.map((k) => k.keyId));
    if (stored.size + freshIds.size > input.maxStored) return { status: 'too_many_prekeys', stored: stored.size };
    this.deviceKeys.set(dk, {
      identityKey: new Uint8Array(input.identityKey),
      signedPrekey: input.signedPrekey ? copySignedPrekey(input.signedPrekey) : existing!.signedPrekey,
    });
    for (const k of fresh) if (!stored.has(k.keyId)) stored.set(k.keyId, { keyId: k.keyId, publicKey: new Uint8Array(k.publicKey) });
    this.prekeys.set(dk, stored);
    return { status: 'ok', firstPublish: !existing, oneTimePrekeys: stored.size };
  }

  async countOneTimePrekeys(orgId: string, deviceId: string) {
    return this.prekeys.get(key(orgId, deviceId))?.size ?? 0;
  }

  async listDeviceIdentities(orgId: string, userIds: readonly string[]): Promise<DeviceIdentity[]> {
    return this.devicesOf(orgId, userIds)
      .filter((d) => this.deviceKeys.has(key(orgId, d.deviceId)))
      .sort((a, b) => a.userId.localeCompare(b.userId) || a.deviceId.localeCompare(b.deviceId))
      .map((d) => ({ userId: d.userId, deviceId: d.deviceId, identityKey: new Uint8Array(this.deviceKeys.get(key(orgId, d.deviceId))!.identityKey) }));
  }

  async claimBundles(orgId: string, userIds: readonly string[], deviceIds?: readonly string[]): Promise<PrekeyBundle[]> {
    const only = deviceIds ? new Set(deviceIds) : undefined;
    const bundles: PrekeyBundle[] = [];
    for (const identity of await this.listDeviceIdentities(orgId, userIds)) {
      if (only && !only.has(identity.deviceId)) continue;
      const dk = key(orgId, identity.deviceId);
      const keys = this.deviceKeys.get(dk)!;
      const pool = this.prekeys.get(dk);
      let oneTimePrekey: OneTimePrekey | undefined;
      if (pool && pool.size > 0) {
        const lowest = Math.min(...pool.keys());
        oneTimePrekey = pool.get(lowest);
        pool.delete(lowest);
      }
      bundles.push({ ...identity, signedPrekey: copySignedPrekey(keys.signedPrekey), ...(oneTimePrekey ? { oneTimePrekey } : {}) });
    }
    return bundles;
  }

  // --- security: devices (DeviceAdmin, server/src/ports/device-admin.ts) ---

  /** device key → when it was revoked (tombstones are kept for good). */
  private readonly revokedDevices = new Map<string, number>();

  async listOwnDevices(orgId: string, userId: string): Promise<OwnDeviceRecord[]> {
    return (await this.listDevices(orgId, userId)).map((d) => ({
      ...d,
      hasKeys: this.deviceKeys.has(key(orgId, d.deviceId)),
      identityKey: copyBytes(this.deviceKeys.get(key(orgId, d.deviceId))?.identityKey),
      revokedAt: this.revokedDevices.get(key(orgId, d.deviceId)),
    }));
  }

  async revokeDevice(input: { orgId: string; userId: string; deviceId: string; now: number }): Promise<{ status: 'revoked' | 'already' | 'not_found' }> {
    const dk = key(input.orgId, input.deviceId);
    const device = this.devices.get(dk);
    if (!device || device.userId !== input.userId) return { status: 'not_found' };
    const status = this.revokedDevices.has(dk) ? 'already' : 'revoked';
    if (status === 'revoked') this.revokedDevices.set(dk, input.now);
    this.deviceKeys.delete(dk);
    this.prekeys.delete(dk);
    return { status };
  }

  async deviceRevokedAt(orgId: string, deviceId: string): Promise<number | undefined> {
    return this.revokedDevices.get(key(orgId, deviceId));
  }

  async restoreDevice(orgId: string, deviceId: string): Promise<{ status: 'restored' | 'not_revoked' }> {
    return { status: this.revokedDevices.delete(key(orgId, deviceId)) ? 'restored' : 'not_revoked' };
  }

  // --- administration: users (UserAdmin, server/src/ports/user-admin.ts) ---

  /** user key → when an operator disabled the user. */
  private readonly disabledUsers = new Map<string, number>();

  async listUsers(orgId: string, page: { after?: string | undefined; limit: number }): Promise<AdminUserRecord[]> {
    return [...this.users.values()]
      .filter((u) => u.orgId === orgId && (page.after === undefined || u.userId > page.after))
      .sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
      .slice(0, page.limit)
      .map((u) => ({ orgId, userId: u.userId, createdAt: u.createdAt, lastSeenAt: u.lastSeenAt, disabledAt: this.disabledUsers.get(key(orgId, u.userId)) }));
  }

  async disableUser(input: { orgId: string; userId: string; now: number }): Promise<{ status: 'disabled' | 'already' | 'not_found' }> {
    const uk = key(input.orgId, input.userId);
    if (!this.users.has(uk)) return { status: 'not_found' };
    if (this.disabledUsers.has(uk)) return { status: 'already' };
    this.disabledUsers.set(uk, input.now);
    return { status: 'disabled' };
  }

  async enableUser(orgId: string, userId: string): Promise<{ status: 'enabled' | 'not_disabled' }> {
    return { status: this.disabledUsers.delete(key(orgId, userId)) ? 'enabled' : 'not_disabled' };
  }

  async userDisabledAt(orgId: string, userId: string): Promise<number | undefined> {
    return this.disabledUsers.get(key(orgId, userId));
  }

  // --- directory: profiles (ProfileDirectory, server/src/ports/profiles.ts) ---

  private readonly profiles = new MemoryProfiles();
  recordTokenProfile = this.profiles.recordTokenProfile.bind(this.profiles);
  setAdminProfile = this.profiles.setAdminProfile.bind(this.profiles);
  lookupProfiles = this.profiles.lookupProfiles.bind(this.profiles);
  searchProfiles = this.profiles.searchProfiles.bind(this.profiles);

  // --- clinical workflow: verified credentials (CredentialStore, server/src/ports/credentials.ts) ---

  private readonly credentials = new MemoryCredentials();
  getCredentialKey = this.credentials.getCredentialKey.bind(this.credentials);
  setCredentialKey = this.credentials.setCredentialKey.bind(this.credentials);
  putAttestation = this.credentials.putAttestation.bind(this.credentials);
  putRevocation = this.credentials.putRevocation.bind(this.credentials);
  hasAttestation = this.credentials.hasAttestation.bind(this.credentials);
  credentialsOf = this.credentials.credentialsOf.bind(this.credentials);
  searchCredentials = this.credentials.searchCredentials.bind(this.credentials);

  // --- clinical workflow: pseudonymous posting (PseudonymStore, server/src/ports/pseudonyms.ts) ---

  private readonly pseudonyms = new MemoryPseudonyms();
  putPseudonymKey = this.pseudonyms.putPseudonymKey.bind(this.pseudonyms);
  putPseudonymKeyRevocation = this.pseudonyms.putPseudonymKeyRevocation.bind(this.pseudonyms);
  pseudonymKeys = this.pseudonyms.pseudonymKeys.bind(this.pseudonyms);
  putPseudonymRequest = this.pseudonyms.putPseudonymRequest.bind(this.pseudonyms);
  pseudonymRequested = this.pseudonyms.pseudonymRequested.bind(this.pseudonyms);
  pendingPseudonymRequests = this.pseudonyms.pendingPseudonymRequests.bind(this.pseudonyms);
  pseudonymRequest = this.pseudonyms.pseudonymRequest.bind(this.pseudonyms);
  answerPseudonymRequest = this.pseudonyms.answerPseudonymRequest.bind(this.pseudonyms);
  pseudonymAnswers = this.pseudonyms.pseudonymAnswers.bind(this.pseudonyms);
  spendPseudonym = this.pseudonyms.spendPseudonym.bind(this.pseudonyms);

  // --- clinical workflow: on-call roles (RoleStore, server/src/ports/roles.ts) ---

  async listRoles(orgId: string): Promise<TeamState[]> {
    return [...this.conversations.values()].filter((c) => c.orgId === orgId && c.team?.oncall).map((c) => structuredClone(c.team!));
  }

  async listPools(orgId: string): Promise<TeamState[]> {
    return [...this.conversations.values()].filter((c) => c.orgId === orgId && c.team?.pool).map((c) => structuredClone(c.team!));
  }

  async teamStatements(orgId: string, teamId: string, fromIndex: number, limit: number): Promise<SignedStatement[]> {
    const list = this.envelopes.get(key(orgId, teamId)) ?? [];
    return list
      .filter((e) => e.membership)
      .slice(fromIndex, fromIndex + limit)
      .map((e) => ({ statement: e.membership!.statement, signature: new Uint8Array(e.membership!.signature) }));
  }

  async setRoleThreadMembers(orgId: string, roleId: string, roleMemberUserIds: readonly string[]): Promise<string[]> {
    const written: string[] = [];
    for (const c of this.conversations.values()) {
      if (c.orgId !== orgId || c.roleId !== roleId) continue;
      const members = uniqueMembers(c.createdBy, roleMemberUserIds);
      if (sameMembers(c.memberUserIds, members)) continue;
      c.memberUserIds = members;
      written.push(c.id);
    }
    return written;
  }

  // --- clinical workflow: alerts (AlertStore, server/src/ports/alerts.ts) ---

  private readonly alerts = new MemoryAlerts();
  raiseAlert = this.alerts.raiseAlert.bind(this.alerts);
  getAlert = this.alerts.getAlert.bind(this.alerts);
  acknowledgeAlert = this.alerts.acknowledgeAlert.bind(this.alerts);
  claimDueAlerts = this.alerts.claimDueAlerts.bind(this.alerts);
  listOpenAlerts = this.alerts.listOpenAlerts.bind(this.alerts);
  escalationContent = this.alerts.escalationContent.bind(this.alerts);
  handOffAlert = this.alerts.handOffAlert.bind(this.alerts);
  getAlertSettings = this.alerts.getAlertSettings.bind(this.alerts);
  setAlertSettings = this.alerts.setAlertSettings.bind(this.alerts);

  // --- attachments (AttachmentStore, server/src/ports/attachments.ts) ---

  private readonly attachments = new MemoryAttachments();
  createAttachment = this.attachments.createAttachment.bind(this.attachments);
  getAttachment = this.attachments.getAttachment.bind(this.attachments);
  finishAttachment = this.attachments.finishAttachment.bind(this.attachments);
  referenceAttachment = this.attachments.referenceAttachment.bind(this.attachments);
  attachmentBytes = this.attachments.attachmentBytes.bind(this.attachments);
  expiredAttachments = this.attachments.expiredAttachments.bind(this.attachments);
  deleteAttachment = this.attachments.deleteAttachment.bind(this.attachments);

  /** org SPACE jti → kept until (ms). */
  private readonly revokedTokens = new Map<string, number>();

  async revokeToken(input: { orgId: string; tokenId: string; keepUntil: number; now: number }): Promise<void> {
    for (const [k, until] of this.revokedTokens) if (until <= input.now) this.revokedTokens.delete(k);
    const k = key(input.orgId, input.tokenId);
    this.revokedTokens.set(k, Math.max(this.revokedTokens.get(k) ?? 0, input.keepUntil));
  }

  async tokenRevoked(orgId: string, tokenId: string, now: number): Promise<boolean> {
    return (this.revokedTokens.get(key(orgId, tokenId)) ?? 0) > now;
  }

  // --- E2EE: signed device lists (DeviceListStore, server/src/ports/device-lists.ts) ---

  /** org SPACE user → versions kept, oldest first. */
  private readonly deviceLists = new Map<string, SignedDeviceList[]>();

  async deviceListHeads(orgId: string, userIds: readonly string[]): Promise<DeviceListHead[]> {
    const out: DeviceListHead[] = [];
    for (const userId of new Set(userIds)) {
      const newest = this.deviceLists.get(key(orgId, userId))?.at(-1);
      if (newest) out.push({ userId, version: newest.version, deviceIds: newest.devices.map((d) => d.deviceId) });
    }
    return out;
  }

  async deviceListHistory(orgId: string, userId: string): Promise<{ version: number; lists: SignedDeviceList[] } | undefined> {
    const lists = this.deviceLists.get(key(orgId, userId));
    return lists ? { version: lists.at(-1)!.version, lists: structuredClone(lists) } : undefined;
  }

  async appendDeviceList(input: { orgId: string; userId: string; expectedVersion: number; list: SignedDeviceList; maxHistory: number }): Promise<'ok' | 'conflict'> {
    const k = key(input.orgId, input.userId);
    const lists = this.deviceLists.get(k) ?? [];
    if ((lists.at(-1)?.version ?? 0) !== input.expectedVersion || input.list.version !== input.expectedVersion + 1) return 'conflict';
    this.deviceLists.set(k, [...lists, structuredClone(input.list)].slice(-input.maxHistory));
    return 'ok';
  }
}

// security: devices
import type { AdminUserRecord } from '../../ports/user-admin.js';
import type { OwnDeviceRecord } from '../../ports/device-admin.js';
// E2EE: signed device lists
import type { SignedDeviceList } from '@curbside/shared';
import type { DeviceListHead } from '../../ports/device-lists.js';

function copyBytes(b: Uint8Array | undefined): Uint8Array | undefined {
  return b && new Uint8Array(b);
}

function key(...parts: string[]): string {
  return compositeKey(...parts);
}

function strip(c: Conversation & { orgId: string; team?: TeamState }): Conversation {
  const { orgId: _org, team, ...rest } = c;
  return { ...rest, memberUserIds: [...rest.memberUserIds], ...(team ? { roles: { ...team.members }, signed: true, epoch: team.head, ...(team.pool ? { pool: true as const } : {}) } : {}) };
}

function copyEnvelope(e: StoredEnvelope): StoredEnvelope {
  return {
    ...e,
    ...(e.body ? { body: new Uint8Array(e.body) } : {}),
    ...(e.recipients ? { recipients: e.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: new Uint8Array(r.ciphertext) })) } : {}),
    ...(e.membership ? { membership: { statement: e.membership.statement, signature: new Uint8Array(e.membership.signature) } } : {}),
  };
}

function copySignedPrekey(k: SignedPrekey): SignedPrekey {
  return { keyId: k.keyId, publicKey: new Uint8Array(k.publicKey), signature: new Uint8Array(k.signature) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}
