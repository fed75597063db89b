/**
 * Long file: the Double Ratchet is one state machine (sending and receiving chains, skipped keys,
 * serialization); keeping it in one module keeps every state change reviewable in one place.
 *
 * Double Ratchet (Signal spec, revision 1) on libsodium, with libsignal's key derivations:
 *
 *   root step   RK', CK = HKDF-SHA-256(IKM = DH output, salt = RK, info = "Curbside ratchet v1", L = 64)
 *                         (RK' = bytes 0..31, CK = bytes 32..63)
 *   chain step  MK = HMAC-SHA-256(CK, 0x01), CK' = HMAC-SHA-256(CK, 0x02)      (libsignal ratchet/keys.rs)
 *   message     key ‖ nonce = HKDF-Expand-SHA-256(PRK = MK, info = "Curbside message key v1", L = 56)
 *                         (XChaCha20-Poly1305 key = bytes 0..31, nonce = bytes 32..55; each MK is used once,
 *                          so a deterministic nonce is safe. HKDF-Extract is skipped as RFC 5869 §3.3 allows:
 *                          MK is already a uniformly random 32-byte HMAC output. That saves one HMAC per
 *                          message, see docs/benchmarks.md.)
 *
 * Wire format of one ratchet message (all integers big-endian):
 *
 *   offset 0   u8   version = 1
 *          1   32   sender's current ratchet public key (X25519)
 *         33   u32  PN: number of messages in the sender's previous sending chain
 *         37   u32  N: this message's number in the current sending chain
 *         41   ..   XChaCha20-Poly1305 ciphertext ‖ 16-byte tag
 *
 * The 41-byte header is authenticated: AEAD associated data = session AD (X3DH: IK_A ‖ IK_B) ‖ header.
 *
 * Limits (as in libsignal/vodozemac): a message that would need more than {@link MAX_GAP} message keys
 * skipped in one chain is refused (GAP_TOO_LARGE); at most {@link MAX_SKIPPED_KEYS} skipped keys are
 * kept in total (oldest evicted first); skipped keys are kept for at most
 * {@link MAX_OLD_RECEIVING_CHAINS} old receiving chains. Message keys are deleted once used.
 *
 * Failures are CryptoErrors and `decrypt` is transactional: everything is computed first and the
 * state is only changed after the AEAD check passed, so a failed decrypt leaves the session exactly
 * as it was.
 *
 * Error classification in `decrypt`:
 *   BAD_MESSAGE     malformed bytes (length, version)
 *   REPLAY          the message key for (ratchet key, N) is gone: already used (a duplicate) or
 *                   evicted; nothing is decrypted. Recognised for the current receiving chain and the
 *                   last {@link MAX_RETIRED_CHAINS} receiving chains.
 *   GAP_TOO_LARGE   more than MAX_GAP keys would have to be skipped
 *   WEAK_KEY        the header's ratchet key is a low-order point
 *   DECRYPT_FAILED  the AEAD check failed (tampered header or ciphertext, wrong session, ...)
 */
import { ByteReader, ByteWriter, MAX_U32, fromHex as unhex, toHex as hex } from './bytes.js';
import { CryptoError } from './errors.js';
import { hkdfSha256, hmacSha256 } from './hkdf.js';
import { X25519_BYTES, generateKeyPairSync, x25519, type KeyPair } from './keys.js';
import { AEAD_TAG_BYTES, bytesEqual, concatBytes, getSodium, utf8, wipe } from './sodium.js';

export const RATCHET_MESSAGE_VERSION = 1;
export const RATCHET_HEADER_BYTES = 1 + 32 + 4 + 4;
/** Largest number of message keys skipped in one chain to reach a message. */
export const MAX_GAP = 2000;
/** Largest number of skipped message keys kept per session. */
export const MAX_SKIPPED_KEYS = 2000;
/** Old receiving chains whose skipped keys are kept. */
export const MAX_OLD_RECEIVING_CHAINS = 5;
/** Old receiving chains remembered (32 bytes each) to report late duplicates as REPLAY. */
export const MAX_RETIRED_CHAINS = 64;
/** Largest associated data accepted (X3DH uses 64 bytes). */
export const MAX_ASSOCIATED_DATA = 1024;

const RATCHET_INFO = utf8('Curbside ratchet v1');
const MESSAGE_KEY_INFO = utf8('Curbside message key v1');
const MESSAGE_KEY_SEED = new Uint8Array([0x01]);
const CHAIN_KEY_SEED = new Uint8Array([0x02]);
const STATE_VERSION = 1;

/** One chain step: the message key for the current index and the next chain key (libsignal). */
export function chainStep(chainKey: Uint8Array): { messageKey: Uint8Array; nextChainKey: Uint8Array } {
  return { messageKey: hmacSha256(chainKey, MESSAGE_KEY_SEED), nextChainKey: hmacSha256(chainKey, CHAIN_KEY_SEED) };
}

/** Root step: (RK', CK) from the root key and a DH output. */
export function rootStep(rootKey: Uint8Array, dhOutput: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array } {
  const okm = hkdfSha256(dhOutput, rootKey, RATCHET_INFO, 64);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64) };
}

const MESSAGE_KEY_BLOCK_1 = concatBytes(MESSAGE_KEY_INFO, new Uint8Array([1]));
/** Scratch for T(1) ‖ info ‖ 0x02 (the second HKDF-Expand block); libsodium copies its inputs, so reuse is safe. */
const messageKeyBlock2 = new Uint8Array(32 + MESSAGE_KEY_INFO.length + 1);
messageKeyBlock2.set(MESSAGE_KEY_INFO, 32);
messageKeyBlock2[messageKeyBlock2.length - 1] = 2;

/**
 * AEAD key and nonce for one message key: HKDF-Expand(MK, "Curbside message key v1", 56), written
 * out as its two HMAC blocks (identical to `hkdfExpand(mk, info, 56)`, without the extra copies).
 */
export function messageKeyMaterial(messageKey: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const t1 = hmacSha256(messageKey, MESSAGE_KEY_BLOCK_1);
  messageKeyBlock2.set(t1, 0);
  const t2 = hmacSha256(messageKey, messageKeyBlock2);
  messageKeyBlock2.fill(0, 0, 32);
  return { key: t1, nonce: t2.subarray(0, 24) };
}

interface Chain {
  key: Uint8Array;
  /** Index of the next message key this chain will produce. */
  n: number;
}

/** X3DH data the initiator repeats in every message until the session is confirmed (session-cipher.ts). */
export interface PendingPreKey {
  /** The initiator's (our) Ed25519 identity public key. */
  identityKey: Uint8Array;
  /** EK_A public. */
  ephemeralKey: Uint8Array;
  signedPrekeyId: number;
  oneTimePrekeyId?: number;
}

interface ParsedHeader {
  header: Uint8Array;
  ratchetKey: Uint8Array;
  pn: number;
  n: number;
  ciphertext: Uint8Array;
}

function parseMessage(message: Uint8Array): ParsedHeader {
  if (!(message instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'ratchet message is not bytes');
  if (message.length < RATCHET_HEADER_BYTES + AEAD_TAG_BYTES) throw new CryptoError('BAD_MESSAGE', `ratchet message too short (${message.length} bytes)`);
  if (message[0] !== RATCHET_MESSAGE_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown ratchet message version ${message[0]}`);
  return {
    header: message.subarray(0, RATCHET_HEADER_BYTES),
    ratchetKey: message.subarray(1, 33),
    pn: readU32(message, 33),
    n: readU32(message, 37),
    ciphertext: message.subarray(RATCHET_HEADER_BYTES),
  };
}

export class RatchetSession {
  private rootKey: Uint8Array;
  private sendKeyPair: KeyPair;
  private sendChain: Chain | undefined;
  private previousCounter = 0;
  private recvRatchetKey: Uint8Array | undefined;
  private recvRatchetHex: string | undefined;
  private recvChain: Chain | undefined;
  /** `${ratchetKeyHex}:${n}` → message key. Map order is insertion order = age (oldest first). */
  private readonly skipped = new Map<string, Uint8Array>();
  /** Hex ratchet keys of previous receiving chains, oldest first. The last MAX_OLD_RECEIVING_CHAINS may hold skipped keys. */
  private retired: string[] = [];
  private readonly associatedData: Uint8Array;
  /** AEAD associated data scratch: session AD ‖ header (the header part is rewritten per message). */
  private readonly aeadAd: Uint8Array;
  private confirmedFlag = false;
  private pending: PendingPreKey | undefined;
  private baseKey: Uint8Array | undefined;

  private constructor(rootKey: Uint8Array, sendKeyPair: KeyPair, associatedData: Uint8Array) {
    this.rootKey = rootKey;
    this.sendKeyPair = sendKeyPair;
    this.associatedData = associatedData;
    this.aeadAd = new Uint8Array(associatedData.length + RATCHET_HEADER_BYTES);
    this.aeadAd.set(associatedData, 0);
  }

  /**
   * Alice: after X3DH, with their signed prekey as their first ratchet key. Can send at once.
   * Needs {@link sodiumReady} to have resolved.
   */
  static initiator(sharedKey: Uint8Array, theirRatchetPublic: Uint8Array, associatedData: Uint8Array): RatchetSession {
    checkSecret(sharedKey, 'shared key');
    checkAd(associatedData);
    const ours = generateKeyPairSync();
    const dh = x25519(ours.privateKey, theirRatchetPublic);
    const { rootKey, chainKey } = rootStep(sharedKey, dh);
    wipe(dh);
    const session = new RatchetSession(rootKey, ours, associatedData.slice());
    session.sendChain = { key: chainKey, n: 0 };
    return session;
  }

  /** Bob: after X3DH, with our signed prekey pair as our first ratchet key. Can send after the first decrypt. */
  static responder(sharedKey: Uint8Array, ourRatchetKeyPair: KeyPair, associatedData: Uint8Array): RatchetSession {
    checkSecret(sharedKey, 'shared key');
    checkAd(associatedData);
    if (ourRatchetKeyPair.publicKey.length !== X25519_BYTES || ourRatchetKeyPair.privateKey.length !== X25519_BYTES) {
      throw new RangeError('ratchet key pair must be X25519 (32-byte keys)');
    }
    const pair = { publicKey: ourRatchetKeyPair.publicKey.slice(), privateKey: ourRatchetKeyPair.privateKey.slice() };
    return new RatchetSession(sharedKey.slice(), pair, associatedData.slice());
  }

  /** True once a message from the peer has been decrypted (X3DH key confirmation). */
  get confirmed(): boolean {
    return this.confirmedFlag;
  }

  /** False for a responder session that has not received yet (it has no sending chain). */
  get canSend(): boolean {
    return this.sendChain !== undefined;
  }

  /** Number of skipped message keys held. */
  get skippedKeyCount(): number {
    return this.skipped.size;
  }

  /** The session's associated data (a copy). */
  get sessionAssociatedData(): Uint8Array {
    return this.associatedData.slice();
  }

  /** X3DH data still to be repeated in each outgoing message (initiator, until confirmed). */
  get pendingPreKey(): PendingPreKey | undefined {
    return this.pending;
  }

  set pendingPreKey(value: PendingPreKey | undefined) {
    this.pending = value;
  }

  /** Responder: the initiator's X3DH ephemeral key this session was created from. */
  get remoteBaseKey(): Uint8Array | undefined {
    return this.baseKey;
  }

  set remoteBaseKey(value: Uint8Array | undefined) {
    this.baseKey = value?.slice();
  }

  /** Encrypts one message; returns the self-contained wire message (version ‖ header ‖ ciphertext ‖ tag). */
  encrypt(plaintext: Uint8Array): Uint8Array {
    const chain = this.sendChain;
    if (chain === undefined) throw new Error('this session cannot send before it has received a message (responder)');
    if (chain.n >= MAX_U32) throw new Error('sending chain exhausted');
    const { messageKey, nextChainKey } = chainStep(chain.key);
    // The header is written straight into the AEAD associated data, then copied to the output.
    const adLength = this.associatedData.length;
    const ad = this.aeadAd;
    ad[adLength] = RATCHET_MESSAGE_VERSION;
    ad.set(this.sendKeyPair.publicKey, adLength + 1);
    writeU32(ad, adLength + 33, this.previousCounter);
    writeU32(ad, adLength + 37, chain.n);
    const { key, nonce } = messageKeyMaterial(messageKey);
    const ciphertext = getSodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
    const out = new Uint8Array(RATCHET_HEADER_BYTES + ciphertext.length);
    out.set(ad.subarray(adLength), 0);
    out.set(ciphertext, RATCHET_HEADER_BYTES);
    wipe(chain.key, messageKey, key, nonce);
    this.sendChain = { key: nextChainKey, n: chain.n + 1 };
    return out;
  }

  /**
   * Decrypts one wire message. Throws a CryptoError (see the module comment for the codes) and
   * leaves the session unchanged on any failure.
   */
  decrypt(message: Uint8Array): Uint8Array {
    const msg = parseMessage(message);

    // Current receiving chain.
    if (this.recvRatchetKey !== undefined && this.recvChain !== undefined && bytesEqual(msg.ratchetKey, this.recvRatchetKey)) {
      const chainHex = this.recvRatchetHex!;
      if (msg.n < this.recvChain.n) return this.decryptSkipped(`${chainHex}:${msg.n}`, msg);
      if (msg.n - this.recvChain.n > MAX_GAP) {
        throw new CryptoError('GAP_TOO_LARGE', `message ${msg.n} would skip ${msg.n - this.recvChain.n} keys (max ${MAX_GAP})`);
      }
      const walk = walkChain(this.recvChain, msg.n);
      const plaintext = this.open(walk.messageKey, msg);
      // Commit.
      this.storeSkipped(chainHex, walk.skipped);
      wipe(this.recvChain.key);
      this.recvChain = { key: walk.nextChainKey, n: msg.n + 1 };
      this.confirm();
      return plaintext;
    }

    const ratchetHex = hex(msg.ratchetKey);
    if (this.skipped.has(`${ratchetHex}:${msg.n}`)) return this.decryptSkipped(`${ratchetHex}:${msg.n}`, msg);
    if (this.retired.includes(ratchetHex)) {
      throw new CryptoError('REPLAY', `message ${msg.n} of an old receiving chain: key already used or no longer kept`);
    }

    // A new ratchet key from the peer: DH ratchet step, all computed before anything is committed.
    const old = this.recvChain;
    if (old !== undefined && msg.pn > old.n && msg.pn - old.n > MAX_GAP) {
      throw new CryptoError('GAP_TOO_LARGE', `previous chain would skip ${msg.pn - old.n} keys (max ${MAX_GAP})`);
    }
    if (msg.n > MAX_GAP) throw new CryptoError('GAP_TOO_LARGE', `message ${msg.n} would skip ${msg.n} keys (max ${MAX_GAP})`);
    const oldSkipped = old !== undefined && msg.pn > old.n ? walkChain(old, msg.pn).skipped : [];
    const dhRecv = x25519(this.sendKeyPair.privateKey, msg.ratchetKey);
    const recvRoot = rootStep(this.rootKey, dhRecv);
    const newPair = generateKeyPairSync();
    const dhSend = x25519(newPair.privateKey, msg.ratchetKey);
    const sendRoot = rootStep(recvRoot.rootKey, dhSend);
    wipe(dhRecv, dhSend, recvRoot.rootKey);
    const walk = walkChain({ key: recvRoot.chainKey, n: 0 }, msg.n);
    let plaintext: Uint8Array;
    try {
      plaintext = this.open(walk.messageKey, msg);
    } catch (e) {
      wipe(newPair.privateKey, sendRoot.rootKey, sendRoot.chainKey, walk.nextChainKey);
      for (const [, k] of walk.skipped) wipe(k);
      throw e;
    }
    // Commit.
    if (old !== undefined && this.recvRatchetHex !== undefined) {
      this.storeSkipped(this.recvRatchetHex, oldSkipped);
      this.retire(this.recvRatchetHex);
      wipe(old.key);
    }
    this.previousCounter = this.sendChain?.n ?? 0;
    wipe(this.sendKeyPair.privateKey, this.rootKey, this.sendChain?.key);
    this.sendKeyPair = newPair;
    this.sendChain = { key: sendRoot.chainKey, n: 0 };
    this.rootKey = sendRoot.rootKey;
    this.recvRatchetKey = msg.ratchetKey.slice();
    this.recvRatchetHex = ratchetHex;
    this.recvChain = { key: walk.nextChainKey, n: msg.n + 1 };
    this.storeSkipped(ratchetHex, walk.skipped);
    this.confirm();
    return plaintext;
  }

  private decryptSkipped(id: string, msg: ParsedHeader): Uint8Array {
    const key = this.skipped.get(id);
    if (key === undefined) throw new CryptoError('REPLAY', `message ${msg.n}: key already used or no longer kept`);
    const plaintext = this.open(key, msg);
    this.skipped.delete(id);
    wipe(key);
    this.confirm();
    return plaintext;
  }

  private confirm(): void {
    this.confirmedFlag = true;
    this.pending = undefined;
  }

  private open(messageKey: Uint8Array, msg: ParsedHeader): Uint8Array {
    const { key, nonce } = messageKeyMaterial(messageKey);
    const ad = this.aeadAd;
    ad.set(msg.header, this.associatedData.length);
    try {
      return getSodium().crypto_aead_xchacha20poly1305_ietf_decrypt(null, msg.ciphertext, ad, nonce, key);
    } catch (e) {
      throw new CryptoError('DECRYPT_FAILED', `message ${msg.n}: authentication failed`, { cause: e });
    } finally {
      wipe(key, nonce);
    }
  }

  private storeSkipped(chainHex: string, keys: readonly (readonly [number, Uint8Array])[]): void {
    for (const [n, key] of keys) this.skipped.set(`${chainHex}:${n}`, key);
    while (this.skipped.size > MAX_SKIPPED_KEYS) {
      const oldest = this.skipped.keys().next().value!;
      wipe(this.skipped.get(oldest));
      this.skipped.delete(oldest);
    }
  }

  private retire(chainHex: string): void {
    this.retired.push(chainHex);
    if (this.retired.length > MAX_RETIRED_CHAINS) this.retired.shift();
    // The chain that just fell out of the last MAX_OLD_RECEIVING_CHAINS loses its skipped keys.
    const dropped = this.retired[this.retired.length - 1 - MAX_OLD_RECEIVING_CHAINS];
    if (dropped !== undefined) this.dropChainKeys(dropped);
  }

  private dropChainKeys(chainHex: string): void {
    const prefix = `${chainHex}:`;
    for (const [id, key] of this.skipped) {
      if (id.startsWith(prefix)) {
        wipe(key);
        this.skipped.delete(id);
      }
    }
  }

  /**
   * The whole session state as versioned bytes (contains secret keys: store it encrypted at rest).
   * Restoring with {@link RatchetSession.deserialize} gives a session that behaves identically,
   * skipped keys included.
   */
  serialize(): Uint8Array {
    const w = new ByteWriter(512 + this.skipped.size * 40);
    const flags =
      (this.sendChain ? 1 : 0) |
      (this.recvChain && this.recvRatchetKey ? 2 : 0) |
      (this.confirmedFlag ? 4 : 0) |
      (this.pending ? 8 : 0) |
      (this.baseKey ? 16 : 0);
    w.u8(STATE_VERSION).u8(flags).varBytes(this.associatedData).bytes(this.rootKey);
    w.bytes(this.sendKeyPair.publicKey).bytes(this.sendKeyPair.privateKey).u32(this.previousCounter);
    if (this.sendChain) w.bytes(this.sendChain.key).u32(this.sendChain.n);
    if (this.recvChain && this.recvRatchetKey) w.bytes(this.recvRatchetKey).bytes(this.recvChain.key).u32(this.recvChain.n);
    w.u32(this.retired.length);
    for (const r of this.retired) w.bytes(unhex(r));
    // Skipped keys, oldest first, with their chain as an index into a table of ratchet keys.
    const table: string[] = [];
    const index = new Map<string, number>();
    const entries: [number, number, Uint8Array][] = [];
    for (const [id, key] of this.skipped) {
      const [chainHex, n] = id.split(':') as [string, string];
      let i = index.get(chainHex);
      if (i === undefined) {
        i = table.length;
        table.push(chainHex);
        index.set(chainHex, i);
      }
      entries.push([i, Number(n), key]);
    }
    w.u32(table.length);
    for (const t of table) w.bytes(unhex(t));
    w.u32(entries.length);
    for (const [i, n, key] of entries) w.u32(i).u32(n).bytes(key);
    if (this.pending) {
      const p = this.pending;
      w.bytes(p.identityKey).bytes(p.ephemeralKey).u32(p.signedPrekeyId);
      if (p.oneTimePrekeyId === undefined) w.u8(0);
      else w.u8(1).u32(p.oneTimePrekeyId);
    }
    if (this.baseKey) w.bytes(this.baseKey);
    return w.finish();
  }

  /** Restores a session from {@link RatchetSession.serialize}. Malformed input: CryptoError('BAD_MESSAGE'). */
  static deserialize(bytes: Uint8Array): RatchetSession {
    if (!(bytes instanceof Uint8Array)) throw new CryptoError('BAD_MESSAGE', 'session state is not bytes');
    const r = new ByteReader(bytes, 'session state');
    const version = r.u8();
    if (version !== STATE_VERSION) throw new CryptoError('BAD_MESSAGE', `unknown session state version ${version}`);
    const flags = r.u8();
    if (flags > 31) throw new CryptoError('BAD_MESSAGE', 'session state: unknown flags');
    const ad = r.varBytes(MAX_ASSOCIATED_DATA);
    const rootKey = r.bytes(32);
    const sendKeyPair = { publicKey: r.bytes(32), privateKey: r.bytes(32) };
    const session = new RatchetSession(rootKey, sendKeyPair, ad);
    session.previousCounter = r.u32();
    if (flags & 1) session.sendChain = { key: r.bytes(32), n: r.u32() };
    if (flags & 2) {
      session.recvRatchetKey = r.bytes(32);
      session.recvRatchetHex = hex(session.recvRatchetKey);
      session.recvChain = { key: r.bytes(32), n: r.u32() };
    }
    session.confirmedFlag = (flags & 4) !== 0;
    const retiredCount = r.u32();
    if (retiredCount > MAX_RETIRED_CHAINS) throw new CryptoError('BAD_MESSAGE', 'session state: too many retired chains');
    for (let i = 0; i < retiredCount; i++) session.retired.push(hex(r.bytes(32)));
    const tableSize = r.u32();
    if (tableSize > MAX_OLD_RECEIVING_CHAINS + 1) throw new CryptoError('BAD_MESSAGE', 'session state: too many chains with skipped keys');
    const table: string[] = [];
    for (let i = 0; i < tableSize; i++) table.push(hex(r.bytes(32)));
    const count = r.u32();
    if (count > MAX_SKIPPED_KEYS) throw new CryptoError('BAD_MESSAGE', 'session state: too many skipped keys');
    for (let i = 0; i < count; i++) {
      const chain = table[r.u32()];
      if (chain === undefined) throw new CryptoError('BAD_MESSAGE', 'session state: bad chain index');
      const n = r.u32();
      session.skipped.set(`${chain}:${n}`, r.bytes(32));
    }
    if (flags & 8) {
      const pending: PendingPreKey = { identityKey: r.bytes(32), ephemeralKey: r.bytes(32), signedPrekeyId: r.u32() };
      const hasOneTime = r.u8();
      if (hasOneTime > 1) throw new CryptoError('BAD_MESSAGE', 'session state: bad flag');
      if (hasOneTime === 1) pending.oneTimePrekeyId = r.u32();
      session.pending = pending;
    }
    if (flags & 16) session.baseKey = r.bytes(32);
    r.end();
    return session;
  }
}

/**
 * Walks a chain from its current index to `target` (>= chain.n) without changing it: the message
 * keys skipped on the way, the key for `target` and the chain key after it.
 */
function walkChain(chain: Chain, target: number): { skipped: [number, Uint8Array][]; messageKey: Uint8Array; nextChainKey: Uint8Array } {
  const skipped: [number, Uint8Array][] = [];
  let key = chain.key;
  for (let i = chain.n; i < target; i++) {
    const step = chainStep(key);
    skipped.push([i, step.messageKey]);
    if (key !== chain.key) wipe(key);
    key = step.nextChainKey;
  }
  const last = chainStep(key);
  if (key !== chain.key) wipe(key);
  return { skipped, messageKey: last.messageKey, nextChainKey: last.nextChainKey };
}

function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) >>> 0) + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!);
}

function writeU32(buf: Uint8Array, offset: number, n: number): void {
  buf[offset] = n >>> 24;
  buf[offset + 1] = (n >>> 16) & 0xff;
  buf[offset + 2] = (n >>> 8) & 0xff;
  buf[offset + 3] = n & 0xff;
}

function checkSecret(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new RangeError(`${what} must be 32 bytes`);
}

function checkAd(ad: Uint8Array): void {
  if (!(ad instanceof Uint8Array) || ad.length > MAX_ASSOCIATED_DATA) throw new RangeError(`associated data must be at most ${MAX_ASSOCIATED_DATA} bytes`);
}
