import { io, type Socket } from 'socket.io-client';
import {
  ClientEvent,
  CloseCode,
  DeviceIdentitySchema,
  EnvelopeSchema,
  ErrorCode,
  PrekeyBundleSchema,
  Limits,
  ServerEvent,
  WireErrorSchema,
  backoffMs,
  jitter,
  sleep,
  wireParser,
  type Ack,
  type ClientToServerEvents,
  type Conversation,
  type ConversationCreateRequest,
  type DeviceIdentity,
  type Envelope,
  type KeysClaimRequest,
  type KeysPublishRequest,
  type PrekeyBundle,
  type SendResult,
  type ServerToClientEvents,
  type SessionClosing,
  type TeamRole,
  type TeamState,
  type TypingNotice,
  DeviceRemovedSchema,
  DeviceListChangedSchema,
  DeviceListsResultSchema,
  DevicesListResultSchema,
  KeysLowSchema,
  type DeviceRemoved,
  type DeviceRevokeResult,
  type OwnDevice,
} from '@curbside/shared';
import { CurbsideError } from './errors.js';
import { TypedEmitter } from './emitter.js';
import type { CursorStore } from './cursor-store.js';
import { OrderedInbox } from './ordered-inbox.js';
import { MemoryDeviceStore, cursorStoreFrom, type DeviceStore } from './stores/index.js';
import {
  ReceiveDeferred,
  SecureMessenger,
  type ChatMessage,
  type DecryptionError,
  type MembershipMismatch,
  type SafetyNumber,
  type SdkLogger,
  type TeamChange,
  type TeamDetailsChange,
  type UnavailableMessage,
} from './e2ee/secure-messenger.js';
import type { Receipt, ReceiptStatus } from './e2ee/receipts.js';
import type { DeviceListChange, DeviceListRejection, LinkCode, LinkState } from './e2ee/device-lists.js';

/** Why the client is (or went) offline. */
export type DisconnectReason =
  /** The app called `disconnect()`. */
  | 'client'
  /** The hub node is shutting down; the SDK reconnects, possibly to another node. */
  | 'server-shutdown'
  /** The token expired; the SDK reconnects with a fresh one if it has a token callback. */
  | 'token-expired'
  /** The device or token was revoked; the SDK does not reconnect. */
  | 'revoked'
  /** The hub dropped this client for falling behind; the SDK reconnects and resyncs. */
  | 'slow-consumer'
  /** The hub refused the handshake (see the `error` event); the SDK stops. */
  | 'auth-failed'
  /** The network or the hub went away; the SDK reconnects with backoff. */
  | 'network';

/** Events a {@link CurbsideClient} emits. */
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

export interface CurbsideClientOptions {
  /** Hub URL, e.g. `https://chat.hospital.example`. */
  url: string;
  /**
   * The access token, or a function that returns a fresh one. A function is called before every
   * connection attempt, so an expired token is replaced without the app doing anything.
   */
  token: string | (() => string | Promise<string>);
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
  /** How long to wait for the hub's answer to one request. @default 10000 */
  requestTimeoutMs?: number;
  /** First reconnect delay; doubles up to `reconnectDelayMaxMs` with jitter. @default 500 */
  reconnectDelayMs?: number;
  /** @default 10000 */
  reconnectDelayMaxMs?: number;
  /** socket.io transports. @default ['websocket', 'polling'] */
  transports?: Array<'websocket' | 'polling' | 'webtransport'>;
}

/** Options of one {@link CurbsideClient.send}. */
export interface SendOptions {
  /** Idempotency key; reuse it to retry a send safely. @default a random UUID */
  clientMessageId?: string;
}

type HubSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** What one envelope carries: a body for every device, per-device ciphertexts, or both. */
export interface EnvelopePayload {
  body?: Uint8Array;
  recipients?: Array<{ deviceId: string; ciphertext: Uint8Array }>;
  /** `recipients` names only some devices on purpose (see the wire contract). */
  partial?: boolean;
  /** `receipt` marks a receipt, which devices it does not name ignore. @default 'message' */
  kind?: 'message' | 'receipt';
  /** Care teams: the membership epoch the body was encrypted for (the SDK's team messages set it). */
  epoch?: string;
}

/** An outbox entry as the device store keeps it. */
interface PersistedSend {
  conversationId: string;
  payload: EnvelopePayload;
  queuedAt: number;
}

/** The payload without undefined fields (the store refuses them). */
function storablePayload(p: EnvelopePayload): EnvelopePayload {
  return {
    ...(p.body ? { body: p.body } : {}),
    ...(p.recipients ? { recipients: p.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: r.ciphertext })) } : {}),
    ...(p.partial ? { partial: true } : {}),
    ...(p.kind ? { kind: p.kind } : {}),
    ...(p.epoch ? { epoch: p.epoch } : {}),
  };
}

interface OutboxEntry {
  conversationId: string;
  clientMessageId: string;
  payload: EnvelopePayload;
  inFlight: boolean;
  attempts: number;
  resolve: (r: SendResult) => void;
  reject: (e: CurbsideError) => void;
  /** Restored from the persisted outbox: no caller waits for it, so a failure is only told by `sendFailed`. */
  restored?: boolean;
}

const GAP_RESYNC_DELAY_MS = 300;
/** Processed seqs are reported to the hub in batches this often. */
const ACK_DELAY_MS = 500;
/** Requests that change nothing, or nothing twice, so a retry after a dropped connection is safe. */
const REPEATABLE_EVENTS: ReadonlySet<string> = new Set([
  ClientEvent.CONVERSATION_GET,
  ClientEvent.CONVERSATION_LIST,
  ClientEvent.PRESENCE_QUERY,
  ClientEvent.SYNC_FETCH,
  ClientEvent.KEYS_PUBLISH,
  ClientEvent.KEYS_COUNT,
  ClientEvent.KEYS_CLAIM,
  ClientEvent.DEVICES_LIST,
  ClientEvent.DEVICE_LISTS,
  ClientEvent.DEVICES_MINE,
]);
const MAX_AUTH_RETRIES = 3;

/**
 * A clinician's device connected to a Curbside hub. Sends and receives opaque envelopes,
 * reconnects, resyncs what it missed, and never hands the app the same envelope twice.
 *
 * @example
 * ```ts
 * const client = new CurbsideClient({ url: 'http://127.0.0.1:3000', token: () => fetchToken() });
 * client.on('envelope', (e) => console.log(e.conversationId, e.seq, e.body?.byteLength));
 * await client.connect();
 * const conversation = await client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
 * const ack = await client.sendEnvelope(conversation.id, { body: new TextEncoder().encode('opaque bytes') });
 * ```
 */
export class CurbsideClient extends TypedEmitter<CurbsideClientEvents> {
  private socket: HubSocket | undefined;
  private readonly store: CursorStore;
  private readonly inbox: OrderedInbox;
  /** Sends not yet acked. Persisted in the device store's `outbox`, so they survive a restart. */
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly deviceStore: DeviceStore;
  private outboxRestored = false;
  private readonly timeoutMs: number;
  private restored = false;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private authRetries = 0;
  /** Handshakes refused with a retryable error (hub could not check the token) since the last connect. */
  private handshakeRetries = 0;
  private closingCode: CloseCode | undefined;
  private stopped = false;
  private deviceId: string | undefined;
  private userId: string | undefined;
  private readonly messenger: SecureMessenger;
  /** Decryption and cursor saves, in delivery order: a cursor moves only after its envelope was handled. */
  private pipeline: Promise<void> = Promise.resolve();
  /** Sends being encrypted or persisted; `close()` waits for them before the store changes hands. */
  private readonly pendingOps = new Set<Promise<unknown>>();
  private readonly members = new Map<string, string[]>();
  private currentLinkState: LinkState | undefined;
  /** An envelope could not be handled because the client stopped: the rest waits for the next connect. */
  private deferred = false;

  constructor(private readonly options: CurbsideClientOptions) {
    super();
    const deviceStore = options.store ?? new MemoryDeviceStore();
    this.deviceStore = deviceStore;
    this.store = options.cursorStore ?? cursorStoreFrom(deviceStore);
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    const logger = options.logger ?? { debug: () => {}, warn: () => {} };
    this.messenger = new SecureMessenger(
      deviceStore,
      {
        sendEnvelope: (c, p, o) => this.sendEnvelope(c, p, o),
        claimBundles: (r) => this.claimBundles(r),
        hubDevices: (u) => this.hubDevices(u),
        deviceListChains: async (users) => {
          const out = [];
          for (const page of pages(users, Limits.MAX_KEY_QUERY_USERS)) out.push(...DeviceListsResultSchema.parse(await this.request(ClientEvent.DEVICE_LISTS, { users: page })).chains);
          return out;
        },
        publishDeviceList: (list) => this.request(ClientEvent.DEVICE_LIST_PUBLISH, { list }),
        myDevices: () => this.listMyDevices(),
        publishKeys: (r) => this.publishKeys(r),
        countPrekeys: () => this.countPrekeys(),
        conversationMembers: (id, fresh) => this.conversationMembers(id, fresh),
        catchUp: () => this.resync(),
        stopped: () => this.stopped,
        teamRequest: async (event, request) => {
          const res = await this.request(event === 'team:create' ? ClientEvent.TEAM_CREATE : ClientEvent.TEAM_CHANGE, request);
          this.members.set(res.conversation.id, res.conversation.memberUserIds);
          return { seq: res.seq };
        },
      },
      () => {
        if (!this.userId || !this.deviceId) throw new CurbsideError(ErrorCode.NOT_CONNECTED, 'Connect before sending or reading messages');
        return { userId: this.userId, deviceId: this.deviceId };
      },
      {
        message: (m) => this.emit('message', m),
        decryptionError: (e) => this.emit('decryptionError', e),
        identityChanged: (c) => this.emit('identityChanged', c),
        unavailable: (u) => this.emit('unavailable', u),
        teamChanged: (c) => this.emit('teamChanged', c),
        teamDetails: (d) => this.emit('teamDetails', d),
        membershipMismatch: (m) => this.emit('membershipMismatch', m),
        receipt: (r) => this.emit('receipt', r),
        deviceListChanged: (c) => this.emit('deviceListChanged', c),
        deviceListRejected: (r) => this.emit('deviceListRejected', r),
      },
      logger,
    );
    this.inbox = new OrderedInbox(
      (envelope) =>
        this.enqueue(async () => {
          if (this.deferred) return;
          if (envelope.senderDeviceId === this.deviceId && !envelope.membership) return;
          // Handled first: an envelope the messenger defers (the client stopped mid-check) comes
          // again at the next connect, so it is not announced now.
          if (this.options.e2ee !== false) await this.messenger.receive(envelope);
          this.emit('envelope', envelope);
        }),
      (conversationId, seq) =>
        this.enqueue(async () => {
          if (this.deferred) return; // not handled: the cursor stays, the envelope comes again
          await this.store.save(conversationId, seq);
          this.scheduleAck(conversationId, seq);
        }),
      () => this.scheduleGapResync(),
    );
  }

  /** Conversations whose processed seq the hub has not heard yet (it deletes what all devices acked). */
  private readonly unacked = new Map<string, number>();
  private ackTimer: ReturnType<typeof setTimeout> | undefined;

  private scheduleAck(conversationId: string, seq: number): void {
    this.unacked.set(conversationId, seq);
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      if (!this.connected || this.unacked.size === 0) return;
      const cursors = [...this.unacked].map(([id, afterSeq]) => ({ conversationId: id, afterSeq }));
      this.unacked.clear();
      this.request(ClientEvent.SYNC_ACK, { cursors }).catch(() => {
        // Not acked this time: merge back (newer progress wins) and try with the next one.
        for (const c of cursors) if ((this.unacked.get(c.conversationId) ?? 0) < c.afterSeq) this.unacked.set(c.conversationId, c.afterSeq);
      });
    }, ACK_DELAY_MS);
  }

  private enqueue(task: () => Promise<void>): void {
    this.pipeline = this.pipeline.then(task).catch((e: unknown) => {
      // Stopped mid-check: nothing after it is handled or saved until the next connect hands it out again.
      if (e instanceof ReceiveDeferred) this.deferred = true;
      else this.emit('error', asCurbsideError(e));
    });
  }

  /**
   * Encrypt `text` for every device of every member (and this user's other devices) and send it.
   * Resolves with the hub's durable ack.
   *
   * @example
   * ```ts
   * const ack = await client.sendText(conversation.id, 'Troponin 0.42 at 14:05, can you take a look?');
   * ```
   * @throws CurbsideError UNTRUSTED_IDENTITY when a member's safety key changed and was not accepted
   */
  sendText(conversationId: string, text: string): Promise<SendResult> {
    return this.track(this.messenger.sendText(conversationId, text));
  }

  /** Keep `op` in {@link pendingOps} until it settles. */
  private track<T>(op: Promise<T>): Promise<T> {
    this.pendingOps.add(op);
    const done = () => this.pendingOps.delete(op);
    op.then(done, done);
    return op;
  }

  /**
   * The safety number with a contact: 60 digits that both clinicians see identically when no one
   * is in the middle. Compare them in person or over a trusted channel, then call {@link markVerified}.
   * After the contact's key changed it does not throw: it is the new number with `state: 'changed'`
   * (and an `identityChanged` event), until {@link acceptIdentity}.
   *
   * @param userId - The contact.
   * @example
   * ```ts
   * const { displayString, state } = await client.safetyNumber('dr-patel');
   * if (state === 'changed') askToCompareAgain(displayString);
   * ```
   */
  safetyNumber(userId: string): Promise<SafetyNumber> {
    return this.messenger.safetyNumber(userId);
  }

  /** Accept a contact's changed safety key; sending to them resumes with fresh sessions. */
  acceptIdentity(userId: string): Promise<void> {
    return this.messenger.acceptIdentity(userId);
  }

  /** Record that the user compared safety numbers with this contact and they matched. */
  markVerified(userId: string): Promise<void> {
    return this.messenger.markVerified(userId);
  }

  /**
   * Create a care team. Membership is a log of statements this device signs; every member's SDK
   * checks it. The creator is the owner. The title and description are end-to-end encrypted: the hub
   * stores them sealed under a key that only member devices receive ({@link teamDetails}).
   *
   * @param title - The team's name as members see it (trimmed; 1 to 200 characters).
   * @param members - Everyone besides the creator, with their role (default `member`).
   * @param options - `description`: up to 1000 characters, sealed with the title.
   * @example
   * ```ts
   * const { teamId } = await client.createTeam('Ward 4B discharge', [{ userId: 'rn-ortiz' }, { userId: 'dr-patel', role: 'admin' }]);
   * await client.sendText(teamId, 'Bed 12 ready for discharge at 15:00');
   * ```
   * @throws CurbsideError INVALID_PAYLOAD for an empty title, PAYLOAD_TOO_LARGE for a title or description over its limit
   */
  createTeam(title: string, members: Array<{ userId: string; role?: 'admin' | 'member' }>, options: { description?: string } = {}): Promise<{ teamId: string; seq: number }> {
    return this.messenger.careTeams.create({ title, ...(options.description !== undefined ? { description: options.description } : {}) }, members);
  }

  /**
   * Rename a care team, or change its description (owner or admin). The new details are sealed under
   * a new key that goes to the current members' devices only: someone removed earlier cannot read them.
   *
   * @param teamId - The team.
   * @param details - The new title and, optionally, description (omitted: none).
   * @example
   * ```ts
   * await client.setTeamDetails(teamId, { title: 'Ward 4B discharge', description: 'Weekday discharges, 08:00–18:00' });
   * ```
   * @throws CurbsideError INVALID_STATEMENT when this user is a plain member, INVALID_PAYLOAD / PAYLOAD_TOO_LARGE as for {@link createTeam}
   */
  setTeamDetails(teamId: string, details: { title: string; description?: string }): Promise<{ teamId: string; seq: number }> {
    return this.messenger.careTeams.setDetails(teamId, details);
  }

  /**
   * A care team's title and description, decrypted on this device; undefined when this device does not
   * hold their key yet (a device added after the last change gets it with the next team message, and a
   * `teamDetails` event says so) or is not in the team.
   *
   * @param teamId - The team.
   * @example
   * ```ts
   * const details = await client.teamDetails(teamId);
   * heading.textContent = details?.title ?? 'Care team';
   * ```
   */
  teamDetails(teamId: string): Promise<{ title: string; description?: string } | undefined> {
    return this.messenger.careTeams.details(teamId);
  }

  /** Add a member (owner or admin only; only the owner adds admins). */
  addTeamMember(teamId: string, userId: string, role: 'admin' | 'member' = 'member'): Promise<{ teamId: string; seq: number }> {
    return this.messenger.careTeams.change(teamId, 'add', userId, role);
  }

  /** Remove a member (owner or admin). Every remaining device changes its sender key before it sends again. */
  removeTeamMember(teamId: string, userId: string): Promise<{ teamId: string; seq: number }> {
    return this.messenger.careTeams.change(teamId, 'remove', userId);
  }

  /** Leave a care team. */
  leaveTeam(teamId: string): Promise<{ teamId: string; seq: number }> {
    return this.messenger.careTeams.change(teamId, 'remove', this.userId ?? '');
  }

  /** Change a member's role (owner only). */
  setTeamRole(teamId: string, userId: string, role: Exclude<TeamRole, 'owner'>): Promise<{ teamId: string; seq: number }> {
    return this.messenger.careTeams.change(teamId, 'role', userId, role);
  }

  /** The team as this device verified it from the signed log (not as the hub says). */
  teamState(teamId: string): Promise<TeamState | undefined> {
    return this.messenger.careTeams.state(teamId);
  }

  /**
   * Send read receipts for messages the user has seen. Delivered receipts go out by themselves
   * when a message is decrypted.
   */
  markRead(conversationId: string, messageIds: string[]): Promise<void> {
    return this.messenger.markRead(conversationId, messageIds);
  }

  /**
   * Where a message this device sent stands, per recipient: `sent` → `delivered` → `read`.
   * Kept in the device store for the last 10,000 messages, so it survives a restart (after `connect()`).
   */
  messageStatus(messageId: string): Record<string, ReceiptStatus> | undefined {
    return this.messenger.messageStatus(messageId);
  }

  /** Tell the other members you are typing (or stopped). Not stored anywhere. */
  async setTyping(conversationId: string, typing: boolean): Promise<void> {
    await this.request(ClientEvent.TYPING, { conversationId, typing });
  }

  /** Members of a conversation who are online now, with their online devices. */
  async presence(conversationId: string): Promise<Array<{ userId: string; deviceIds: string[] }>> {
    return (await this.request(ClientEvent.PRESENCE_QUERY, { conversationId })).online;
  }

  /** This device's public identity key. */
  identityKey(): Promise<Uint8Array> {
    return this.messenger.identityKey();
  }

  private async conversationMembers(conversationId: string, fresh = false): Promise<string[]> {
    const cached = this.members.get(conversationId);
    if (cached && !fresh) return cached;
    if (fresh) {
      const conversation = await this.request(ClientEvent.CONVERSATION_GET, { conversationId });
      this.members.set(conversation.id, conversation.memberUserIds);
      return conversation.memberUserIds;
    }
    await this.listConversations();
    const members = this.members.get(conversationId);
    if (!members) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this conversation', { conversationId });
    return members;
  }

  /** Whether the socket is connected and authenticated. */
  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /**
   * Connect, authenticate and resync. Resolves once the first sync is done; rejects with a
   * {@link CurbsideError} (`AUTH_INVALID`, `AUTH_EXPIRED`, ...) if the hub refuses the handshake.
   */
  async connect(): Promise<void> {
    this.stopped = false;
    if (!this.restored) {
      this.inbox.restore(await this.store.load());
      await this.messenger.loadReceipts();
      this.restored = true;
    }
    await this.restoreOutbox();
    if (this.deferred) {
      await this.pipeline;
      this.inbox.resetTo(await this.store.load());
      this.deferred = false;
    }
    const socket = this.socket ?? this.createSocket();
    return new Promise<void>((resolve, reject) => {
      const offSynced = this.once('synced', () => {
        offError();
        resolve();
      });
      const offError = this.once('error', (e) => {
        offSynced();
        reject(e);
      });
      if (!socket.connected) socket.connect();
      else void this.resync();
    });
  }

  /**
   * Disconnect and wait until every envelope already received has been decrypted and its
   * cursor saved, and every send already started has been persisted to the outbox (or failed):
   * after this resolves, the device store may be handed to another client.
   */
  async close(): Promise<void> {
    this.disconnect();
    // Handling a received envelope can start a send (a delivered receipt), and a send can wait on the
    // pipeline: settle both until neither has anything left.
    while (true) {
      await this.pipeline;
      if (this.pendingOps.size === 0) break;
      await Promise.allSettled([...this.pendingOps]);
    }
  }

  /**
   * Go offline for good (until `connect()` again). Promises of sends not yet acked reject with
   * NOT_CONNECTED (`details.queued: true`); the sends stay in the persisted outbox and go out, once,
   * when a client with the same device store connects (watch the `sent` event).
   */
  disconnect(): void {
    this.stopped = true;
    this.socket?.disconnect();
    if (this.gapTimer) clearTimeout(this.gapTimer);
    for (const entry of this.outbox.values()) {
      entry.reject(new CurbsideError(ErrorCode.NOT_CONNECTED, 'Disconnected before the hub acknowledged this message; it stays queued', { queued: true }));
    }
    this.outbox.clear();
    this.outboxRestored = false;
  }

  /** Sends a previous run (or `disconnect()`) left in the persisted outbox go out again, with their ids. */
  private async restoreOutbox(): Promise<void> {
    if (this.outboxRestored) return;
    this.outboxRestored = true;
    for (const [clientMessageId, saved] of await this.deviceStore.list<PersistedSend>('outbox')) {
      if (this.outbox.has(clientMessageId)) continue;
      const entry: OutboxEntry = {
        conversationId: saved.conversationId,
        clientMessageId,
        payload: saved.payload,
        inFlight: false,
        attempts: 0,
        resolve: () => {},
        reject: () => {},
        restored: true,
      };
      this.outbox.set(clientMessageId, entry);
      this.transmit(entry);
    }
  }

  /**
   * Send an envelope to a conversation. Resolves with the hub's ack once it is stored durably.
   * While offline the send waits in the outbox and goes out on reconnect; retries reuse the same
   * client message id, so the hub stores and delivers it once.
   *
   * @param conversationId - a conversation the user is a member of
   * @param payload - `body` (at most `Limits.MAX_CIPHERTEXT_BYTES`) for every member device and/or
   *   per-device `recipients` (which must name exactly the conversation's devices)
   * @throws CurbsideError PAYLOAD_TOO_LARGE locally; FORBIDDEN, DEVICE_LIST_STALE, IDEMPOTENCY_CONFLICT, INVALID_PAYLOAD from the hub
   */
  sendEnvelope(conversationId: string, payload: EnvelopePayload, options: SendOptions = {}): Promise<SendResult> {
    const tooBig =
      (payload.body && payload.body.byteLength > Limits.MAX_CIPHERTEXT_BYTES) ||
      payload.recipients?.some((r) => r.ciphertext.byteLength > Limits.MAX_DEVICE_CIPHERTEXT_BYTES);
    if (tooBig) {
      return Promise.reject(
        new CurbsideError(ErrorCode.PAYLOAD_TOO_LARGE, `Envelope exceeds the limits (body ${Limits.MAX_CIPHERTEXT_BYTES} bytes, per device ${Limits.MAX_DEVICE_CIPHERTEXT_BYTES})`),
      );
    }
    const clientMessageId = options.clientMessageId ?? globalThis.crypto.randomUUID();
    const existing = this.outbox.get(clientMessageId);
    if (existing) return new Promise((resolve, reject) => this.chain(existing, resolve, reject));
    return new Promise<SendResult>((resolve, reject) => {
      const entry: OutboxEntry = { conversationId, clientMessageId, payload, inFlight: false, attempts: 0, resolve, reject };
      this.outbox.set(clientMessageId, entry);
      // Persist before the first attempt: a send the app was told is queued survives a crash.
      const saved: PersistedSend = { conversationId, payload: storablePayload(payload), queuedAt: Date.now() };
      const persisted = this.deviceStore.put('outbox', clientMessageId, saved).then(
        () => {
          if (this.stopped && this.outbox.get(clientMessageId) === entry) {
            // Started after disconnect(): kept for the next client with this store, as disconnect() promises.
            this.outbox.delete(clientMessageId);
            reject(new CurbsideError(ErrorCode.NOT_CONNECTED, 'Disconnected before the hub acknowledged this message; it stays queued', { queued: true }));
            return;
          }
          this.transmit(entry);
        },
        (e: unknown) => {
          this.outbox.delete(clientMessageId);
          reject(asCurbsideError(e));
        },
      );
      void this.track(persisted);
    });
  }

  /** Number of sends not yet acknowledged by the hub. */
  get pendingSends(): number {
    return this.outbox.size;
  }

  /** Create a conversation; a direct one that exists is returned as it is. */
  async createConversation(request: ConversationCreateRequest): Promise<Conversation> {
    const conversation = await this.request(ClientEvent.CONVERSATION_CREATE, request);
    this.members.set(conversation.id, conversation.memberUserIds);
    return conversation;
  }

  /**
   * Leave a group conversation; anyone may leave any group. The other members get a `conversation`
   * event with the new member list. Leave a care team with {@link CurbsideClient.leaveTeam}.
   *
   * @param conversationId - a group conversation the user is in
   * @returns the conversation after leaving
   * @throws CurbsideError INVALID_PAYLOAD for a direct conversation or a care team, FORBIDDEN when not a member
   * @example
   * ```ts
   * await client.leaveConversation(conversation.id);
   * ```
   */
  async leaveConversation(conversationId: string): Promise<Conversation> {
    const conversation = await this.request(ClientEvent.CONVERSATION_LEAVE, { conversationId });
    this.members.delete(conversation.id);
    return conversation;
  }

  /** Conversations the user is a member of. */
  async listConversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let after: string | undefined;
    do {
      // The hub answers a page at a time (each well under a frame); this gathers them all.
      const page = await this.request(ClientEvent.CONVERSATION_LIST, after === undefined ? {} : { after });
      all.push(...page.conversations);
      after = page.next;
    } while (after !== undefined);
    for (const c of all) this.members.set(c.id, c.memberUserIds);
    return all;
  }

  /** Publish this device's public keys (identity, signed prekey, one-time prekeys). */
  async publishKeys(request: KeysPublishRequest): Promise<{ oneTimePrekeys: number }> {
    return this.request(ClientEvent.KEYS_PUBLISH, request);
  }

  /** One-time prekeys the hub still holds for this device. */
  async countPrekeys(): Promise<number> {
    return (await this.request(ClientEvent.KEYS_COUNT, {})).oneTimePrekeys;
  }

  /** Claim one prekey bundle per device of these users (each one-time prekey is handed out once). */
  async claimBundles(request: KeysClaimRequest): Promise<PrekeyBundle[]> {
    // The hub takes at most Limits.MAX_KEY_QUERY_USERS users per request: large teams go in pages.
    const out: PrekeyBundle[] = [];
    for (const userIds of pages(request.userIds, Limits.MAX_KEY_QUERY_USERS)) {
      const { bundles } = await this.request(ClientEvent.KEYS_CLAIM, { ...request, userIds });
      out.push(...bundles.map((b) => PrekeyBundleSchema.parse(b)));
    }
    return out;
  }

  /**
   * The devices of these users that messages are encrypted to: with end-to-end encryption on, those
   * each user's verified signed device list names (none for a user without one); with it off, every
   * device the hub lists.
   * @throws CurbsideError DEVICE_LIST_ROLLBACK or DEVICE_LIST_INVALID when a user's list does not verify
   */
  async listDevices(userIds: string[]): Promise<DeviceIdentity[]> {
    if (this.options.e2ee !== false) return this.messenger.listDevices(userIds);
    return (await this.hubDevices(userIds)).devices;
  }

  /** The hub's `devices:list`, unverified, with each signed list's version. */
  private async hubDevices(userIds: string[]): Promise<{ devices: DeviceIdentity[]; listVersions: Array<{ userId: string; version: number }> }> {
    const devices: DeviceIdentity[] = [];
    const listVersions: Array<{ userId: string; version: number }> = [];
    for (const page of pages(userIds, Limits.MAX_KEY_QUERY_USERS)) {
      const result = DevicesListResultSchema.parse(await this.request(ClientEvent.DEVICES_LIST, { userIds: page }));
      devices.push(...result.devices);
      listVersions.push(...(result.listVersions ?? []));
    }
    return { devices, listVersions };
  }

  /**
   * Whether this device is in its user's signed device list (`linked`), or waits for another of the
   * user's devices to link it (`pending`; see the `linkRequired` event). Undefined before the first
   * connect, and with end-to-end encryption off.
   */
  get linkState(): LinkState | undefined {
    return this.currentLinkState;
  }

  /**
   * The code this device shows to be linked: the user enters it (or scans it) on another of their
   * devices, which calls `linkDevice`.
   * @example
   * ```ts
   * client.on('linkRequired', ({ deviceId, code }) => showLinkScreen(deviceId, code));
   * ```
   */
  linkCode(): Promise<LinkCode> {
    return this.messenger.deviceLists.linkCode();
  }

  /**
   * Link a new device of this user: check that the identity key the hub presents for it matches the
   * code it shows, and sign the next version of the user's device list with it added. Its contacts
   * then encrypt to it, and it may send.
   * @returns the new device-list version
   * @throws CurbsideError LINK_CODE_MISMATCH if the code does not match; NOT_FOUND if the user has no
   *   such device with keys; DEVICE_NOT_LINKED if this device is not linked itself;
   *   REAUTHENTICATION_REQUIRED if this device's sign-in (`auth_time`) is older than the hub's
   *   RECENT_AUTH_SEC: get a fresh token from the identity provider and try again
   * @example
   * ```ts
   * await phone.linkDevice({ deviceId: 'lee-laptop', code: '12345 67890 …' });
   * ```
   */
  async linkDevice(link: LinkCode): Promise<number> {
    return this.messenger.deviceLists.link(link.deviceId, link.code);
  }

  /** This user's devices, including revoked ones (with when they were revoked). */
  async listMyDevices(): Promise<OwnDevice[]> {
    return (await this.request(ClientEvent.DEVICES_MINE, {})).devices;
  }

  /**
   * Revoke one of this user's devices (a lost phone): its connections drop, its keys are deleted
   * from the hub, contacts stop encrypting to it, and it can no longer sign in (until an operator
   * restores it).
   *
   * @param deviceId - this device, or another of the user's devices
   * @throws CurbsideError REAUTHENTICATION_REQUIRED when revoking another device with a token whose
   *   sign-in (`auth_time`) is older than the hub allows: have the user sign in again, then retry
   * @example
   * ```ts
   * await client.revokeDevice('lee-old-phone');
   * ```
   */
  async revokeDevice(deviceId: string): Promise<DeviceRevokeResult> {
    const result = await this.request(ClientEvent.DEVICE_REVOKE, { deviceId });
    // Then sign it out of the user's device list, so contacts drop it on the list's word, not only the hub's.
    if (this.options.e2ee !== false && deviceId !== this.deviceId && this.currentLinkState === 'linked') {
      await this.messenger.deviceLists.unlink(deviceId).catch((e: unknown) => this.emit('error', asCurbsideError(e)));
    }
    return result;
  }

  /** This device's id, from the `dev` claim of its token (known once a token was fetched). */
  get currentDeviceId(): string | undefined {
    return this.deviceId;
  }

  /** The highest seq handed to the app, without gaps, for a conversation. */
  cursor(conversationId: string): number {
    return this.inbox.cursor(conversationId);
  }

  // --- internals -------------------------------------------------------------------------

  private createSocket(): HubSocket {
    const socket: HubSocket = io(this.options.url, {
      autoConnect: false,
      parser: wireParser,
      transports: this.options.transports ?? ['websocket', 'polling'],
      reconnection: true,
      reconnectionDelay: this.options.reconnectDelayMs ?? 500,
      reconnectionDelayMax: this.options.reconnectDelayMaxMs ?? 10_000,
      randomizationFactor: 0.5,
      auth: (cb) => {
        this.currentToken().then(
          (token) => cb({ token }),
          (e: unknown) => {
            this.emit('error', new CurbsideError(ErrorCode.AUTH_REQUIRED, `Token callback failed: ${(e as Error)?.message ?? e}`));
            cb({});
          },
        );
      },
    });
    this.socket = socket;

    socket.on('connect', () => {
      this.authRetries = 0;
      this.handshakeRetries = 0;
      this.closingCode = undefined;
      this.emit('connected');
      for (const entry of this.outbox.values()) this.transmit(entry);
      const publish = this.options.e2ee === false ? Promise.resolve() : this.messenger.publishKeys().then(() => this.settleLink());
      void publish.then(
        () => this.resync(),
        (e: unknown) => {
          this.emit('error', asCurbsideError(e));
          return this.resync();
        },
      );
    });

    socket.on('connect_error', (err: Error & { data?: unknown }) => {
      const wire = WireErrorSchema.safeParse(err.data);
      if (!wire.success) return; // transport-level failure: socket.io's manager retries with backoff
      const error = CurbsideError.fromWire(wire.data);
      // A refused handshake is not retried by socket.io. An expired token is worth one more
      // attempt when the app gave us a way to get a fresh one.
      if (error.code === ErrorCode.AUTH_EXPIRED && typeof this.options.token === 'function' && this.authRetries < MAX_AUTH_RETRIES) {
        this.authRetries += 1;
        setTimeout(() => !this.stopped && socket.connect(), 200 * this.authRetries);
        return;
      }
      // UNAVAILABLE, INTERNAL, RATE_LIMITED...: the hub could not check the handshake now (its Redis or
      // database is down, it is shutting down, too many handshakes). Not a verdict on the token: try
      // again with backoff, as socket.io does after a transport failure.
      if (error.retryable) {
        this.handshakeRetries += 1;
        const backoff = backoffMs(this.handshakeRetries - 1, { baseMs: this.options.reconnectDelayMs ?? 500, maxMs: this.options.reconnectDelayMaxMs ?? 10_000 });
        const retryAfterMs = typeof error.details?.retryAfterMs === 'number' ? error.details.retryAfterMs : 0;
        setTimeout(() => !this.stopped && socket.connect(), Math.max(retryAfterMs, backoff));
        return;
      }
      this.emit('error', error);
      this.emit('disconnected', { reason: 'auth-failed', willReconnect: false });
    });

    socket.on(ServerEvent.SESSION_CLOSING, (info: SessionClosing) => {
      this.closingCode = info.code;
    });

    socket.on('disconnect', (reason) => {
      for (const entry of this.outbox.values()) entry.inFlight = false;
      if (this.stopped || reason === 'io client disconnect') {
        this.emit('disconnected', { reason: 'client', willReconnect: false });
        return;
      }
      const mapped = mapClose(this.closingCode);
      if (reason === 'io server disconnect') {
        // socket.io does not reconnect after a server-side disconnect: decide here.
        const willReconnect = mapped !== 'revoked' && !(mapped === 'token-expired' && typeof this.options.token !== 'function');
        this.emit('disconnected', { reason: mapped, willReconnect });
        if (willReconnect) setTimeout(() => !this.stopped && socket.connect(), jitter(this.options.reconnectDelayMs ?? 500));
        return;
      }
      this.emit('disconnected', { reason: 'network', willReconnect: true });
    });

    socket.on(ServerEvent.ENVELOPE, (raw) => {
      const parsed = EnvelopeSchema.safeParse(raw);
      if (!parsed.success) {
        this.emit('error', new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'Hub pushed an envelope that does not match the schema'));
        return;
      }
      this.inbox.receiveLive(parsed.data);
    });

    socket.on(ServerEvent.CONVERSATION, (conversation) => {
      this.members.set(conversation.id, conversation.memberUserIds);
      this.emit('conversation', conversation);
    });
    socket.on(ServerEvent.TYPING, (notice) => this.emit('typing', notice));
    socket.on(ServerEvent.KEYS_LOW, (raw) => {
      const parsed = KeysLowSchema.safeParse(raw);
      if (!parsed.success) return;
      if (this.options.e2ee !== false) void this.messenger.publishKeys().catch((e: unknown) => this.emit('error', asCurbsideError(e)));
      this.emit('prekeysLow', parsed.data);
    });
    socket.on(ServerEvent.DEVICE_REMOVED, (raw) => {
      const parsed = DeviceRemovedSchema.safeParse(raw);
      if (!parsed.success) return;
      // Drop our sessions with it; the hub no longer lists it, so no new message is encrypted to it.
      void this.messenger.forgetDevice(parsed.data.userId, parsed.data.deviceId).finally(() => this.emit('deviceRemoved', parsed.data));
    });
    socket.on(ServerEvent.DEVICE_ADDED, (raw) => {
      const parsed = DeviceIdentitySchema.safeParse(raw);
      if (!parsed.success) return;
      this.emit('device', parsed.data);
      if (parsed.data.userId === this.userId && this.options.e2ee !== false) this.emit('linkRequest', { deviceId: parsed.data.deviceId });
    });
    socket.on(ServerEvent.DEVICE_LIST_CHANGED, (raw) => {
      const parsed = DeviceListChangedSchema.safeParse(raw);
      if (!parsed.success || this.options.e2ee === false) return;
      const { userId, version } = parsed.data;
      void this.messenger.deviceLists
        .refresh(userId, version)
        .then(() => (userId === this.userId && this.currentLinkState === 'pending' ? this.settleLink() : undefined))
        .catch((e: unknown) => this.emit('error', asCurbsideError(e)));
    });
    return socket;
  }

  /** Register this device in its user's signed list (the first device), or learn whether another linked it. */
  private async settleLink(): Promise<void> {
    const before = this.currentLinkState;
    const state = await this.messenger.deviceLists.register();
    this.currentLinkState = state;
    if (state === 'pending' && before !== 'pending') this.emit('linkRequired', await this.messenger.deviceLists.linkCode());
    if (state === 'linked' && before === 'pending') {
      const own = await this.messenger.deviceLists.pinned(this.userId!);
      this.emit('deviceLinked', { version: own?.version ?? 0 });
    }
  }

  private async currentToken(): Promise<string> {
    const t = this.options.token;
    const token = typeof t === 'function' ? await t() : t;
    const claims = claimsFromToken(token);
    this.deviceId = claims.dev ?? this.deviceId;
    this.userId = claims.sub ?? this.userId;
    return token;
  }

  private chain(entry: OutboxEntry, resolve: (r: SendResult) => void, reject: (e: CurbsideError) => void): void {
    const prevResolve = entry.resolve;
    const prevReject = entry.reject;
    entry.resolve = (r) => {
      prevResolve(r);
      resolve(r);
    };
    entry.reject = (e) => {
      prevReject(e);
      reject(e);
    };
  }

  private transmit(entry: OutboxEntry): void {
    const socket = this.socket;
    if (!socket?.connected || entry.inFlight) return;
    entry.inFlight = true;
    entry.attempts += 1;
    this.request(ClientEvent.ENVELOPE_SEND, {
      conversationId: entry.conversationId,
      clientMessageId: entry.clientMessageId,
      ...entry.payload,
    }).then(
      (result) => {
        this.outbox.delete(entry.clientMessageId);
        void this.deviceStore.delete('outbox', entry.clientMessageId).catch(() => {});
        this.inbox.markOwn(result.conversationId, result.seq);
        entry.resolve(result);
        this.emit('sent', { clientMessageId: entry.clientMessageId, result });
      },
      (error: CurbsideError) => {
        entry.inFlight = false;
        if (!this.outbox.has(entry.clientMessageId)) return;
        if (error.retryable) {
          // Stays in the outbox: resent on reconnect, or after a backoff if still connected.
          setTimeout(() => this.transmit(entry), backoffMs(entry.attempts, { baseMs: 250, maxMs: 10_000 }));
          return;
        }
        this.outbox.delete(entry.clientMessageId);
        void this.deviceStore.delete('outbox', entry.clientMessageId).catch(() => {});
        entry.reject(error);
        // A live care-team send re-encrypts for the new membership and resends by itself: no failure to report.
        if (error.code === ErrorCode.STALE_EPOCH && !entry.restored) return;
        this.emit('sendFailed', { clientMessageId: entry.clientMessageId, conversationId: entry.conversationId, error });
      },
    );
  }

  /**
   * One request/ack round trip, turned into a typed result or a CurbsideError. Reads and other
   * requests that are safe to repeat are retried when the connection drops mid-request.
   */
  private async request<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<AckData<ClientToServerEvents[E]>> {
    const attempts = REPEATABLE_EVENTS.has(event) ? 5 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requestOnce(event, payload);
      } catch (e) {
        // A dropped connection, a slow answer, or a node that is draining or cannot reach its
        // database (UNAVAILABLE: it closes our connection soon, or another node can answer):
        // these requests are safe to ask again.
        const code = e instanceof CurbsideError ? e.code : undefined;
        const retry = code === ErrorCode.NOT_CONNECTED || code === ErrorCode.TIMEOUT || code === ErrorCode.UNAVAILABLE;
        if (!retry || attempt >= attempts || this.stopped) throw e;
        if (code === ErrorCode.UNAVAILABLE) {
          const hinted = (e as CurbsideError).details?.retryAfterMs;
          await sleep(Math.max(typeof hinted === 'number' ? hinted : 0, backoffMs(attempt, { baseMs: 200, maxMs: 10_000 })));
          if (this.stopped) throw e;
        }
      }
    }
  }

  private async requestOnce<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<AckData<ClientToServerEvents[E]>> {
    if (!this.socket?.connected) await this.waitForConnection();
    const socket = this.socket!;
    let res: Ack<AckData<ClientToServerEvents[E]>>;
    try {
      // socket.io's typed emitWithAck cannot follow a generic event key; the map above is the contract.
      res = (await (socket.timeout(this.timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<unknown> }).emitWithAck(
        event,
        payload,
      )) as Ack<AckData<ClientToServerEvents[E]>>;
    } catch {
      // socket.io rejects with a timeout, or at once when the connection dropped before the answer.
      if (!socket.connected) throw new CurbsideError(ErrorCode.NOT_CONNECTED, `Connection lost before the hub answered ${event}`);
      throw new CurbsideError(ErrorCode.TIMEOUT, `No answer from the hub to ${event} within ${this.timeoutMs} ms`);
    }
    if (!res || typeof res !== 'object' || !('ok' in res)) throw new CurbsideError(ErrorCode.INTERNAL, `Malformed answer to ${event}`);
    if (!res.ok) throw CurbsideError.fromWire(res.error);
    return res.data;
  }

  /**
   * A request made during a brief disconnect waits for the reconnect (up to the request timeout)
   * instead of failing: the app should not have to care about a dropped Wi-Fi packet.
   */
  private waitForConnection(): Promise<void> {
    if (!this.socket || this.stopped) return Promise.reject(new CurbsideError(ErrorCode.NOT_CONNECTED, 'Not connected to the hub'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new CurbsideError(ErrorCode.NOT_CONNECTED, `Not connected to the hub (waited ${this.timeoutMs} ms)`));
      }, this.timeoutMs);
      const off = this.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Fetch everything after our cursors, page by page. Single-flight: a request during a run schedules one more. */
  private resync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.syncAgain = false;
          let more = true;
          while (more) {
            const page = await this.request(ClientEvent.SYNC_FETCH, { cursors: this.inbox.snapshot() });
            const seen = new Set<string>();
            for (const raw of page.envelopes) {
              const envelope = EnvelopeSchema.parse(raw);
              this.inbox.receiveSynced(envelope, !seen.has(envelope.conversationId));
              seen.add(envelope.conversationId);
            }
            more = page.more;
          }
        } while (this.syncAgain);
        await this.pipeline;
        this.emit('synced');
      } catch (e) {
        const error = asCurbsideError(e);
        // Offline mid-sync: the next connect resyncs. Anything else the app should hear about.
        if (error.code !== ErrorCode.NOT_CONNECTED && error.code !== ErrorCode.TIMEOUT) this.emit('error', error);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private scheduleGapResync(): void {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if (this.inbox.hasGaps() && this.connected) void this.resync();
    }, GAP_RESYNC_DELAY_MS);
  }
}

type AckData<F> = F extends (req: never, ack: (res: Ack<infer T>) => void) => void ? T : never;

function mapClose(code: CloseCode | undefined): DisconnectReason {
  switch (code) {
    case CloseCode.SERVER_SHUTDOWN:
      return 'server-shutdown';
    case CloseCode.TOKEN_EXPIRED:
      return 'token-expired';
    case CloseCode.REVOKED:
      return 'revoked';
    case CloseCode.SLOW_CONSUMER:
      return 'slow-consumer';
    default:
      return 'server-shutdown';
  }
}

function pages<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function asCurbsideError(e: unknown): CurbsideError {
  if (e instanceof CurbsideError) return e;
  return new CurbsideError(ErrorCode.INTERNAL, e instanceof Error ? e.message : String(e));
}

/**
 * Who the token says we are (`sub`, `dev`), read without verifying: the hub verifies; the SDK only
 * needs to recognise its own envelopes and label its own messages.
 */
function claimsFromToken(token: string): { sub?: string; dev?: string } {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { sub?: unknown; dev?: unknown };
    return {
      ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
      ...(typeof claims.dev === 'string' ? { dev: claims.dev } : {}),
    };
  } catch {
    return {};
  }
}
