/**
 * HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869) on libsodium. No libsodium.js release exposes HKDF,
 * so it is built here on libsodium's HMAC-SHA-256, exactly as RFC 5869 §2 specifies.
 *
 * `crypto_auth_hmacsha256` (one-shot) only takes a 32-byte key; the init/update/final API takes
 * keys of any length (longer than the 64-byte block: hashed first, as HMAC requires). The one-shot
 * is used when the key is 32 bytes (the common case here: PRKs, chain keys), as it is faster.
 */
import { getSodium } from './sodium.js';

export const SHA256_BYTES = 32;
/** RFC 5869: L <= 255 * HashLen. */
export const HKDF_SHA256_MAX_OUTPUT = 255 * SHA256_BYTES;

/** HMAC-SHA-256(key, data) for a key of any length. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  const s = getSodium();
  if (key.length === 32) return s.crypto_auth_hmacsha256(data, key);
  const state = s.crypto_auth_hmacsha256_init(key);
  s.crypto_auth_hmacsha256_update(state, data);
  return s.crypto_auth_hmacsha256_final(state);
}

/** HKDF-Extract(salt, IKM) = HMAC(salt, IKM). An empty salt means HashLen zero bytes (same HMAC). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt.length === 0 ? new Uint8Array(SHA256_BYTES) : salt, ikm);
}

/** HKDF-Expand(PRK, info, L). Throws RangeError if L > 255 * 32 (8160) or L is not a non-negative integer. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > HKDF_SHA256_MAX_OUTPUT) {
    throw new RangeError(`HKDF-SHA-256 output length must be 0..${HKDF_SHA256_MAX_OUTPUT}, got ${length}`);
  }
  const okm = new Uint8Array(length);
  const blocks = Math.ceil(length / SHA256_BYTES);
  // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), T(0) = empty. One buffer holds T(i-1) ‖ info ‖ i.
  const input = new Uint8Array(SHA256_BYTES + info.length + 1);
  input.set(info, SHA256_BYTES);
  let t: Uint8Array = input.subarray(SHA256_BYTES); // first block: info ‖ 1, no T(0)
  for (let i = 1; i <= blocks; i++) {
    input[input.length - 1] = i;
    const block = hmacSha256(prk, t);
    const offset = (i - 1) * SHA256_BYTES;
    okm.set(block.subarray(0, Math.min(SHA256_BYTES, length - offset)), offset);
    input.set(block, 0);
    t = input;
  }
  return okm;
}

/** HKDF-SHA-256(IKM, salt, info, L) per RFC 5869. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > HKDF_SHA256_MAX_OUTPUT) {
    throw new RangeError(`HKDF-SHA-256 output length must be 0..${HKDF_SHA256_MAX_OUTPUT}, got ${length}`);
  }
  return hkdfExpand(hkdfExtract(salt, ikm), info, length);
}
