/**
 * EXIF (a TIFF structure, either byte order): which kinds of identifying data an EXIF block holds, for
 * the "metadata removed" note, and its orientation, which is kept. Values are never read out, only tag
 * numbers. The whole block is dropped whatever it holds, so a broken one only makes the list shorter:
 * reading is bounded and never throws.
 */
import type { RemovedList, RemovedMetadata } from './removed.js';

/** Identifying tags of IFD0 and the EXIF IFD, looked up in both (some phones put Make and Model in the EXIF IFD). */
const TAGS: Record<number, RemovedMetadata> = {
  0x010d: 'computer or document name',
  0x010e: 'description',
  0x010f: 'camera make and model',
  0x0110: 'camera make and model',
  0x0131: 'software',
  0x0132: 'date and time',
  0x013b: 'owner or artist name',
  0x013c: 'computer or document name',
  0x8298: 'copyright',
  0x9c9b: 'description', // XPTitle
  0x9c9c: 'comment', // XPComment
  0x9c9d: 'owner or artist name', // XPAuthor
  0x9c9e: 'keywords', // XPKeywords
  0x9c9f: 'description', // XPSubject
  0xc62f: 'camera serial number', // DNG CameraSerialNumber
  0x9003: 'date and time',
  0x9004: 'date and time',
  0x9010: 'time zone',
  0x9011: 'time zone',
  0x9012: 'time zone',
  0x9286: 'comment', // UserComment
  0x927c: 'maker notes (may hold a serial number)',
  0xa420: 'image unique ID',
  0xa430: 'owner or artist name', // CameraOwnerName
  0xa431: 'camera serial number', // BodySerialNumber
  0xa433: 'lens make and model',
  0xa434: 'lens make and model',
  0xa435: 'camera serial number', // LensSerialNumber
  0xa436: 'description', // ImageTitle
  0xa437: 'owner or artist name', // Photographer
  0xa438: 'owner or artist name', // ImageEditor
};
const EXIF_IFD_POINTER = 0x8769;
const GPS_IFD_POINTER = 0x8825;
const ORIENTATION = 0x0112;
const MAX_ENTRIES = 1000;

interface Tiff {
  u16(at: number): number;
  u32(at: number): number;
}

function tiffOf(t: Uint8Array): Tiff | undefined {
  if (t.length < 8) return undefined;
  const le = t[0] === 0x49 && t[1] === 0x49;
  const be = t[0] === 0x4d && t[1] === 0x4d;
  if (!le && !be) return undefined;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const inRange = (at: number, n: number) => at >= 0 && at + n <= t.length;
  return {
    u16: (at) => (inRange(at, 2) ? view.getUint16(at, le) : -1),
    u32: (at) => (inRange(at, 4) ? view.getUint32(at, le) : -1),
  };
}

interface Entry {
  tag: number;
  /** Where the entry's 4-byte value (or offset to it) is. */
  value: number;
}

/** The entries of the IFD at `offset` that lie inside the block, and the offset of the next IFD. */
function ifd(tiff: Tiff, offset: number): { entries: Entry[]; next: number } {
  const count = tiff.u16(offset);
  if (count <= 0 || count > MAX_ENTRIES) return { entries: [], next: -1 };
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const at = offset + 2 + i * 12;
    const tag = tiff.u16(at);
    if (tag < 0 || tiff.u32(at + 8) < 0) return { entries, next: -1 };
    entries.push({ tag, value: at + 8 });
  }
  return { entries, next: tiff.u32(offset + 2 + count * 12) };
}

/**
 * Add to `removed` what this EXIF block (starting at its TIFF header) holds, and return its
 * orientation (1–8) if it has a valid one.
 */
export function readExif(t: Uint8Array, removed: RemovedList): number | undefined {
  removed.add('EXIF metadata');
  const tiff = tiffOf(t);
  if (!tiff) return undefined;
  let orientation: number | undefined;
  const ifd0 = ifd(tiff, tiff.u32(4));
  for (const { tag, value } of ifd0.entries) {
    const what = TAGS[tag];
    if (what) removed.add(what);
    if (tag === ORIENTATION) {
      const o = tiff.u16(value);
      if (o >= 1 && o <= 8) orientation = o;
    }
    if (tag === GPS_IFD_POINTER && ifd(tiff, tiff.u32(value)).entries.some((e) => e.tag !== 0x0000)) removed.add('GPS position');
    if (tag === EXIF_IFD_POINTER) {
      for (const e of ifd(tiff, tiff.u32(value)).entries) {
        const w = TAGS[e.tag];
        if (w) removed.add(w);
      }
    }
  }
  if (ifd0.next > 0 && ifd(tiff, ifd0.next).entries.length > 0) removed.add('embedded thumbnail');
  return orientation;
}

/** A little-endian TIFF block holding only the Orientation tag: what a JPEG or PNG keeps of its EXIF. */
export function orientationOnlyExif(orientation: number): Uint8Array {
  return new Uint8Array([
    0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, // "II", 42, IFD0 at 8
    0x01, 0x00, // one entry
    0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, orientation, 0x00, 0x00, 0x00, // Orientation, SHORT, 1, value
    0x00, 0x00, 0x00, 0x00, // no next IFD
  ]);
}
