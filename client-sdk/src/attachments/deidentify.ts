/**
 * De-identification of images on the device, before they are encrypted (issue #21): a photo of a rash
 * must not carry where it was taken, the phone's serial number or the owner's name. Pure TypeScript over
 * bytes, the same in browsers and in Node.
 *
 * - **JPEG**: every APPn segment is dropped except what decoding needs (JFIF, the ICC colour profile,
 *   Adobe's colour transform): EXIF (GPS, dates, camera make, model and serial, owner, maker notes, the
 *   embedded thumbnail), XMP, Photoshop/IPTC, MPF with its secondary images, comments, and anything after
 *   the end of the image. The orientation is kept (a minimal EXIF segment with that one tag), since a
 *   sideways clinical image is a real problem.
 * - **PNG**: text chunks (`tEXt`, `zTXt`, `iTXt`: XMP, comments, authors), `eXIf`, `tIME` and every other
 *   ancillary chunk not about colour or pixels are dropped; kept chunks are copied with their CRCs, which
 *   are checked.
 * - Anything else is passed through unchanged and said to be not de-identified.
 *
 * `removed` says in plain words what was there (never the values), for the "metadata removed" note.
 * Malformed or truncated input is a `CurbsideError` (INVALID_PAYLOAD), never a half-stripped success.
 */
import { ErrorCode } from '@curbside/shared';
import { CurbsideError } from '../errors.js';

export interface DeidentifiedImage {
  bytes: Uint8Array;
  mediaType: string;
  /** Whether the format is one this module strips (JPEG, PNG). */
  deidentified: boolean;
  /** What was removed, in words a clinician can be shown, each once (empty when there was nothing). */
  removed: string[];
}

/** Strip identifying metadata from a JPEG or PNG (detected by its magic bytes); other data passes through. */
export function stripImageMetadata(bytes: Uint8Array, mediaType?: string): DeidentifiedImage {
  if (isJpeg(bytes)) return { ...stripJpeg(bytes), mediaType: 'image/jpeg', deidentified: true };
  if (isPng(bytes)) return { ...stripPng(bytes), mediaType: 'image/png', deidentified: true };
  return { bytes, mediaType: mediaType ?? 'application/octet-stream', deidentified: false, removed: [] };
}

export function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
}

function malformed(format: string, why: string): CurbsideError {
  return new CurbsideError(ErrorCode.INVALID_PAYLOAD, `Not a well-formed ${format} image (${why}): it was not sent`);
}

class Removed {
  private readonly items = new Set<string>();
  add(what: string): void {
    this.items.add(what);
  }
  list(): string[] {
    return [...this.items];
  }
}

// --- JPEG -------------------------------------------------------------------------------------

const ascii = (b: Uint8Array, from: number, text: string) => [...text].every((c, i) => b[from + i] === c.charCodeAt(0));

function stripJpeg(b: Uint8Array): { bytes: Uint8Array; removed: string[] } {
  const removed = new Removed();
  const out: Uint8Array[] = [b.subarray(0, 2)];
  let orientation = 1;
  let p = 2;
  let sawScan = false;
  for (;;) {
    if (p >= b.length) throw malformed('JPEG', 'it ends before its end-of-image marker');
    if (b[p] !== 0xff) throw malformed('JPEG', `no marker at byte ${p}`);
    while (b[p] === 0xff && p < b.length) p++; // fill bytes
    const marker = b[p];
    if (marker === undefined) throw malformed('JPEG', 'it ends inside a marker');
    p++;
    if (marker === 0xd9) {
      out.push(new Uint8Array([0xff, 0xd9]));
      if (p < b.length) removed.add('data after the image');
      break;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) throw malformed('JPEG', `unexpected marker ${marker.toString(16)}`);
    if (p + 2 > b.length) throw malformed('JPEG', 'it ends inside a segment length');
    const length = (b[p]! << 8) | b[p + 1]!;
    if (length < 2 || p + length > b.length) throw malformed('JPEG', 'a segment runs past the end');
    const start = p - 2;
    const data = b.subarray(p + 2, p + length);
    let end = p + length;
    if (marker === 0xda) {
      // Start of scan: the entropy-coded data runs to the next marker that is not a restart or a stuffed zero.
      sawScan = true;
      while (end < b.length) {
        if (b[end] === 0xff) {
          const next = b[end + 1];
          if (next === undefined) throw malformed('JPEG', 'it ends inside the image data');
          if (next !== 0x00 && !(next >= 0xd0 && next <= 0xd7) && next !== 0xff) break;
        }
        end++;
      }
      if (end >= b.length) throw malformed('JPEG', 'it ends inside the image data');
      out.push(b.subarray(start, end));
      p = end;
      continue;
    }
    if (keepJpegSegment(marker, data)) out.push(b.subarray(start, end));
    else {
      describeJpegSegment(marker, data, removed);
      if (marker === 0xe1 && ascii(data, 0, 'Exif\u0000\u0000')) orientation = exifOrientation(data.subarray(6)) ?? orientation;
    }
    p = end;
  }
  if (!sawScan) throw malformed('JPEG', 'it has no image data');
  const body = concat(out);
  if (orientation === 1) return { bytes: body, removed: removed.list() };
  // Keep the orientation (and only it): after SOI, and after the JFIF segment if there is one (it comes first).
  const at = body[2] === 0xff && body[3] === 0xe0 ? 4 + ((body[4]! << 8) | body[5]!) : 2;
  return { bytes: concat([body.subarray(0, at), orientationSegment(orientation), body.subarray(at)]), removed: removed.list() };
}

function keepJpegSegment(marker: number, data: Uint8Array): boolean {
  if (marker === 0xe0) return ascii(data, 0, 'JFIF\u0000') || ascii(data, 0, 'JFXX\u0000');
  if (marker === 0xe2) return ascii(data, 0, 'ICC_PROFILE\u0000');
  if (marker === 0xee) return ascii(data, 0, 'Adobe');
  if (marker >= 0xe0 && marker <= 0xef) return false;
  if (marker === 0xfe) return false; // comment
  // DQT, DHT, SOFn, DRI, DAC, DNL, EXP and the like: what decoding needs.
  return true;
}

function describeJpegSegment(marker: number, data: Uint8Array, removed: Removed): void {
  if (marker === 0xfe) return removed.add('comment');
  if (marker === 0xe1 && ascii(data, 0, 'Exif\u0000\u0000')) return describeExif(data.subarray(6), removed);
  if (marker === 0xe1 && (ascii(data, 0, 'http://ns.adobe.com/xap/1.0/') || ascii(data, 0, 'http://ns.adobe.com/xmp/extension/'))) return removed.add('XMP metadata');
  if (marker === 0xed) return removed.add('IPTC / Photoshop metadata');
  if (marker === 0xe2 && ascii(data, 0, 'MPF')) return removed.add('secondary images (MPF)');
  if (marker === 0xec) return removed.add('Ducky metadata');
  removed.add(`other metadata (APP${marker - 0xe0})`);
}

// --- EXIF (TIFF structure): which kinds of identifying data are present, never their values ----

const TAGS_IFD0: Record<number, string> = {
  0x010f: 'camera make and model',
  0x0110: 'camera make and model',
  0x0131: 'software',
  0x0132: 'date and time',
  0x013b: 'owner or artist name',
  0x8298: 'copyright',
  0x010e: 'description',
  0x9c9b: 'description',
  0x9c9c: 'comment',
  0x9c9d: 'owner or artist name',
};
const TAGS_EXIF: Record<number, string> = {
  0x9003: 'date and time',
  0x9004: 'date and time',
  0x9010: 'time zone',
  0x9286: 'comment',
  0x927c: 'maker notes (may hold a serial number)',
  0xa420: 'image unique ID',
  0xa430: 'owner or artist name',
  0xa431: 'camera serial number',
  0xa433: 'lens make and model',
  0xa434: 'lens make and model',
  0xa435: 'camera serial number',
};

interface Tiff {
  u16(at: number): number;
  u32(at: number): number;
  size: number;
}

function tiffOf(t: Uint8Array): Tiff | undefined {
  if (t.length < 8) return undefined;
  const le = t[0] === 0x49 && t[1] === 0x49;
  const be = t[0] === 0x4d && t[1] === 0x4d;
  if (!le && !be) return undefined;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const inRange = (at: number, n: number) => at >= 0 && at + n <= t.length;
  return {
    size: t.length,
    u16: (at) => (inRange(at, 2) ? view.getUint16(at, le) : -1),
    u32: (at) => (inRange(at, 4) ? view.getUint32(at, le) : -1),
  };
}

/** Entries of the IFD at `offset`: [tag, value-or-offset position]. Bounded; a broken IFD yields what it can. */
function ifdEntries(tiff: Tiff, offset: number): Array<{ tag: number; at: number }> {
  const count = tiff.u16(offset);
  if (count <= 0 || count > 1000) return [];
  const out: Array<{ tag: number; at: number }> = [];
  for (let i = 0; i < count; i++) {
    const at = offset + 2 + i * 12;
    const tag = tiff.u16(at);
    if (tag < 0) break;
    out.push({ tag, at });
  }
  return out;
}

function describeExif(t: Uint8Array, removed: Removed): void {
  removed.add('EXIF metadata');
  const tiff = tiffOf(t);
  if (!tiff) return;
  const ifd0 = tiff.u32(4);
  const entries = ifdEntries(tiff, ifd0);
  for (const { tag, at } of entries) {
    if (TAGS_IFD0[tag]) removed.add(TAGS_IFD0[tag]!);
    if (tag === 0x8825 && ifdEntries(tiff, tiff.u32(at + 8)).some((e) => e.tag !== 0x0000)) removed.add('GPS position');
    if (tag === 0x8769) for (const e of ifdEntries(tiff, tiff.u32(at + 8))) if (TAGS_EXIF[e.tag]) removed.add(TAGS_EXIF[e.tag]!);
  }
  const next = ifd0 >= 0 ? tiff.u32(ifd0 + 2 + entries.length * 12) : -1;
  if (next > 0 && ifdEntries(tiff, next).length > 0) removed.add('embedded thumbnail');
}

function exifOrientation(t: Uint8Array): number | undefined {
  const tiff = tiffOf(t);
  if (!tiff) return undefined;
  const entry = ifdEntries(tiff, tiff.u32(4)).find((e) => e.tag === 0x0112);
  const value = entry ? tiff.u16(entry.at + 8) : -1;
  return value >= 1 && value <= 8 ? value : undefined;
}

/** An APP1 segment with a little-endian TIFF holding only the Orientation tag. */
function orientationSegment(orientation: number): Uint8Array {
  const tiff = [0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, orientation, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
  const payload = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00, ...tiff];
  const length = payload.length + 2;
  return new Uint8Array([0xff, 0xe1, length >> 8, length & 0xff, ...payload]);
}

// --- PNG --------------------------------------------------------------------------------------

/** Ancillary chunks about colour or pixels, kept. */
const PNG_KEEP = new Set(['cHRM', 'gAMA', 'iCCP', 'sBIT', 'sRGB', 'bKGD', 'hIST', 'tRNS', 'pHYs', 'sPLT', 'cICP', 'mDCv', 'cLLi', 'acTL', 'fcTL', 'fdAT']);

function stripPng(b: Uint8Array): { bytes: Uint8Array; removed: string[] } {
  const removed = new Removed();
  const out: Uint8Array[] = [b.subarray(0, 8)];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 8;
  let sawIhdr = false;
  for (;;) {
    if (p + 12 > b.length) throw malformed('PNG', 'it ends before its IEND chunk');
    const length = view.getUint32(p);
    const type = String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) throw malformed('PNG', `a chunk type is not four letters at byte ${p}`);
    const end = p + 12 + length;
    if (length > 0x7fffffff || end > b.length) throw malformed('PNG', `chunk ${type} runs past the end`);
    if (crc32(b.subarray(p + 4, p + 8 + length)) !== view.getUint32(p + 8 + length)) throw malformed('PNG', `chunk ${type} fails its CRC`);
    if (!sawIhdr && type !== 'IHDR') throw malformed('PNG', 'it does not start with IHDR');
    sawIhdr = true;
    const critical = type.charCodeAt(0) < 0x61;
    if (critical || PNG_KEEP.has(type)) out.push(b.subarray(p, end));
    else if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') removed.add(textChunkWhat(b.subarray(p + 8, p + 8 + length)));
    else if (type === 'eXIf') describeExif(b.subarray(p + 8, p + 8 + length), removed);
    else if (type === 'tIME') removed.add('date and time');
    else removed.add(`other metadata (${type})`);
    p = end;
    if (type === 'IEND') {
      if (p < b.length) removed.add('data after the image');
      break;
    }
  }
  return { bytes: concat(out), removed: removed.list() };
}

/** A PNG text chunk in words, from its keyword (never its text). */
function textChunkWhat(data: Uint8Array): string {
  let keyword = '';
  for (let i = 0; i < Math.min(data.length, 80) && data[i] !== 0; i++) keyword += String.fromCharCode(data[i]!);
  const k = keyword.toLowerCase();
  if (k === 'xml:com.adobe.xmp') return 'XMP metadata';
  if (k === 'author' || k === 'copyright') return 'owner or artist name';
  if (k === 'creation time') return 'date and time';
  if (k === 'comment' || k === 'description') return 'comment';
  if (k === 'raw profile type exif' || k === 'raw profile type app1') return 'EXIF metadata';
  if (k === 'raw profile type iptc') return 'IPTC / Photoshop metadata';
  return 'text metadata';
}

let crcTable: Uint32Array | undefined;
function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of parts) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}
