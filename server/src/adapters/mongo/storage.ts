/**
 * The Storage port on the MongoDB wire protocol (MongoDB, FerretDB on PostgreSQL or SQLite).
 * Long file: one class implements the port's core areas (users, devices and keys, conversations and
 * teams, envelopes with group commit and seq allocation, cursors, migrations) over shared models and
 * one duplicate-key discipline; device administration, device lists and user administration are
 * already classes of their own (device-admin.ts, device-lists.ts, user-admin.ts), and so are seq marks
 * (seq-marks.ts).
 */
import { randomUUID } from 'node:crypto';
import mongoose, { type Connection } from 'mongoose';
import type { Conversation, DeviceIdentity, DirectoryProfile, PrekeyBundle, SignedDeviceList, TeamState } from '@curbside/shared';
import type { ProfileDirectory } from '../../ports/profiles.js';
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
import { SEQ_HINT_TRUST_MS, SWEEP_GRACE_MS, directKey, groupKey, roleThreadKey, uniqueMembers } from '../../ports/storage-rules.js';
import { ignoreDuplicateKey, isBulkDuplicateOnly, isDuplicateKey, retryOnDuplicateKey } from './duplicate-key.js';
import { runMigrations } from './migrations.js';
import type { Logger } from '../../logger.js';
import { MAX_UPDATES_PER_COMMAND, docKey, registerModels, toBytes, type ConversationDoc, type DeviceCursorDoc, type DeviceDoc, type EnvelopeDoc, type PrekeyDoc, type StorageModels, type UserDoc } from './models.js';
import { ensureCollection } from './ensure.js';
import { GroupCommit, WriteLane } from './group-commit.js';
import { SeqMarks } from './seq-marks.js';
import { MongoDeviceAdmin } from './device-admin.js';
import type { OwnDeviceRecord } from '../../ports/device-admin.js';
import { MongoDeviceLists } from './device-lists.js';
import type { DeviceListHead } from '../../ports/device-lists.js';
import { MongoUserAdmin } from './user-admin.js';
import { MongoProfiles } from './profiles.js';
import { MongoAlerts } from './alerts.js';
import { fromTeamDoc, teamDoc } from './team-docs.js';
import { MongoRoles } from './roles.js';
import { MongoCredentials } from './credentials.js';
import { MongoPseudonyms } from './pseudonyms.js';
import type { PseudonymStore } from '../../ports/pseudonyms.js';
import type { CredentialStore } from '../../ports/credentials.js';
import type { RoleStore } from '../../ports/roles.js';
import { MongoAttachments } from './attachments.js';
import { packShares, unpackShares, type Share } from './shares.js';
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

/** Attempts to claim a seq before giving up; each failure means another node stored one meanwhile. */
const MAX_APPEND_ATTEMPTS = 50;
/** Prekey claims: candidates fetched per round, and rounds before giving up under extreme contention. */
const CLAIM_CANDIDATES = 8;
const MAX_CLAIM_ROUNDS = 50;
/** Conversations whose last seq this instance remembers (least recently appended to forgotten first). */
const MAX_SEQ_HINTS = 10_000;
/** How long after a seq collision this instance reads lastSeq before each append. */
const CONTENDED_MS = 60_000;
/** Envelopes (or seq marks) written by one group command at most. */
const MAX_WRITE_BATCH = 256;
/** Default of `MongoStorageOptions.groupCommitWaitMs`. */
export const GROUP_COMMIT_WAIT_MS = 2;

/**
 * Storage on MongoDB through mongoose (FerretDB in tests).
 *
 * Sequence numbers without transactions: an envelope's insert claims its seq through the unique
 * index (org, conversation, seq). The candidate is always one above a seq known to be stored (this
 * instance's last one, the conversation's `lastSeq`, or the highest stored one after a collision), so
 * the insert either lands at exactly max+1 or fails with a duplicate key and nothing is stored: no seq
 * is ever burned and N+1 is never stored before N. Appends to one conversation are serialised within
 * an instance, so collisions happen only between hub nodes.
 *
 * lastSeq as seq marks (`SeqMarks`, seq-marks.ts): after its envelope is stored, each append marks its
 * seq (the marks of one envelope batch are one inserted document per organisation), and the append
 * resolves (the send is acked) only once its mark is stored. A conversation's `lastSeq` is its highest
 * mark: (1) once an append is acked, `lastSeq` >= its seq; (2) `lastSeq` = N means envelope N was
 * stored, and with it every seq below (allocation above). A node that dies between storing an envelope
 * and its mark leaves `lastSeq` low until the next append to that conversation (which collides on that
 * seq, moves past it and marks its own) or a retry of that send (which marks the stored seq).
 */
export class MongoStorage implements Storage {
  private readonly conn: Connection;
  private readonly models: StorageModels;
  private readonly logger: Pick<Logger, 'debug' | 'warn'> | undefined;
  /** Highest seq this instance stored or saw stored per conversation (key: `hintKey`). */
  private readonly seqHints = new Map<string, { seq: number; at: number }>();
  /**
   * Until when appends read the conversation's stored lastSeq before inserting, instead of guessing
   * from this instance's hint: set by a seq collision, i.e. another node appends to the same
   * conversations. With clients spread over nodes, sends to a conversation alternate between nodes
   * and a guess collided on about every other send (each a refused insert, two reads and a second
   * insert); a read first costs one point read. A lone node never collides and never reads.
   */
  private contendedUntil = 0;
  /** Tail of the in-process append queue per conversation. */
  private readonly appendQueues = new Map<string, Promise<void>>();
  /** Envelope inserts and seq marks take turns: one write command of the send path in flight. */
  private readonly sendWrites = new WriteLane();
  private readonly inserts: GroupCommit<EnvelopeDoc>;
  private readonly seqMarks: SeqMarks;

  constructor(options: MongoStorageOptions) {
    const w = options.writeConcern ?? 'majority';
    if (w !== 'majority' && !(Number.isInteger(w) && w >= 1)) {
      throw new RangeError(`writeConcern must be 'majority' or an integer >= 1, got ${String(w)}`);
    }
    this.logger = options.logger;
    const waitMs = options.groupCommitWaitMs ?? GROUP_COMMIT_WAIT_MS;
    if (!(Number.isFinite(waitMs) && waitMs >= 0 && waitMs <= 1000)) throw new RangeError(`groupCommitWaitMs must be 0-1000 ms, got ${String(waitMs)}`);
    this.inserts = new GroupCommit<EnvelopeDoc>((docs) => this.insertEnvelopes(docs), { maxBatch: MAX_WRITE_BATCH, lane: this.sendWrites, waitMs });
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
    this.seqMarks = new SeqMarks(this.models.SeqMarkSet, { lane: this.sendWrites, pruneEveryMs: options.markPruneEveryMs, logger: this.logger });
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

  // --- Directory ---------------------------------------------------------------------------

  async touchDevice(input: { orgId: string; userId: string; deviceId: string; displayName?: string | undefined; now: number }) {
    const { User, Device } = this.models;
    const user = await retryOnDuplicateKey(() =>
      User.findOneAndUpdate(
        { _id: docKey(input.orgId, input.userId) },
        {
          $set: { lastSeenAt: input.now, ...(input.displayName !== undefined ? { displayName: input.displayName } : {}) },
          $setOnInsert: { orgId: input.orgId, userId: input.userId, createdAt: input.now },
        },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<UserDoc>()
        .exec(),
    );
    // The owner is set only when the device is first seen: a token naming another user for the same
    // device does not move it (the hub compares and refuses).
    const device = await retryOnDuplicateKey(() =>
      Device.findOneAndUpdate(
        { _id: docKey(input.orgId, input.deviceId) },
        { $set: { lastSeenAt: input.now }, $setOnInsert: { orgId: input.orgId, deviceId: input.deviceId, userId: input.userId, createdAt: input.now } },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<DeviceDoc>()
        .exec(),
    );
    if (!user || !device) throw new Error('upsert returned no document');
    return { user: toUser(user), device: toDevice(device) };
  }

  async getUser(orgId: string, userId: string): Promise<UserRecord | undefined> {
    const u = await this.models.User.findOne({ _id: docKey(orgId, userId) }).lean<UserDoc>().exec();
    return u ? toUser(u) : undefined;
  }

  async listDevices(orgId: string, userId: string): Promise<DeviceRecord[]> {
    const docs = await this.models.Device.find({ orgId, userId }).lean<DeviceDoc[]>().exec();
    // Same order as the memory adapter (localeCompare, not the database's binary order).
    return docs.map(toDevice).sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  // --- Conversations -----------------------------------------------------------------------

  async createConversation(input: NewConversation): Promise<{ conversation: Conversation; created: boolean }> {
    const { Conversation: Conv } = this.models;
    const members = uniqueMembers(input.createdBy, input.memberUserIds);
    const id = randomUUID();
    const key = input.kind === 'direct' ? directKey(members) : input.roleId !== undefined ? roleThreadKey(input.roleId, input.createdBy) : groupKey(id);
    const oneOnly = input.kind === 'direct' || input.roleId !== undefined;
    if (oneOnly) {
      const existing = await Conv.findOne({ orgId: input.orgId, directKey: key }).lean<ConversationDoc>().exec();
      if (existing) return { conversation: toConversation(existing, await this.storedLastSeq(input.orgId, existing.conversationId)), created: false };
    }
    const doc: ConversationDoc = {
      _id: docKey(input.orgId, id),
      conversationId: id,
      orgId: input.orgId,
      kind: input.kind,
      memberUserIds: members,
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
      directKey: key,
      ...(input.roleId !== undefined ? { roleId: input.roleId } : {}),
    };
    try {
      await Conv.insertOne(doc);
    } catch (err) {
      if (!isDuplicateKey(err) || !oneOnly) throw err;
      // Another creator of the same pair (or the same requester's other device) won the race.
      const existing = await Conv.findOne({ orgId: input.orgId, directKey: key }).lean<ConversationDoc>().exec();
      if (!existing) throw err;
      return { conversation: toConversation(existing, await this.storedLastSeq(input.orgId, existing.conversationId)), created: false };
    }
    return { conversation: toConversation(doc, 0), created: true };
  }

  async getConversation(orgId: string, conversationId: string): Promise<Conversation | undefined> {
    // Both by `_id`, at once (another organisation's conversation's seq is read and dropped).
    const [c, lastSeq] = await Promise.all([this.conversationDoc(orgId, conversationId), this.storedLastSeq(orgId, conversationId)]);
    return c ? toConversation(c, lastSeq) : undefined;
  }

  /** The conversation's highest seq mark; 0 before the first. */
  private storedLastSeq(orgId: string, conversationId: string): Promise<number> {
    return this.seqMarks.lastSeq(orgId, conversationId);
  }

  /** The conversation by `_id`, which is (org, conversation id): ids are scoped per organisation. */
  private async conversationDoc(orgId: string, conversationId: string): Promise<ConversationDoc | undefined> {
    return (await this.models.Conversation.findOne({ _id: docKey(orgId, conversationId) }).lean<ConversationDoc>().exec()) ?? undefined;
  }

  async leaveGroup(orgId: string, conversationId: string, userId: string): Promise<Conversation | undefined> {
    // Teams are never matched (their membership follows the signed log); direct conversations neither.
    const doc = await this.models.Conversation.findOneAndUpdate(
      { _id: docKey(orgId, conversationId), kind: 'group', team: mongoose.trusted({ $exists: false }) },
      { $pull: { memberUserIds: userId } },
      { returnDocument: 'after' },
    )
      .lean<ConversationDoc>()
      .exec();
    return doc ? toConversation(doc, await this.storedLastSeq(orgId, conversationId)) : undefined;
  }

  async noteSender(orgId: string, conversationId: string, userId: string): Promise<void> {
    await ignoreDuplicateKey(this.models.ConversationSender.collection.insertOne({ _id: docKey(orgId, conversationId, userId) } as never));
  }

  async sendersAmong(orgId: string, conversationId: string, userIds: readonly string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    const ids = new Map(userIds.map((u) => [docKey(orgId, conversationId, u), u]));
    const found = await this.models.ConversationSender.find({ _id: mongoose.trusted({ $in: [...ids.keys()] }) }).select({ _id: 1 }).lean<Array<{ _id: string }>>().exec();
    return found.map((d) => ids.get(d._id)!).filter(Boolean);
  }

  async listConversationsForUser(orgId: string, userId: string): Promise<Conversation[]> {
    const docs = await this.models.Conversation.find({ orgId, memberUserIds: userId }).lean<ConversationDoc[]>().exec();
    // Every conversation's highest mark, in one read (not one per conversation).
    const seqs = await this.seqMarks.lastSeqs(orgId, docs.map((d) => d.conversationId));
    return docs.map((d) => toConversation(d, seqs.get(d.conversationId) ?? 0)).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  // --- Envelopes ---------------------------------------------------------------------------

  async appendEnvelope(input: NewEnvelope): Promise<AppendResult> {
    return this.serialize(hintKey(input.orgId, input.conversationId), () => this.appendSerialized(input));
  }

  private async appendSerialized(input: NewEnvelope): Promise<AppendResult> {
    // The caller read the conversation just before (membership check): no second read for its lastSeq.
    let lastSeq = input.lastSeqSeen;
    if (lastSeq === undefined) {
      const conv = await this.getConversation(input.orgId, input.conversationId);
      if (!conv) throw new Error(`conversation ${input.conversationId} not found`);
      lastSeq = conv.lastSeq;
    }
    // No read for an earlier send of this client message id either: the envelope's `_id` is
    // (org, sender device, client message id), so a second insert is refused, and the duplicate-key
    // path below answers it with the stored envelope.

    const hk = hintKey(input.orgId, input.conversationId);
    // The highest seq known to be stored: the candidate is one above it.
    // A fresh hint of this node's own is the base; otherwise the conversation's highest mark (one
    // read), since the envelopes above an old hint may have been swept (SEQ_HINT_TRUST_MS).
    const hint = this.seqHints.get(hk);
    let known = hint && input.now - hint.at < SEQ_HINT_TRUST_MS ? Math.max(hint.seq, lastSeq) : Math.max(lastSeq, await this.storedLastSeq(input.orgId, input.conversationId));
    if (this.contendedUntil > Date.now()) known = Math.max(known, await this.storedLastSeq(input.orgId, input.conversationId));
    let candidate = known + 1;
    const messageId = randomUUID();
    const key = envelopeKey(input.orgId, input.senderDeviceId, input.clientMessageId);
    // Copies: the caller may reuse its buffers.
    const body = input.body ? Buffer.from(input.body) : undefined;
    const recipients = input.recipients?.map((r) => ({ deviceId: r.deviceId, ciphertext: Buffer.from(r.ciphertext) }));
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      try {
        await this.inserts.submit({
          _id: key,
          messageId,
          orgId: input.orgId,
          conversationId: input.conversationId,
          seq: candidate,
          senderUserId: input.senderUserId,
          senderDeviceId: input.senderDeviceId,
          clientMessageId: input.clientMessageId,
          sentAt: input.now,
          ...(body ? { body } : {}),
          ...(recipients ? { shares: packShares(recipients) } : {}),
          ...(input.partial ? { partial: true } : {}),
          ...(input.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
          ...(input.membership ? { membership: { statement: input.membership.statement, signature: Buffer.from(input.membership.signature) } } : {}),
          ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
          ...(input.deliverTo ? { deliverTo: input.deliverTo } : {}),
          ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
        });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // Which unique key was hit (FerretDB does not say)? Two reads by `_id`, at once: an envelope
        // under this send's key means a retry of a stored send (through another node, or racing this
        // one); else the seq was taken, by another node. That seq is stored, so one above it keeps the
        // sequence gapless, and the conversation's lastSeq may already be further on.
        const [prior, stored] = await Promise.all([this.priorSend(input), this.storedLastSeq(input.orgId, input.conversationId)]);
        if (prior) return prior;
        this.contendedUntil = Date.now() + CONTENDED_MS;
        const next = Math.max(stored + 1, candidate + 1);
        this.logger?.debug({ conversationId: input.conversationId, tried: candidate, next, attempt }, 'seq taken by another node, retrying');
        candidate = next;
        continue;
      }
      await this.markSeq(input.orgId, input.conversationId, candidate, input.now);
      return {
        status: 'stored',
        envelope: {
          messageId,
          conversationId: input.conversationId,
          seq: candidate,
          senderUserId: input.senderUserId,
          senderDeviceId: input.senderDeviceId,
          clientMessageId: input.clientMessageId,
          sentAt: input.now,
          ...(body ? { body: new Uint8Array(body) } : {}),
          ...(input.partial ? { partial: true } : {}),
          ...(input.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
          ...(input.membership ? { membership: { statement: input.membership.statement, signature: new Uint8Array(input.membership.signature) } } : {}),
          ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
          ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
          ...(recipients ? { recipients: recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: new Uint8Array(r.ciphertext) })) } : {}),
        },
      };
    }
    throw new Error(`could not assign a seq in conversation ${input.conversationId} after ${MAX_APPEND_ATTEMPTS} attempts`);
  }

  /**
   * Group commit (see `GroupCommit`): appends to different conversations that come while an insert is
   * in flight go to the database together in one unordered insertMany, under the connection's write
   * concern. Each append resolves only once its own document is stored, and fails alone (e.g. a
   * duplicate key) with its own write error; an error without per-document detail fails the group.
   */
  private async insertEnvelopes(docs: EnvelopeDoc[]): Promise<unknown[]> {
    const failed: unknown[] = [];
    try {
      // The driver's insertMany: the documents are already in their stored shape (mongoose's casting
      // would only copy them again).
      await this.models.Envelope.collection.insertMany(docs as unknown as Array<mongoose.mongo.OptionalId<mongoose.mongo.Document>>, { ordered: false });
    } catch (err) {
      const raw = (err as { writeErrors?: unknown }).writeErrors;
      const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ index?: number; code?: number; errmsg?: string }>;
      if (writeErrors.length === 0 || writeErrors.some((w) => typeof w.index !== 'number')) throw err;
      for (const w of writeErrors) failed[w.index!] = Object.assign(new Error(w.errmsg ?? 'envelope insert failed'), { code: w.code });
    }
    return docs.map((_, i) => failed[i]);
  }

  /** The answer for a send this device already made with the same client message id, if any. */
  private async priorSend(input: NewEnvelope): Promise<AppendResult | undefined> {
    const prior = await this.models.Envelope.findOne({ _id: envelopeKey(input.orgId, input.senderDeviceId, input.clientMessageId) })
      .lean<EnvelopeDoc>()
      .exec();
    if (!prior) return undefined;
    if (prior.conversationId !== input.conversationId) return { status: 'conflict' };
    // A retry often follows a crash between the insert and its mark: mark it (a duplicate if the first
    // attempt did), so that lastSeq covers the seq before the retry is acked.
    // Known stored since it was sent (not now): a seq above it may be as old.
    await this.markSeq(input.orgId, prior.conversationId, prior.seq, prior.sentAt);
    return { status: 'duplicate', envelope: toEnvelope(prior) };
  }

  /** Mark `seq` stored (its envelope is), then remember it as a base for the next candidate. */
  private async markSeq(orgId: string, conversationId: string, seq: number, at: number): Promise<void> {
    await this.seqMarks.mark(orgId, conversationId, seq);
    const hk = hintKey(orgId, conversationId);
    // `at`: when `seq` was known stored; every seq above it was allocated later (see SEQ_HINT_TRUST_MS).
    const hint = this.seqHints.get(hk);
    if (!hint || seq > hint.seq) remember(this.seqHints, hk, { seq, at });
    else if (seq === hint.seq && at > hint.at) remember(this.seqHints, hk, { seq, at });
  }

  async createTeam(input: { orgId: string; state: TeamState; createdBy: string; now: number }) {
    const { Conversation: Conv, TeamLog } = this.models;
    const doc = {
      _id: docKey(input.orgId, input.state.teamId),
      conversationId: input.state.teamId,
      orgId: input.orgId,
      kind: 'group' as const,
      memberUserIds: Object.keys(input.state.members),
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
      directKey: groupKey(input.state.teamId),
      team: teamDoc(input.state),
    };
    try {
      await Conv.insertOne(doc);
    } catch (err) {
      if (isDuplicateKey(err)) return { status: 'exists' as const };
      throw err;
    }
    await TeamLog.insertOne({ orgId: input.orgId, teamId: input.state.teamId, index: 0, head: input.state.head }).catch((err: unknown) => {
      if (!isDuplicateKey(err)) throw err;
    });
    return { status: 'created' as const, conversation: toConversation(doc, 0) };
  }

  async getTeamState(orgId: string, teamId: string): Promise<TeamState | undefined> {
    const doc = await this.conversationDoc(orgId, teamId);
    return doc?.team ? fromTeamDoc(teamId, doc.team) : undefined;
  }

  async advanceTeam(orgId: string, teamId: string, expectedIndex: number, next: TeamState): Promise<'ok' | 'conflict'> {
    // Same queue as appends to this conversation. Appends no longer write the conversation document
    // (their `$max lastSeq` goes to `conversation_seqs`), so on FerretDB v1, whose updates are a
    // read-modify-write of the whole document, a seq raise can no longer write back an old team state;
    // two team changes race on the TeamLog insert, on any number of nodes.
    return this.serialize(hintKey(orgId, teamId), () => this.advanceTeamSerialized(orgId, teamId, expectedIndex, next));
  }

  private async advanceTeamSerialized(orgId: string, teamId: string, expectedIndex: number, next: TeamState): Promise<'ok' | 'conflict'> {
    const { Conversation: Conv, TeamLog } = this.models;
    const current = await this.getTeamState(orgId, teamId);
    if (!current) throw new Error(`team ${teamId} not found`);
    if (current.index !== expectedIndex) return 'conflict';
    // The insert is the claim: of two changes from the same state, one insert fails.
    try {
      await TeamLog.insertOne({ orgId, teamId, index: next.index, head: next.head });
    } catch (err) {
      if (isDuplicateKey(err)) return 'conflict';
      throw err;
    }
    await Conv.updateOne({ _id: docKey(orgId, teamId) }, { $set: { team: teamDoc(next), memberUserIds: Object.keys(next.members) } }).exec();
    return 'ok';
  }

  async statementBefore(orgId: string, teamId: string, seq: number): Promise<StoredEnvelope | undefined> {
    const doc = await this.models.Envelope.findOne({ orgId, conversationId: teamId, seq: mongoose.trusted({ $lt: seq }), membership: mongoose.trusted({ $exists: true }) })
      .sort({ seq: -1 })
      .lean<EnvelopeDoc>()
      .exec();
    return doc ? toEnvelope(doc) : undefined;
  }

  async withdrawEnvelope(orgId: string, senderDeviceId: string, clientMessageId: string): Promise<void> {
    const { Envelope: Env } = this.models;
    const _id = envelopeKey(orgId, senderDeviceId, clientMessageId);
    const doc = await Env.findOne({ _id }).lean<EnvelopeDoc>().exec();
    if (!doc) return;
    const { body: _body, shares: _shares, recipients: _recipients, epoch: _epoch, deliverTo: _deliverTo, partial: _partial, ...kept } = doc;
    const messageId = doc.messageId ?? doc._id;
    // Delete first: until the placeholder is in, the seq is free, and an append on another node that
    // takes it keeps the sequence gap-free just as well (the placeholder then loses on the seq index).
    await Env.deleteOne({ _id }).exec();
    await ignoreDuplicateKey(
      Env.collection.insertOne({ ...kept, _id: docKey(orgId, 'withdrawn', messageId), messageId, clientMessageId: `withdrawn-${messageId}` } as never),
    );
  }

  async ackDelivered(orgId: string, deviceId: string, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>): Promise<void> {
    if (cursors.length === 0) return;
    // One command for the device (its statements run one after another, not as rival writers), or a
    // few for a device in many conversations (MAX_UPDATES_PER_COMMAND).
    // Two nodes upserting one cursor at once: the loser's duplicate key is retried as an update.
    for (const part of chunks(cursors, MAX_UPDATES_PER_COMMAND)) {
      await retryOnDuplicateKey(() =>
        this.models.DeviceCursor.bulkWrite(
          part.map((c) => ({
          updateOne: {
            filter: { _id: docKey(orgId, deviceId, c.conversationId) },
            update: { $max: { seq: c.afterSeq }, $setOnInsert: { orgId, deviceId, conversationId: c.conversationId } },
            upsert: true,
          },
        })),
          { ordered: false },
        ),
      );
    }
  }

  async sweepEnvelopes(now: number): Promise<{ deleted: number }> {
    const { Conversation: Conv, Envelope: Env, DeviceCursor } = this.models;
    let deleted = 0;
    const conversations = await Conv.find({}).select({ conversationId: 1, orgId: 1 }).lean<Array<Pick<ConversationDoc, 'conversationId' | 'orgId'>>>().exec();
    for (const { orgId, conversationId } of conversations) {
      const c = { orgId, _id: conversationId };
      // The latest envelope stays: it anchors the next seq even if lastSeq lagged after a crash.
      const top = await Env.findOne({ orgId: c.orgId, conversationId: c._id }).sort({ seq: -1 }).select({ seq: 1 }).lean<Pick<EnvelopeDoc, 'seq'>>().exec();
      if (!top) continue;
      const below = mongoose.trusted({ $lt: top.seq });
      // Nothing younger than the grace: a node's trusted seq base may be just below it (SEQ_HINT_TRUST_MS).
      const old = mongoose.trusted({ $lte: now - SWEEP_GRACE_MS });
      const expired = await Env.deleteMany({ orgId: c.orgId, conversationId: c._id, seq: below, sentAt: old, membership: mongoose.trusted({ $exists: false }), expiresAt: mongoose.trusted({ $lte: now }) }).exec();
      deleted += expired.deletedCount;
      const acks = new Map(
        (await DeviceCursor.find({ orgId: c.orgId, conversationId: c._id }).lean<DeviceCursorDoc[]>().exec()).map((d) => [d.deviceId, d.seq]),
      );
      if (acks.size === 0) continue;
      const candidates = await Env.find({ orgId: c.orgId, conversationId: c._id, seq: mongoose.trusted({ $lt: top.seq }), sentAt: old, membership: mongoose.trusted({ $exists: false }) })
        .select({ _id: 1, seq: 1, deliverTo: 1 })
        .lean<Array<Pick<EnvelopeDoc, '_id' | 'seq' | 'deliverTo'>>>()
        .exec();
      const done = candidates
        .filter((e) => e.deliverTo && e.deliverTo.length > 0 && e.deliverTo.every((d) => (acks.get(d) ?? 0) >= e.seq))
        .map((e) => e._id);
      if (done.length) deleted += (await Env.deleteMany({ _id: mongoose.trusted({ $in: done }) }).exec()).deletedCount;
    }
    await this.seqMarks.sweep();
    return { deleted };
  }

  async findSent(orgId: string, senderDeviceId: string, clientMessageId: string): Promise<StoredEnvelope | undefined> {
    const doc = await this.models.Envelope.findOne({ _id: envelopeKey(orgId, senderDeviceId, clientMessageId) }).lean<EnvelopeDoc>().exec();
    return doc ? toEnvelope(doc) : undefined;
  }

  async publishKeys(input: PublishKeysInput): Promise<PublishKeysResult> {
    const { Device, Prekey } = this.models;
    const device = await Device.findOne({ _id: docKey(input.orgId, input.deviceId) }).lean<DeviceDoc>().exec();
    if (!device) throw new Error(`device ${input.deviceId} not found`);
    const existing = device.identityKey ? toBytes(device.identityKey) : undefined;
    if (existing && !Buffer.from(existing).equals(Buffer.from(input.identityKey))) return { status: 'identity_mismatch' };
    if (!existing && !input.signedPrekey) return { status: 'signed_prekey_required' };

    const batch = input.oneTimePrekeys ?? [];
    if (batch.length) {
      const known = await Prekey.find({ orgId: input.orgId, deviceId: input.deviceId, keyId: mongoose.trusted({ $in: batch.map((k) => k.keyId) }) })
        .select({ keyId: 1 })
        .lean<Array<Pick<PrekeyDoc, 'keyId'>>>()
        .exec();
      const knownIds = new Set(known.map((k) => k.keyId));
      const fresh = new Set(batch.filter((k) => !knownIds.has(k.keyId)).map((k) => k.keyId));
      const stored = await this.countOneTimePrekeys(input.orgId, input.deviceId);
      if (stored + fresh.size > input.maxStored) return { status: 'too_many_prekeys', stored };
    }

    const set: Record<string, unknown> = {};
    if (!existing) set.identityKey = Buffer.from(input.identityKey);
    if (input.signedPrekey) {
      set.signedPrekey = { keyId: input.signedPrekey.keyId, publicKey: Buffer.from(input.signedPrekey.publicKey), signature: Buffer.from(input.signedPrekey.signature) };
    }
    if (Object.keys(set).length) await Device.updateOne({ _id: docKey(input.orgId, input.deviceId) }, { $set: set }).exec();
    if (batch.length) {
      try {
        await Prekey.insertMany(
          batch.map((k) => ({ orgId: input.orgId, deviceId: input.deviceId, keyId: k.keyId, publicKey: Buffer.from(k.publicKey) })),
          { ordered: false },
        );
      } catch (err) {
        // A key id already stored (a retried upload) is skipped; everything else was inserted.
        if (!isBulkDuplicateOnly(err)) throw err;
      }
    }
    return { status: 'ok', firstPublish: !existing, oneTimePrekeys: await this.countOneTimePrekeys(input.orgId, input.deviceId) };
  }

  async countOneTimePrekeys(orgId: string, deviceId: string): Promise<number> {
    return this.models.Prekey.countDocuments({ orgId, deviceId }).exec();
  }

  async listDeviceIdentities(orgId: string, userIds: readonly string[]): Promise<DeviceIdentity[]> {
    const docs = await this.models.Device.find({ orgId, userId: mongoose.trusted({ $in: [...userIds] }) })
      .sort({ userId: 1, deviceId: 1 })
      .lean<DeviceDoc[]>()
      .exec();
    return docs
      .filter((d) => d.identityKey && d.signedPrekey)
      .map((d) => ({ userId: d.userId, deviceId: d.deviceId, identityKey: toBytes(d.identityKey) }));
  }

  async claimBundles(orgId: string, userIds: readonly string[], deviceIds?: readonly string[]): Promise<PrekeyBundle[]> {
    const filter: Record<string, unknown> = { orgId, userId: mongoose.trusted({ $in: [...userIds] }) };
    if (deviceIds) filter.deviceId = mongoose.trusted({ $in: [...deviceIds] });
    const devices = await this.models.Device.find(filter).sort({ userId: 1, deviceId: 1 }).lean<DeviceDoc[]>().exec();
    const ready = devices.filter((d) => d.identityKey && d.signedPrekey);
    return Promise.all(
      ready.map(async (d) => {
        const otk = await this.claimOneTimePrekey(orgId, d.deviceId);
        const spk = d.signedPrekey!;
        return {
          userId: d.userId,
          deviceId: d.deviceId,
          identityKey: toBytes(d.identityKey),
          signedPrekey: { keyId: spk.keyId, publicKey: toBytes(spk.publicKey), signature: toBytes(spk.signature) },
          ...(otk ? { oneTimePrekey: { keyId: otk.keyId, publicKey: toBytes(otk.publicKey) } } : {}),
        };
      }),
    );
  }

  /**
   * Take one of the device's one-time prekeys so that no other claimer can get it. FerretDB v1's
   * findOneAndDelete is not atomic under concurrency (two callers can receive the same document),
   * so the claim is the `deleteOne` by id: whoever's delete removed the document owns the key.
   */
  private async claimOneTimePrekey(orgId: string, deviceId: string): Promise<PrekeyDoc | undefined> {
    const { Prekey } = this.models;
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      const candidates = await Prekey.find({ orgId, deviceId }).sort({ keyId: 1 }).limit(CLAIM_CANDIDATES).lean<Array<PrekeyDoc & { _id: unknown }>>().exec();
      if (candidates.length === 0) return undefined;
      // Lowest key id first; once contended, the rest in random order to spread concurrent claimers.
      const [lowest, ...rest] = candidates;
      for (const candidate of [lowest!, ...shuffle(rest)]) {
        const { deletedCount } = await Prekey.deleteOne({ _id: candidate._id }).exec();
        if (deletedCount === 1) return candidate;
      }
    }
    throw new Error(`could not claim a one-time prekey of device ${deviceId} after ${MAX_CLAIM_ROUNDS} rounds`);
  }

  async envelopesAfter(orgId: string, conversationId: string, afterSeq: number, limit: number): Promise<StoredEnvelope[]> {
    if (limit <= 0) return []; // limit(0) would mean "no limit" to MongoDB
    const docs = await this.models.Envelope.find({ orgId, conversationId, seq: mongoose.trusted({ $gt: afterSeq }) })
      .sort({ seq: 1 })
      .limit(limit)
      .lean<EnvelopeDoc[]>()
      .exec();
    return docs.map(toEnvelope);
  }

  /** Run `fn` after every earlier call for the same key has finished. */
  private async serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.appendQueues.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev.then(() => mine);
    this.appendQueues.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.appendQueues.get(key) === tail) this.appendQueues.delete(key);
    }
  }

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

/** An envelope's `_id`: what makes a send unique (ids contain no space, see `docKey`). */
function envelopeKey(orgId: string, senderDeviceId: string, clientMessageId: string): string {
  return docKey(orgId, senderDeviceId, clientMessageId);
}

/** `items` in runs of at most `size`. */
function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function hintKey(orgId: string, conversationId: string): string {
  return docKey(orgId, conversationId);
}

/** Set `key` in a map kept to MAX_SEQ_HINTS entries, least recently set forgotten first (Map order). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_SEQ_HINTS) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Lean documents carry binary data as BSON `Binary`; hand out a plain, independent Uint8Array. */

function toUser(d: UserDoc): UserRecord {
  return { orgId: d.orgId, userId: d.userId, displayName: d.displayName ?? undefined, createdAt: d.createdAt, lastSeenAt: d.lastSeenAt };
}

function toDevice(d: DeviceDoc): DeviceRecord {
  return { orgId: d.orgId, userId: d.userId, deviceId: d.deviceId, createdAt: d.createdAt, lastSeenAt: d.lastSeenAt };
}

/** `lastSeq`: from `conversation_seqs`; the document's own field is only a floor (see `ConversationDoc`). */
function toConversation(d: ConversationDoc, lastSeq: number): Conversation {
  return {
    id: d.conversationId,
    kind: d.kind,
    ...(d.title !== undefined && d.title !== null ? { title: d.title } : {}),
    memberUserIds: [...d.memberUserIds],
    createdBy: d.createdBy,
    createdAt: d.createdAt,
    lastSeq: Math.max(d.lastSeq ?? 0, lastSeq),
    ...(d.team ? { roles: fromTeamDoc(d.conversationId, d.team).members, signed: true, epoch: d.team.head, ...(d.team.pool ? { pool: true as const } : {}) } : {}),
    ...(typeof d.roleId === 'string' ? { roleId: d.roleId } : {}),
  };
}

/**
 * An envelope's per-device ciphertexts: packed, or as the subdocuments of envelopes stored before.
 * Packed bytes that do not parse (edited in the database) give none: the devices get the body without
 * their share and report that one message as undecryptable; the rest of the conversation is unaffected.
 */
function storedShares(d: EnvelopeDoc): Pick<StoredEnvelope, 'recipients'> {
  if (d.shares !== undefined && d.shares !== null) {
    let shares: Share[] | undefined;
    try {
      shares = unpackShares(toBytes(d.shares));
    } catch {
      shares = undefined; // not binary at all
    }
    return shares ? { recipients: shares } : {};
  }
  return d.recipients ? { recipients: d.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: toBytes(r.ciphertext) })) } : {};
}

function toEnvelope(d: EnvelopeDoc): StoredEnvelope {
  return {
    messageId: d.messageId ?? d._id,
    conversationId: d.conversationId,
    seq: d.seq,
    senderUserId: d.senderUserId,
    senderDeviceId: d.senderDeviceId,
    clientMessageId: d.clientMessageId,
    sentAt: d.sentAt,
    ...(d.body ? { body: toBytes(d.body) } : {}),
    ...storedShares(d),
    ...(d.partial ? { partial: true } : {}),
    ...(d.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
    ...(typeof d.expiresAt === 'number' ? { expiresAt: d.expiresAt } : {}),
    ...(d.membership ? { membership: { statement: d.membership.statement, signature: toBytes(d.membership.signature) } } : {}),
    ...(typeof d.epoch === 'string' ? { epoch: d.epoch } : {}),
  };
}
