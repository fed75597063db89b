/**
 * Tagged JSON for StoredValues, for stores that persist text (FileDeviceStore). Browser-safe.
 *
 * - A Uint8Array becomes `{"$b64": "<standard base64, padded>"}`.
 * - An object key that starts with `$` gets one more `$` in front (`$x` -> `$$x`), so user data can
 *   never look like a tag. On the way back, `$$x` -> `$x`, and an object with any other `$` key that
 *   is not exactly the bytes tag is refused as corrupt.
 *
 * Round trips are exact for every StoredValue (JSON.stringify escapes lone surrogates, and prints
 * the shortest decimal that reads back to the same double).
 */
import { DeviceStoreError, type StoredValue } from './store.js';
import { defineOwn, isUint8Array } from './value.js';

const BYTES_TAG = '$b64';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

function corrupt(message: string): DeviceStoreError {
  return new DeviceStoreError('CORRUPT', message);
}

/** Standard, padded base64. */
export function bytesToBase64(bytes: Uint8Array): string {
  let out = '';
  const chunk: string[] = [];
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    chunk.push(ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!);
    if (chunk.length === 4096) {
      out += chunk.join('');
      chunk.length = 0;
    }
  }
  out += chunk.join('');
  const rest = n - i;
  if (rest === 1) {
    const v = bytes[i]! << 16;
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + '=';
  }
  return out;
}

/** base64url without padding (RFC 4648 §5), as keys and signatures travel in JSON. */
export function bytesToBase64Url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Inverse of {@link bytesToBase64Url}. */
export function base64UrlToBytes(text: string): Uint8Array {
  if (/[^A-Za-z0-9_-]/.test(text)) throw corrupt('bad base64url character');
  const standard = text.replace(/-/g, '+').replace(/_/g, '/');
  return base64ToBytes(standard + '='.repeat((4 - (standard.length % 4)) % 4));
}

/** Inverse of {@link bytesToBase64}; strict: refuses anything it would not have written. */
export function base64ToBytes(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw corrupt('bad base64 length');
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  const sextet = (pos: number): number => {
    const c = text.charCodeAt(pos);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) throw corrupt('bad base64 character');
    return v;
  };
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const a = sextet(i);
    const b = sextet(i + 1);
    if (last && pad === 2) {
      if (b & 15) throw corrupt('non-canonical base64');
      out[o++] = (a << 2) | (b >> 4);
    } else if (last && pad === 1) {
      const c = sextet(i + 2);
      if (c & 3) throw corrupt('non-canonical base64');
      out[o++] = (a << 2) | (b >> 4);
      out[o++] = ((b & 15) << 4) | (c >> 2);
    } else {
      const c = sextet(i + 2);
      const d = sextet(i + 3);
      out[o++] = (a << 2) | (b >> 4);
      out[o++] = ((b & 15) << 4) | (c >> 2);
      out[o++] = ((c & 3) << 6) | d;
    }
  }
  return out;
}

/** Turn a StoredValue into plain JSON data (no Uint8Arrays, `$` keys escaped). */
export function toTaggedJson(value: StoredValue): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (isUint8Array(value)) return { [BYTES_TAG]: bytesToBase64(value) };
  if (Array.isArray(value)) return value.map(toTaggedJson);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) defineOwn(out, k.startsWith('$') ? `$${k}` : k, toTaggedJson(value[k]!));
  return out;
}

/** Inverse of {@link toTaggedJson}, for data that came from JSON.parse. Throws `CORRUPT` on anything it would not have written. */
export function fromTaggedJson(json: unknown): StoredValue {
  switch (typeof json) {
    case 'string':
    case 'boolean':
      return json;
    case 'number':
      if (!Number.isFinite(json)) throw corrupt('non-finite number');
      return json;
    case 'object': {
      if (json === null) return null;
      if (Array.isArray(json)) return json.map(fromTaggedJson);
      const obj = json as Record<string, unknown>;
      const keys = Object.keys(obj);
      if (keys.length === 1 && keys[0] === BYTES_TAG) {
        const b64 = obj[BYTES_TAG];
        if (typeof b64 !== 'string') throw corrupt('bytes tag without a base64 string');
        return base64ToBytes(b64);
      }
      const out: Record<string, StoredValue> = {};
      for (const k of keys) {
        if (k.startsWith('$') && !k.startsWith('$$')) throw corrupt(`unknown tag ${JSON.stringify(k)}`);
        defineOwn(out, k.startsWith('$') ? k.slice(1) : k, fromTaggedJson(obj[k]));
      }
      return out;
    }
    default:
      throw corrupt(`unexpected ${typeof json} in stored JSON`);
  }
}
