import { compositeKey } from '@curbside/shared';
import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { arrayIndex } from './ensure.js';

/**
 * Mongoose schemas for `MongoStorage`. They must work on MongoDB (production) and on FerretDB v1
 * (tests), so they use only what FerretDB v1 supports: plain and unique compound indexes (an index on an
 * array field is `arrayIndex`: FerretDB v1 does not get it). No TTL,
 * partial or sparse indexes (FerretDB rejects `partialFilterExpression` and silently ignores
 * `sparse`), no transactions, no `$lookup`.
 *
 * Timestamps are stored as epoch-millisecond numbers, exactly as the port hands them over, so they
 * round-trip without Date conversion.
 */

/**
 * The `_id` of a document that one tuple of ids names (a user, a device, a conversation, a device's
 * cursor in a conversation): shared's `compositeKey`, so distinct tuples never share an `_id` (for
 * valid ids, which hold no space, that is the ids joined by a space). Point reads and writes by `_id` are the cheapest on MongoDB. FerretDB v1 on SQLite pushes
 * only a filter of exactly `{ _id: <string> }` down to SQLite (an index look-up with the `_id` index our
 * build of it creates, see scripts/build-ferretdb.sh); every other filter decodes every document in Go.
 */
/** Bytes as stored (a Buffer, or a driver Binary in lean documents), copied. */
export function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (v instanceof mongoose.mongo.Binary) return new Uint8Array(v.value());
  throw new TypeError('stored ciphertext is not binary data');
}

/**
 * Update statements in one command at most. FerretDB v1 on PostgreSQL runs a command's statements on
 * connections of its pool (50) at once and waits for them: a bulk update of 60 statements never
 * answered, and every command of every node waited behind it (measured: 49 answered, 60 hung). Longer
 * lists go as several commands, one after another.
 */
export const MAX_UPDATES_PER_COMMAND = 32;

export function docKey(...ids: string[]): string {
  return compositeKey(...ids);
}

/** Options every collection's schema shares: no `__v`, unknown filter paths dropped, no automatic index builds. */
const common = { versionKey: false, strict: true, strictQuery: true, autoIndex: false, autoCreate: true } as const;

/** The schema options of a collection of ours (every adapter's collections use the same). */
export function collectionOptions(collection: string) {
  return { ...common, collection };
}

export interface UserDoc {
  _id: string;
  orgId: string;
  userId: string;
  displayName?: string;
  createdAt: number;
  lastSeenAt: number;
}

export const userSchema = new Schema<UserDoc>(
  {
    /** `docKey(orgId, userId)`. */
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    userId: { type: String, required: true },
    displayName: { type: String },
    createdAt: { type: Number, required: true },
    lastSeenAt: { type: Number, required: true },
  },
  collectionOptions('users'),
);
// No index on (orgId, userId): the `_id` is that pair, and every read is by `_id`.

export interface SignedPrekeyDoc {
  keyId: number;
  publicKey: Buffer;
  signature: Buffer;
}

export interface DeviceDoc {
  _id: string;
  orgId: string;
  deviceId: string;
  /** The user the device was first seen with. Never changed afterwards. */
  userId: string;
  createdAt: number;
  lastSeenAt: number;
  /** Ed25519 public identity key, set by the device's first key publish and never replaced. */
  identityKey?: Buffer;
  signedPrekey?: SignedPrekeyDoc;
}

export const deviceSchema = new Schema<DeviceDoc>(
  {
    /** `docKey(orgId, deviceId)`. */
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    deviceId: { type: String, required: true },
    userId: { type: String, required: true },
    createdAt: { type: Number, required: true },
    lastSeenAt: { type: Number, required: true },
    identityKey: { type: Buffer },
    signedPrekey: {
      type: new Schema<SignedPrekeyDoc>(
        { keyId: { type: Number, required: true }, publicKey: { type: Buffer, required: true }, signature: { type: Buffer, required: true } },
        { _id: false, versionKey: false },
      ),
    },
  },
  collectionOptions('devices'),
);
deviceSchema.index({ orgId: 1, userId: 1 }, { name: 'org_user' });

export interface ConversationDoc {
  /** `docKey(orgId, conversationId)`: conversation and team ids are scoped per organisation. */
  _id: string;
  /** The id clients see (a random UUID, or the team id its creator chose). */
  conversationId: string;
  orgId: string;
  kind: 'direct' | 'group';
  title?: string;
  memberUserIds: string[];
  createdBy: string;
  createdAt: number;
  /**
   * Written as 0 at creation and never raised since the conversation's seq moved out of this document
   * (now seq marks, `SeqMarkSetDoc`); read as a floor, so conversations stored before that keep their seq.
   */
  lastSeq?: number;
  /**
   * `directKey(members)` for direct conversations, `groupKey(id)` for groups (storage-rules.ts). Every conversation has one so a plain unique index enforces "one direct
   * conversation per pair" without a partial index, which FerretDB v1 lacks.
   */
  directKey: string;
  /**
   * Care teams: the state the signed log leads to. Members are a list: user ids may contain '.' or '$'.
   * `sealedDetails`: the title and description, end-to-end encrypted (the hub cannot read them). Teams
   * stored before that may still carry a plaintext `title`, which is no longer read or written.
   */
  team?: {
    sealedDetails?: { keyId: string; box: string };
    index: number;
    head: string;
    members: Array<{ userId: string; role: 'owner' | 'admin' | 'member' }>;
    /** On-call roles: the name, the last hand-off and the shifts (`TeamState.oncall`). */
    oncall?: { name: string; hold?: { userId: string; at: number }; shifts: Array<{ userIds: string[]; from: number; to: number }> };
    /** The escalation policy (`TeamState.escalation`). */
    escalation?: { tiers: Array<{ afterMs: number; userIds: string[]; roleIds: string[] }> };
    /** Consult pools: the topic and the hidden cases (`TeamState.pool`). */
    pool?: { topic: string; hidden: string[] };
  };
  /** A requester's thread with an on-call role (its `directKey` is `roleThreadKey`). */
  roleId?: string;
}

export const conversationSchema = new Schema<ConversationDoc>(
  {
    _id: { type: String, required: true },
    conversationId: { type: String, required: true },
    orgId: { type: String, required: true },
    kind: { type: String, required: true, enum: ['direct', 'group'] },
    title: { type: String },
    memberUserIds: { type: [String], required: true },
    createdBy: { type: String, required: true },
    createdAt: { type: Number, required: true },
    lastSeq: { type: Number },
    directKey: { type: String, required: true },
    roleId: { type: String },
    team: {
      type: new Schema(
        {
          sealedDetails: { type: new Schema({ keyId: { type: String, required: true }, box: { type: String, required: true } }, { _id: false, versionKey: false }) },
          index: { type: Number, required: true },
          head: { type: String, required: true },
          members: { type: [new Schema({ userId: { type: String, required: true }, role: { type: String, required: true } }, { _id: false, versionKey: false })], required: true },
          oncall: { type: Schema.Types.Mixed },
          escalation: { type: Schema.Types.Mixed },
          pool: { type: Schema.Types.Mixed },
        },
        { _id: false, versionKey: false },
      ),
    },
  },
  collectionOptions('conversations'),
);
arrayIndex(conversationSchema, { orgId: 1, memberUserIds: 1 }, 'org_members');
conversationSchema.index({ orgId: 1, directKey: 1 }, { unique: true, name: 'org_directkey_unique' });
conversationSchema.index({ orgId: 1, roleId: 1 }, { name: 'org_role' });

/**
 * A set of seq marks: "the envelope at `seqs[i]` of conversation `conversationIds[i]` is stored", for
 * each `i`. One set per group-commit batch and organisation, inserted after the batch's envelopes are
 * stored, never updated; a conversation's `lastSeq` is the highest seq any set gives it. One document per
 * batch instead of one per conversation: on FerretDB-PostgreSQL a mark document cost the database about
 * as much as the envelope it marked, and removing it took D from 933 to 1,289 msg/s (docs/benchmarks.md).
 * Inserts with a fresh `_id` are atomic on every backend, and a set can only add a higher maximum, so sets
 * written late or by racing nodes never lower `lastSeq` (docs/delivery.md). A set goes when each of its
 * marks is below a higher one that is stored (its node deletes it then, `SeqMarks`), or at the sweep.
 *
 * Replaced `ConversationSeqMarkDoc`s (one document per mark); the migration `2026-12-seq-mark-sets`
 * moves those into sets.
 */
export interface SeqMarkSetDoc {
  /** `docKey(orgId, <random id>)`, or for a set the migration wrote, derived from the marks it moved. */
  _id: string;
  orgId: string;
  /** Parallel to `seqs`. */
  conversationIds: string[];
  seqs: number[];
}

export const seqMarkSetSchema = new Schema<SeqMarkSetDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    conversationIds: { type: [String], required: true },
    seqs: { type: [Number], required: true },
  },
  collectionOptions('seq_mark_sets'),
);
/** The sets that mark a conversation (MongoDB: a multikey index; FerretDB v1 filters itself). */
arrayIndex(seqMarkSetSchema, { orgId: 1, conversationIds: 1 }, 'org_conversations');

export interface EnvelopeDoc {
  /**
   * `docKey(orgId, senderDeviceId, clientMessageId)`: what makes a send unique. A retried send is
   * refused by the `_id` index and found by a point read, on every backend.
   */
  _id: string;
  /** The message id clients see (a random UUID). Envelopes stored before it existed: their `_id`. */
  messageId?: string;
  orgId: string;
  conversationId: string;
  seq: number;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  sentAt: number;
  body?: Buffer;
  /** The per-device ciphertexts, packed (`shares.ts`). */
  shares?: Buffer;
  /** The per-device ciphertexts as envelopes stored before `shares` hold them: read, never written. */
  recipients?: Array<{ deviceId: string; ciphertext: Buffer }>;
  partial?: boolean;
  kind?: 'message' | 'receipt';
  deliverTo?: string[];
  expiresAt?: number;
  membership?: { statement: string; signature: Buffer };
  /** Care teams: the membership epoch the body is bound to. */
  epoch?: string;
}

export const envelopeSchema = new Schema<EnvelopeDoc>(
  {
    _id: { type: String, required: true },
    messageId: { type: String },
    orgId: { type: String, required: true },
    conversationId: { type: String, required: true },
    seq: { type: Number, required: true },
    senderUserId: { type: String, required: true },
    senderDeviceId: { type: String, required: true },
    clientMessageId: { type: String, required: true },
    sentAt: { type: Number, required: true },
    body: { type: Buffer },
    shares: { type: Buffer },
    partial: { type: Boolean },
    kind: { type: String, enum: ['message', 'receipt'] },
    deliverTo: { type: [String], default: undefined },
    expiresAt: { type: Number },
    membership: {
      type: new Schema({ statement: { type: String, required: true }, signature: { type: Buffer, required: true } }, { _id: false, versionKey: false }),
    },
    epoch: { type: String },
    recipients: {
      type: [new Schema({ deviceId: { type: String, required: true }, ciphertext: { type: Buffer, required: true } }, { _id: false, versionKey: false })],
      default: undefined,
    },
  },
  collectionOptions('envelopes'),
);
/** Claims a seq: an insert that loses a race fails here instead of storing a second message at that seq. */
envelopeSchema.index({ orgId: 1, conversationId: 1, seq: 1 }, { unique: true, name: 'org_conv_seq_unique' });
/** The retention sweep (FerretDB has no TTL indexes: an app-side sweeper deletes by this). */
envelopeSchema.index({ expiresAt: 1 }, { name: 'expires_at' });
// Idempotency of retried sends: the `_id` is (org, sender device, client message id).

/** One-time prekeys: each document is handed out once, by a find-and-delete. */
export interface PrekeyDoc {
  orgId: string;
  deviceId: string;
  keyId: number;
  publicKey: Buffer;
}

export const prekeySchema = new Schema<PrekeyDoc>(
  {
    orgId: { type: String, required: true },
    deviceId: { type: String, required: true },
    keyId: { type: Number, required: true },
    publicKey: { type: Buffer, required: true },
  },
  collectionOptions('prekeys'),
);
/** A retried upload cannot store a key id twice; claims take the lowest key id first. */
prekeySchema.index({ orgId: 1, deviceId: 1, keyId: 1 }, { unique: true, name: 'org_device_keyid_unique' });

/**
 * One document per applied team statement index: the unique index makes two concurrent changes
 * from the same state race on one insert, on any number of hub nodes (FerretDB has no transactions).
 */
export interface TeamLogDoc {
  orgId: string;
  teamId: string;
  index: number;
  head: string;
}

export const teamLogSchema = new Schema<TeamLogDoc>(
  {
    orgId: { type: String, required: true },
    teamId: { type: String, required: true },
    index: { type: Number, required: true },
    head: { type: String, required: true },
  },
  collectionOptions('team_log'),
);
teamLogSchema.index({ orgId: 1, teamId: 1, index: 1 }, { unique: true, name: 'org_team_index_unique' });

/** How far each device has processed each conversation: the delivery state the sweeper reads. */
export interface DeviceCursorDoc {
  _id: string;
  orgId: string;
  deviceId: string;
  conversationId: string;
  seq: number;
}

export const deviceCursorSchema = new Schema<DeviceCursorDoc>(
  {
    /** `docKey(orgId, deviceId, conversationId)`. */
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    deviceId: { type: String, required: true },
    conversationId: { type: String, required: true },
    seq: { type: Number, required: true },
  },
  collectionOptions('device_cursors'),
);
deviceCursorSchema.index({ orgId: 1, conversationId: 1 }, { name: 'org_conv' });

/** A member who sent something into a conversation (`_id` = `docKey(orgId, conversationId, userId)`). */
export interface ConversationSenderDoc {
  _id: string;
}

export const conversationSenderSchema = new Schema<ConversationSenderDoc>({ _id: { type: String, required: true } }, collectionOptions('conversation_senders'));

export interface StorageModels {
  User: Model<UserDoc>;
  Device: Model<DeviceDoc>;
  Conversation: Model<ConversationDoc>;
  SeqMarkSet: Model<SeqMarkSetDoc>;
  Envelope: Model<EnvelopeDoc>;
  Prekey: Model<PrekeyDoc>;
  TeamLog: Model<TeamLogDoc>;
  DeviceCursor: Model<DeviceCursorDoc>;
  ConversationSender: Model<ConversationSenderDoc>;
}

/** Compile the models on one connection (never the global default connection). */
export function registerModels(conn: Connection): StorageModels {
  return {
    User: conn.model<UserDoc>('User', userSchema),
    Device: conn.model<DeviceDoc>('Device', deviceSchema),
    Conversation: conn.model<ConversationDoc>('Conversation', conversationSchema),
    SeqMarkSet: conn.model<SeqMarkSetDoc>('SeqMarkSet', seqMarkSetSchema),
    Envelope: conn.model<EnvelopeDoc>('Envelope', envelopeSchema),
    Prekey: conn.model<PrekeyDoc>('Prekey', prekeySchema),
    TeamLog: conn.model<TeamLogDoc>('TeamLog', teamLogSchema),
    DeviceCursor: conn.model<DeviceCursorDoc>('DeviceCursor', deviceCursorSchema),
    ConversationSender: conn.model<ConversationSenderDoc>('ConversationSender', conversationSenderSchema),
  };
}
