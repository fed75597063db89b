/**
 * Minimal length-checked binary reader/writer for the wire and storage formats of this folder.
 * Integers are big-endian. Every read past the end, or any other malformation, is
 * CryptoError('BAD_MESSAGE'): parsing untrusted bytes never throws anything else.
 */
import { CryptoError } from './errors.js';

export const MAX_U32 = 0xffff_ffff;

export function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_U32;
}

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(n: number): this {
    this.ensure(1);
    this.buf[this.len++] = n & 0xff;
    return this;
  }

  u32(n: number): this {
    if (!isU32(n)) throw new RangeError(`not a u32: ${n}`);
    this.ensure(4);
    this.view.setUint32(this.len, n);
    this.len += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** u32 length prefix, then the bytes. */
  varBytes(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what = 'message',
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number): void {
    if (n > this.remaining) throw new CryptoError('BAD_MESSAGE', `${this.what} truncated`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u32(): number {
    this.need(4);
    const n = this.view.getUint32(this.offset);
    this.offset += 4;
    return n;
  }

  /** A copy of the next `n` bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  varBytes(max: number): Uint8Array {
    const n = this.u32();
    if (n > max) throw new CryptoError('BAD_MESSAGE', `${this.what}: field longer than ${max}`);
    return this.bytes(n);
  }

  /** A copy of everything left. */
  rest(): Uint8Array {
    const out = this.buf.slice(this.offset);
    this.offset = this.buf.length;
    return out;
  }

  end(): void {
    if (this.remaining !== 0) throw new CryptoError('BAD_MESSAGE', `${this.what}: ${this.remaining} trailing bytes`);
  }
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hex (pure JS: usable before libsodium is ready). */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX_DIGITS[bytes[i]!]!;
  return s;
}

/** Parses hex (either case). Throws RangeError on odd length or a non-hex character. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new RangeError('invalid hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
