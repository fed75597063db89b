import type { Conversation, ConversationKind, Envelope } from '@curbside/shared';

/**
 * The hub's persistence port. Every method is scoped by organisation: an id from another
 * organisation behaves exactly like an id that does not exist.
 *
 * Implementations: `MemoryStorage` (embedded dev default, fast logic tests) and `MongoStorage`
 * (mongoose; MongoDB in production, FerretDB in tests). Both pass `test/contract/storage.contract.ts`.
 */
export interface Storage extends DirectoryStore, ConversationStore, EnvelopeStore {
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

export interface NewConversation {
  orgId: string;
  kind: ConversationKind;
  title?: string | undefined;
  createdBy: string;
  /** Including the creator. Duplicates are removed. */
  memberUserIds: string[];
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
}

export interface NewEnvelope {
  orgId: string;
  conversationId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  ciphertext: Uint8Array;
  now: number;
}

export type AppendResult =
  | { status: 'stored'; envelope: Envelope }
  /** The same device already sent this client message id to this conversation: nothing new stored. */
  | { status: 'duplicate'; envelope: Envelope }
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
  envelopesAfter(orgId: string, conversationId: string, afterSeq: number, limit: number): Promise<Envelope[]>;
}
