/**
 * An envelope's per-device ciphertexts as stored: one binary field instead of an array of
 * `{ deviceId, ciphertext }` subdocuments. FerretDB converts every field of a stored document on the
 * way in, so an envelope with nine shares cost its PostgreSQL backend about 610 µs of CPU as
 * subdocuments and about 345 µs packed (docs/benchmarks.md, `scripts/bench/field-cost.ts`). Nothing queries inside the shares: they
 * are stored with the envelope and read back with it.
 *
 * Layout, repeated once per share: device id length (u16, big-endian), device id (UTF-8), ciphertext
 * length (u32, big-endian), ciphertext.
 */

export interface Share {
  deviceId: string;
  ciphertext: Uint8Array;
}

export function packShares(shares: readonly Share[]): Buffer {
  const ids = shares.map((s) => Buffer.from(s.deviceId, 'utf8'));
  let size = 0;
  shares.forEach((s, i) => {
    if (ids[i]!.length > 0xffff) throw new RangeError('device id too long to store');
    size += 2 + ids[i]!.length + 4 + s.ciphertext.byteLength;
  });
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  shares.forEach((s, i) => {
    const id = ids[i]!;
    at = out.writeUInt16BE(id.length, at);
    at += id.copy(out, at);
    at = out.writeUInt32BE(s.ciphertext.byteLength, at);
    out.set(s.ciphertext, at);
    at += s.ciphertext.byteLength;
  });
  return out;
}

/**
 * The shares packed by `packShares`, or undefined when the bytes are not such a list (edited in the
 * database, cut short): the caller then serves the envelope without shares, so one damaged envelope
 * costs its own message and nothing else.
 */
export function unpackShares(bytes: Uint8Array): Share[] | undefined {
  try {
    return unpack(bytes);
  } catch {
    return undefined; // a device id that is not UTF-8
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function unpack(bytes: Uint8Array): Share[] | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Share[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 2 > buf.length) return undefined;
    const idLength = buf.readUInt16BE(at);
    at += 2;
    if (idLength === 0 || at + idLength + 4 > buf.length) return undefined;
    const deviceId = utf8.decode(buf.subarray(at, at + idLength));
    at += idLength;
    const length = buf.readUInt32BE(at);
    at += 4;
    if (at + length > buf.length) return undefined;
    out.push({ deviceId, ciphertext: new Uint8Array(buf.subarray(at, at + length)) });
    at += length;
  }
  return out;
}
