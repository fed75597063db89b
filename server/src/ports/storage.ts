import type { Conversation, ConversationKind, DeviceIdentity, Envelope, OneTimePrekey, PrekeyBundle, SignedPrekey, SignedStatement, TeamState } from '@curbside/shared';

/**
 * The hub's persistence port. Every method is scoped by organisation: an id from another
 * organisation behaves exactly like an id that does not exist.
 *
 * Implementations: `MemoryStorage` (embedded dev default, fast logic tests) and `MongoStorage`
 * (mongoose; MongoDB in production, FerretDB in tests). Both pass `test/contract/storage.contract.ts`.
 */
export interface Storage extends DirectoryStore, KeyDirectory, ConversationStore, TeamStore, EnvelopeStore {
  /** Create indexes and anything else needed before first use. Idempotent. */
  init(): Promise<void>;
  /** Cheap round trip for readiness probes; throws when the backend is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface UserRecord {
  orgId: string;
  userId: string;
  displayName: string | undefined;
  createdAt: number;
  lastSeenAt: number;
}

export interface DeviceRecord {
  orgId: string;
  userId: string;
  deviceId: string;
  createdAt: number;
  lastSeenAt: number;
}

/** Clinicians and their devices, as the identity provider's tokens introduce them. */
export interface DirectoryStore {
  /** Create or refresh the user and device named by a verified token. */
  touchDevice(input: { orgId: string; userId: string; deviceId: string; displayName?: string | undefined; now: number }): Promise<{ user: UserRecord; device: DeviceRecord }>;
  getUser(orgId: string, userId: string): Promise<UserRecord | undefined>;
  listDevices(orgId: string, userId: string): Promise<DeviceRecord[]>;
}

export interface PublishKeysInput {
  orgId: string;
  deviceId: string;
  identityKey: Uint8Array;
  signedPrekey?: SignedPrekey | undefined;
  oneTimePrekeys?: OneTimePrekey[] | undefined;
  /** One-time prekeys the device may have stored at most, including this batch. */
  maxStored: number;
  now: number;
}

export type PublishKeysResult =
  | { status: 'ok'; firstPublish: boolean; oneTimePrekeys: number }
  /** The device registered another identity key before: keys are never replaced under the same device id. */
  | { status: 'identity_mismatch' }
  /** A device's first publish must include its signed prekey. */
  | { status: 'signed_prekey_required' }
  /** Storing the batch would exceed `maxStored`; nothing was stored. */
  | { status: 'too_many_prekeys'; stored: number };

/**
 * Public key material of devices, for X3DH. Signatures are verified by the caller before
 * anything reaches here.
 */
export interface KeyDirectory {
  /**
   * Record a device's identity key (first time only), its signed prekey (replacing the previous
   * one) and one-time prekeys (a key id already stored is ignored, so a retried upload is harmless).
   * The device must exist (see `touchDevice`).
   */
  publishKeys(input: PublishKeysInput): Promise<PublishKeysResult>;
  countOneTimePrekeys(orgId: string, deviceId: string): Promise<number>;
  /** Devices of these users that have published keys, ordered by user then device. */
  listDeviceIdentities(orgId: string, userIds: readonly string[]): Promise<DeviceIdentity[]>;
  /**
   * One bundle per device of these users (optionally only `deviceIds`) that has published keys.
   * Each one-time prekey is handed out at most once, even to concurrent claimers on several hub
   * nodes (an atomic find-and-delete); a device that has none left gets a bundle without one.
   */
  claimBundles(orgId: string, userIds: readonly string[], deviceIds?: readonly string[]): Promise<PrekeyBundle[]>;
}

export interface NewConversation {
  orgId: string;
  kind: ConversationKind;
  createdBy: string;
  /** Including the creator. Duplicates are removed. */
  memberUserIds: string[];
  /**
   * A thread with this on-call role (kind `group`): there is at most one per requester (`createdBy`)
   * and role; creating it again returns the existing one with `created: false`.
   */
  roleId?: string | undefined;
  now: number;
}

export interface ConversationStore {
  /**
   * Create a conversation. For `direct`, there is at most one per pair of users per organisation:
   * creating it again returns the existing one with `created: false`.
   */
  createConversation(input: NewConversation): Promise<{ conversation: Conversation; created: boolean }>;
  getConversation(orgId: string, conversationId: string): Promise<Conversation | undefined>;
  /** Conversations the user is a member of, oldest first. */
  listConversationsForUser(orgId: string, userId: string): Promise<Conversation[]>;
  /**
   * Remember that a member sent something into the conversation: having written in it is what makes a
   * conversation someone else started accepted, and their presence visible in it. Idempotent.
   */
  noteSender(orgId: string, conversationId: string, userId: string): Promise<void>;
  /**
   * Take a member out of a group conversation that is not a care team (whose membership only signed
   * statements change). Returns the conversation after, or undefined when it is not such a group.
   */
  leaveGroup(orgId: string, conversationId: string, userId: string): Promise<Conversation | undefined>;
  /** Which of these members have sent something into the conversation. */
  sendersAmong(orgId: string, conversationId: string, userIds: readonly string[]): Promise<string[]>;
}

/**
 * Care teams: a group conversation whose membership follows a signed statement log. The hub keeps
 * the state the log leads to; clients replay the log themselves.
 */
export interface TeamStore {
  /** Create the team's conversation (its id is the team id) in the state its `create` statement gives. */
  createTeam(input: { orgId: string; state: TeamState; createdBy: string; now: number }): Promise<{ status: 'created'; conversation: Conversation } | { status: 'exists' }>;
  getTeamState(orgId: string, teamId: string): Promise<TeamState | undefined>;
  /**
   * Move the team from the state at `expectedIndex` to `next` (members follow). Exactly one of two
   * concurrent changes from the same index wins, on every hub node; the other gets `conflict`.
   */
  advanceTeam(orgId: string, teamId: string, expectedIndex: number, next: TeamState): Promise<'ok' | 'conflict'>;
  /**
   * The last membership statement sequenced before `seq` in the team's conversation: its head is the
   * membership epoch a team message at `seq` must be bound to. Read only on the slow path of the
   * epoch fence (`MessageRelay.send`), never on every send.
   */
  statementBefore(orgId: string, teamId: string, seq: number): Promise<StoredEnvelope | undefined>;
  /**
   * Take back an envelope that was sequenced under a stale membership epoch, before anyone was told
   * of it: its body and shares are deleted, a placeholder without content keeps its seq (the
   * sequence stays gap-free), and its client message id is free for the resend.
   */
  withdrawEnvelope(orgId: string, senderDeviceId: string, clientMessageId: string): Promise<void>;
}

export interface NewEnvelope {
  orgId: string;
  conversationId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  body?: Uint8Array | undefined;
  recipients?: Array<{ deviceId: string; ciphertext: Uint8Array }> | undefined;
  partial?: boolean | undefined;
  kind?: 'message' | 'receipt' | undefined;
  membership?: SignedStatement | undefined;
  /** Care teams: the membership epoch the body is bound to (checked by the relay, stored for retries). */
  epoch?: string | undefined;
  /** Devices the envelope is for (registered at send time): it may go once all of them acked it. */
  deliverTo?: string[] | undefined;
  /** When retention ends (epoch ms): it goes then even if some device never acked. */
  expiresAt?: number | undefined;
  /**
   * The conversation's `lastSeq` as the caller just read it (the relay checks membership first): a
   * store may start its seq search there instead of reading the conversation again. A stale value
   * only costs a retry; the store still never burns or reorders a seq.
   */
  lastSeqSeen?: number | undefined;
  now: number;
}

/** An envelope as stored: the common body and every device's share. Projected per device on delivery. */
export interface StoredEnvelope extends Omit<Envelope, 'ciphertext'> {
  recipients?: Array<{ deviceId: string; ciphertext: Uint8Array }> | undefined;
  /** When retention ends (hub-internal; not sent to clients). */
  expiresAt?: number | undefined;
}

export type AppendResult =
  | { status: 'stored'; envelope: StoredEnvelope }
  /** The same device already sent this client message id to this conversation: nothing new stored. */
  | { status: 'duplicate'; envelope: StoredEnvelope }
  /** The same device used this client message id for a different conversation. */
  | { status: 'conflict' };

export interface EnvelopeStore {
  /**
   * Durably store an envelope and assign the conversation's next sequence number.
   * Sequence numbers are unique and gap-free per conversation: seq N exists before N+1 is assigned,
   * so a reader that has 1..N and sees N+2 knows N+1 is in flight or missed.
   * Idempotent per (org, sender device, client message id).
   */
  appendEnvelope(input: NewEnvelope): Promise<AppendResult>;
  /** Envelopes with seq > afterSeq, ascending, at most `limit`. */
  envelopesAfter(orgId: string, conversationId: string, afterSeq: number, limit: number): Promise<StoredEnvelope[]>;
  /**
   * Record what a device has processed, per conversation (only ever moves forward).
   */
  ackDelivered(orgId: string, deviceId: string, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>): Promise<void>;
  /**
   * Delete envelopes every device they were for has acked, and those past retention. Membership
   * statements are kept (new members verify the team log from its start), and so is each
   * conversation's latest envelope. Safe to run on several nodes at once.
   */
  sweepEnvelopes(now: number): Promise<{ deleted: number }>;
  /** What this device already stored under this client message id, if anything. */
  findSent(orgId: string, senderDeviceId: string, clientMessageId: string): Promise<StoredEnvelope | undefined>;
}

// --- security: devices ---
import type { DeviceAdmin } from './device-admin.js';
/** Every storage also administers devices (declaration merging keeps this out of the main declaration). */
export interface Storage extends DeviceAdmin {}

// --- E2EE: signed device lists ---
import type { DeviceListStore } from './device-lists.js';
/** Every storage also keeps signed device lists. */
export interface Storage extends DeviceListStore {}

// --- administration: users ---
import type { UserAdmin } from './user-admin.js';
/** Every storage also lists and disables users for operators. */
export interface Storage extends UserAdmin {}

// --- directory: profiles ---
import type { ProfileDirectory } from './profiles.js';
/** Every storage also keeps the organisation's directory of profiles. */
export interface Storage extends ProfileDirectory {}

// --- clinical workflow: alerts ---
import type { AlertSettingsStore, AlertStore } from './alerts.js';
/** Every storage also keeps alerts (urgent messages), their durable timers, and each organisation's alert settings. */
export interface Storage extends AlertStore, AlertSettingsStore {}

// --- clinical workflow: on-call roles ---
import type { RoleStore } from './roles.js';
/** Every storage also lists on-call roles, their logs, and keeps role threads' members in step. */
export interface Storage extends RoleStore {}

// --- clinical workflow: verified credentials ---
import type { CredentialStore } from './credentials.js';
/** Every storage also keeps the organisations' credentialing keys, attestations and revocations. */
export interface Storage extends CredentialStore {}
// --- clinical workflow: pseudonymous posting ---
import type { PseudonymStore } from './pseudonyms.js';
/** Every storage also keeps the office's token keys, token requests and spent nullifiers. */
export interface Storage extends PseudonymStore {}
// --- attachments ---
import type { AttachmentStore } from './attachments.js';
/** Every storage also keeps the records of attachment uploads (their bytes are in a BlobStore). */
export interface Storage extends AttachmentStore {}
