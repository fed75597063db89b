/**
 * The end-to-end layer's types: what the app sees (messages, decryption errors, safety numbers, team
 * changes), what the layer needs from the hub (`HubTransport`), and the context the care-team messenger
 * works through (`TeamContext`), so that the pairwise layer and the team layer depend on these
 * interfaces and not on each other.
 */
import { ErrorCode, type AttachmentDescriptor, type ConsultPart, type DeviceIdentity, type Priority, type Envelope, type PrekeyBundle, type SendResult, type SignedStatement, type TeamState } from '@curbside/shared';
import type { MessageContent, SealedExtras } from './message-crypto.js';
import type { CryptoErrorCode, Fingerprint } from '../crypto/index.js';
import { CurbsideError } from '../errors.js';
import type { DeviceStore } from '../stores/index.js';
import type { EnvelopePayload } from '../hub/outbox.js';
import type { LocalKeys } from './local-keys.js';
import type { TrustBook } from './peer-state.js';
import type { Receipt } from './receipts.js';
import type { DeviceListBook, DeviceListChange, DeviceListRejection, DeviceListTransport } from './device-lists.js';

/** A decrypted message, as the app sees it. */
export interface ChatMessage {
  conversationId: string;
  messageId: string;
  seq: number;
  senderUserId: string;
  senderDeviceId: string;
  sentAt: number;
  text: string;
  /**
   * As the sender sealed it with the text: `urgent` and `emergent` messages raise an alert that
   * recipients acknowledge (`client.alerts`). @default 'routine'
   */
  priority: Priority;
  /** Sent by this user (from another of their devices). */
  outgoing: boolean;
  /**
   * Threads with an on-call role: the message was sent before this user held the role, and the
   * previous holder's device (this user) handed it over. Its text is the sender's original.
   */
  handedOffBy?: string;
  /**
   * A file sent with the message (`text` is its caption): pass it to `client.attachments.download`.
   * Its `name`, `mediaType`, `thumbnail` and `removedMetadata` (what de-identification took out) were
   * sealed by the sender with the message.
   */
  attachment?: AttachmentDescriptor;
  /**
   * In a consult pool: what this message is in a consult (a case, whose text is the question; a reply
   * to a case; a helpful mark; the asker's closing summary; a move to a private conversation), sealed
   * by the sender. Group them with `consultThreads`.
   */
  consult?: ConsultPart;
  /**
   * A pseudonymous post in a consult pool (sender `~sealed`): the poster is "a verified
   * <specialty>", proven by a pseudonym token the office signed blind; `key` is the same on a case
   * and its asker's follow-ups. Nothing in it says who posted.
   */
  pseudonym?: { specialty: string; epoch: string; key: string; mine: boolean };
}

/** The message the app sees for an envelope whose text this device decrypted. */
export function chatMessageOf(envelope: Envelope, text: string, myUserId: string, priority: Priority = 'routine', extras: SealedExtras = {}): ChatMessage {
  return {
    conversationId: envelope.conversationId,
    messageId: envelope.messageId,
    seq: envelope.seq,
    senderUserId: envelope.senderUserId,
    senderDeviceId: envelope.senderDeviceId,
    sentAt: envelope.sentAt,
    text,
    priority,
    outgoing: envelope.senderUserId === myUserId,
    ...(extras.attachment ? { attachment: extras.attachment } : {}),
    ...(extras.consult ? { consult: extras.consult } : {}),
  };
}

/**
 * A message that could not be decrypted. `message` is safe to show a clinician; the technical
 * cause went to the SDK's logger only. The stream of messages goes on.
 */
export class DecryptionError extends CurbsideError {
  constructor(
    readonly conversationId: string,
    readonly messageId: string,
    readonly seq: number,
    readonly senderUserId: string,
    readonly senderDeviceId: string,
    readonly reason: DecryptionFailureReason,
    userMessage: string,
  ) {
    super(ErrorCode.DECRYPTION_FAILED, userMessage, { conversationId, messageId, seq, senderUserId, senderDeviceId, reason });
  }
}

/** The error of a send (or a new session, or an escalation: `before`) refused because a contact's key changed and was not accepted. */
export function untrustedIdentity(userId: string, before = 'sending'): CurbsideError {
  return new CurbsideError(ErrorCode.UNTRUSTED_IDENTITY, `The safety key of ${userId} changed; accept or verify it before ${before}`, { userId });
}

/**
 * Why a message could not be read. `AUTHENTICATION_FAILED`: it was damaged or tampered with (on the
 * network or in the hub's database); it is dropped and nothing else changes. `NO_SESSION`: this
 * device holds no session with the sender's device; the SDK starts a new one.
 */
export type DecryptionFailureReason =
  | Exclude<CryptoErrorCode, 'DECRYPT_FAILED' | 'BAD_SIGNATURE'>
  | 'AUTHENTICATION_FAILED'
  | 'UNTRUSTED_IDENTITY'
  | 'NO_SESSION'
  | 'NO_SENDER_KEY'
  | 'NOT_A_MEMBER'
  /** A care-team message bound to another membership epoch than the one in force at its seq (docs/threat-model.md). */
  | 'STALE_EPOCH'
  /** Sent by a device its user's signed device list does not name (docs/threat-model.md): not shown. */
  | 'UNLISTED_DEVICE';

/**
 * A safety number and what the user did with it. `verified`: compared and marked verified, and no
 * key changed since. `unverified`: trusted on first use only. `devices-changed`: verified before, but
 * the contact's signed device list changed since (a device linked or removed): the number is new;
 * compare it again. `changed`: a device's identity key differs from the one this device knew;
 * nothing is sent to the contact until the user accepts it.
 */
export interface SafetyNumber extends Fingerprint {
  state: 'verified' | 'unverified' | 'devices-changed' | 'changed';
}

/** A message that exists but holds nothing for this device. */
export interface UnavailableMessage {
  conversationId: string;
  messageId: string;
  seq: number;
  senderUserId: string;
  /**
   * Sent before this device existed, before this user joined the care team (history is not shared), or
   * after this user was removed from it.
   */
  reason: 'before-this-device' | 'before-you-joined' | 'removed';
}

export interface SdkLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What the messenger needs from the hub connection. */
export interface HubTransport extends DeviceListTransport {
  sendEnvelope(conversationId: string, payload: EnvelopePayload, options: { clientMessageId: string }): Promise<SendResult>;
  claimBundles(request: { userIds: string[]; deviceIds?: string[] }): Promise<PrekeyBundle[]>;
  publishKeys(request: { identityKey: Uint8Array; signedPrekey: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }; oneTimePrekeys?: Array<{ keyId: number; publicKey: Uint8Array }> }): Promise<{ oneTimePrekeys: number }>;
  countPrekeys(): Promise<number>;
  /** Members as the hub sees them; `fresh` asks the hub instead of a cache. */
  conversationMembers(conversationId: string, fresh?: boolean): Promise<string[]>;
  teamRequest(event: 'team:create' | 'team:change', request: { signed: SignedStatement }): Promise<{ seq: number }>;
  /** The on-call role a conversation is a thread with, and its requester; undefined for others. */
  roleThread(conversationId: string): Promise<{ roleId: string; requesterUserId: string } | undefined>;
  /** A role's signed statements from `fromIndex`. */
  roleLog(roleId: string, fromIndex?: number): Promise<SignedStatement[]>;
  /** `alert:list`: open alerts this user must acknowledge or sent. */
  openAlerts(): Promise<unknown>;
  /** Fetch and process everything the hub has after this device's cursors (membership statements included). */
  catchUp(): Promise<void>;
  /** The app disconnected or closed the client: stop waiting for the hub. */
  stopped(): boolean;
}

export interface MessengerEvents {
  message(message: ChatMessage): void;
  decryptionError(error: DecryptionError): void;
  identityChanged(change: { userId: string; deviceIds: string[] }): void;
  unavailable(info: UnavailableMessage): void;
  /** A care team's membership changed (verified from the signed log). */
  teamChanged(change: TeamChange): void;
  /** This device can read a care team's title and description, newly or anew. */
  teamDetails(details: TeamDetailsChange): void;
  /** Someone received or read a message this user sent. */
  receipt(receipt: Receipt): void;
  /** The hub's view of a team disagrees with the signed log, or offered a statement that does not verify. */
  membershipMismatch(mismatch: MembershipMismatch): void;
  /** A user's signed device list changed (verified): devices linked or removed. */
  deviceListChanged(change: DeviceListChange): void;
  /** The hub offered a device list that does not verify, or rolled one back: nothing is sent to that user. */
  deviceListRejected(rejection: DeviceListRejection): void;
}

/** A verified membership change. */
export interface TeamChange {
  teamId: string;
  /**
   * The team's title, when this device holds the key it is sealed under. Otherwise it comes later
   * with a `teamDetails` event, once a member device hands the key over.
   */
  title?: string;
  members: Record<string, 'owner' | 'admin' | 'member'>;
  /**
   * The statement's operation (`details`: new title and description; `hold` and `schedule`: an on-call
   * role changed hands or shifts; `policy`: a new escalation policy; `join`: a clinician joined a
   * consult pool; `hide`: a moderator hid the case `messageId` of a pool) and the member it concerns.
   */
  op: 'create' | 'add' | 'remove' | 'role' | 'details' | 'hold' | 'schedule' | 'policy' | 'join' | 'hide';
  userId?: string;
  /** `hide`: the case hidden. */
  messageId?: string;
  actorUserId: string;
  seq: number;
}

/**
 * A care team's title and description as this device decrypted them (the hub holds them sealed).
 * `description` is absent when the team has none.
 */
export interface TeamDetailsChange {
  teamId: string;
  title: string;
  description?: string;
}

/** Evidence that the hub tried to change a team on its own. Members it lists but the log does not get no keys. */
export interface MembershipMismatch {
  teamId: string;
  /** Users the hub routes to that the signed log does not make members. */
  unverifiedUserIds: string[];
  /** Statements in the sequence that failed verification, with why (for logs and a security alert). */
  rejectedStatements: Array<{ seq: number; reason: string }>;
}

/**
 * What the care-team messenger uses of the pairwise (1:1) layer, and nothing more: the device's store,
 * keys and identity, the hub, trust and signed device lists, and 1:1 shares to and from member
 * devices (sender keys and team details keys travel in them). `SecureMessenger` provides it.
 */
export interface TeamContext {
  readonly store: DeviceStore;
  readonly hub: HubTransport;
  readonly trust: TrustBook;
  readonly deviceLists: DeviceListBook;
  readonly events: MessengerEvents;
  readonly logger: SdkLogger;
  /** This user and device. @throws CurbsideError NOT_CONNECTED before the first token */
  self(): { userId: string; deviceId: string };
  localKeys(): Promise<LocalKeys>;
  /** Run `fn` alone: every change to keys, sessions and sender keys goes through here. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** The devices to encrypt to for these users (their verified signed lists). */
  listDevices(userIds: string[]): Promise<DeviceIdentity[]>;
  /** Encrypt `payload` over the 1:1 session with each target not yet in `shares` (starting sessions as needed). */
  encryptShares(targets: DeviceIdentity[], payload: Uint8Array, shares: Map<string, Uint8Array>): Promise<void>;
  /** The 1:1 payload an envelope carries for this device. */
  decryptShare(envelope: Envelope): Promise<Uint8Array>;
  /** Follow the receipts of a message this device sent. */
  noteSent(conversationId: string, messageId: string, recipientUserIds: string[]): Promise<void>;
  /** Report a message that could not be read, once, and change nothing else (repairing a lost session). */
  onReceiveFailure(envelope: Envelope, e: unknown, reasonOverride?: 'NO_SENDER_KEY' | 'NOT_A_MEMBER' | 'STALE_EPOCH' | 'UNLISTED_DEVICE', inTeam?: boolean): void;
  /** A sibling's team message carried its sender key here: tell it, so it stops sending the key. */
  confirmSiblingShare(conversationId: string, messageId: string): void;
  /** Seal a hand-off for these users' devices and send it, naming the pending alerts' seqs to the hub. */
  sendHandoff(conversationId: string, content: MessageContent, toUserIds: string[], seqs: number[]): Promise<void>;
  /** A verified statement changed an on-call role (called outside the lock; must not throw). */
  roleChanged(roleId: string, before: TeamState | undefined, after: TeamState, at: number): void;
}
