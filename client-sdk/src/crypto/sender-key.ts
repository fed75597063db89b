/**
 * Sender keys for care-team groups (Signal's group messaging), on the primitives of ratchet.ts.
 *
 * Every member device keeps one sending chain per team ({@link SenderKeyState}) and hands its
 * current position to the other members' devices over the 1:1 sessions ({@link encodeDistribution}).
 * Each receiving device keeps one {@link ReceivedSenderKey} per (sender device, keyId).
 *
 *   chain step   MK_i = HMAC-SHA-256(CK_i, 0x01), CK_{i+1} = HMAC-SHA-256(CK_i, 0x02)   ({@link chainStep})
 *   message      key ‖ nonce = HKDF-Expand(MK_i, "Curbside message key v1", 56)       ({@link messageKeyMaterial})
 *
 * Wire format of one group message (integers big-endian):
 *
 *   offset 0    u8   version = 1
 *          1    16   keyId (random, names the sender's chain)
 *         17    u32  iteration i (index of MK_i in the chain)
 *         21    ..   XChaCha20-Poly1305 ciphertext ‖ 16-byte tag
 *   len - 64    64   Ed25519 signature
 *
 *   AEAD associated data  = caller's associatedData ‖ header (the 21 bytes above; fixed length, so unambiguous)
 *   signed message        = "Curbside sender key message v1" ‖ 0x00 ‖ u32 len(associatedData) ‖ associatedData
 *                           ‖ header ‖ ciphertext ‖ tag
 *
 * Every member holds the chain key, so the AEAD tag alone only proves "some member wrote this"; the
 * signature, by a signing key only the sender has, proves which member. The associated data should
 * name the team and the sending user and device (the caller's choice, checked on both sides).
 *
 * A distribution carries the chain at its current position: a member who joins later cannot
 * derive the message keys of earlier messages (HMAC is one-way). Sender keys have no
 * post-compromise security: on every membership removal each remaining member creates a new
 * SenderKeyState and distributes it (docs/crypto.md).
 *
 * Receiving (`ReceivedSenderKey.decrypt`) is transactional: any failure leaves the state unchanged.
 *   BAD_MESSAGE     malformed bytes (length, version), or a keyId other than this state's
 *   AUTHENTICATION_FAILED  the signature does not verify (checked first: tampered header, ciphertext,
 *                   associated data or signature, or a member forging as this sender)
 *   REPLAY          the message key for this iteration is gone: already used, evicted, or before the
 *                   point at which we were given the chain (see {@link ReceivedSenderKey.startIteration})
 *   GAP_TOO_LARGE   more than {@link SENDER_KEY_MAX_GAP} keys would have to be skipped
 *   DECRYPT_FAILED  signature valid but the AEAD check failed (the sender's chain is not the one we hold)
 */
import { ByteReader, ByteWriter, MAX_U32, isU32, toHex } from './bytes.js';
import { CryptoError } from './errors.js';
import { ED25519_PRIVATE_BYTES, ED25519_PUBLIC_BYTES, ED25519_SIGNATURE_BYTES, sign, verifySignature } from './keys.js';
import { chainStep, messageKeyMaterial } from './ratchet.js';
import { AEAD_TAG_BYTES, aeadDecrypt, aeadEncrypt, bytesEqual, concatBytes, getSodium, randomBytes, utf8, wipe } from './sodium.js';

export const SENDER_KEY_MESSAGE_VERSION = 1;
export const SENDER_KEY_DISTRIBUTION_VERSION = 1;
export const SENDER_KEY_ID_BYTES = 16;
/** version ‖ keyId ‖ iteration. */
export const SENDER_KEY_HEADER_BYTES = 1 + SENDER_KEY_ID_BYTES + 4;
/** Smallest group message: header, empty plaintext's tag, signature. */
export const SENDER_KEY_MIN_MESSAGE_BYTES = SENDER_KEY_HEADER_BYTES + AEAD_TAG_BYTES + ED25519_SIGNATURE_BYTES;
/** Encoded distribution: version ‖ keyId ‖ u32 iteration ‖ chainKey ‖ signingPublicKey. */
export const SENDER_KEY_DISTRIBUTION_BYTES = 1 + SENDER_KEY_ID_BYTES + 4 + 32 + ED25519_PUBLIC_BYTES;
/** Largest number of message keys skipped in one step to reach a message. */
export const SENDER_KEY_MAX_GAP = 2000;
/** Largest number of skipped message keys kept per received sender key (oldest evicted first). */
export const SENDER_KEY_MAX_SKIPPED = 2000;
/** Domain label in front of everything a group-message signature covers (NUL-terminated, see keys.ts). */
export const SENDER_KEY_SIGNATURE_PREFIX: Uint8Array = utf8('Curbside sender key message v1\u0000');

const SENDING_STATE_VERSION = 1;
const RECEIVED_STATE_VERSION = 1;

/** What a member device hands the others (over 1:1 sessions) so they can read its group messages. */
export interface SenderKeyDistribution {
  /** 16 random bytes naming this chain. */
  keyId: Uint8Array;
  /** Iteration of the next message the sender will send: `chainKey` is CK_iteration. */
  iteration: number;
  /** 32 bytes. */
  chainKey: Uint8Array;
  /** Ed25519, 32 bytes: every message of this chain is signed by its private half. */
  signingPublicKey: Uint8Array;
}

/** The routing part of a group message, readable without any key. */
export interface GroupMessageHeader {
  keyId: Uint8Array;
  iteration: number;
}

interface ParsedGroupMessage extends GroupMessageHeader {
  header: Uint8Array;
  ciphertext: Uint8Array;
  signature: Uint8Array;
}

function parseGroupMessage(message: Uint8Array): ParsedGroupMessage {
  if (!(message instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'group message is not bytes');
  if (message.length < SENDER_KEY_MIN_MESSAGE_BYTES) throw new CryptoError('BAD_MESSAGE', `group message too short (${message.length} bytes)`);
  if (message[0] !== SENDER_KEY_MESSAGE_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown group message version ${message[0]}`);
  const header = message.subarray(0, SENDER_KEY_HEADER_BYTES);
  const iteration = new DataView(message.buffer, message.byteOffset + 1 + SENDER_KEY_ID_BYTES, 4).getUint32(0);
  return {
    header,
    keyId: message.slice(1, 1 + SENDER_KEY_ID_BYTES),
    iteration,
    ciphertext: message.subarray(SENDER_KEY_HEADER_BYTES, message.length - ED25519_SIGNATURE_BYTES),
    signature: message.subarray(message.length - ED25519_SIGNATURE_BYTES),
  };
}

/**
 * keyId and iteration of a group message, so the caller can pick the (sender device, keyId) state.
 * Malformed: CryptoError('BAD_MESSAGE'). Nothing here is authenticated yet.
 */
export function parseGroupMessageHeader(message: Uint8Array): GroupMessageHeader {
  const { keyId, iteration } = parseGroupMessage(message);
  return { keyId, iteration };
}

function signedBytes(associatedData: Uint8Array, header: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const adLength = new Uint8Array(4);
  new DataView(adLength.buffer).setUint32(0, associatedData.length);
  return concatBytes(SENDER_KEY_SIGNATURE_PREFIX, adLength, associatedData, header, ciphertext);
}

function checkAssociatedData(associatedData: Uint8Array): void {
  if (!(associatedData instanceof Uint8Array)) throw new TypeError('associatedData must be a Uint8Array');
}

/** Our own sending chain for one team. Contains secret keys: persist {@link serialize} encrypted at rest. */
export class SenderKeyState {
  private constructor(
    private readonly id: Uint8Array,
    private chainKey: Uint8Array,
    private n: number,
    private readonly signingPublic: Uint8Array,
    private readonly signingPrivate: Uint8Array,
  ) {}

  /** A fresh chain: random chain key and keyId, iteration 0, new Ed25519 signing key pair. Needs {@link sodiumReady}. */
  static create(): SenderKeyState {
    const seed = randomBytes(32);
    const { publicKey, privateKey } = getSodium().crypto_sign_seed_keypair(seed);
    wipe(seed);
    return new SenderKeyState(randomBytes(SENDER_KEY_ID_BYTES), randomBytes(32), 0, publicKey, privateKey);
  }

  get keyId(): Uint8Array {
    return this.id.slice();
  }

  /** Iteration of the next message {@link encrypt} will produce. */
  get iteration(): number {
    return this.n;
  }

  get signingPublicKey(): Uint8Array {
    return this.signingPublic.slice();
  }

  /** The chain at its current position (copies), for members who should read from now on. */
  distribution(): SenderKeyDistribution {
    return { keyId: this.id.slice(), iteration: this.n, chainKey: this.chainKey.slice(), signingPublicKey: this.signingPublic.slice() };
  }

  /** One self-contained, signed group message (module comment). Advances the chain; the message key is wiped. */
  encrypt(plaintext: Uint8Array, associatedData: Uint8Array): Uint8Array {
    checkAssociatedData(associatedData);
    if (this.n >= MAX_U32) throw new Error('sender key exhausted: create a new one');
    const { messageKey, nextChainKey } = chainStep(this.chainKey);
    const header = new ByteWriter(SENDER_KEY_HEADER_BYTES).u8(SENDER_KEY_MESSAGE_VERSION).bytes(this.id).u32(this.n).finish();
    const { key, nonce } = messageKeyMaterial(messageKey);
    let ciphertext: Uint8Array;
    try {
      ciphertext = aeadEncrypt(key, nonce, plaintext, concatBytes(associatedData, header));
    } finally {
      wipe(messageKey, key, nonce);
    }
    const signature = sign(this.signingPrivate, signedBytes(associatedData, header, ciphertext));
    wipe(this.chainKey);
    this.chainKey = nextChainKey;
    this.n += 1;
    return concatBytes(header, ciphertext, signature);
  }

  /** version ‖ keyId(16) ‖ u32 iteration ‖ chainKey(32) ‖ signingPublic(32) ‖ signingPrivate(64). Secret. */
  serialize(): Uint8Array {
    return new ByteWriter(1 + SENDER_KEY_ID_BYTES + 4 + 32 + ED25519_PUBLIC_BYTES + ED25519_PRIVATE_BYTES)
      .u8(SENDING_STATE_VERSION)
      .bytes(this.id)
      .u32(this.n)
      .bytes(this.chainKey)
      .bytes(this.signingPublic)
      .bytes(this.signingPrivate)
      .finish();
  }

  /** Restores {@link serialize}'s output. Malformed: CryptoError('BAD_MESSAGE'). */
  static deserialize(bytes: Uint8Array): SenderKeyState {
    if (!(bytes instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'sender key state is not bytes');
    const r = new ByteReader(bytes, 'sender key state');
    const version = r.u8();
    if (version !== SENDING_STATE_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown sender key state version ${version}`);
    const id = r.bytes(SENDER_KEY_ID_BYTES);
    const n = r.u32();
    const chainKey = r.bytes(32);
    const signingPublic = r.bytes(ED25519_PUBLIC_BYTES);
    const signingPrivate = r.bytes(ED25519_PRIVATE_BYTES);
    r.end();
    // libsodium's Ed25519 private key is seed ‖ public key.
    if (!bytesEqual(signingPrivate.subarray(32), signingPublic)) throw new CryptoError('BAD_MESSAGE', 'sender key state: signing key pair does not match');
    return new SenderKeyState(id, chainKey, n, signingPublic, signingPrivate);
  }
}

function checkDistribution(d: SenderKeyDistribution): void {
  const ok =
    typeof d === 'object' &&
    d !== null &&
    d.keyId instanceof Uint8Array &&
    d.keyId.length === SENDER_KEY_ID_BYTES &&
    isU32(d.iteration) &&
    d.iteration < MAX_U32 &&
    d.chainKey instanceof Uint8Array &&
    d.chainKey.length === 32 &&
    d.signingPublicKey instanceof Uint8Array &&
    d.signingPublicKey.length === ED25519_PUBLIC_BYTES;
  if (!ok) throw new CryptoError('BAD_MESSAGE', 'sender key distribution: bad field');
  if (!getSodium().crypto_core_ed25519_is_valid_point(d.signingPublicKey)) {
    throw new CryptoError('WEAK_KEY', 'sender key distribution: signing key is not a valid Ed25519 point');
  }
}

/** A distribution for transport inside a 1:1 session: {@link SENDER_KEY_DISTRIBUTION_BYTES} bytes. */
export function encodeDistribution(d: SenderKeyDistribution): Uint8Array {
  checkDistribution(d);
  return new ByteWriter(SENDER_KEY_DISTRIBUTION_BYTES)
    .u8(SENDER_KEY_DISTRIBUTION_VERSION)
    .bytes(d.keyId)
    .u32(d.iteration)
    .bytes(d.chainKey)
    .bytes(d.signingPublicKey)
    .finish();
}

/** Parses {@link encodeDistribution}'s output. Malformed: CryptoError('BAD_MESSAGE'); invalid signing key: 'WEAK_KEY'. */
export function decodeDistribution(bytes: Uint8Array): SenderKeyDistribution {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'sender key distribution is not bytes');
  const r = new ByteReader(bytes, 'sender key distribution');
  const version = r.u8();
  if (version !== SENDER_KEY_DISTRIBUTION_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown sender key distribution version ${version}`);
  const d: SenderKeyDistribution = { keyId: r.bytes(SENDER_KEY_ID_BYTES), iteration: r.u32(), chainKey: r.bytes(32), signingPublicKey: r.bytes(ED25519_PUBLIC_BYTES) };
  r.end();
  checkDistribution(d);
  return d;
}

/** Another member device's sending chain, as we hold it. One per (sender device, keyId). Secret. */
export class ReceivedSenderKey {
  /** iteration → message key, oldest (= lowest iteration) first. */
  private readonly skipped = new Map<number, Uint8Array>();

  private constructor(
    private readonly id: Uint8Array,
    private readonly signingPublic: Uint8Array,
    private readonly start: number,
    private chainKey: Uint8Array,
    private n: number,
  ) {}

  /** From a distribution (usually {@link decodeDistribution}'s output). Bad fields: CryptoError('BAD_MESSAGE' / 'WEAK_KEY'). */
  static fromDistribution(d: SenderKeyDistribution): ReceivedSenderKey {
    checkDistribution(d);
    return new ReceivedSenderKey(d.keyId.slice(), d.signingPublicKey.slice(), d.iteration, d.chainKey.slice(), d.iteration);
  }

  get keyId(): Uint8Array {
    return this.id.slice();
  }

  get signingPublicKey(): Uint8Array {
    return this.signingPublic.slice();
  }

  /** The iteration we were given the chain at: earlier messages can never be decrypted here. */
  get startIteration(): number {
    return this.start;
  }

  /** Iteration of the next message key the chain will produce. */
  get iteration(): number {
    return this.n;
  }

  get skippedKeyCount(): number {
    return this.skipped.size;
  }

  /**
   * Verifies and decrypts one group message; each message decrypts once. Throws a CryptoError (module
   * comment) and leaves the state unchanged on any failure.
   */
  decrypt(message: Uint8Array, associatedData: Uint8Array): Uint8Array {
    checkAssociatedData(associatedData);
    const msg = parseGroupMessage(message);
    if (!bytesEqual(msg.keyId, this.id)) {
      throw new CryptoError('BAD_MESSAGE', `group message is for sender key ${toHex(msg.keyId)}, not ${toHex(this.id)}`);
    }
    if (!verifySignature(this.signingPublic, signedBytes(associatedData, msg.header, msg.ciphertext), msg.signature)) {
      throw new CryptoError('AUTHENTICATION_FAILED', `group message ${msg.iteration}: signature does not verify`);
    }
    const aeadAd = concatBytes(associatedData, msg.header);

    if (msg.iteration < this.n) {
      const key = this.skipped.get(msg.iteration);
      if (key === undefined) {
        const why = msg.iteration < this.start ? `precedes the distribution (iteration ${this.start})` : 'was already decrypted, or its key was evicted';
        throw new CryptoError('REPLAY', `group message ${msg.iteration} ${why}`);
      }
      const plaintext = open(key, msg.ciphertext, aeadAd);
      this.skipped.delete(msg.iteration);
      wipe(key);
      return plaintext;
    }

    if (msg.iteration >= MAX_U32) throw new CryptoError('BAD_MESSAGE', 'group message iteration out of range');
    const gap = msg.iteration - this.n;
    if (gap > SENDER_KEY_MAX_GAP) {
      throw new CryptoError('GAP_TOO_LARGE', `group message ${msg.iteration} would skip ${gap} keys (max ${SENDER_KEY_MAX_GAP})`);
    }
    // Walk without touching the state.
    const walked: [number, Uint8Array][] = [];
    let key = this.chainKey;
    for (let i = this.n; i < msg.iteration; i++) {
      const step = chainStep(key);
      walked.push([i, step.messageKey]);
      if (key !== this.chainKey) wipe(key);
      key = step.nextChainKey;
    }
    const last = chainStep(key);
    if (key !== this.chainKey) wipe(key);
    let plaintext: Uint8Array;
    try {
      plaintext = open(last.messageKey, msg.ciphertext, aeadAd);
    } catch (e) {
      wipe(last.nextChainKey, ...walked.map(([, k]) => k));
      throw e;
    } finally {
      wipe(last.messageKey);
    }
    // Commit.
    for (const [i, k] of walked) this.skipped.set(i, k);
    for (const [i, k] of this.skipped) {
      if (this.skipped.size <= SENDER_KEY_MAX_SKIPPED) break;
      wipe(k);
      this.skipped.delete(i);
    }
    wipe(this.chainKey);
    this.chainKey = last.nextChainKey;
    this.n = msg.iteration + 1;
    return plaintext;
  }

  /**
   * version ‖ keyId(16) ‖ signingPublic(32) ‖ u32 startIteration ‖ u32 iteration ‖ chainKey(32)
   * ‖ u32 count ‖ count × (u32 iteration ‖ messageKey(32)), skipped keys oldest first. Secret.
   */
  serialize(): Uint8Array {
    const w = new ByteWriter(1 + SENDER_KEY_ID_BYTES + ED25519_PUBLIC_BYTES + 4 + 4 + 32 + 4 + this.skipped.size * 36);
    w.u8(RECEIVED_STATE_VERSION).bytes(this.id).bytes(this.signingPublic).u32(this.start).u32(this.n).bytes(this.chainKey);
    w.u32(this.skipped.size);
    for (const [i, k] of this.skipped) w.u32(i).bytes(k);
    return w.finish();
  }

  /** Restores {@link serialize}'s output. Malformed: CryptoError('BAD_MESSAGE'). */
  static deserialize(bytes: Uint8Array): ReceivedSenderKey {
    if (!(bytes instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'received sender key state is not bytes');
    const r = new ByteReader(bytes, 'received sender key state');
    const version = r.u8();
    if (version !== RECEIVED_STATE_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown received sender key state version ${version}`);
    const id = r.bytes(SENDER_KEY_ID_BYTES);
    const signingPublic = r.bytes(ED25519_PUBLIC_BYTES);
    const start = r.u32();
    const n = r.u32();
    const chainKey = r.bytes(32);
    if (n < start) throw new CryptoError('BAD_MESSAGE', 'received sender key state: iteration before start');
    const state = new ReceivedSenderKey(id, signingPublic, start, chainKey, n);
    const count = r.u32();
    if (count > SENDER_KEY_MAX_SKIPPED) throw new CryptoError('BAD_MESSAGE', 'received sender key state: too many skipped keys');
    let previous = -1;
    for (let j = 0; j < count; j++) {
      const i = r.u32();
      if (i <= previous || i < start || i >= n) throw new CryptoError('BAD_MESSAGE', 'received sender key state: bad skipped key iteration');
      state.skipped.set(i, r.bytes(32));
      previous = i;
    }
    r.end();
    return state;
  }
}

function open(messageKey: Uint8Array, ciphertext: Uint8Array, aeadAd: Uint8Array): Uint8Array {
  const { key, nonce } = messageKeyMaterial(messageKey);
  try {
    return aeadDecrypt(key, nonce, ciphertext, aeadAd);
  } finally {
    wipe(key, nonce);
  }
}
