/**
 * The types of the SDK's public surface: a client's options and events, and what one envelope
 * carries. In a module of their own so that the client, its hub connection and the messengers share
 * them without importing one another.
 */
import type { AckPolicy, AlertUpdate, Conversation, DeviceIdentity, DeviceRemoved, Envelope, Priority, SendResult, TypingNotice } from '@curbside/shared';
import type { SendOptions } from './hub/outbox.js';
import type { EscalatedMessage } from './e2ee/escalation.js';
import type { CurbsideError } from './errors.js';
import type { DisconnectReason, HubConnectionOptions } from './hub/connection.js';
import type { CursorStore } from './cursor-store.js';
import type { DeviceStore } from './stores/index.js';
import type { ChatMessage, DecryptionError, MembershipMismatch, SdkLogger, TeamChange, TeamDetailsChange, UnavailableMessage } from './e2ee/types.js';
import type { Receipt } from './e2ee/receipts.js';
import type { DeviceListChange, DeviceListRejection, LinkCode } from './e2ee/device-lists.js';

/** Options of `CurbsideClient.sendText`. */
export interface TextSendOptions extends SendOptions {
  /**
   * `urgent` or `emergent` raises an alert: the hub re-notifies the other members' devices until it is
   * acknowledged (`client.alerts`). Sealed with the text too. @default 'routine'
   */
  priority?: Priority;
  /** With an alert: `any` (the first acknowledgement settles it) or `all` (everyone asked must). @default 'any' */
  ackPolicy?: AckPolicy;
  /**
   * With an alert: later tiers, in order, asked if nobody acknowledged within `afterMs` of the send
   * (users outside the conversation, e.g. a backup clinician, then a supervisor). The message's key is
   * wrapped for their devices now and released by the hub only when their tier activates. Without it,
   * the escalation policy of the care team (or of the on-call role a thread is with) applies, as this
   * device verified it (`client.teams.setEscalationPolicy`); `[]` sends without escalation.
   */
  escalate?: Array<{ afterMs: number; userIds: string[] }>;
}

/** Events a `CurbsideClient` emits. */
export interface CurbsideClientEvents {
  /** Connected and authenticated (fires again after every reconnect). */
  connected: () => void;
  /** Every resync after a (re)connect finished: the app has everything the hub had for it. */
  synced: () => void;
  /** Offline, with the reason and whether the SDK will reconnect by itself. */
  disconnected: (info: { reason: DisconnectReason; willReconnect: boolean }) => void;
  /** An envelope from another device, exactly once and in seq order per conversation (still encrypted). */
  envelope: (envelope: Envelope) => void;
  /** A decrypted message, exactly once and in order per conversation. */
  message: (message: ChatMessage) => void;
  /** A message that could not be decrypted; the stream goes on. Show `error.message` to the user. */
  decryptionError: (error: DecryptionError) => void;
  /** A contact's safety key changed: nothing is sent to them until `acceptIdentity(userId)`. */
  identityChanged: (change: { userId: string; deviceIds: string[] }) => void;
  /** A message exists that this device cannot read: sent before the device existed, or before the user joined the care team. */
  unavailable: (info: UnavailableMessage) => void;
  /** A care team's membership changed, verified from its signed log. */
  teamChanged: (change: TeamChange) => void;
  /**
   * This device can now read a care team's title and description: it was created or renamed, or a
   * member device handed over the key they are sealed under. Show `title` in place of a placeholder.
   */
  teamDetails: (details: TeamDetailsChange) => void;
  /** Security alert: the hub's membership of a team disagrees with the signed log. */
  membershipMismatch: (mismatch: MembershipMismatch) => void;
  /** Another member started or stopped typing. */
  typing: (notice: TypingNotice) => void;
  /** The hub stored a send (also for sends restored from the persisted outbox after a restart). */
  sent: (info: { clientMessageId: string; result: SendResult }) => void;
  /** The hub refused a send for good (not retried). */
  sendFailed: (info: { clientMessageId: string; conversationId: string; error: CurbsideError }) => void;
  /**
   * Others claimed this device's one-time prekeys down to `remaining` (the hub's `keys:low`). With
   * end-to-end encryption on, the SDK has already started uploading more; the event is for the app's
   * own monitoring (many claims in a short time can mean someone is draining them).
   */
  prekeysLow: (info: { remaining: number }) => void;
  /** Someone received (`delivered`) or read a message this user sent; see also `messageStatus`. */
  receipt: (receipt: Receipt) => void;
  /** The user was added to a conversation (or created one on another device). */
  conversation: (conversation: Conversation) => void;
  /** A contact (or this user) published keys for a new device. */
  device: (device: DeviceIdentity) => void;
  /** A contact's (or this user's) device was revoked: nothing is encrypted to it any more. */
  deviceRemoved: (device: DeviceRemoved) => void;
  /**
   * A contact's (or this user's) signed device list changed, verified: devices linked or removed.
   * Show it like a safety-number change ("Dr Lee added a device"); `safetyNumber()` is new.
   */
  deviceListChanged: (change: DeviceListChange) => void;
  /**
   * An urgent or emergent message's alert was raised, re-notified (`reason: 'repeated'`: re-alert the
   * user if `client.alerts.awaitsMe(update)`), acknowledged (by whom: `acks`) or expired. Also after a
   * reconnect, for what changed meanwhile.
   */
  alert: (update: AlertUpdate) => void;
  /** An escalation reached this user: the message it concerns, decrypted here (see `client.alerts`). */
  escalatedMessage: (message: EscalatedMessage) => void;
  /** Security alert: the hub offered a device list that does not verify, or an older one than this device knew. Nothing is sent to that user. */
  deviceListRejected: (rejection: DeviceListRejection) => void;
  /**
   * This device is not in its user's signed device list: it sends and receives nothing until another
   * of the user's devices links it. Show `code` (digits or a QR code) and ask the user to enter it
   * there (`linkDevice`).
   */
  linkRequired: (code: LinkCode) => void;
  /** Another device of this user linked this one: it now sends and receives. */
  deviceLinked: (info: { version: number }) => void;
  /** A new device of this user published keys and waits to be linked: ask for the code it shows (`linkDevice`). */
  linkRequest: (device: { deviceId: string }) => void;
  /** A problem the app should know about that did not come from a call it made (e.g. auth refused on reconnect). */
  error: (error: CurbsideError) => void;
}

export interface CurbsideClientOptions extends HubConnectionOptions {
  /**
   * The organisation's credentialing public key (base64url), as its credentialing office publishes it:
   * pinned for `client.credentials` over whatever the hub presents. Without it the key is pinned on
   * first use, and the user can compare its fingerprint (`client.credentials.orgKey()`).
   */
  credentialKey?: string;
  /**
   * Where this device keeps its keys, sessions, trust decisions and sync cursors. Use
   * `IndexedDbDeviceStore` in browsers and `FileDeviceStore` (from `@curbside/client-sdk/node`) in
   * Node so they survive a restart. @default MemoryDeviceStore (lost when the process ends)
   */
  store?: DeviceStore;
  /** Overrides where sync cursors are kept. @default the `store`'s `cursors` namespace */
  cursorStore?: CursorStore;
  /** Receives technical details (never plaintext or keys) that user-facing errors leave out. @default no logging */
  logger?: SdkLogger;
  /**
   * End-to-end encryption: publish this device's keys on every connect and decrypt what arrives
   * into `message` events. `false` makes a transport-only client that sends and receives envelopes
   * as they are (tests of the hub, bridges that manage keys themselves). @default true
   */
  e2ee?: boolean;
}
