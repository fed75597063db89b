/**
 * The pairwise (1:1) end-to-end layer: this device's keys, sessions with every peer device, and the
 * TeamContext the care-team messenger works through; it owns the one lock (`exclusive()`) under which
 * keys and sessions change. Sending sealed messages is the {@link SendPath}, receiving (dispatching a
 * delivered envelope, decrypting its share) the {@link ReceivePath}; receipts, safety numbers and
 * failure handling are modules of their own.
 */
import { AlertListResultSchema, ErrorCode, type DeviceIdentity, type Envelope, type SendResult, type SignedStatement, type TeamState } from '@curbside/shared';
import { sodiumReady } from '../crypto/index.js';
import { isCurbsideError } from '../errors.js';
import type { DeviceStore } from '../stores/index.js';
import { LocalKeys } from './local-keys.js';
import { sealMessage, type MessageContent, type SealedExtras } from './message-crypto.js';
import { SessionBook, TrustBook } from './peer-state.js';
import { TeamMessenger } from './team-messenger.js';
import { replayLog } from './team-log-book.js';
import { Escalations, type AlertRequest } from './escalation.js';
import { RoleThreads } from './role-threads.js';
import { ReceiptBook, type ReceiptStatus } from './receipts.js';
import { DeviceListBook } from './device-lists.js';
import { ReceiptSender } from './receipt-sender.js';
import { ReceiveFailures, type FailureOverride } from './receive-failures.js';
import { ReceivePath, type SealedPostOpener } from './receive-path.js';
import { SendPath, type SealedSendOptions } from './send-path.js';
import { safetyNumberOf } from './safety-numbers.js';
import type { HubTransport, MessengerEvents, SafetyNumber, SdkLogger, TeamContext } from './types.js';

export { ReceiveDeferred } from './receive-path.js';

/**
 * End-to-end encryption for a {@link CurbsideClient}: keys, sessions, trust, and the translation
 * between plaintext messages and envelopes. Every operation on keys and sessions runs one at a
 * time (a single queue), so persisted state never interleaves.
 */
export class SecureMessenger implements TeamContext {
  private keys: LocalKeys | undefined;
  private readonly sessions: SessionBook;
  /** @internal shared with {@link TeamMessenger} */
  readonly trust: TrustBook;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly failures: ReceiveFailures;
  private readonly teams: TeamMessenger;
  /** Escalations: content sealed for later tiers, and what activated tiers release here. */
  readonly escalations: Escalations;
  /** On-call roles: verified holders, threads sealed for them, and hand-offs. */
  readonly roles: RoleThreads;
  private readonly receipts: ReceiptBook;
  /** @internal Signed device lists: every device list this messenger encrypts to comes from here. */
  readonly deviceLists: DeviceListBook;
  private readonly receiptSender: ReceiptSender;
  private readonly sendPath: SendPath;
  private readonly receivePath: ReceivePath;
  /** @internal Opens pseudonymous pool posts (the client sets it: it needs the pinned office key). */
  sealedPosts: SealedPostOpener | undefined;

  constructor(
    /** @internal */ readonly store: DeviceStore,
    /** @internal */ readonly hub: HubTransport,
    /** @internal */ readonly self: () => { userId: string; deviceId: string },
    /** @internal */ public events: MessengerEvents,
    /** @internal */ readonly logger: SdkLogger,
  ) {
    this.sessions = new SessionBook(store);
    this.trust = new TrustBook(store);
    this.receipts = new ReceiptBook(store);
    this.receiptSender = new ReceiptSender({
      book: this.receipts,
      send: (conversationId, content, toUserIds) => this.send(conversationId, content, { toUserIds }),
      stopped: () => hub.stopped(),
      self,
      logger,
    });
    this.deviceLists = new DeviceListBook(store, hub, self, () => this.localKeys(), () => this.events);
    this.teams = new TeamMessenger(this);
    this.escalations = new Escalations(this);
    this.roles = new RoleThreads(this, this.teams, async () => {
      const me = self().userId;
      const { alerts } = AlertListResultSchema.parse(await hub.openAlerts());
      return alerts.filter((a) => a.ackFrom.includes(me) && !a.acks.some((k) => k.userId === me));
    });
    this.failures = new ReceiveFailures({
      events: () => this.events,
      logger,
      forgetSession: (userId, deviceId) => this.exclusive(() => this.sessions.forget(userId, deviceId)),
      sendReset: async (conversationId) => void (await this.send(conversationId, { kind: 'session-reset' })),
      repairTeamSession: (teamId, userId, deviceId) => this.teams.repairSession(teamId, userId, deviceId),
    });
    this.sendPath = new SendPath(this, this.sessions);
    this.receivePath = new ReceivePath(this, {
      sessions: this.sessions,
      receipts: this.receipts,
      teams: this.teams,
      roles: this.roles,
      failures: this.failures,
      sealedPosts: () => this.sealedPosts,
      publishKeys: () => this.publishKeys(),
    });
    // Every message shown to the app is acknowledged to its sender (a delivered receipt).
    const emitMessage = events.message;
    this.events = {
      ...events,
      message: (m) => {
        // Remember the sender first: an app may call markRead from inside its message handler (its
        // look-up queues behind this note).
        if (!m.outgoing) this.receiptSender.noteReceived(m);
        emitMessage(m);
        if (!m.outgoing) this.receiptSender.queueDelivered(m);
      },
    };
  }

  /** @internal A sibling's team message carried its sender key here: tell it (see ReceiptSender). */
  confirmSiblingShare(conversationId: string, messageId: string): void {
    this.receiptSender.confirmSiblingShare(conversationId, messageId);
  }

  /** @internal Seal a hand-off of pending urgent messages for the new holders' devices (see RoleThreads). */
  async sendHandoff(conversationId: string, content: MessageContent, toUserIds: string[], seqs: number[]): Promise<void> {
    await this.send(conversationId, content, { toUserIds, handoff: { seqs } });
  }

  /** @internal A verified statement changed an on-call role: hand over what this device holds if the role left this user. */
  roleChanged(roleId: string, before: TeamState | undefined, after: TeamState, at: number): void {
    void this.roles.roleChanged(roleId, before, after, at).catch((err: unknown) => this.logger.warn({ roleId, err: String(err) }, 'hand-off failed'));
  }

  /** Tell the senders of these messages that the user read them. */
  markRead(conversationId: string, messageIds: string[]): Promise<void> {
    return this.receiptSender.markRead(conversationId, messageIds);
  }

  /** Seal an acknowledgement of an urgent message to its sender (see `ReceiptSender.acknowledged`). */
  confirmAcknowledged(conversationId: string, messageId: string): Promise<boolean> {
    return this.receiptSender.acknowledged(conversationId, messageId);
  }

  /**
   * For an escalation tier's user (outside the conversation): an `acknowledged` receipt sealed for the
   * sender's devices, to go with the acknowledgement (the hub sequences it as a receipt from this user).
   * Undefined when no device of the sender can be reached.
   */
  async sealAckConfirmation(conversationId: string, toUserId: string, messageId: string): Promise<{ clientMessageId: string; body: Uint8Array; recipients: Array<{ deviceId: string; ciphertext: Uint8Array }> } | undefined> {
    const me = this.self();
    const clientMessageId = globalThis.crypto.randomUUID();
    const { body, keyPackage } = sealMessage({ kind: 'receipt', status: 'acknowledged', messageIds: [messageId] }, { conversationId, senderUserId: me.userId, senderDeviceId: me.deviceId, clientMessageId });
    const targets = await this.listDevices([toUserId]);
    const shares = new Map<string, Uint8Array>();
    await this.encryptShares(targets, keyPackage, shares);
    const recipients = targets.filter((d) => shares.has(d.deviceId)).map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
    return recipients.length ? { clientMessageId, body, recipients } : undefined;
  }

  /** Status per recipient of a message this device sent, or undefined if unknown. */
  messageStatus(messageId: string): Record<string, ReceiptStatus> | undefined {
    return this.receipts.status(messageId);
  }

  /** @internal Record a message this device sent, to follow its receipts. */
  noteSent(conversationId: string, messageId: string, recipientUserIds: string[]): Promise<void> {
    return this.receiptSender.noteSent(conversationId, messageId, recipientUserIds);
  }

  /** @internal Load delivery and read state kept by an earlier run (before statuses are asked for). */
  loadReceipts(): Promise<void> {
    return this.receipts.load();
  }

  /**
   * @internal The devices to encrypt to for these users: those the hub routes to that each user's
   * verified signed device list names (none for a user without one).
   */
  listDevices(userIds: string[]): Promise<DeviceIdentity[]> {
    return this.deviceLists.devices(userIds);
  }

  /** Care-team operations (signed membership, sender keys). */
  get careTeams(): TeamMessenger {
    return this.teams;
  }

  /**
   * A team's log as the hub hands it out (`fetch` from an index), verified on top of `base` (this
   * device's own verified state, if any). Undefined when there is neither.
   */
  async replayTeamLog(teamId: string, base: TeamState | undefined, fetch: (fromIndex: number) => Promise<SignedStatement[]>): Promise<TeamState | undefined> {
    return replayLog(this, teamId, base, await fetch(base ? base.index + 1 : 0));
  }

  /** @internal Run `fn` alone: every change to keys, sessions and sender keys goes through here. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }

  /** @internal */
  async localKeys(): Promise<LocalKeys> {
    if (!this.keys) {
      await sodiumReady();
      this.keys = await LocalKeys.open(this.store);
    }
    return this.keys;
  }

  /** This device's public identity key (creating the identity on first use). */
  async identityKey(): Promise<Uint8Array> {
    return (await this.localKeys()).identity.publicKey;
  }

  /** Publish keys after a connect; refill one-time prekeys when the hub runs low. */
  async publishKeys(): Promise<void> {
    const keys = await this.localKeys();
    const count = await this.hub.countPrekeys();
    const upload = await this.exclusive(() => keys.prepareUpload(count));
    await this.hub.publishKeys({
      identityKey: upload.identityKey,
      signedPrekey: upload.signedPrekey,
      ...(upload.oneTimePrekeys.length ? { oneTimePrekeys: upload.oneTimePrekeys } : {}),
    });
  }

  /**
   * Encrypt and send text under `clientMessageId` (the same id is the same message: the hub stores and
   * delivers it once). Resolves with the hub's ack.
   * @throws CurbsideError UNTRUSTED_IDENTITY if a member's key changed and was not accepted.
   */
  async sendText(conversationId: string, text: string, clientMessageId: string = globalThis.crypto.randomUUID(), request?: AlertRequest, extras: SealedExtras = {}): Promise<SendResult> {
    const { attachment } = extras;
    const content: MessageContent = { kind: 'text', text, ...(request ? { priority: request.priority } : {}), ...extras };
    // Without tiers of its own, an urgent send follows the team's (or the role's) signed escalation policy.
    if (request && request.escalate === undefined) {
      const tiers = await this.roles.policyTiers(conversationId);
      if (tiers.length) request = { ...request, escalate: tiers };
    }
    // Sealed once for the conversation, and once more for an escalation's later tiers (if any).
    const alert = request ? await this.escalations.payload(conversationId, clientMessageId, content, request) : undefined;
    if (await this.teams.isTeam(conversationId)) return this.teams.sendText(conversationId, text, clientMessageId, alert, extras);
    const attachmentIds = attachment ? { attachmentIds: [attachment.id] } : {};
    // A thread with an on-call role: sealed for whoever holds it now (and the requester), no one else.
    const thread = await this.roles.targets(conversationId);
    if (thread) {
      const sent = await this.send(conversationId, content, { clientMessageId, toUserIds: thread.toUserIds, ...(alert ? { alert } : {}), ...attachmentIds });
      await this.noteSent(conversationId, sent.messageId, thread.toUserIds);
      return sent;
    }
    let ack: SendResult;
    try {
      ack = await this.send(conversationId, content, { clientMessageId, ...(alert ? { alert } : {}), ...attachmentIds });
    } catch (e) {
      // A care team whose create statement this device has not processed yet: the hub wants a team
      // message (bound to the membership epoch). Catch up on the log and send it as one.
      if (!isCurbsideError(e) || e.code !== ErrorCode.STALE_EPOCH) throw e;
      await this.hub.catchUp();
      if (!(await this.teams.isTeam(conversationId))) throw e;
      return this.teams.sendText(conversationId, text, clientMessageId, alert, extras);
    }
    const me = this.self();
    await this.noteSent(conversationId, ack.messageId, (await this.hub.conversationMembers(conversationId)).filter((u) => u !== me.userId));
    return ack;
  }

  /**
   * Seal `content` and send it (see {@link SendPath.send}). By default to every device of every
   * member; with `toUserIds`, a partial send to those users' devices (and this user's other devices) only.
   */
  private send(conversationId: string, content: MessageContent, options: SealedSendOptions = {}): Promise<SendResult> {
    return this.sendPath.send(conversationId, content, options);
  }

  /**
   * @internal Ratchet-encrypt `keyPackage` (a 1:1 payload) for each target that has no share yet,
   * starting sessions as needed.
   */
  encryptShares(targets: DeviceIdentity[], keyPackage: Uint8Array, shares: Map<string, Uint8Array>): Promise<void> {
    return this.sendPath.encryptShares(targets, keyPackage, shares);
  }

  /**
   * Decrypt one delivered envelope and emit what the app should see (see {@link ReceivePath}). Throws
   * only {@link ReceiveDeferred} (the client stopped before the message could be checked).
   */
  receive(envelope: Envelope): Promise<void> {
    return this.receivePath.receive(envelope);
  }

  /** @internal The 1:1 payload this envelope carries for this device. */
  decryptShare(envelope: Envelope): Promise<Uint8Array> {
    return this.receivePath.decryptShare(envelope);
  }

  /** @internal Report a message that could not be read, once, and change nothing else (see ReceiveFailures). */
  onReceiveFailure(envelope: Envelope, e: unknown, reasonOverride?: FailureOverride, inTeam = false): void {
    this.failures.report(envelope, e, reasonOverride, inTeam);
  }

  /** A device was revoked: forget our sessions with it. */
  async forgetDevice(userId: string, deviceId: string): Promise<void> {
    await this.exclusive(() => this.sessions.forget(userId, deviceId));
  }

  /** The user accepted a contact's changed keys: sessions with those devices start over. */
  async acceptIdentity(userId: string): Promise<void> {
    await this.exclusive(async () => {
      const devices = await this.trust.accept(userId);
      for (const d of devices) await this.sessions.forget(userId, d);
    });
  }

  /** Mark a contact verified after comparing safety numbers in person. */
  async markVerified(userId: string): Promise<void> {
    await this.exclusive(() => this.trust.markVerified(userId));
  }

  /**
   * The safety number with a contact: 60 digits both sides see identically. It covers every
   * device's identity key of both users (the keys the hub presents now), so adding a device changes
   * it. After a key change it is the new number, with `state: 'changed'` until the user accepts it.
   */
  async safetyNumber(userId: string): Promise<SafetyNumber> {
    const me = this.self();
    const [mine, theirs] = await Promise.all([this.listDevices([me.userId]), this.listDevices([userId])]);
    const changed: string[] = [];
    let verifiedDevices = 0;
    for (const d of theirs) {
      if ((await this.trust.observe(d.userId, d.deviceId, d.identityKey)) === 'changed') changed.push(d.deviceId);
      else if ((await this.trust.get(d.userId, d.deviceId))?.status === 'verified') verifiedDevices++;
    }
    if (changed.length) this.events.identityChanged({ userId, deviceIds: changed });
    return safetyNumberOf({ me, own: await this.identityKey(), mine, userId, theirs, changed: changed.length, verifiedDevices });
  }

}
