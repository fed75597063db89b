/**
 * The receive path of the pairwise layer: what `SecureMessenger.receive` does with one delivered
 * envelope. Team statements and team messages go to the team messenger, pseudonymous pool posts to
 * their opener, and a 1:1 message is checked against its sender's signed device list, decrypted
 * (`decryptShare`, which accepts new sessions) and shown, or applied when it is a receipt or a
 * hand-off. Every change to session state here runs under the messenger's `exclusive()`.
 */
import { RETRYABLE_ERROR_CODES, SEALED_SENDER, backoffMs, sleep, type Envelope } from '@curbside/shared';
import {
  CryptoError,
  RatchetSession,
  acceptSession,
  bytesEqual,
  decodeSessionMessage,
  decryptSessionMessage,
  isCryptoError,
  preKeyMessageMatchesSession,
} from '../crypto/index.js';
import { isCurbsideError } from '../errors.js';
import { deleteOp } from '../stores/index.js';
import { openMessage } from './message-crypto.js';
import { MAX_ARCHIVED_SESSIONS, type SessionBook } from './peer-state.js';
import type { TeamMessenger } from './team-messenger.js';
import type { RoleThreads } from './role-threads.js';
import type { ReceiptBook } from './receipts.js';
import { SessionLost, UnlistedKey, type ReceiveFailures } from './receive-failures.js';
import { chatMessageOf, untrustedIdentity, type ChatMessage, type TeamContext } from './types.js';

/**
 * @internal Thrown by `receive` when the client stopped before the message could be checked (its
 * sender's device list needs the hub): the message was not handled and must be handed out again.
 */
export class ReceiveDeferred extends Error {}

/** Tries of a sender's device-list check while the hub cannot be reached (about two minutes in all). */
const MAX_LIST_CHECK_ATTEMPTS = 70;

/** Opens pseudonymous pool posts once their token and signature verify (see `PseudonymousPosts`). */
export interface SealedPostOpener {
  open(envelope: Envelope, myUserId: string): Promise<ChatMessage | undefined>;
}

/** What the receive path uses of the messenger that owns it (its side of the {@link TeamContext}). */
export type ReceiveCore = Pick<TeamContext, 'store' | 'hub' | 'self' | 'events' | 'logger' | 'trust' | 'deviceLists' | 'localKeys' | 'exclusive'>;

/** The messenger's parts the receive path hands envelopes and results to. */
export interface ReceiveParts {
  sessions: SessionBook;
  receipts: Pick<ReceiptBook, 'apply'>;
  teams: Pick<TeamMessenger, 'receive' | 'isTeam' | 'senderKeyConfirmed'>;
  roles: Pick<RoleThreads, 'noteReceived' | 'receiveHandoff'>;
  failures: Pick<ReceiveFailures, 'report' | 'readFrom'>;
  /** The opener of pseudonymous posts, once the client set one. */
  sealedPosts(): SealedPostOpener | undefined;
  /** Publish keys again (a one-time prekey was used up). */
  publishKeys(): Promise<void>;
}

export class ReceivePath {
  constructor(
    private readonly core: ReceiveCore,
    private readonly parts: ReceiveParts,
  ) {}

  /**
   * Decrypt one delivered envelope and emit what the app should see. Throws only
   * {@link ReceiveDeferred} (the client stopped before the message could be checked).
   */
  async receive(envelope: Envelope): Promise<void> {
    const { teams } = this.parts;
    const { events } = this.core;
    const me = this.core.self();
    // Our own statements too: if the ack was lost, this is how the team log catches up here.
    if (envelope.membership) {
      await teams.receive(envelope);
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
      this.parts.failures.report(envelope, undefined, 'UNLISTED_DEVICE');
      return;
    }
    if (envelope.kind !== 'receipt' && (await teams.isTeam(envelope.conversationId))) {
      await teams.receive(envelope);
      return;
    }
    if (envelope.partial && !envelope.ciphertext) return; // addressed to other devices only
    if (!envelope.ciphertext) {
      events.unavailable({ conversationId: envelope.conversationId, messageId: envelope.messageId, seq: envelope.seq, senderUserId: envelope.senderUserId, reason: 'before-this-device' });
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
        if (await teams.isTeam(envelope.conversationId)) await teams.senderKeyConfirmed(envelope.conversationId, envelope.senderDeviceId, content.messageIds);
        if (envelope.senderUserId === me.userId) return; // our own other device: nothing to show
        // An acknowledgement implies the message was read; it is told whether or not the status moved.
        const moved = await this.parts.receipts.apply(envelope.conversationId, envelope.senderUserId, content.status === 'acknowledged' ? 'read' : content.status, content.messageIds);
        for (const messageId of content.status === 'acknowledged' ? content.messageIds : moved) {
          events.receipt({ conversationId: envelope.conversationId, messageId, userId: envelope.senderUserId, deviceId: envelope.senderDeviceId, status: content.status });
        }
        return;
      }
      if (content.kind === 'text') {
        events.message(chatMessageOf(envelope, content.text, me.userId, content.priority, content));
        if (envelope.partial) await this.parts.roles.noteReceived(envelope, content, keyPackage);
      }
      if (content.kind === 'handoff') await this.parts.roles.receiveHandoff(envelope, content);
    } catch (e) {
      this.parts.failures.report(envelope, e);
    }
  }

  /**
   * Whether the sender's signed list names its device. Asking the hub may need the network: while
   * the connection is down the check waits for it (the stream waits too, in order), so a message is
   * never dropped only because the list could not be fetched; only a stopped client gives up.
   */
  private async senderListed(envelope: Envelope): Promise<boolean | 'deferred'> {
    const reached = await this.whileReachable(() => this.core.deviceLists.isListed(envelope.senderUserId, envelope.senderDeviceId));
    if (reached === 'deferred' || reached.ok) return reached === 'deferred' ? reached : reached.value;
    this.core.logger.warn({ err: String(reached.err), sender: envelope.senderDeviceId }, "could not verify the sender's device list");
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
        if (transient && this.core.hub.stopped()) return 'deferred';
        if (!transient || attempt >= MAX_LIST_CHECK_ATTEMPTS) return { ok: false, err };
        await sleep(backoffMs(attempt, { baseMs: 50, maxMs: 2000 }));
      }
    }
  }

  /** A pseudonymous pool post (sender `~sealed`), opened by `sealedPosts` once its token and signature verify. */
  private async receiveSealed(envelope: Envelope, myUserId: string): Promise<void> {
    const opener = this.parts.sealedPosts();
    if (!opener) return;
    const opened = await this.whileReachable(() => opener.open(envelope, myUserId));
    if (opened === 'deferred') throw new ReceiveDeferred('the client stopped before the pseudonymous post could be checked');
    if (!opened.ok) this.parts.failures.report(envelope, opened.err);
    else if (opened.value) this.core.events.message(opened.value);
  }

  /** The 1:1 payload this envelope carries for this device. */
  async decryptShare(envelope: Envelope): Promise<Uint8Array> {
    const { store, deviceLists, trust } = this.core;
    const { sessions: book, failures } = this.parts;
    const { senderUserId: userId, senderDeviceId: deviceId } = envelope;
    const message = decodeSessionMessage(envelope.ciphertext!);
    const keys = await this.core.localKeys();
    return this.core.exclusive(async () => {
      const sessions = await book.load(userId, deviceId);
      let firstError: unknown;
      for (let i = 0; i < sessions.length; i++) {
        // A prekey message repeating this session's X3DH base key is this session's own, whatever
        // else it says: if it fails, it was damaged, and it is not a new session to accept.
        const base = sessions[i]!.remoteBaseKey;
        const own = message.type === 'prekey' && base !== undefined && bytesEqual(base, message.ephemeralKey);
        try {
          if (own && !preKeyMessageMatchesSession(sessions[i]!, message)) throw new CryptoError('DECRYPT_FAILED', 'prekey message repeats a session base key with other fields');
          const plaintext = decryptSessionMessage(sessions[i]!, message);
          failures.readFrom(userId, deviceId);
          // The session that worked becomes the one we send on (this settles simultaneous starts).
          const reordered = [sessions[i]!, ...sessions.filter((_, j) => j !== i)];
          await store.transaction([book.saveOp(userId, deviceId, reordered)]);
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
      const listedKey = await deviceLists.keyOf(userId, deviceId);
      if (!listedKey || !bytesEqual(listedKey, accepted.theirIdentityKey)) throw new UnlistedKey();
      const seen = await trust.observe(userId, deviceId, accepted.theirIdentityKey);
      if (seen === 'changed') {
        this.core.events.identityChanged({ userId, deviceIds: [deviceId] });
        throw untrustedIdentity(userId);
      }
      const all: RatchetSession[] = [accepted.session, ...sessions].slice(0, 1 + MAX_ARCHIVED_SESSIONS);
      await store.transaction([
        book.saveOp(userId, deviceId, all),
        ...(accepted.usedOneTimePrekeyId !== undefined ? [deleteOp('prekeys', String(accepted.usedOneTimePrekeyId))] : []),
      ]);
      if (accepted.usedOneTimePrekeyId !== undefined) void this.parts.publishKeys().catch(() => {}); // refill if low
      return accepted.plaintext;
    });
  }
}
