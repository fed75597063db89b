/**
 * What happens when a message cannot be read: it is reported once (a `decryptionError` with a typed
 * reason and wording safe to show a clinician) and changes nothing else; a replay is dropped silently.
 * The 1:1 session with the sender's device is repaired only on evidence that it is lost, at most
 * once per device in a while; in a care team by an empty share to that one device, never a message
 * into the team's stream.
 */
import { ErrorCode, type Envelope } from '@curbside/shared';
import { isCryptoError, type CryptoErrorCode } from '../crypto/index.js';
import { isCurbsideError } from '../errors.js';
import { DecryptionError, type DecryptionFailureReason, type MessengerEvents, type SdkLogger } from './types.js';

/** Failures that are not crypto errors, named by the caller. */
export type FailureOverride = 'NO_SENDER_KEY' | 'NOT_A_MEMBER' | 'STALE_EPOCH' | 'UNLISTED_DEVICE';

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

/** This device holds no session that can read the message (not a damaged message). */
export class SessionLost extends Error {}

/** A new session from an identity key the sender's signed device list does not give that device. */
export class UnlistedKey extends Error {}

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

export interface ReceiveFailuresDeps {
  events(): MessengerEvents;
  logger: SdkLogger;
  forgetSession(userId: string, deviceId: string): Promise<void>;
  /** Start a new 1:1 session with everyone in a conversation (a `session-reset` control message). */
  sendReset(conversationId: string): Promise<void>;
  /** Start a new 1:1 session with one device of a care team (an empty share to it alone). */
  repairTeamSession(teamId: string, userId: string, deviceId: string): Promise<void>;
}

export class ReceiveFailures {
  private readonly lastRepair = new Map<string, number>();
  /** Per peer device: messages in a row whose header said the chain is too far ahead. */
  private readonly farAhead = new Map<string, number>();

  constructor(private readonly deps: ReceiveFailuresDeps) {}

  /** A message from this device was read: a "too far ahead" before it was no evidence. */
  readFrom(userId: string, deviceId: string): void {
    this.farAhead.delete(peerKey(userId, deviceId));
  }

  /**
   * Report a message that could not be read, once, and change nothing else. `reasonOverride`
   * names failures that are not crypto errors (a missing sender key, a non-member sender). A message
   * that fails authentication costs that message only: the session is repaired only on evidence that
   * it is lost (no session, or a chain too far ahead to follow, said by two messages in a row); in a
   * care team, with a share to the one device concerned, never a message into the team's stream.
   */
  report(envelope: Envelope, e: unknown, reasonOverride?: FailureOverride, inTeam = false): void {
    const base = { conversationId: envelope.conversationId, messageId: envelope.messageId, seq: envelope.seq, sender: envelope.senderDeviceId };
    if (isCryptoError(e, 'REPLAY')) {
      // Already read once (a re-delivery after a restart, or a replay by the network): never shown twice.
      this.deps.logger.debug(base, 'dropped a replayed message');
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
    this.deps.logger.warn({ ...base, reason, detail: isCryptoError(e) ? e.detail : String(e) }, 'message could not be decrypted');
    this.deps.events().decryptionError(
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
      await this.deps.forgetSession(userId, deviceId);
      // In a care team, a new session goes to that one device only (an empty share; nobody else's
      // stream sees it), and its sender key then reaches this device with its next message.
      if (inTeam) await this.deps.repairTeamSession(conversationId, userId, deviceId);
      else await this.deps.sendReset(conversationId);
      this.deps.logger.debug({ peer: deviceId, inTeam }, 'sent a session repair');
    })().catch((err: unknown) => this.deps.logger.warn({ err: String(err) }, 'session repair failed'));
  }
}
