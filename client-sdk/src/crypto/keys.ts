/**
 * Key material. Identity keys are Ed25519 (they sign); for Diffie-Hellman they are converted to
 * X25519 with libsodium's `crypto_sign_ed25519_{pk,sk}_to_curve25519` (libsodium has no XEdDSA).
 * Prekeys and ratchet keys are X25519.
 *
 * All key types are plain objects of Uint8Array fields and numbers, so they serialize with any
 * structured-clone store (IndexedDB) or a byte/base64 encoder.
 *
 * Signed prekey signature (domain separated, so an identity-key signature made for this purpose
 * can never be valid for another):
 *
 *     signature = Ed25519-Sign(identityPrivate, "Curbside signed prekey v1" ‖ 0x00 ‖ prekeyPublic[32])
 *
 * Every other message signed with an identity key must use its own label, also NUL-terminated,
 * which keeps the set of signed-message prefixes unambiguous.
 */
import { SIGNED_PREKEY_SIGNATURE_PREFIX, signedPrekeyMessage } from '@curbside/shared';
import { isU32 } from './bytes.js';
import { CryptoError } from './errors.js';
import { getSodium, randomBytes, sodiumReady, wipe } from './sodium.js';

export const ED25519_PUBLIC_BYTES = 32;
export const ED25519_PRIVATE_BYTES = 64;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_BYTES = 32;

/** An Ed25519 identity key pair: publicKey 32 bytes, privateKey 64 bytes (libsodium's seed ‖ public). */
export interface IdentityKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** An X25519 key pair: 32-byte public key and 32-byte private scalar. */
export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** A one-time prekey (X25519). keyId is a u32 chosen by the owner. */
export interface Prekey extends KeyPair {
  keyId: number;
}

/** A signed prekey (X25519) with the identity key's signature over its public key. */
export interface SignedPrekey extends Prekey {
  signature: Uint8Array;
}

/** The public part of a one-time prekey, as published. */
export interface PublicPrekey {
  keyId: number;
  publicKey: Uint8Array;
}

/** The public part of a signed prekey, as published. */
export interface PublicSignedPrekey extends PublicPrekey {
  signature: Uint8Array;
}

/** The label in front of a prekey public key in its signature; the hub checks the same (shared contract). */
export const SIGNED_PREKEY_CONTEXT: Uint8Array = SIGNED_PREKEY_SIGNATURE_PREFIX;

function checkKeyId(keyId: number): void {
  if (!isU32(keyId)) throw new RangeError(`prekey id must be an integer in 0..2^32-1, got ${keyId}`);
}

export async function generateIdentityKeyPair(): Promise<IdentityKeyPair> {
  const s = await sodiumReady();
  const seed = randomBytes(32);
  const { publicKey, privateKey } = s.crypto_sign_seed_keypair(seed);
  wipe(seed);
  return { publicKey, privateKey };
}

/**
 * A fresh X25519 key pair (synchronous: needs {@link sodiumReady} to have resolved). Same as
 * libsodium's `crypto_box_keypair` (random 32-byte secret, public = `crypto_scalarmult_base`), with
 * the randomness taken from the platform CSPRNG directly (see {@link randomBytes}): about 3× faster.
 */
export function generateKeyPairSync(): KeyPair {
  const privateKey = randomBytes(X25519_BYTES);
  return { publicKey: getSodium().crypto_scalarmult_base(privateKey), privateKey };
}

export async function generatePrekey(keyId: number): Promise<Prekey> {
  checkKeyId(keyId);
  await sodiumReady();
  return { keyId, ...generateKeyPairSync() };
}

/** Generates `count` one-time prekeys with consecutive ids from `firstKeyId` (wrapping at 2^32). */
export async function generatePrekeys(firstKeyId: number, count: number): Promise<Prekey[]> {
  checkKeyId(firstKeyId);
  await sodiumReady();
  return Array.from({ length: count }, (_, i) => ({ keyId: (firstKeyId + i) % 0x1_0000_0000, ...generateKeyPairSync() }));
}

export async function generateSignedPrekey(identity: IdentityKeyPair, keyId: number): Promise<SignedPrekey> {
  checkKeyId(keyId);
  await sodiumReady();
  const pair = generateKeyPairSync();
  return { keyId, ...pair, signature: sign(identity.privateKey, signedPrekeyMessage(pair.publicKey)) };
}

/**
 * Whether `spk.signature` is the identity key's signature over `spk.publicKey`. Never throws on
 * malformed input (wrong lengths are simply invalid). Synchronous: needs {@link sodiumReady}.
 */
export function verifySignedPrekey(identityPublic: Uint8Array, spk: PublicSignedPrekey): boolean {
  if (spk.publicKey.length !== X25519_BYTES) return false;
  return verifySignature(identityPublic, signedPrekeyMessage(spk.publicKey), spk.signature);
}

/** Ed25519 detached signature. */
export function sign(identityPrivate: Uint8Array, message: Uint8Array): Uint8Array {
  if (identityPrivate.length !== ED25519_PRIVATE_BYTES) throw new RangeError('Ed25519 private key must be 64 bytes');
  return getSodium().crypto_sign_detached(message, identityPrivate);
}

/** Ed25519 verification (libsodium: strict, rejects non-canonical and small-order encodings). Never throws. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  try {
    return getSodium().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Ed25519 identity public key → X25519 public key. Invalid or small-order points: CryptoError('WEAK_KEY'). */
export function identityPublicToX25519(identityPublic: Uint8Array): Uint8Array {
  if (identityPublic.length !== ED25519_PUBLIC_BYTES) throw new CryptoError('WEAK_KEY', 'identity key must be 32 bytes');
  try {
    return getSodium().crypto_sign_ed25519_pk_to_curve25519(identityPublic);
  } catch (e) {
    throw new CryptoError('WEAK_KEY', 'identity key is not a valid Ed25519 point', { cause: e });
  }
}

/** Ed25519 identity private key (64 bytes) → X25519 private scalar. */
export function identityPrivateToX25519(identityPrivate: Uint8Array): Uint8Array {
  if (identityPrivate.length !== ED25519_PRIVATE_BYTES) throw new RangeError('Ed25519 private key must be 64 bytes');
  return getSodium().crypto_sign_ed25519_sk_to_curve25519(identityPrivate);
}

/**
 * X25519(privateKey, publicKey). libsodium's `crypto_scalarmult` refuses public keys whose result
 * is all zeros (low-order points): that, or a public key of the wrong length, is
 * CryptoError('WEAK_KEY'), never another exception.
 */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  if (privateKey.length !== X25519_BYTES) throw new RangeError('X25519 private key must be 32 bytes');
  if (publicKey.length !== X25519_BYTES) throw new CryptoError('WEAK_KEY', `X25519 public key must be 32 bytes, got ${publicKey.length}`);
  try {
    return getSodium().crypto_scalarmult(privateKey, publicKey);
  } catch (e) {
    throw new CryptoError('WEAK_KEY', 'X25519 public key is a low-order point', { cause: e });
  }
}
