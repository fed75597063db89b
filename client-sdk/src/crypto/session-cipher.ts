/**
 * 1:1 session messages: X3DH + Double Ratchet glued together.
 *
 * Until the initiator has received a message from the responder (X3DH has no key confirmation),
 * every message it sends is a PreKeyMessage that repeats the X3DH data, so whichever arrives first
 * lets the responder set the session up. After the first reply, plain ratchet messages.
 *
 * Wire format (integers big-endian):
 *
 *   u8 version = 1 ‖ u8 type ‖ body
 *   type 1, ratchet message:  body = ratchet message (see ratchet.ts)
 *   type 2, prekey message:   body = identityKey[32] (initiator's Ed25519 identity public key)
 *                                    ‖ ephemeralKey[32] (EK_A, X25519)
 *                                    ‖ u32 signedPrekeyId
 *                                    ‖ u8 hasOneTimePrekey (0 or 1) ‖ [u32 oneTimePrekeyId]
 *                                    ‖ ratchet message
 *
 * The X3DH fields are not signed: they are bound by the key agreement itself (wrong values give a
 * different SK and the ratchet message fails to decrypt) and by the AD (IK_A ‖ IK_B).
 */
import { ByteReader, ByteWriter, isU32 } from './bytes.js';
import { CryptoError } from './errors.js';
import { ED25519_PUBLIC_BYTES, X25519_BYTES, type IdentityKeyPair, type KeyPair } from './keys.js';
import { RATCHET_HEADER_BYTES, RatchetSession } from './ratchet.js';
import { AEAD_TAG_BYTES, bytesEqual, sodiumReady } from './sodium.js';
import { x3dhInitiate, x3dhRespond, type PrekeyBundle } from './x3dh.js';

export const SESSION_MESSAGE_VERSION = 1;
export const SESSION_MESSAGE_RATCHET = 1;
export const SESSION_MESSAGE_PREKEY = 2;

export interface PreKeyMessage {
  type: 'prekey';
  identityKey: Uint8Array;
  ephemeralKey: Uint8Array;
  signedPrekeyId: number;
  oneTimePrekeyId?: number;
  ratchetMessage: Uint8Array;
}

export interface RatchetMessage {
  type: 'ratchet';
  ratchetMessage: Uint8Array;
}

export type SessionMessage = PreKeyMessage | RatchetMessage;

/** Where the responder finds its private prekeys by id. Return undefined for an unknown id. */
export interface PrekeyLookup {
  signedPrekey(keyId: number): KeyPair | undefined | Promise<KeyPair | undefined>;
  oneTimePrekey(keyId: number): KeyPair | undefined | Promise<KeyPair | undefined>;
}

export interface StartSessionOptions {
  /**
   * The identity key the app already trusts for this contact, if any. If the bundle carries a
   * different one, CryptoError('IDENTITY_MISMATCH') and nothing is sent until the user accepts it.
   */
  trustedIdentityKey?: Uint8Array;
}

export type AcceptSessionOptions = StartSessionOptions;

export function encodeSessionMessage(message: SessionMessage): Uint8Array {
  const w = new ByteWriter(message.ratchetMessage.length + 80).u8(SESSION_MESSAGE_VERSION);
  if (message.type === 'ratchet') return w.u8(SESSION_MESSAGE_RATCHET).bytes(message.ratchetMessage).finish();
  if (message.identityKey.length !== ED25519_PUBLIC_BYTES || message.ephemeralKey.length !== X25519_BYTES) {
    throw new RangeError('prekey message: identity and ephemeral keys must be 32 bytes');
  }
  w.u8(SESSION_MESSAGE_PREKEY).bytes(message.identityKey).bytes(message.ephemeralKey).u32(message.signedPrekeyId);
  if (message.oneTimePrekeyId === undefined) w.u8(0);
  else w.u8(1).u32(message.oneTimePrekeyId);
  return w.bytes(message.ratchetMessage).finish();
}

/** Parses a session message. Anything malformed is CryptoError('BAD_MESSAGE'). */
export function decodeSessionMessage(bytes: Uint8Array): SessionMessage {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'session message is not bytes');
  const r = new ByteReader(bytes, 'session message');
  const version = r.u8();
  if (version !== SESSION_MESSAGE_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown session message version ${version}`);
  const type = r.u8();
  let message: SessionMessage;
  if (type === SESSION_MESSAGE_RATCHET) {
    message = { type: 'ratchet', ratchetMessage: r.rest() };
  } else if (type === SESSION_MESSAGE_PREKEY) {
    const identityKey = r.bytes(ED25519_PUBLIC_BYTES);
    const ephemeralKey = r.bytes(X25519_BYTES);
    const signedPrekeyId = r.u32();
    const hasOneTime = r.u8();
    if (hasOneTime > 1) throw new CryptoError('BAD_MESSAGE', 'prekey message: bad one-time prekey flag');
    const oneTimePrekeyId = hasOneTime === 1 ? r.u32() : undefined;
    const pre: PreKeyMessage = { type: 'prekey', identityKey, ephemeralKey, signedPrekeyId, ratchetMessage: r.rest() };
    if (oneTimePrekeyId !== undefined) pre.oneTimePrekeyId = oneTimePrekeyId;
    message = pre;
  } else {
    throw new CryptoError('BAD_MESSAGE', `unknown session message type ${type}`);
  }
  if (message.ratchetMessage.length < RATCHET_HEADER_BYTES + AEAD_TAG_BYTES) throw new CryptoError('BAD_MESSAGE', 'session message: ratchet message too short');
  return message;
}

/**
 * Initiator: X3DH against the peer's bundle (signature checked first) and a new ratchet session
 * that emits PreKeyMessages until it has received a message from the peer.
 */
export async function startSession(
  ourIdentity: IdentityKeyPair,
  bundle: PrekeyBundle,
  options: StartSessionOptions = {},
): Promise<{ session: RatchetSession; theirIdentityKey: Uint8Array; signedPrekeyId: number; oneTimePrekeyId?: number }> {
  await sodiumReady();
  if (options.trustedIdentityKey !== undefined && !bytesEqual(options.trustedIdentityKey, bundle.identityKey)) {
    throw new CryptoError('IDENTITY_MISMATCH', 'bundle identity key differs from the trusted one');
  }
  const x3dh = await x3dhInitiate(ourIdentity, bundle);
  const session = RatchetSession.initiator(x3dh.sharedKey, bundle.signedPrekey.publicKey, x3dh.associatedData);
  session.pendingPreKey = {
    identityKey: ourIdentity.publicKey.slice(),
    ephemeralKey: x3dh.ephemeralPublic,
    signedPrekeyId: x3dh.signedPrekeyId,
    ...(x3dh.oneTimePrekeyId !== undefined ? { oneTimePrekeyId: x3dh.oneTimePrekeyId } : {}),
  };
  return {
    session,
    theirIdentityKey: bundle.identityKey.slice(),
    signedPrekeyId: x3dh.signedPrekeyId,
    ...(x3dh.oneTimePrekeyId !== undefined ? { oneTimePrekeyId: x3dh.oneTimePrekeyId } : {}),
  };
}

/**
 * Responder: sets up the session from a PreKeyMessage and decrypts its payload. Nothing is
 * returned (and no prekey should be deleted) unless the payload decrypts. The caller deletes the
 * one-time prekey `usedOneTimePrekeyId` afterwards.
 */
export async function acceptSession(
  ourIdentity: IdentityKeyPair,
  lookupPrekeys: PrekeyLookup,
  preKeyMessage: PreKeyMessage | Uint8Array,
  options: AcceptSessionOptions = {},
): Promise<{ session: RatchetSession; plaintext: Uint8Array; theirIdentityKey: Uint8Array; usedOneTimePrekeyId?: number }> {
  await sodiumReady();
  const m = preKeyMessage instanceof Uint8Array ? decodeSessionMessage(preKeyMessage) : preKeyMessage;
  if (m.type !== 'prekey') throw new CryptoError('BAD_MESSAGE', 'acceptSession needs a prekey message');
  if (m.identityKey.length !== ED25519_PUBLIC_BYTES || m.ephemeralKey.length !== X25519_BYTES || !isU32(m.signedPrekeyId)) {
    throw new CryptoError('BAD_MESSAGE', 'prekey message: bad field');
  }
  if (options.trustedIdentityKey !== undefined && !bytesEqual(options.trustedIdentityKey, m.identityKey)) {
    throw new CryptoError('IDENTITY_MISMATCH', 'initiator identity key differs from the trusted one');
  }
  const signedPrekey = await lookupPrekeys.signedPrekey(m.signedPrekeyId);
  if (signedPrekey === undefined) throw new CryptoError('UNKNOWN_PREKEY', `no signed prekey ${m.signedPrekeyId}`);
  let oneTimePrekey: KeyPair | undefined;
  if (m.oneTimePrekeyId !== undefined) {
    oneTimePrekey = await lookupPrekeys.oneTimePrekey(m.oneTimePrekeyId);
    if (oneTimePrekey === undefined) throw new CryptoError('UNKNOWN_PREKEY', `no one-time prekey ${m.oneTimePrekeyId} (already used?)`);
  }
  const x3dh = await x3dhRespond(ourIdentity, signedPrekey, oneTimePrekey, m.identityKey, m.ephemeralKey);
  const session = RatchetSession.responder(x3dh.sharedKey, signedPrekey, x3dh.associatedData);
  session.remoteBaseKey = m.ephemeralKey;
  const plaintext = session.decrypt(m.ratchetMessage);
  return {
    session,
    plaintext,
    theirIdentityKey: m.identityKey.slice(),
    ...(m.oneTimePrekeyId !== undefined ? { usedOneTimePrekeyId: m.oneTimePrekeyId } : {}),
  };
}

/**
 * Whether a PreKeyMessage belongs to this (responder) session, i.e. is a repeat from the same X3DH
 * run. If not, it starts a new session: pass it to {@link acceptSession}.
 */
export function preKeyMessageMatchesSession(session: RatchetSession, message: PreKeyMessage): boolean {
  const base = session.remoteBaseKey;
  return base !== undefined && bytesEqual(base, message.ephemeralKey) && bytesEqual(session.sessionAssociatedData.subarray(0, 32), message.identityKey);
}

/** Encrypts for the peer: a PreKeyMessage while the session is unconfirmed (initiator), else a ratchet message. */
export function encryptSessionMessage(session: RatchetSession, plaintext: Uint8Array): Uint8Array {
  const ratchetMessage = session.encrypt(plaintext);
  const pending = session.pendingPreKey;
  if (pending === undefined || session.confirmed) return encodeSessionMessage({ type: 'ratchet', ratchetMessage });
  return encodeSessionMessage({ type: 'prekey', ...pending, ratchetMessage });
}

/**
 * Decrypts a session message on an existing session. A PreKeyMessage is accepted only if it is a
 * repeat of this session's X3DH (else CryptoError('BAD_MESSAGE'): it belongs to a new session, see
 * {@link preKeyMessageMatchesSession} and {@link acceptSession}). Transactional like
 * {@link RatchetSession.decrypt}.
 */
export function decryptSessionMessage(session: RatchetSession, message: Uint8Array | SessionMessage): Uint8Array {
  const m = message instanceof Uint8Array ? decodeSessionMessage(message) : message;
  if (m.type === 'prekey' && !preKeyMessageMatchesSession(session, m)) {
    throw new CryptoError('BAD_MESSAGE', 'prekey message for a different session (use acceptSession)');
  }
  return session.decrypt(m.ratchetMessage);
}
