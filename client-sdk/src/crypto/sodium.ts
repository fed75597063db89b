/**
 * The one place that loads libsodium. Every primitive in this folder comes from libsodium
 * (`libsodium-wrappers-sumo`: the sumo build is needed for HMAC-SHA-256 and SHA-512).
 *
 * Initialisation is asynchronous (WebAssembly); everything after it is synchronous. The async entry
 * points of this module (key generation, X3DH, session start/accept, fingerprints) await
 * {@link sodiumReady} themselves; the synchronous ones (HKDF, ratchet encrypt/decrypt, ...) need it
 * to have resolved once, and throw a plain Error (a programming error, not a CryptoError) otherwise.
 */
import sodium from 'libsodium-wrappers-sumo';
import { CryptoError } from './errors.js';

export type Sodium = typeof sodium;

let ready: Promise<Sodium> | undefined;
let loaded: Sodium | undefined;

/** Resolves with the initialised libsodium. Safe to call any number of times. */
export function sodiumReady(): Promise<Sodium> {
  ready ??= sodium.ready.then(() => {
    loaded = sodium;
    return sodium;
  });
  return ready;
}

/** The initialised libsodium, synchronously. Throws if {@link sodiumReady} has not resolved yet. */
export function getSodium(): Sodium {
  if (loaded === undefined) {
    // libsodium.js fills in its functions once initialised; that also covers a second copy of this
    // module (two bundles, or ESM and CJS loaders) sharing one initialised libsodium.
    if (typeof sodium.crypto_auth_hmacsha256 !== 'function') throw new Error('libsodium is not initialised: await sodiumReady() first');
    loaded = sodium;
  }
  return loaded;
}

/** Concatenates byte arrays into a new one. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Constant-time equality (libsodium `sodium_memcmp`) for secrets and MACs. Arrays of different
 * lengths are unequal (lengths are not secret here).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.length === 0) return true;
  return getSodium().memcmp(a, b);
}

/** Plain equality for public values (keys, headers): not constant-time. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Cryptographically secure random bytes from the platform CSPRNG (`globalThis.crypto.getRandomValues`),
 * which is also what libsodium.js's own `randombytes_buf` draws from in browsers and Node; calling
 * it directly is about 40× faster for small buffers (libsodium.js fetches 4 bytes per callback).
 */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65536)));
  }
  return out;
}

/** Overwrites secret bytes with zeros (best effort in JavaScript: copies made elsewhere survive). */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  const s = getSodium();
  for (const b of buffers) if (b !== undefined && b.length > 0) s.memzero(b);
}

export { toHex, fromHex } from './bytes.js';

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

/** XChaCha20-Poly1305 (IETF) encryption; returns ciphertext ‖ 16-byte tag. */
export function aeadEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Uint8Array {
  if (key.length !== AEAD_KEY_BYTES || nonce.length !== AEAD_NONCE_BYTES) throw new RangeError('aeadEncrypt: bad key or nonce length');
  return getSodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associatedData, null, nonce, key);
}

/**
 * XChaCha20-Poly1305 (IETF) decryption of ciphertext ‖ tag. Any failure (wrong key, tampered
 * ciphertext, tag or associated data, truncated input, bad nonce length) is CryptoError('DECRYPT_FAILED').
 */
export function aeadDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, associatedData: Uint8Array): Uint8Array {
  if (key.length !== AEAD_KEY_BYTES) throw new RangeError('aeadDecrypt: bad key length');
  if (nonce.length !== AEAD_NONCE_BYTES) throw new CryptoError('DECRYPT_FAILED', `nonce must be ${AEAD_NONCE_BYTES} bytes`);
  if (ciphertext.length < AEAD_TAG_BYTES) throw new CryptoError('DECRYPT_FAILED', 'ciphertext shorter than the tag');
  try {
    return getSodium().crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, associatedData, nonce, key);
  } catch (e) {
    throw new CryptoError('DECRYPT_FAILED', 'AEAD authentication failed', { cause: e });
  }
}

/** SHA-512 (libsodium `crypto_hash_sha512`). */
export function sha512(data: Uint8Array): Uint8Array {
  return getSodium().crypto_hash_sha512(data);
}
