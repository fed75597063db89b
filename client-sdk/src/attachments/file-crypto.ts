/**
 * Files encrypted as a stream: libsodium's `crypto_secretstream_xchacha20poly1305` under a random key
 * per file, in chunks of `CHUNK_BYTES` of plaintext (each ciphertext chunk is 17 bytes longer), the
 * last one tagged `TAG_FINAL`. A BLAKE2b-256 hash over the whole ciphertext travels in the sealed
 * message: Poly1305 does not commit to its key, so the hash pins the exact bytes the sender made.
 *
 * Decryption checks as it streams: a chunk that does not authenticate (a flipped byte), chunks out
 * of order (each chunk's nonce follows from the ones before), a stream that ends before its final
 * chunk (truncation) or goes on after it (extra data), and a hash that differs are all
 * ATTACHMENT_TAMPERED, raised before the last plaintext is handed out: a damaged file never looks
 * like a complete, shorter one.
 */
import { ErrorCode } from '@curbside/shared';
import { constantTimeEqual, getSodium } from '../crypto/index.js';
import { CurbsideError } from '../errors.js';

/** Plaintext bytes per secretstream chunk. */
export const CHUNK_BYTES = 64 * 1024;
/** What secretstream adds to each chunk (tag byte and Poly1305 MAC). */
export const CHUNK_OVERHEAD = 17;
export const KEY_BYTES = 32;
export const HEADER_BYTES = 24;
export const HASH_BYTES = 32;

/** Ciphertext bytes of a file of `size` plaintext bytes (an empty file is one empty final chunk). */
export function cipherSizeOf(size: number, chunkBytes = CHUNK_BYTES): number {
  const chunks = Math.max(1, Math.ceil(size / chunkBytes));
  return size + chunks * CHUNK_OVERHEAD;
}

export function tampered(reason: string, details: Record<string, unknown> = {}): CurbsideError {
  return new CurbsideError(ErrorCode.ATTACHMENT_TAMPERED, 'This attachment was damaged or tampered with and cannot be opened', { reason, ...details });
}

/** Regroup a byte stream into pieces of exactly `size` bytes (the last may be shorter), copying only when pieces straddle. */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.length) {
      if (pendingBytes === 0 && piece.length - offset >= size) {
        yield piece.subarray(offset, offset + size);
        offset += size;
        continue;
      }
      const take = Math.min(size - pendingBytes, piece.length - offset);
      pending.push(piece.subarray(offset, offset + take));
      pendingBytes += take;
      offset += take;
      if (pendingBytes === size) {
        yield join(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield join(pending, pendingBytes);
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** What encrypting a file produced, known once its stream is consumed. */
export interface EncryptedFileInfo {
  key: Uint8Array;
  header: Uint8Array;
  /** BLAKE2b-256 of the ciphertext. */
  hash: Uint8Array;
  size: number;
  cipherSize: number;
}

/**
 * Encrypt `plaintext` into ciphertext chunks. `info` is filled in as the stream is consumed (key and
 * header at once, the rest when it ends).
 */
export function encryptFile(plaintext: AsyncIterable<Uint8Array>, chunkBytes = CHUNK_BYTES): { chunks: AsyncGenerator<Uint8Array>; info: Partial<EncryptedFileInfo> & Pick<EncryptedFileInfo, 'key' | 'header'> } {
  const sodium = getSodium();
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  const info: Partial<EncryptedFileInfo> & Pick<EncryptedFileInfo, 'key' | 'header'> = { key, header };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const hash = sodium.crypto_generichash_init(null, HASH_BYTES);
    let size = 0;
    let cipherSize = 0;
    // One chunk of look-ahead: the last one must carry TAG_FINAL.
    let previous: Uint8Array | undefined;
    const push = (chunk: Uint8Array, final: boolean): Uint8Array => {
      const tag = final ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
      const c = sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, null, tag);
      sodium.crypto_generichash_update(hash, c);
      size += chunk.length;
      cipherSize += c.length;
      return c;
    };
    for await (const chunk of rechunk(plaintext, chunkBytes)) {
      if (previous) yield push(previous, false);
      previous = chunk;
    }
    yield push(previous ?? new Uint8Array(0), true);
    info.hash = sodium.crypto_generichash_final(hash, HASH_BYTES);
    info.size = size;
    info.cipherSize = cipherSize;
  }
  return { chunks: chunks(), info };
}

/**
 * Decrypt and check a downloaded ciphertext stream, yielding plaintext chunks.
 * @throws CurbsideError ATTACHMENT_TAMPERED (see the module comment)
 */
export async function* decryptFile(
  ciphertext: AsyncIterable<Uint8Array>,
  expect: { key: Uint8Array; header: Uint8Array; hash: Uint8Array; cipherSize: number; chunkBytes: number },
): AsyncGenerator<Uint8Array> {
  const sodium = getSodium();
  if (expect.key.length !== KEY_BYTES || expect.header.length !== HEADER_BYTES) throw tampered('bad key or header');
  let state: ReturnType<Sodium['crypto_secretstream_xchacha20poly1305_init_pull']>;
  try {
    state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(expect.header, expect.key);
  } catch {
    throw tampered('bad header');
  }
  const hash = sodium.crypto_generichash_init(null, HASH_BYTES);
  let received = 0;
  let index = 0;
  let finished = false;
  for await (const chunk of rechunk(ciphertext, expect.chunkBytes + CHUNK_OVERHEAD)) {
    if (finished) throw tampered('data after the final chunk', { chunk: index });
    received += chunk.length;
    if (received > expect.cipherSize) throw tampered('more ciphertext than the sender sealed');
    sodium.crypto_generichash_update(hash, chunk);
    let opened: { message: Uint8Array; tag: number } | false;
    try {
      opened = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, null) as { message: Uint8Array; tag: number } | false;
    } catch {
      opened = false;
    }
    if (!opened) throw tampered('a chunk does not authenticate (changed, reordered or from another file)', { chunk: index });
    index++;
    if (opened.tag === sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
      finished = true;
      // The hash before the last plaintext goes out: whoever reads to the end has checked every byte.
      if (received !== expect.cipherSize) throw tampered('the stream ended early', { received });
      if (!constantTimeEqual(sodium.crypto_generichash_final(hash, HASH_BYTES), expect.hash)) throw tampered('the ciphertext hash differs from the one the sender sealed');
    } else if (opened.tag !== sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
      throw tampered('unexpected chunk tag', { chunk: index });
    }
    if (opened.message.length) yield opened.message;
  }
  if (!finished) throw tampered('the stream ended before its final chunk (truncated)', { received });
}

type Sodium = ReturnType<typeof getSodium>;
