/**
 * Safety numbers: libsignal's numeric fingerprint (rust/protocol/src/fingerprint.rs,
 * Java NumericFingerprintGenerator), reproduced exactly so its published vectors pass.
 *
 * Per side:   H_0 = SHA-512(0x0000 ‖ key ‖ stableId ‖ key),   H_i = SHA-512(H_{i-1} ‖ key),  i = 1 .. iterations-1
 *             (5200 iterations: 5200 SHA-512 calls in total; "key" is the encoded identity key)
 * Display:    first 30 bytes of each side's hash as 6 chunks of 5 bytes, each big-endian mod 100000,
 *             zero-padded to 5 digits → 30 digits per side; the two sides are ordered (lexicographic,
 *             smaller first) and concatenated → 60 digits, identical on both phones.
 * Scannable:  protobuf CombinedFingerprints { version, local: first 32 bytes, remote: first 32 bytes }.
 *
 * libsignal's keys here are 33 bytes: 0x05 ‖ Curve25519 public key. Ours are Ed25519 identity
 * keys: we feed `0xED ‖ Ed25519 public key` (33 bytes; {@link fingerprintKeyBytes}). The 0xED type
 * byte keeps our encoding distinct from libsignal's; the Ed25519 key itself (not its X25519 image,
 * which would lose the sign bit) is what the number commits to. The stable identifier is the
 * Curbside user id, UTF-8.
 */
import { CryptoError } from './errors.js';
import { ED25519_PUBLIC_BYTES } from './keys.js';
import { constantTimeEqual, getSodium, sodiumReady, utf8 } from './sodium.js';

export const FINGERPRINT_ITERATIONS = 5200;
/** Scannable fingerprint version we emit (libsignal's current is 2; the display string is the same for 1 and 2). */
export const SCANNABLE_FINGERPRINT_VERSION = 2;
export const CURBSIDE_IDENTITY_KEY_TYPE = 0xed;

/** One side's iterated SHA-512 (64 bytes) over an encoded identity key and a stable identifier. */
export function fingerprintHash(keyBytes: Uint8Array, stableIdentifier: Uint8Array, iterations = FINGERPRINT_ITERATIONS): Uint8Array {
  if (!Number.isInteger(iterations) || iterations <= 1 || iterations > 1_000_000) throw new RangeError(`invalid fingerprint iterations ${iterations}`);
  const s = getSodium();
  const first = new Uint8Array(2 + keyBytes.length + stableIdentifier.length + keyBytes.length);
  first.set(keyBytes, 2);
  first.set(stableIdentifier, 2 + keyBytes.length);
  first.set(keyBytes, 2 + keyBytes.length + stableIdentifier.length);
  let hash = s.crypto_hash_sha512(first);
  const buf = new Uint8Array(64 + keyBytes.length);
  buf.set(keyBytes, 64);
  for (let i = 1; i < iterations; i++) {
    buf.set(hash, 0);
    hash = s.crypto_hash_sha512(buf);
  }
  return hash;
}

/** 30 digits from the first 30 bytes of a fingerprint hash. */
export function fingerprintDigits(hash: Uint8Array): string {
  if (hash.length < 30) throw new RangeError('fingerprint hash too short');
  let out = '';
  for (let chunk = 0; chunk < 6; chunk++) {
    let x = 0;
    for (let j = 0; j < 5; j++) x = x * 256 + hash[chunk * 5 + j]!;
    out += String(x % 100_000).padStart(5, '0');
  }
  return out;
}

/** The 60-digit display string: both sides' digits, smaller first. */
export function displayableFingerprint(localHash: Uint8Array, remoteHash: Uint8Array): string {
  const local = fingerprintDigits(localHash);
  const remote = fingerprintDigits(remoteHash);
  return local < remote ? local + remote : remote + local;
}

/** libsignal's CombinedFingerprints protobuf: 08 version 12 22 0a 20 local[32] 1a 22 0a 20 remote[32]. */
export function scannableFingerprint(version: number, localHash: Uint8Array, remoteHash: Uint8Array): Uint8Array {
  if (!Number.isInteger(version) || version < 0 || version > 127) throw new RangeError('scannable fingerprint version must be 0..127');
  if (localHash.length < 32 || remoteHash.length < 32) throw new RangeError('fingerprint hash too short');
  const out = new Uint8Array(2 + 2 * 36);
  out.set([0x08, version, 0x12, 0x22, 0x0a, 0x20], 0);
  out.set(localHash.subarray(0, 32), 6);
  out.set([0x1a, 0x22, 0x0a, 0x20], 38);
  out.set(remoteHash.subarray(0, 32), 42);
  return out;
}

function parseScannable(bytes: Uint8Array): { version: number; local: Uint8Array; remote: Uint8Array } {
  const ok =
    bytes.length === 74 &&
    bytes[0] === 0x08 &&
    bytes[1]! < 0x80 &&
    [0x12, 0x22, 0x0a, 0x20].every((b, i) => bytes[2 + i] === b) &&
    [0x1a, 0x22, 0x0a, 0x20].every((b, i) => bytes[38 + i] === b);
  if (!ok) throw new CryptoError('BAD_MESSAGE', 'scannable fingerprint: unexpected encoding');
  return { version: bytes[1]!, local: bytes.subarray(6, 38), remote: bytes.subarray(42, 74) };
}

/**
 * Compares our scannable fingerprint with the one scanned from the peer's screen: true if theirs
 * has our local and remote swapped. Malformed input or another version: CryptoError('BAD_MESSAGE').
 */
export function compareScannableFingerprints(ours: Uint8Array, scanned: Uint8Array): boolean {
  const a = parseScannable(ours);
  const b = parseScannable(scanned);
  if (a.version !== b.version) throw new CryptoError('BAD_MESSAGE', `scannable fingerprint version ${b.version}, expected ${a.version}`);
  const same1 = constantTimeEqual(a.local, b.remote);
  const same2 = constantTimeEqual(a.remote, b.local);
  return same1 && same2;
}

/** How a Curbside Ed25519 identity key is fed into the fingerprint: 0xED ‖ public key. */
export function fingerprintKeyBytes(identityPublic: Uint8Array): Uint8Array {
  if (identityPublic.length !== ED25519_PUBLIC_BYTES) throw new RangeError('identity key must be 32 bytes');
  const out = new Uint8Array(1 + ED25519_PUBLIC_BYTES);
  out[0] = CURBSIDE_IDENTITY_KEY_TYPE;
  out.set(identityPublic, 1);
  return out;
}

export interface Fingerprint {
  /** 60 digits, the same on both sides. Show as 12 groups of 5. */
  displayString: string;
  /** For a QR code; compare with {@link compareScannableFingerprints}. */
  scannable: Uint8Array;
}

/** The generic construction over already-encoded keys (this is what libsignal's vectors test). */
export function computeFingerprint(
  version: number,
  iterations: number,
  localIdentifier: Uint8Array,
  localKeyBytes: Uint8Array,
  remoteIdentifier: Uint8Array,
  remoteKeyBytes: Uint8Array,
): Fingerprint {
  const local = fingerprintHash(localKeyBytes, localIdentifier, iterations);
  const remote = fingerprintHash(remoteKeyBytes, remoteIdentifier, iterations);
  return { displayString: displayableFingerprint(local, remote), scannable: scannableFingerprint(version, local, remote) };
}

/** The safety number between us and a contact, from Curbside Ed25519 identity keys and user ids. */
export async function safetyNumber(params: {
  localIdentifier: string | Uint8Array;
  localIdentityKey: Uint8Array;
  remoteIdentifier: string | Uint8Array;
  remoteIdentityKey: Uint8Array;
}): Promise<Fingerprint> {
  await sodiumReady();
  const id = (v: string | Uint8Array) => (typeof v === 'string' ? utf8(v) : v);
  return computeFingerprint(
    SCANNABLE_FINGERPRINT_VERSION,
    FINGERPRINT_ITERATIONS,
    id(params.localIdentifier),
    fingerprintKeyBytes(params.localIdentityKey),
    id(params.remoteIdentifier),
    fingerprintKeyBytes(params.remoteIdentityKey),
  );
}
