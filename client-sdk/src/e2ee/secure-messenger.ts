/**
 * The pairwise (1:1) end-to-end layer: this device's keys, sessions with every peer device, sending
 * and receiving sealed messages, and the TeamContext the care-team messenger works through.
 * Long file: its send and receive paths share one lock and one session book, and are kept together
 * so that every change to session state is visibly under `exclusive()`; receipts, safety numbers and
 * failure handling are modules of their own.
 */
import { AlertListResultSchema, ErrorCode, RETRYABLE_ERROR_CODES, SEALED_SENDER, backoffMs, sleep, type DeviceIdentity, type Envelope, type SendResult, type SignedStatement, type TeamState } from '@curbside/shared';
import {
  CryptoError,
  RatchetSession,
  acceptSession,
  bytesEqual,
  decodeSessionMessage,
  encryptSessionMessage,
  decryptSessionMessage,
  isCryptoError,
  preKeyMessageMatchesSession,
  sodiumReady,
  startSession,
} from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { deleteOp, type DeviceStore } from '../stores/index.js';
import { LocalKeys } from './local-keys.js';
import { sealMessage, openMessage, type MessageContent, type SealedExtras } from './message-crypto.js';
import { MAX_ARCHIVED_SESSIONS, SessionBook, TrustBook } from './peer-state.js';
import { TeamMessenger } from './team-messenger.js';
import { replayLog } from './team-log-book.js';
import { Escalations, type AlertRequest } from './escalation.js';
import { RoleThreads } from './role-threads.js';
import type { AlertPayload } from '../hub/outbox.js';
import { ReceiptBook, type ReceiptStatus } from './receipts.js';
import { DeviceListBook } from './device-lists.js';
import { ReceiptSender } from './receipt-sender.js';
import { ReceiveFailures, SessionLost, UnlistedKey, type FailureOverride } from './receive-failures.js';
import { safetyNumberOf } from './safety-numbers.js';
import {
  chatMessageOf,
  type ChatMessage,
  type HubTransport,
  type MessengerEvents,
  type SafetyNumber,
  type SdkLogger,
  type TeamContext,
} from './types.js';


/**
 * @internal Thrown by `receive` when the client stopped before the message could be checked (its
 * sender's device list needs the hub): the message was not handled and must be handed out again.
 */
export class ReceiveDeferred extends Error {}

const MAX_STALE_RETRIES = 3;
/** Tries of a sender's device-list check while the hub cannot be reached (about two minutes in all). */
const MAX_LIST_CHECK_ATTEMPTS = 70;
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
  /** @internal Opens pseudonymous pool posts (the client sets it: it needs the pinned office key). */
  sealedPosts: { open(envelope: Envelope, myUserId: string): Promise<ChatMessage | undefined> } | undefined;

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
   * Seal `content` and send it. By default to every device of every member; with `toUserIds`, a
   * partial send to those users' devices (and this user's other devices) only.
   */
  private async send(conversationId: string, content: MessageContent, options: { toUserIds?: string[]; clientMessageId?: string; alert?: AlertPayload; handoff?: { seqs: number[] }; attachmentIds?: string[] } = {}): Promise<SendResult> {
    const me = this.self();
    const members = options.toUserIds ? [...new Set([...options.toUserIds, me.userId])] : await this.hub.conversationMembers(conversationId);
    const partial = options.toUserIds !== undefined;
    const kind = content.kind === 'receipt' ? ('receipt' as const) : undefined;
    for (const userId of members) {
      if (userId !== me.userId && (await this.trust.isBlocked(userId))) throw untrusted(userId);
    }
    const clientMessageId = options.clientMessageId ?? globalThis.crypto.randomUUID();
    const { body, keyPackage } = sealMessage(content, { conversationId, senderUserId: me.userId, senderDeviceId: me.deviceId, clientMessageId });
    let targets = (await this.listDevices(members)).filter((d) => d.deviceId !== me.deviceId);
    const shares = new Map<string, Uint8Array>();
    for (let attempt = 0; ; attempt++) {
      await this.encryptShares(targets, keyPackage, shares);
      const recipients = targets.map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
      try {
        const alert = { ...(options.alert ? { alert: options.alert } : {}), ...(options.handoff ? { handoff: options.handoff } : {}), ...(options.attachmentIds ? { attachmentIds: options.attachmentIds } : {}) };
        if (recipients.length === 0) return await this.hub.sendEnvelope(conversationId, { body, ...(kind ? { kind } : {}), ...alert }, { clientMessageId });
        return await this.hub.sendEnvelope(conversationId, { body, recipients, ...(partial ? { partial } : {}), ...(kind ? { kind } : {}), ...alert }, { clientMessageId });
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.DEVICE_LIST_STALE || attempt >= MAX_STALE_RETRIES) throw e;
        // Sesame: fix the device list the hub says is stale, keep the shares already made.
        const details = e.details as { missing?: Array<{ userId: string; deviceId: string }>; extra?: string[] } | undefined;
        const extra = new Set(details?.extra ?? []);
        targets = targets.filter((d) => !extra.has(d.deviceId));
        const missingUsers = [...new Set((details?.missing ?? []).map((m) => m.userId))];
        if (missingUsers.length) {
          const fresh = await this.listDevices(missingUsers);
          const missingIds = new Set((details?.missing ?? []).map((m) => m.deviceId));
          targets.push(...fresh.filter((d) => missingIds.has(d.deviceId) && !targets.some((t) => t.deviceId === d.deviceId)));
        }
        this.logger.debug({ conversationId, attempt, missing: details?.missing?.length ?? 0, extra: extra.size }, 'device list was stale, retrying');
      }
    }
  }

  /**
   * @internal Ratchet-encrypt `keyPackage` (a 1:1 payload) for each target that has no share yet,
   * starting sessions as needed.
   */
  async encryptShares(targets: DeviceIdentity[], keyPackage: Uint8Array, shares: Map<string, Uint8Array>): Promise<void> {
    const todo = targets.filter((d) => !shares.has(d.deviceId));
    if (todo.length === 0) return;
    // Trust first: a key the hub presents that differs from the one we know blocks the whole user.
    for (const d of todo) {
      const seen = await this.trust.observe(d.userId, d.deviceId, d.identityKey);
      if (seen === 'changed') {
        this.events.identityChanged({ userId: d.userId, deviceIds: [d.deviceId] });
        throw untrusted(d.userId);
      }
    }
    const withoutSession: DeviceIdentity[] = [];
    for (const d of todo) if ((await this.sessions.load(d.userId, d.deviceId)).length === 0) withoutSession.push(d);
    const bundles = withoutSession.length
      ? await this.hub.claimBundles({ userIds: [...new Set(withoutSession.map((d) => d.userId))], deviceIds: withoutSession.map((d) => d.deviceId) })
      : [];
    const keys = await this.localKeys();
    await this.exclusive(async () => {
      for (const d of todo) {
        let sessions = await this.sessions.load(d.userId, d.deviceId);
        if (sessions.length === 0) {
          const bundle = bundles.find((b) => b.deviceId === d.deviceId && b.userId === d.userId);
          if (!bundle) continue; // the device vanished meanwhile: the hub will call the list stale
          try {
            // `d` comes from the user's signed device list: its key is the one a bundle must carry.
            const started = await startSession(keys.identity, bundle, { trustedIdentityKey: d.identityKey });
            sessions = [started.session];
          } catch (e) {
            if (isCryptoError(e, 'IDENTITY_MISMATCH')) {
              // The hub's bundle is for another key than the signed list gives: it is refused, not offered to the user to accept.
              this.events.deviceListRejected({ userId: d.userId, problem: 'substituted-key', version: (await this.deviceLists.pinned(d.userId))?.version ?? 0, deviceId: d.deviceId });
              throw new CurbsideError(ErrorCode.UNTRUSTED_IDENTITY, `The hub offered a key for ${d.userId}/${d.deviceId} that their signed device list does not give; nothing was sent`, { userId: d.userId, deviceId: d.deviceId });
            }
            // A bundle whose signed prekey does not verify: the hub (or someone) substituted it.
            throw new CurbsideError(ErrorCode.BAD_SIGNATURE, `Refusing a prekey bundle for ${d.userId}/${d.deviceId} that does not verify`, { userId: d.userId, deviceId: d.deviceId });
          }
        }
        const current = sessions[0]!;
        shares.set(d.deviceId, encryptSessionMessage(current, keyPackage));
        await this.store.transaction([this.sessions.saveOp(d.userId, d.deviceId, sessions)]);
      }
    });
  }

  /**
   * Decrypt one delivered envelope and emit what the app should see. Throws only
   * {@link ReceiveDeferred} (the client stopped before the message could be checked).
   */
  async receive(envelope: Envelope): Promise<void> {
    const me = this.self();
    // Our own statements too: if the ack was lost, this is how the team log catches up here.
    if (envelope.membership) {
      await this.teams.receive(envelope);
      return;
    }
    if (envelope.senderDeviceId === me.deviceId) return;
    if (envelope.senderDeviceId === SEALED_SENDER) return this.receiveSealed(envelope, me.userId);
    if (envelope.kind === 'receipt' && !envelope.ciphertext) return; // a receipt for other devices
    // Only a device its user's signed list names speaks for that user (a device inserted into the
    // hub's database does not).
    const listed = await this.senderListed(envelope);
    if (listed === 'deferred') throw new ReceiveDeferred('the client stopped before the sender could be checked');
    if (!listed) {
      this.onReceiveFailure(envelope, undefined, 'UNLISTED_DEVICE');
      return;
    }
    if (envelope.kind !== 'receipt' && (await this.teams.isTeam(envelope.conversationId))) {
      await this.teams.receive(envelope);
      return;
    }
    if (envelope.partial && !envelope.ciphertext) return; // addressed to other devices only
    if (!envelope.ciphertext) {
      this.events.unavailable({ conversationId: envelope.conversationId, messageId: envelope.messageId, seq: envelope.seq, senderUserId: envelope.senderUserId, reason: 'before-this-device' });
      return;
    }
    try {
      const keyPackage = await this.decryptShare(envelope);
      const content = openMessage(envelope.body, keyPackage, {
        conversationId: envelope.conversationId,
        senderUserId: envelope.senderUserId,
        senderDeviceId: envelope.senderDeviceId,
        clientMessageId: envelope.clientMessageId,
      });
      if (content.kind === 'receipt') {
        // A receipt from a team member's device (or our own) proves our sender key reached it intact.
        if (await this.teams.isTeam(envelope.conversationId)) await this.teams.senderKeyConfirmed(envelope.conversationId, envelope.senderDeviceId, content.messageIds);
        if (envelope.senderUserId === me.userId) return; // our own other device: nothing to show
        // An acknowledgement implies the message was read; it is told whether or not the status moved.
        const moved = await this.receipts.apply(envelope.conversationId, envelope.senderUserId, content.status === 'acknowledged' ? 'read' : content.status, content.messageIds);
        for (const messageId of content.status === 'acknowledged' ? content.messageIds : moved) {
          this.events.receipt({ conversationId: envelope.conversationId, messageId, userId: envelope.senderUserId, deviceId: envelope.senderDeviceId, status: content.status });
        }
        return;
      }
      if (content.kind === 'text') {
        this.events.message(chatMessageOf(envelope, content.text, me.userId, content.priority, content));
        if (envelope.partial) await this.roles.noteReceived(envelope, content, keyPackage);
      }
      if (content.kind === 'handoff') await this.roles.receiveHandoff(envelope, content);
    } catch (e) {
      this.onReceiveFailure(envelope, e);
    }
  }

  /**
   * Whether the sender's signed list names its device. Asking the hub may need the network: while
   * the connection is down the check waits for it (the stream waits too, in order), so a message is
   * never dropped only because the list could not be fetched; only a stopped client gives up.
   */
  private async senderListed(envelope: Envelope): Promise<boolean | 'deferred'> {
    const reached = await this.whileReachable(() => this.deviceLists.isListed(envelope.senderUserId, envelope.senderDeviceId));
    if (reached === 'deferred' || reached.ok) return reached === 'deferred' ? reached : reached.value;
    this.logger.warn({ err: String(reached.err), sender: envelope.senderDeviceId }, "could not verify the sender's device list");
    return false;
  }

  /**
   * Run a check that needs the hub, again while the hub cannot be reached: its value, the error that
   * was not transient (or outlasted the retries), or `deferred` once the client stopped.
   */
  private async whileReachable<T>(run: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown } | 'deferred'> {
    for (let attempt = 0; ; attempt++) {
      try {
        return { ok: true, value: await run() };
      } catch (err) {
        const transient = isCurbsideError(err) && RETRYABLE_ERROR_CODES.has(err.code);
        if (transient && this.hub.stopped()) return 'deferred';
        if (!transient || attempt >= MAX_LIST_CHECK_ATTEMPTS) return { ok: false, err };
        await sleep(backoffMs(attempt, { baseMs: 50, maxMs: 2000 }));
      }
    }
  }

  /** A pseudonymous pool post (sender `~sealed`), opened by `sealedPosts` once its token and signature verify. */
  private async receiveSealed(envelope: Envelope, myUserId: string): Promise<void> {
    const opener = this.sealedPosts;
    if (!opener) return;
    const opened = await this.whileReachable(() => opener.open(envelope, myUserId));
    if (opened === 'deferred') throw new ReceiveDeferred('the client stopped before the pseudonymous post could be checked');
    if (!opened.ok) this.onReceiveFailure(envelope, opened.err);
    else if (opened.value) this.events.message(opened.value);
  }

  /** @internal The 1:1 payload this envelope carries for this device. */
  async decryptShare(envelope: Envelope): Promise<Uint8Array> {
    const { senderUserId: userId, senderDeviceId: deviceId } = envelope;
    const message = decodeSessionMessage(envelope.ciphertext!);
    const keys = await this.localKeys();
    return this.exclusive(async () => {
      const sessions = await this.sessions.load(userId, deviceId);
      let firstError: unknown;
      for (let i = 0; i < sessions.length; i++) {
        // A prekey message repeating this session's X3DH base key is this session's own, whatever
        // else it says: if it fails, it was damaged, and it is not a new session to accept.
        const base = sessions[i]!.remoteBaseKey;
        const own = message.type === 'prekey' && base !== undefined && bytesEqual(base, message.ephemeralKey);
        try {
          if (own && !preKeyMessageMatchesSession(sessions[i]!, message)) throw new CryptoError('DECRYPT_FAILED', 'prekey message repeats a session base key with other fields');
          const plaintext = decryptSessionMessage(sessions[i]!, message);
          this.failures.readFrom(userId, deviceId);
          // The session that worked becomes the one we send on (this settles simultaneous starts).
          const reordered = [sessions[i]!, ...sessions.filter((_, j) => j !== i)];
          await this.store.transaction([this.sessions.saveOp(userId, deviceId, reordered)]);
          return plaintext;
        } catch (e) {
          firstError ??= e;
          if (isCryptoError(e, 'REPLAY') || own) throw e;
        }
      }
      if (message.type !== 'prekey') throw firstError ?? new SessionLost('no session with this device');
      // Decrypt first, judge the identity key after: the X3DH binds it, so a key that a flipped byte
      // changed fails here and must not mark the contact's key as changed.
      let accepted: Awaited<ReturnType<typeof acceptSession>>;
      try {
        accepted = await acceptSession(keys.identity, keys, message);
      } catch (e) {
        // No prekey for it: this is a new session we cannot accept (ours is lost); else it was damaged.
        if (isCryptoError(e, 'UNKNOWN_PREKEY') && sessions.length === 0) throw new SessionLost(e.detail);
        throw e;
      }
      // A new session must come from the key the sender's signed device list gives that device.
      const listedKey = await this.deviceLists.keyOf(userId, deviceId);
      if (!listedKey || !bytesEqual(listedKey, accepted.theirIdentityKey)) throw new UnlistedKey();
      const seen = await this.trust.observe(userId, deviceId, accepted.theirIdentityKey);
      if (seen === 'changed') {
        this.events.identityChanged({ userId, deviceIds: [deviceId] });
        throw untrusted(userId);
      }
      const all: RatchetSession[] = [accepted.session, ...sessions].slice(0, 1 + MAX_ARCHIVED_SESSIONS);
      await this.store.transaction([
        this.sessions.saveOp(userId, deviceId, all),
        ...(accepted.usedOneTimePrekeyId !== undefined ? [deleteOp('prekeys', String(accepted.usedOneTimePrekeyId))] : []),
      ]);
      if (accepted.usedOneTimePrekeyId !== undefined) void this.publishKeys().catch(() => {}); // refill if low
      return accepted.plaintext;
    });
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

function untrusted(userId: string): CurbsideError {
  return new CurbsideError(ErrorCode.UNTRUSTED_IDENTITY, `The safety key of ${userId} changed; accept or verify it before sending`, { userId });
}
