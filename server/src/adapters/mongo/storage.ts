/**
 * The Storage port on the MongoDB wire protocol (MongoDB, FerretDB on PostgreSQL or SQLite): the
 * connection, the migrations, and one class per area of the port (see `MongoStorage`).
 */
import mongoose, { type Connection } from 'mongoose';
import type { DirectoryProfile, SignedDeviceList } from '@curbside/shared';
import type { ProfileDirectory } from '../../ports/profiles.js';
import type { Storage } from '../../ports/storage.js';
import { runMigrations } from './migrations.js';
import type { Logger } from '../../logger.js';
import { registerModels, type StorageModels } from './models.js';
import { ensureCollection } from './ensure.js';
import { WriteLane } from './group-commit.js';
import { KeyedQueue } from './keyed-queue.js';
import { SeqMarks } from './seq-marks.js';
import { MongoUsers } from './users.js';
import { MongoPrekeys } from './prekeys.js';
import { MongoConversations } from './conversations.js';
import { MongoEnvelopes } from './envelopes.js';
import { MongoDeviceAdmin } from './device-admin.js';
import type { OwnDeviceRecord } from '../../ports/device-admin.js';
import { MongoDeviceLists } from './device-lists.js';
import type { DeviceListHead } from '../../ports/device-lists.js';
import { MongoUserAdmin } from './user-admin.js';
import { MongoProfiles } from './profiles.js';
import { MongoAlerts } from './alerts.js';
import { MongoRoles } from './roles.js';
import { MongoCredentials } from './credentials.js';
import { MongoPseudonyms } from './pseudonyms.js';
import type { PseudonymStore } from '../../ports/pseudonyms.js';
import type { CredentialStore } from '../../ports/credentials.js';
import type { RoleStore } from '../../ports/roles.js';
import { MongoAttachments } from './attachments.js';
import type { AttachmentStore } from '../../ports/attachments.js';
import type { AlertSettingsStore, AlertStore } from '../../ports/alerts.js';
import type { AdminUserRecord } from '../../ports/user-admin.js';

export interface MongoStorageOptions {
  /** `mongodb://` or `mongodb+srv://` connection string. */
  uri: string;
  /** Database name; defaults to the one in the URI (or `test`, the driver's default). */
  dbName?: string | undefined;
  /**
   * Write concern for every write. Default `'majority'`, which production (a replica set) needs so
   * that an acknowledged envelope survives a failover. FerretDB v1 accepts `'majority'` and `1`
   * alike (it has a single node). `0` is refused: unacknowledged writes would break idempotency and
   * the seq claim, and FerretDB answers them anyway, which desynchronises the connection.
   */
  writeConcern?: 'majority' | number | undefined;
  /**
   * Group commit's bounded wait: an envelope insert waits at most this long for others to share its
   * `insertMany` (it goes at once when the batch is full, and inserts that queue behind a write in
   * flight go when it is done). The append, and so the send's ack, waits for its batch to be stored.
   * 0: only inserts ready in the same turn of the event loop, or queued behind a write, are grouped.
   * Default 2 ms.
   */
  groupCommitWaitMs?: number | undefined;
  /**
   * Seq mark sets this instance no longer needs are deleted once 256 wait, or once any wait and the last
   * delete is this old (`SeqMarks`). Default 1000 ms.
   */
  markPruneEveryMs?: number | undefined;
  logger?: Pick<Logger, 'debug' | 'warn'> | undefined;
}

/** Default of `MongoStorageOptions.groupCommitWaitMs`. */
export const GROUP_COMMIT_WAIT_MS = 2;

/**
 * The `Storage` port on MongoDB through mongoose (FerretDB in tests): one connection and one set of
 * models, shared by one class per area of the port. This class opens and closes the connection, runs
 * the migrations and hands each call to its area: users.ts, prekeys.ts, conversations.ts and
 * envelopes.ts (seq allocation and group commit) for the core; device-admin.ts, user-admin.ts,
 * device-lists.ts, profiles.ts, credentials.ts, pseudonyms.ts, roles.ts, alerts.ts and attachments.ts
 * for the rest.
 */
export class MongoStorage implements Storage {
  private readonly conn: Connection;
  private readonly models: StorageModels;
  private readonly logger: Pick<Logger, 'debug' | 'warn'> | undefined;
  private readonly seqMarks: SeqMarks;
  private readonly users: MongoUsers;
  private readonly prekeys: MongoPrekeys;
  private readonly conversations: MongoConversations;
  private readonly envelopes: MongoEnvelopes;

  constructor(options: MongoStorageOptions) {
    const w = options.writeConcern ?? 'majority';
    if (w !== 'majority' && !(Number.isInteger(w) && w >= 1)) {
      throw new RangeError(`writeConcern must be 'majority' or an integer >= 1, got ${String(w)}`);
    }
    this.logger = options.logger;
    const groupCommitWaitMs = options.groupCommitWaitMs ?? GROUP_COMMIT_WAIT_MS;
    if (!(Number.isFinite(groupCommitWaitMs) && groupCommitWaitMs >= 0 && groupCommitWaitMs <= 1000)) {
      throw new RangeError(`groupCommitWaitMs must be 0-1000 ms, got ${String(groupCommitWaitMs)}`);
    }
    this.conn = mongoose.createConnection(options.uri, {
      ...(options.dbName !== undefined ? { dbName: options.dbName } : {}),
      autoIndex: false,
      autoCreate: true,
      sanitizeFilter: true,
      writeConcern: { w },
      // Command monitoring events (the hub's /metrics counts database commands per name); a listener-free emit otherwise.
      monitorCommands: true,
    });
    // Without a listener a connection error would be thrown from the event emitter.
    this.conn.on('error', (err: unknown) => this.logger?.warn({ err }, 'mongodb connection error'));
    this.models = registerModels(this.conn);
    // Envelope inserts and seq marks take turns: one write command of the send path in flight.
    const lane = new WriteLane();
    // Appends to a conversation and its team changes, one at a time per conversation.
    const queue = new KeyedQueue();
    this.seqMarks = new SeqMarks(this.models.SeqMarkSet, { lane, pruneEveryMs: options.markPruneEveryMs, logger: this.logger });
    this.users = new MongoUsers(this.models);
    this.prekeys = new MongoPrekeys(this.models);
    this.conversations = new MongoConversations(this.models, this.seqMarks, queue);
    this.envelopes = new MongoEnvelopes({
      models: this.models,
      seqMarks: this.seqMarks,
      queue,
      getConversation: (orgId, conversationId) => this.conversations.getConversation(orgId, conversationId),
      lane,
      groupCommitWaitMs,
      logger: this.logger,
    });
  }

  async init(): Promise<void> {
    await this.conn.asPromise();
    for (const model of Object.values(this.models) as mongoose.Model<unknown>[]) await ensureCollection(model);
    await runMigrations(this.conn, this.models, this.logger);
  }

  async ping(): Promise<void> {
    await this.conn.asPromise();
    await this.conn.db!.admin().command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.seqMarks.close();
    await this.conn.close();
  }

  // --- directory: users and devices (DirectoryStore), keys (KeyDirectory) ---

  touchDevice: Storage['touchDevice'] = (input) => this.users.touchDevice(input);
  getUser: Storage['getUser'] = (orgId, userId) => this.users.getUser(orgId, userId);
  listDevices: Storage['listDevices'] = (orgId, userId) => this.users.listDevices(orgId, userId);
  publishKeys: Storage['publishKeys'] = (input) => this.prekeys.publishKeys(input);
  countOneTimePrekeys: Storage['countOneTimePrekeys'] = (orgId, deviceId) => this.prekeys.countOneTimePrekeys(orgId, deviceId);
  listDeviceIdentities: Storage['listDeviceIdentities'] = (orgId, userIds) => this.prekeys.listDeviceIdentities(orgId, userIds);
  claimBundles: Storage['claimBundles'] = (orgId, userIds, deviceIds) => this.prekeys.claimBundles(orgId, userIds, deviceIds);

  // --- conversations and teams (ConversationStore, TeamStore) ---

  createConversation: Storage['createConversation'] = (input) => this.conversations.createConversation(input);
  getConversation: Storage['getConversation'] = (orgId, conversationId) => this.conversations.getConversation(orgId, conversationId);
  leaveGroup: Storage['leaveGroup'] = (orgId, conversationId, userId) => this.conversations.leaveGroup(orgId, conversationId, userId);
  noteSender: Storage['noteSender'] = (orgId, conversationId, userId) => this.conversations.noteSender(orgId, conversationId, userId);
  sendersAmong: Storage['sendersAmong'] = (orgId, conversationId, userIds) => this.conversations.sendersAmong(orgId, conversationId, userIds);
  listConversationsForUser: Storage['listConversationsForUser'] = (orgId, userId) => this.conversations.listConversationsForUser(orgId, userId);
  createTeam: Storage['createTeam'] = (input) => this.conversations.createTeam(input);
  getTeamState: Storage['getTeamState'] = (orgId, teamId) => this.conversations.getTeamState(orgId, teamId);
  advanceTeam: Storage['advanceTeam'] = (orgId, teamId, expectedIndex, next) => this.conversations.advanceTeam(orgId, teamId, expectedIndex, next);

  // --- envelopes (EnvelopeStore) ---

  appendEnvelope: Storage['appendEnvelope'] = (input) => this.envelopes.appendEnvelope(input);
  envelopesAfter: Storage['envelopesAfter'] = (orgId, conversationId, afterSeq, limit) => this.envelopes.envelopesAfter(orgId, conversationId, afterSeq, limit);
  ackDelivered: Storage['ackDelivered'] = (orgId, deviceId, cursors) => this.envelopes.ackDelivered(orgId, deviceId, cursors);
  sweepEnvelopes: Storage['sweepEnvelopes'] = (now) => this.envelopes.sweepEnvelopes(now);
  findSent: Storage['findSent'] = (orgId, senderDeviceId, clientMessageId) => this.envelopes.findSent(orgId, senderDeviceId, clientMessageId);
  statementBefore: Storage['statementBefore'] = (orgId, teamId, seq) => this.envelopes.statementBefore(orgId, teamId, seq);
  withdrawEnvelope: Storage['withdrawEnvelope'] = (orgId, senderDeviceId, clientMessageId) => this.envelopes.withdrawEnvelope(orgId, senderDeviceId, clientMessageId);

  // --- security: devices (DeviceAdmin, server/src/ports/device-admin.ts) and the audit log ---

  private deviceAdminImpl: MongoDeviceAdmin | undefined;
  private get deviceAdmin(): MongoDeviceAdmin {
    return (this.deviceAdminImpl ??= new MongoDeviceAdmin(this.conn, this.models));
  }

  listOwnDevices(orgId: string, userId: string): Promise<OwnDeviceRecord[]> {
    return this.deviceAdmin.listOwnDevices(orgId, userId);
  }

  revokeDevice(input: { orgId: string; userId: string; deviceId: string; now: number }): Promise<{ status: 'revoked' | 'already' | 'not_found' }> {
    return this.deviceAdmin.revokeDevice(input);
  }

  deviceRevokedAt(orgId: string, deviceId: string): Promise<number | undefined> {
    return this.deviceAdmin.deviceRevokedAt(orgId, deviceId);
  }

  restoreDevice(orgId: string, deviceId: string): Promise<{ status: 'restored' | 'not_revoked' }> {
    return this.deviceAdmin.restoreDevice(orgId, deviceId);
  }

  // --- administration: users (UserAdmin, server/src/ports/user-admin.ts) ---

  private userAdminImpl: MongoUserAdmin | undefined;
  private get userAdmin(): MongoUserAdmin {
    return (this.userAdminImpl ??= new MongoUserAdmin(this.conn, this.models));
  }

  listUsers(orgId: string, page: { after?: string | undefined; limit: number }): Promise<AdminUserRecord[]> {
    return this.userAdmin.listUsers(orgId, page);
  }

  disableUser(input: { orgId: string; userId: string; now: number }): Promise<{ status: 'disabled' | 'already' | 'not_found' }> {
    return this.userAdmin.disableUser(input);
  }

  enableUser(orgId: string, userId: string): Promise<{ status: 'enabled' | 'not_disabled' }> {
    return this.userAdmin.enableUser(orgId, userId);
  }

  userDisabledAt(orgId: string, userId: string): Promise<number | undefined> {
    return this.userAdmin.userDisabledAt(orgId, userId);
  }

  // --- directory: profiles (ProfileDirectory, server/src/ports/profiles.ts) ---

  private profilesImpl: MongoProfiles | undefined;
  private get profiles(): MongoProfiles {
    return (this.profilesImpl ??= new MongoProfiles(this.conn));
  }

  recordTokenProfile(input: Parameters<ProfileDirectory['recordTokenProfile']>[0]): Promise<void> {
    return this.profiles.recordTokenProfile(input);
  }

  setAdminProfile(input: Parameters<ProfileDirectory['setAdminProfile']>[0]): Promise<DirectoryProfile> {
    return this.profiles.setAdminProfile(input);
  }

  lookupProfiles(orgId: string, userIds: readonly string[]): Promise<DirectoryProfile[]> {
    return this.profiles.lookupProfiles(orgId, userIds);
  }

  searchProfiles(orgId: string, words: readonly string[], limit: number): Promise<DirectoryProfile[]> {
    return this.profiles.searchProfiles(orgId, words, limit);
  }

  // --- clinical workflow: verified credentials (CredentialStore, server/src/ports/credentials.ts) ---

  private credentialsImpl: MongoCredentials | undefined;
  private get credentials(): MongoCredentials {
    return (this.credentialsImpl ??= new MongoCredentials(this.conn));
  }
  getCredentialKey: CredentialStore['getCredentialKey'] = (orgId) => this.credentials.getCredentialKey(orgId);
  setCredentialKey: CredentialStore['setCredentialKey'] = (orgId, key, now) => this.credentials.setCredentialKey(orgId, key, now);
  putAttestation: CredentialStore['putAttestation'] = (orgId, a) => this.credentials.putAttestation(orgId, a);
  putRevocation: CredentialStore['putRevocation'] = (orgId, serial, d) => this.credentials.putRevocation(orgId, serial, d);
  hasAttestation: CredentialStore['hasAttestation'] = (orgId, serial) => this.credentials.hasAttestation(orgId, serial);
  credentialsOf: CredentialStore['credentialsOf'] = (orgId, userIds) => this.credentials.credentialsOf(orgId, userIds);
  searchCredentials: CredentialStore['searchCredentials'] = (orgId, words, limit) => this.credentials.searchCredentials(orgId, words, limit);

  // --- clinical workflow: pseudonymous posting (PseudonymStore, server/src/ports/pseudonyms.ts) ---

  private pseudonymsImpl: MongoPseudonyms | undefined;
  private get pseudonyms(): MongoPseudonyms {
    return (this.pseudonymsImpl ??= new MongoPseudonyms(this.conn));
  }
  putPseudonymKey: PseudonymStore['putPseudonymKey'] = (orgId, epoch, specialty, d) => this.pseudonyms.putPseudonymKey(orgId, epoch, specialty, d);
  putPseudonymKeyRevocation: PseudonymStore['putPseudonymKeyRevocation'] = (orgId, epoch, specialty, d) => this.pseudonyms.putPseudonymKeyRevocation(orgId, epoch, specialty, d);
  pseudonymKeys: PseudonymStore['pseudonymKeys'] = (orgId) => this.pseudonyms.pseudonymKeys(orgId);
  putPseudonymRequest: PseudonymStore['putPseudonymRequest'] = (orgId, r, cap) => this.pseudonyms.putPseudonymRequest(orgId, r, cap);
  pseudonymRequested: PseudonymStore['pseudonymRequested'] = (orgId, userId, epoch, specialty) => this.pseudonyms.pseudonymRequested(orgId, userId, epoch, specialty);
  pendingPseudonymRequests: PseudonymStore['pendingPseudonymRequests'] = (orgId, limit) => this.pseudonyms.pendingPseudonymRequests(orgId, limit);
  pseudonymRequest: PseudonymStore['pseudonymRequest'] = (orgId, requestId) => this.pseudonyms.pseudonymRequest(orgId, requestId);
  answerPseudonymRequest: PseudonymStore['answerPseudonymRequest'] = (orgId, requestId, sigs, now) => this.pseudonyms.answerPseudonymRequest(orgId, requestId, sigs, now);
  pseudonymAnswers: PseudonymStore['pseudonymAnswers'] = (orgId, userId, deviceId, ids) => this.pseudonyms.pseudonymAnswers(orgId, userId, deviceId, ids);
  spendPseudonym: PseudonymStore['spendPseudonym'] = (orgId, scope, nullifier, now) => this.pseudonyms.spendPseudonym(orgId, scope, nullifier, now);

  // --- clinical workflow: on-call roles (RoleStore, server/src/ports/roles.ts) ---

  private rolesImpl: MongoRoles | undefined;
  private get roles(): MongoRoles {
    return (this.rolesImpl ??= new MongoRoles(this.models));
  }
  listRoles: RoleStore['listRoles'] = (orgId) => this.roles.listRoles(orgId);
  listPools: RoleStore['listPools'] = (orgId) => this.roles.listPools(orgId);
  teamStatements: RoleStore['teamStatements'] = (orgId, teamId, fromIndex, limit) => this.roles.teamStatements(orgId, teamId, fromIndex, limit);
  setRoleThreadMembers: RoleStore['setRoleThreadMembers'] = (orgId, roleId, members) => this.roles.setRoleThreadMembers(orgId, roleId, members);

  // --- clinical workflow: alerts (AlertStore, server/src/ports/alerts.ts) ---

  private alertsImpl: MongoAlerts | undefined;
  private get alerts(): MongoAlerts {
    return (this.alertsImpl ??= new MongoAlerts(this.conn));
  }

  raiseAlert: AlertStore['raiseAlert'] = (spec, held) => this.alerts.raiseAlert(spec, held);
  getAlert: AlertStore['getAlert'] = (orgId, conversationId, seq) => this.alerts.getAlert(orgId, conversationId, seq);
  acknowledgeAlert: AlertStore['acknowledgeAlert'] = (input) => this.alerts.acknowledgeAlert(input);
  claimDueAlerts: AlertStore['claimDueAlerts'] = (input) => this.alerts.claimDueAlerts(input);
  listOpenAlerts: AlertStore['listOpenAlerts'] = (input) => this.alerts.listOpenAlerts(input);
  escalationContent: AlertStore['escalationContent'] = (input) => this.alerts.escalationContent(input);
  handOffAlert: AlertStore['handOffAlert'] = (input) => this.alerts.handOffAlert(input);
  getAlertSettings: AlertSettingsStore['getAlertSettings'] = (orgId) => this.alerts.getAlertSettings(orgId);
  setAlertSettings: AlertSettingsStore['setAlertSettings'] = (orgId, settings, now) => this.alerts.setAlertSettings(orgId, settings, now);

  // --- attachments (AttachmentStore, server/src/ports/attachments.ts) ---

  private attachmentsImpl: MongoAttachments | undefined;
  private get attachments(): MongoAttachments {
    return (this.attachmentsImpl ??= new MongoAttachments(this.conn));
  }

  createAttachment: AttachmentStore['createAttachment'] = (record) => this.attachments.createAttachment(record);
  getAttachment: AttachmentStore['getAttachment'] = (orgId, id) => this.attachments.getAttachment(orgId, id);
  finishAttachment: AttachmentStore['finishAttachment'] = (orgId, id, now) => this.attachments.finishAttachment(orgId, id, now);
  referenceAttachment: AttachmentStore['referenceAttachment'] = (orgId, id, now, retainUntil) => this.attachments.referenceAttachment(orgId, id, now, retainUntil);
  attachmentBytes: AttachmentStore['attachmentBytes'] = (orgId) => this.attachments.attachmentBytes(orgId);
  expiredAttachments: AttachmentStore['expiredAttachments'] = (input) => this.attachments.expiredAttachments(input);
  deleteAttachment: AttachmentStore['deleteAttachment'] = (orgId, id) => this.attachments.deleteAttachment(orgId, id);

  revokeToken(input: { orgId: string; tokenId: string; keepUntil: number; now: number }): Promise<void> {
    return this.deviceAdmin.revokeToken(input);
  }

  tokenRevoked(orgId: string, tokenId: string, now: number): Promise<boolean> {
    return this.deviceAdmin.tokenRevoked(orgId, tokenId, now);
  }

  // --- E2EE: signed device lists (DeviceListStore, server/src/ports/device-lists.ts) ---

  private deviceListsImpl: MongoDeviceLists | undefined;
  private get deviceLists(): MongoDeviceLists {
    return (this.deviceListsImpl ??= new MongoDeviceLists(this.conn));
  }

  deviceListHeads(orgId: string, userIds: readonly string[]): Promise<DeviceListHead[]> {
    return this.deviceLists.heads(orgId, userIds);
  }

  deviceListHistory(orgId: string, userId: string): Promise<{ version: number; lists: SignedDeviceList[] } | undefined> {
    return this.deviceLists.history(orgId, userId);
  }

  appendDeviceList(input: { orgId: string; userId: string; expectedVersion: number; list: SignedDeviceList; maxHistory: number }): Promise<'ok' | 'conflict'> {
    return this.deviceLists.append(input);
  }

  /** The connection, for companions that keep their collections in the same database (the audit log). */
  get connection(): Connection {
    return this.conn;
  }
}
