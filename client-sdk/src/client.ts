/**
 * `CurbsideClient`: the SDK's facade. It wires a hub connection (socket, reconnects, token refresh),
 * an outbox (pending sends, retries, idempotency) and sync (resync by sequence, in order, once) to the
 * end-to-end messengers, and offers the feature areas as namespaces: `teams`, `devices`, `trust`, `directory`,
 * `alerts`, `roles`, `credentials` (and, low-level, `hub`). Each part lives in its own module; this one only connects them.
 * What runs over the life of the connection (connect, reconnects, the hub's pushes, close) is the `ClientLifecycle`.
 */
import { ErrorCode, type Conversation, type ConversationCreateRequest, type Envelope, type SendResult } from '@curbside/shared';
import { CurbsideError, asCurbsideError } from './errors.js';
import { TypedEmitter } from './emitter.js';
import { MemoryDeviceStore, cursorStoreFrom, type DeviceStore } from './stores/index.js';
import { ReceiveDeferred, SecureMessenger } from './e2ee/secure-messenger.js';
import type { ReceiptStatus } from './e2ee/receipts.js';
import type { CurbsideClientEvents, CurbsideClientOptions, TextSendOptions } from './client-types.js';
import { HubConnection } from './hub/connection.js';
import { Outbox, type EnvelopePayload, type SendOptions } from './hub/outbox.js';
import { Sync } from './hub/sync.js';
import { HubApi } from './hub/api.js';
import { CareTeams } from './teams.js';
import { Devices } from './devices.js';
import { Trust } from './trust.js';
import { Directory } from './directory.js';
import { Alerts } from './alerts.js';
import { OnCallRoles } from './roles.js';
import { Credentials } from './credentials.js';
import { Pseudonyms } from './pseudonyms.js';
import { PseudonymousPosts } from './pseudonymous-posts.js';
import { TextQueue } from './text-queue.js';
import { Attachments } from './attachments/attachments.js';
import { Consults } from './consults.js';
import { ClientLifecycle } from './client-lifecycle.js';

export type { CurbsideClientEvents, CurbsideClientOptions, TextSendOptions } from './client-types.js';
export type { DisconnectReason } from './hub/connection.js';
export type { EnvelopePayload, SendOptions } from './hub/outbox.js';

/**
 * A clinician's device connected to a Curbside hub. Sends and receives end-to-end encrypted
 * messages, reconnects, resyncs what it missed, and never hands the app the same message twice.
 *
 * @example
 * ```ts
 * const client = new CurbsideClient({ url: 'https://chat.hospital.example', token: () => fetchToken() });
 * client.on('message', (m) => console.log(m.senderUserId, m.text));
 * await client.connect();
 * const conversation = await client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
 * await client.sendText(conversation.id, 'Troponin 0.42 at 14:05, can you take a look?');
 * await client.close();
 * ```
 */
export class CurbsideClient extends TypedEmitter<CurbsideClientEvents> {
  /** Care teams: signed membership, sealed titles. */
  readonly teams: CareTeams;
  /** Devices: whose devices messages go to, this user's own, linking and revoking. */
  readonly devices: Devices;
  /** Safety numbers and changed keys. */
  readonly trust: Trust;
  /** The organisation's directory: display names, roles or specialties and departments of user ids. */
  readonly directory: Directory;
  /** Urgent and emergent messages: acknowledge, follow re-notifications and who answered. */
  readonly alerts: Alerts;
  /** On-call roles: who holds each (verified), paging a role, taking it, shifts, hand-offs. */
  readonly roles: OnCallRoles;
  /** Verified credentials: attestations by the organisation's credentialing office, checked on this device. */
  readonly credentials: Credentials;
  /** Pseudonymous posting: one-time tokens the credentialing office signs blind, for posts as "a verified <specialty>". */
  readonly pseudonyms: Pseudonyms;
  /** Files and images: encrypted on this device, uploaded as ciphertext, sent in an encrypted message; downloaded and checked. */
  readonly attachments: Attachments;
  /** Consult pools: ask verified peers beyond your team, cases threaded with replies, moderated. */
  readonly consults: Consults;
  /**
   * The hub's requests as they are (keys, devices, conversations), for transport-only clients
   * (`e2ee: false`), tests and bridges. Apps use the methods and namespaces above.
   */
  readonly hub: HubApi;

  private readonly connection: HubConnection;
  private readonly outbox: Outbox;
  private readonly sync: Sync;
  private readonly texts: TextQueue;
  private readonly messenger: SecureMessenger;
  private readonly e2ee: boolean;
  private readonly lifecycle: ClientLifecycle;

  constructor(options: CurbsideClientOptions) {
    super();
    const store: DeviceStore = options.store ?? new MemoryDeviceStore();
    this.e2ee = options.e2ee !== false;
    this.connection = new HubConnection(options);
    this.hub = new HubApi(this.connection);
    const self = () => {
      const { userId, deviceId } = this.connection.identity;
      if (!userId || !deviceId) throw new CurbsideError(ErrorCode.NOT_CONNECTED, 'Connect before sending or reading messages');
      return { userId, deviceId };
    };
    this.messenger = new SecureMessenger(
      store,
      {
        sendEnvelope: (c, p, o) => this.sendEnvelope(c, p, o),
        claimBundles: (r) => this.hub.claimBundles(r),
        hubDevices: (u) => this.hub.hubDevices(u),
        deviceListChains: (users) => this.hub.deviceListChains(users),
        publishDeviceList: (list) => this.hub.publishDeviceList(list),
        myDevices: () => this.hub.myDevices(),
        publishKeys: (r) => this.hub.publishKeys(r),
        countPrekeys: () => this.hub.countPrekeys(),
        conversationMembers: (id, fresh) => this.hub.conversationMembers(id, fresh),
        teamRequest: (event, request) => this.hub.teamRequest(event, request),
        roleThread: (id) => this.hub.roleThread(id),
        roleLog: (roleId, fromIndex) => this.hub.roleLog(roleId, fromIndex),
        openAlerts: () => this.hub.openAlerts(),
        catchUp: () => this.sync.resync(),
        stopped: () => this.connection.stopped,
      },
      self,
      {
        message: (m) => this.emit('message', m),
        decryptionError: (e) => this.emit('decryptionError', e),
        identityChanged: (c) => this.emit('identityChanged', c),
        unavailable: (u) => this.emit('unavailable', u),
        teamChanged: (c) => this.emit('teamChanged', c),
        teamDetails: (d) => this.emit('teamDetails', d),
        membershipMismatch: (m) => this.emit('membershipMismatch', m),
        receipt: (r) => {
          if (r.status === 'acknowledged') this.alerts.noteSealedAck(r.messageId, r.userId);
          this.emit('receipt', r);
        },
        deviceListChanged: (c) => this.emit('deviceListChanged', c),
        deviceListRejected: (r) => this.emit('deviceListRejected', r),
      },
      options.logger ?? { debug: () => {}, warn: () => {} },
    );
    this.teams = new CareTeams(this.messenger, () => this.connection.identity.userId);
    this.trust = new Trust(this.messenger);
    this.directory = new Directory(this.hub);
    this.alerts = new Alerts({
      api: this.hub,
      self: () => this.connection.identity,
      emit: (u) => this.emit('alert', u),
      open: this.e2ee ? (content) => this.messenger.escalations.open(content) : undefined,
      confirm: this.e2ee ? (conversationId, messageId) => this.messenger.confirmAcknowledged(conversationId, messageId) : undefined,
      sealConfirmation: this.e2ee ? (conversationId, senderUserId, messageId) => this.messenger.sealAckConfirmation(conversationId, senderUserId, messageId) : undefined,
      escalated: (m) => this.emit('escalatedMessage', m),
      error: (e) => this.emit('error', asCurbsideError(e)),
    });
    this.credentials = new Credentials({ api: this.hub, messenger: this.messenger, configuredKey: options.credentialKey });
    this.pseudonyms = new Pseudonyms({ api: this.hub, messenger: this.messenger, credentials: this.credentials });
    this.roles = new OnCallRoles({ messenger: this.messenger, api: this.hub, sendText: (conversationId, text, options) => this.sendText(conversationId, text, options) });
    this.devices = new Devices({
      api: this.hub,
      messenger: this.messenger,
      e2ee: this.e2ee,
      self: () => this.connection.identity,
      events: {
        linkRequired: (code) => this.emit('linkRequired', code),
        deviceLinked: (info) => this.emit('deviceLinked', info),
        error: (e) => this.emit('error', asCurbsideError(e)),
      },
    });
    this.outbox = new Outbox({
      store,
      connection: this.connection,
      acked: (result) => this.sync.markOwn(result.conversationId, result.seq),
      sent: (info) => this.emit('sent', info),
      sendFailed: (info) => this.emit('sendFailed', info),
      track: (op) => this.lifecycle.track(op),
      queued: (clientMessageId) => this.texts.handedToOutbox(clientMessageId),
    });
    this.texts = new TextQueue({
      store,
      encryptAndSend: (conversationId, text, clientMessageId, alert, extras) => this.messenger.sendText(conversationId, text, clientMessageId, alert, extras),
      inOutbox: (clientMessageId) => this.outbox.has(clientMessageId),
      connected: () => this.connection.connected,
      stopped: () => this.connection.stopped,
      sendFailed: (info) => this.emit('sendFailed', info),
      track: (op) => this.lifecycle.track(op),
    });
    this.attachments = new Attachments({
      hub: { nodeUrls: () => this.connection.nodeUrls, authHeaders: () => this.connection.authHeaders() },
      sendMessage: (conversationId, caption, clientMessageId, attachment, consult) => {
        if (!this.e2ee) return Promise.reject(new CurbsideError(ErrorCode.DISABLED, 'Attachments travel in end-to-end-encrypted messages: this client was made with e2ee: false'));
        return this.texts.send(conversationId, caption, clientMessageId, undefined, { attachment, ...(consult ? { consult } : {}) });
      },
    });
    const pseudonymous = new PseudonymousPosts({ messenger: this.messenger, pseudonyms: this.pseudonyms, hub: { nodeUrls: () => this.connection.nodeUrls } });
    this.messenger.sealedPosts = pseudonymous;
    this.consults = new Consults({
      messenger: this.messenger,
      api: this.hub,
      attachments: this.attachments,
      sendSealed: (conversationId, text, extras) => {
        if (!this.e2ee) return Promise.reject(new CurbsideError(ErrorCode.DISABLED, 'Consults are end-to-end encrypted: this client was made with e2ee: false'));
        return this.texts.send(conversationId, text, globalThis.crypto.randomUUID(), undefined, extras);
      },
      self: () => this.connection.identity.userId ?? '',
      pseudonyms: this.pseudonyms,
      pseudonymous,
    });
    this.sync = new Sync({
      connection: this.connection,
      cursors: options.cursorStore ?? cursorStoreFrom(store),
      handle: (envelope) => this.handle(envelope),
      isDeferral: (e) => e instanceof ReceiveDeferred,
      synced: () => this.emit('synced'),
      error: (e) => this.emit('error', e),
      failed: (e) => this.lifecycle.connectFailed(e),
    });
    this.lifecycle = new ClientLifecycle({
      connection: this.connection,
      e2ee: this.e2ee,
      hub: this.hub,
      messenger: this.messenger,
      sync: this.sync,
      outbox: this.outbox,
      texts: this.texts,
      alerts: this.alerts,
      devices: this.devices,
      emit: (event, ...args) => this.emit(event, ...args),
      once: (event, listener) => this.once(event, listener),
    });
  }

  /** Whether the socket is connected and authenticated now. */
  get connected(): boolean {
    return this.connection.connected;
  }

  /** This device's id: the `deviceId` option, else the `dev` claim of its token (known once a token was fetched). */
  get currentDeviceId(): string | undefined {
    return this.connection.identity.deviceId;
  }

  /** Number of sends not yet acknowledged by the hub. */
  get pendingSends(): number {
    return this.outbox.size;
  }

  /** The highest seq handed to the app, without gaps, for a conversation. */
  cursor(conversationId: string): number {
    return this.sync.cursor(conversationId);
  }

  /**
   * Connect, authenticate and resync. Resolves once the first sync is done; rejects with a
   * {@link CurbsideError} if the hub refuses the handshake (`AUTH_INVALID`, `AUTH_EXPIRED`, ...) or
   * the first sync fails. Problems of the work a connect starts alongside (publishing keys, open
   * alerts, on-call roles, device lists) do not fail it: the app hears them as `error` events, and
   * the next connect starts that work again.
   */
  connect(): Promise<void> {
    return this.lifecycle.connect();
  }

  /**
   * Disconnect and wait until every envelope already received has been decrypted and its cursor
   * saved, and every send already started has been persisted to the outbox (or failed): after this
   * resolves, the device store may be handed to another client.
   */
  close(): Promise<void> {
    return this.lifecycle.close();
  }

  /**
   * Go offline for good (until `connect()` again). Promises of sends not yet acked reject with
   * NOT_CONNECTED (`details.queued: true`); the sends stay in the persisted outbox and go out, once,
   * when a client with the same device store connects (watch the `sent` event).
   */
  disconnect(): void {
    this.lifecycle.disconnect();
  }

  /**
   * Encrypt `text` for every device of every member (and this user's other devices) and send it.
   * Resolves with the hub's durable ack. Offline, or while the client fails over to another hub node,
   * the text is kept in the device store and sent after the next connect (also after a restart, by
   * the next client on the same store: watch `sent` and `sendFailed`); the same `clientMessageId` is
   * the same message, stored and shown once.
   *
   * @example
   * ```ts
   * const ack = await client.sendText(conversation.id, 'Troponin 0.42 at 14:05, can you take a look?');
   * ```
   * @throws CurbsideError UNTRUSTED_IDENTITY when a member's safety key changed and was not accepted;
   *   NOT_CONNECTED with `details.queued: true` when the app disconnected first (the text stays queued)
   */
  sendText(conversationId: string, text: string, options: TextSendOptions = {}): Promise<SendResult> {
    const priority = options.priority ?? 'routine';
    const alert = priority === 'routine' ? undefined : { priority, ...(options.ackPolicy ? { ackPolicy: options.ackPolicy } : {}), ...(options.escalate ? { escalate: options.escalate } : {}) };
    return this.texts.send(conversationId, text, options.clientMessageId ?? globalThis.crypto.randomUUID(), alert);
  }

  /**
   * Send an envelope as it is (already encrypted, or opaque bytes for a transport-only client).
   * Resolves with the hub's ack once it is stored durably. While offline the send waits in the
   * persisted outbox and goes out on reconnect; retries reuse the same client message id, so the hub
   * stores and delivers it once.
   *
   * @param conversationId - a conversation the user is a member of
   * @param payload - `body` (at most `Limits.MAX_CIPHERTEXT_BYTES`) for every member device and/or
   *   per-device `recipients` (which must name exactly the conversation's devices)
   * @throws CurbsideError PAYLOAD_TOO_LARGE locally; FORBIDDEN, DEVICE_LIST_STALE, IDEMPOTENCY_CONFLICT, INVALID_PAYLOAD from the hub
   */
  sendEnvelope(conversationId: string, payload: EnvelopePayload, options: SendOptions = {}): Promise<SendResult> {
    return this.outbox.send(conversationId, payload, options);
  }

  /**
   * Send read receipts for messages the user has seen. Delivered receipts go out by themselves when
   * a message is decrypted.
   */
  markRead(conversationId: string, messageIds: string[]): Promise<void> {
    return this.messenger.markRead(conversationId, messageIds);
  }

  /**
   * Where a message this device sent stands, per recipient: `sent` → `delivered` → `read`. Kept in
   * the device store for the last 10,000 messages, so it survives a restart (after `connect()`).
   */
  messageStatus(messageId: string): Record<string, ReceiptStatus> | undefined {
    return this.messenger.messageStatus(messageId);
  }

  /** Tell the other members you are typing (or stopped). Not stored anywhere. */
  setTyping(conversationId: string, typing: boolean): Promise<void> {
    return this.hub.setTyping(conversationId, typing);
  }

  /** Members of a conversation who are online now, with their online devices. */
  presence(conversationId: string): Promise<Array<{ userId: string; deviceIds: string[] }>> {
    return this.hub.presence(conversationId);
  }

  /** Create a conversation; a direct one that exists is returned as it is. */
  createConversation(request: ConversationCreateRequest): Promise<Conversation> {
    return this.hub.createConversation(request);
  }

  /**
   * Leave a group conversation; anyone may leave any group. The other members get a `conversation`
   * event with the new member list. Leave a care team with `client.teams.leave`.
   *
   * @returns the conversation after leaving
   * @throws CurbsideError INVALID_PAYLOAD for a direct conversation or a care team, FORBIDDEN when not a member
   */
  leaveConversation(conversationId: string): Promise<Conversation> {
    return this.hub.leaveConversation(conversationId);
  }

  /** Conversations the user is a member of. */
  listConversations(): Promise<Conversation[]> {
    return this.hub.listConversations();
  }

  // --- internals -------------------------------------------------------------------------

  /** One envelope from the ordered stream: decrypted (end-to-end on), then announced. */
  private async handle(envelope: Envelope): Promise<void> {
    if (envelope.senderDeviceId === this.connection.identity.deviceId && !envelope.membership) return;
    // Handled first: an envelope the messenger defers (the client stopped mid-check) comes again at
    // the next connect, so it is not announced now.
    if (this.e2ee) await this.messenger.receive(envelope);
    this.emit('envelope', envelope);
  }
}
