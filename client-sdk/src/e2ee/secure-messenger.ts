import { ErrorCode, RETRYABLE_ERROR_CODES, backoffMs, sleep, type DeviceIdentity, type Envelope, type SendResult } from '@curbside/shared';
import {
  CryptoError,
  FINGERPRINT_ITERATIONS,
  RatchetSession,
  acceptSession,
  bytesEqual,
  computeFingerprint,
  concatBytes,
  decodeSessionMessage,
  encryptSessionMessage,
  decryptSessionMessage,
  fingerprintKeyBytes,
  isCryptoError,
  preKeyMessageMatchesSession,
  sodiumReady,
  startSession,
  type CryptoErrorCode,
} from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { deleteOp, type DeviceStore } from '../stores/index.js';
import { LocalKeys } from './local-keys.js';
import { MAX_RECEIPT_IDS, sealMessage, openMessage, type MessageContent } from './message-crypto.js';
import { MAX_ARCHIVED_SESSIONS, SessionBook, TrustBook } from './peer-state.js';
import { TeamMessenger } from './team-messenger.js';
import { ReceiptBook, type ReceiptStatus } from './receipts.js';
import { DeviceListBook } from './device-lists.js';
import {
  DecryptionError,
  type ChatMessage,
  type DecryptionFailureReason,
  type HubTransport,
  type MessengerEvents,
  type SafetyNumber,
  type SdkLogger,
  type TeamContext,
} from './types.js';


/** Evidence that the session with a device is lost, so a new one is started. */
const SESSION_LOST_REASONS: ReadonlySet<DecryptionFailureReason> = new Set<DecryptionFailureReason>(['NO_SESSION', 'GAP_TOO_LARGE', 'TOO_MANY_SKIPPED']);
/**
 * A chain "too far ahead" is read off an unauthenticated header: one flipped counter byte says so
 * too. It counts as evidence only when this many messages from the device say it with none read in
 * between (an honest sender's next message says it again; a forged one is followed by readable ones).
 */
const UNAUTHENTICATED_EVIDENCE = 2;
const UNAUTHENTICATED_REASONS: ReadonlySet<DecryptionFailureReason> = new Set<DecryptionFailureReason>(['GAP_TOO_LARGE', 'TOO_MANY_SKIPPED']);

function authenticationOrCode(code: CryptoErrorCode): DecryptionFailureReason {
  return code === 'DECRYPT_FAILED' || code === 'BAD_SIGNATURE' ? 'AUTHENTICATION_FAILED' : code;
}

function peerKey(userId: string, deviceId: string): string {
  return `${userId}\n${deviceId}`;
}

/**
 * @internal Thrown by `receive` when the client stopped before the message could be checked (its
 * sender's device list needs the hub): the message was not handled and must be handed out again.
 */
export class ReceiveDeferred extends Error {}

/** This device holds no session that can read the message (not a damaged message). */
class SessionLost extends Error {}

/** A new session from an identity key the sender's signed device list does not give that device. */
class UnlistedKey extends Error {}

const MAX_STALE_RETRIES = 3;
/** Tries of a sender's device-list check while the hub cannot be reached (about two minutes in all). */
const MAX_LIST_CHECK_ATTEMPTS = 70;
/** Delivered receipts are batched this long, so a burst of messages costs one receipt. */
const RECEIPT_BATCH_MS = 150;
/** Tries of one delivered receipt before giving up (each after a longer wait). */
const RECEIPT_ATTEMPTS = 5;
/** A peer device gets at most one automatic session repair in this window. */
const REPAIR_INTERVAL_MS = 30_000;

const USER_MESSAGES: Record<string, string> = {
  NO_SENDER_KEY: "This care-team message could not be decrypted: the sender's key has not reached this device. It should arrive with their next message.",
  NOT_A_MEMBER: 'A message arrived from someone who is not a verified member of this care team; it was not shown.',
  UNLISTED_DEVICE: "A message came from a device that is not in its sender's signed device list, so it was not shown. If the sender just added a device, it will be linked first.",
  STALE_EPOCH: 'A care-team message was encrypted for an earlier membership of the team than the one in force when it was sent; it was not shown.',
  UNTRUSTED_IDENTITY: "This message came from a device whose safety key changed. Verify the contact's safety number to read it.",
  NO_SESSION: 'This message could not be decrypted. The secure session is being repaired; ask the sender to resend if it matters.',
  AUTHENTICATION_FAILED: 'This message was damaged or tampered with on its way, so it was not shown. Later messages are not affected.',
};

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
  private readonly lastRepair = new Map<string, number>();
  /** Per peer device: messages in a row whose header said the chain is too far ahead. */
  private readonly farAhead = new Map<string, number>();
  private readonly teams: TeamMessenger;
  private readonly receipts: ReceiptBook;
  /** @internal Signed device lists: every device list this messenger encrypts to comes from here. */
  readonly deviceLists: DeviceListBook;
  /** Delivered receipts waiting to go out, per conversation and original sender. */
  private readonly pendingDelivered = new Map<string, { conversationId: string; senderUserId: string; ids: Set<string> }>();
  private deliveredTimer: ReturnType<typeof setTimeout> | undefined;

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
    this.deviceLists = new DeviceListBook(store, hub, self, () => this.localKeys(), () => this.events);
    this.teams = new TeamMessenger(this);
    // Every message shown to the app is acknowledged to its sender (a delivered receipt).
    const emitMessage = events.message;
    this.events = {
      ...events,
      message: (m) => {
        // Remember the sender first: an app may call markRead from inside its message handler (its
        // look-up queues behind this note).
        if (!m.outgoing) {
          this.receipts
            .noteReceived(m.conversationId, m.messageId, m.senderUserId)
            .catch((err: unknown) => this.logger.warn({ err: String(err) }, 'could not keep the sender of a received message'));
        }
        emitMessage(m);
        if (!m.outgoing) this.queueDelivered(m);
      },
    };
  }

  private queueDelivered(m: ChatMessage): void {
    const key = `${m.conversationId}\n${m.senderUserId}`;
    const batch = this.pendingDelivered.get(key) ?? { conversationId: m.conversationId, senderUserId: m.senderUserId, ids: new Set<string>() };
    batch.ids.add(m.messageId);
    this.pendingDelivered.set(key, batch);
    this.deliveredTimer ??= setTimeout(() => {
      this.deliveredTimer = undefined;
      const batches = [...this.pendingDelivered.values()];
      this.pendingDelivered.clear();
      for (const b of batches) void this.deliverReceipt(b.conversationId, b.senderUserId, [...b.ids], 1);
    }, RECEIPT_BATCH_MS);
  }

  /**
   * Send a delivered receipt; a failure (a timeout under load, a dropped connection) is retried with
   * backoff, unless the app closed the client: a closed client sends nothing more, and no retry timer
   * keeps a Node process alive after `close()`.
   */
  private async deliverReceipt(conversationId: string, senderUserId: string, ids: string[], attempt: number): Promise<void> {
    try {
      await this.sendReceipt(conversationId, senderUserId, 'delivered', ids);
    } catch (err) {
      const refused = isCurbsideError(err) && (err.code === ErrorCode.FORBIDDEN || err.code === ErrorCode.UNTRUSTED_IDENTITY);
      const final = attempt >= RECEIPT_ATTEMPTS || refused || this.hub.stopped();
      this.logger.debug({ err: String(err), conversationId, attempt }, final ? 'delivered receipt not sent' : 'delivered receipt failed, retrying');
      if (final) return;
      const retry = setTimeout(() => {
        if (!this.hub.stopped()) void this.deliverReceipt(conversationId, senderUserId, ids, attempt + 1);
      }, backoffMs(attempt, { baseMs: 500, maxMs: 30_000 }));
      // Node: a live client's socket keeps the process running; a retry alone does not.
      (retry as { unref?: () => void }).unref?.();
    }
  }

  /**
   * @internal A team message from another of this user's devices carried its sender key here and
   * decrypted: tell this user's devices (a delivered receipt), so the sender stops sending the key.
   */
  confirmSiblingShare(conversationId: string, messageId: string): void {
    void this.deliverReceipt(conversationId, this.self().userId, [messageId], 1);
  }

  /** Tell the senders of these messages that the user read them. */
  async markRead(conversationId: string, messageIds: string[]): Promise<void> {
    const bySender = new Map<string, string[]>();
    for (const id of messageIds) {
      const from = await this.receipts.senderOf(id);
      if (!from || from.conversationId !== conversationId) continue;
      bySender.set(from.senderUserId, [...(bySender.get(from.senderUserId) ?? []), id]);
    }
    for (const [sender, ids] of bySender) {
      for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) await this.sendReceipt(conversationId, sender, 'read', ids.slice(i, i + MAX_RECEIPT_IDS));
    }
  }

  /** Status per recipient of a message this device sent, or undefined if unknown. */
  messageStatus(messageId: string): Record<string, ReceiptStatus> | undefined {
    return this.receipts.status(messageId);
  }

  private sendReceipt(conversationId: string, senderUserId: string, status: 'delivered' | 'read', messageIds: string[]): Promise<SendResult> {
    return this.send(conversationId, { kind: 'receipt', status, messageIds }, { toUserIds: [senderUserId] });
  }

  /** @internal Record a message this device sent, to follow its receipts. */
  async noteSent(conversationId: string, messageId: string, recipientUserIds: string[]): Promise<void> {
    // The message is sent either way: a store that cannot keep its status costs only the status.
    await this.receipts
      .noteSent(conversationId, messageId, recipientUserIds)
      .catch((err: unknown) => this.logger.warn({ err: String(err) }, 'could not keep the status of a sent message'));
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
   * Encrypt and send text. Resolves with the hub's ack.
   * @throws CurbsideError UNTRUSTED_IDENTITY if a member's key changed and was not accepted.
   */
  async sendText(conversationId: string, text: string): Promise<SendResult> {
    if (await this.teams.isTeam(conversationId)) return this.teams.sendText(conversationId, text);
    let ack: SendResult;
    try {
      ack = await this.send(conversationId, { kind: 'text', text });
    } catch (e) {
      // A care team whose create statement this device has not processed yet: the hub wants a team
      // message (bound to the membership epoch). Catch up on the log and send it as one.
      if (!isCurbsideError(e) || e.code !== ErrorCode.STALE_EPOCH) throw e;
      await this.hub.catchUp();
      if (!(await this.teams.isTeam(conversationId))) throw e;
      return this.teams.sendText(conversationId, text);
    }
    const me = this.self();
    await this.noteSent(conversationId, ack.messageId, (await this.hub.conversationMembers(conversationId)).filter((u) => u !== me.userId));
    return ack;
  }

  /**
   * Seal `content` and send it. By default to every device of every member; with `toUserIds`, a
   * partial send to those users' devices (and this user's other devices) only.
   */
  private async send(conversationId: string, content: MessageContent, options: { toUserIds?: string[] } = {}): Promise<SendResult> {
    const me = this.self();
    const members = options.toUserIds ? [...new Set([...options.toUserIds, me.userId])] : await this.hub.conversationMembers(conversationId);
    const partial = options.toUserIds !== undefined;
    const kind = content.kind === 'receipt' ? ('receipt' as const) : undefined;
    for (const userId of members) {
      if (userId !== me.userId && (await this.trust.isBlocked(userId))) throw untrusted(userId);
    }
    const clientMessageId = globalThis.crypto.randomUUID();
    const { body, keyPackage } = sealMessage(content, { conversationId, senderUserId: me.userId, senderDeviceId: me.deviceId, clientMessageId });
    let targets = (await this.listDevices(members)).filter((d) => d.deviceId !== me.deviceId);
    const shares = new Map<string, Uint8Array>();
    for (let attempt = 0; ; attempt++) {
      await this.encryptShares(targets, keyPackage, shares);
      const recipients = targets.map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
      try {
        if (recipients.length === 0) return await this.hub.sendEnvelope(conversationId, { body, ...(kind ? { kind } : {}) }, { clientMessageId });
        return await this.hub.sendEnvelope(conversationId, { body, recipients, ...(partial ? { partial } : {}), ...(kind ? { kind } : {}) }, { clientMessageId });
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
        for (const messageId of await this.receipts.apply(envelope.conversationId, envelope.senderUserId, content.status, content.messageIds)) {
          this.events.receipt({ conversationId: envelope.conversationId, messageId, userId: envelope.senderUserId, deviceId: envelope.senderDeviceId, status: content.status });
        }
        return;
      }
      if (content.kind === 'text') {
        this.events.message({
          conversationId: envelope.conversationId,
          messageId: envelope.messageId,
          seq: envelope.seq,
          senderUserId: envelope.senderUserId,
          senderDeviceId: envelope.senderDeviceId,
          sentAt: envelope.sentAt,
          text: content.text,
          outgoing: envelope.senderUserId === me.userId,
        });
      }
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
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deviceLists.isListed(envelope.senderUserId, envelope.senderDeviceId);
      } catch (err) {
        const transient = isCurbsideError(err) && RETRYABLE_ERROR_CODES.has(err.code);
        if (transient && this.hub.stopped()) return 'deferred';
        if (!transient || attempt >= MAX_LIST_CHECK_ATTEMPTS) {
          this.logger.warn({ err: String(err), sender: envelope.senderDeviceId }, "could not verify the sender's device list");
          return false;
        }
        await sleep(backoffMs(attempt, { baseMs: 50, maxMs: 2000 }));
      }
    }
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
          this.farAhead.delete(peerKey(userId, deviceId));
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

  /**
   * @internal Report a message that could not be read, once, and change nothing else. `reasonOverride`
   * names failures that are not crypto errors (a missing sender key, a non-member sender). A message
   * that fails authentication costs that message only: the session is repaired only on evidence that
   * it is lost (no session, or a chain too far ahead to follow, said by two messages in a row); in a
   * care team, with a share to the one device concerned, never a message into the team's stream.
   */
  onReceiveFailure(envelope: Envelope, e: unknown, reasonOverride?: 'NO_SENDER_KEY' | 'NOT_A_MEMBER' | 'STALE_EPOCH' | 'UNLISTED_DEVICE', inTeam = false): void {
    const base = { conversationId: envelope.conversationId, messageId: envelope.messageId, seq: envelope.seq, sender: envelope.senderDeviceId };
    if (isCryptoError(e, 'REPLAY')) {
      // Already read once (a re-delivery after a restart, or a replay by the network): never shown twice.
      this.logger.debug(base, 'dropped a replayed message');
      return;
    }
    const reason: DecryptionFailureReason =
      reasonOverride ??
      (e instanceof SessionLost
        ? 'NO_SESSION'
        : e instanceof UnlistedKey
          ? 'UNLISTED_DEVICE'
        : isCurbsideError(e) && e.code === ErrorCode.UNTRUSTED_IDENTITY
          ? 'UNTRUSTED_IDENTITY'
          : isCryptoError(e)
            ? authenticationOrCode(e.code)
            : 'NO_SESSION');
    const userMessage = USER_MESSAGES[reason] ?? (isCryptoError(e) ? e.message : USER_MESSAGES.NO_SESSION!);
    this.logger.warn({ ...base, reason, detail: isCryptoError(e) ? e.detail : String(e) }, 'message could not be decrypted');
    this.events.decryptionError(
      new DecryptionError(envelope.conversationId, envelope.messageId, envelope.seq, envelope.senderUserId, envelope.senderDeviceId, reason, userMessage),
    );
    if (!SESSION_LOST_REASONS.has(reason)) return;
    if (UNAUTHENTICATED_REASONS.has(reason)) {
      const key = peerKey(envelope.senderUserId, envelope.senderDeviceId);
      const seen = (this.farAhead.get(key) ?? 0) + 1;
      this.farAhead.set(key, seen);
      if (seen < UNAUTHENTICATED_EVIDENCE) return;
      this.farAhead.delete(key);
    }
    this.repair(envelope, inTeam);
  }

  /**
   * The session with a device is lost: drop it and start a fresh X3DH by sending the peer a small
   * control message (invisible to the app), at most once per peer per interval.
   */
  private repair(envelope: Envelope, inTeam: boolean): void {
    const { senderUserId: userId, senderDeviceId: deviceId, conversationId } = envelope;
    const key = peerKey(userId, deviceId);
    const now = Date.now();
    if (now - (this.lastRepair.get(key) ?? 0) < REPAIR_INTERVAL_MS) return;
    this.lastRepair.set(key, now);
    void (async () => {
      await this.exclusive(() => this.sessions.forget(userId, deviceId));
      // In a care team, a new session goes to that one device only (an empty share; nobody else's
      // stream sees it), and its sender key then reaches this device with its next message.
      if (inTeam) await this.teams.repairSession(conversationId, userId, deviceId);
      else await this.send(conversationId, { kind: 'session-reset' });
      this.logger.debug({ peer: deviceId, inTeam }, 'sent a session repair');
    })().catch((err: unknown) => this.logger.warn({ err: String(err) }, 'session repair failed'));
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
    const own = await this.identityKey();
    const myKeys = mine.map((d) => (d.deviceId === me.deviceId ? own : d.identityKey));
    if (!mine.some((d) => d.deviceId === me.deviceId)) myKeys.push(own);
    const fingerprint = await computeFingerprint(2, FINGERPRINT_ITERATIONS, utf8(me.userId), combinedKeys(myKeys), utf8(userId), combinedKeys(theirs.map((d) => d.identityKey)));
    // Some devices verified, others not: the signed list gained a device since the user compared numbers.
    const state = changed.length ? 'changed' : theirs.length > 0 && verifiedDevices === theirs.length ? 'verified' : verifiedDevices > 0 ? 'devices-changed' : 'unverified';
    return { ...fingerprint, state };
  }
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** All of a user's device keys, sorted so both sides encode them the same way. */
function combinedKeys(keys: Uint8Array[]): Uint8Array {
  return concatBytes(...keys.map((k) => fingerprintKeyBytes(k)).sort((a, b) => compareBytes(a, b)));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function untrusted(userId: string): CurbsideError {
  return new CurbsideError(ErrorCode.UNTRUSTED_IDENTITY, `The safety key of ${userId} changed; accept or verify it before sending`, { userId });
}
