/**
 * JPEG: keep only what decoding needs, each kept segment checked to be what its marker says (so a
 * damaged marker cannot make an EXIF block pass for a Huffman table), and drop the rest.
 *
 * Kept: SOI; APP0 JFIF rewritten without its thumbnail; APP2 ICC profile; APP14 Adobe (its 12 bytes);
 * DQT, DHT, SOFn, DRI, DAC, DNL, DHP, EXP; SOS with its entropy-coded data; EOI. Dropped: every other
 * APPn (EXIF, XMP and extended XMP, Photoshop/IPTC, MPF and the secondary images after the first EOI,
 * JFXX thumbnails, Ducky, C2PA/JUMBF, FlashPix…), COM, JPGn extensions, data after EOI.
 * The orientation is put back as an EXIF block holding only that tag, after JFIF.
 */
import { orientationOnlyExif, readExif } from './exif.js';
import { RemovedList, concat, hasAscii, malformed, type RemovedMetadata } from './removed.js';

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DQT = 0xdb;
const DHT = 0xc4;
const DAC = 0xcc;
const DNL = 0xdc;
const DRI = 0xdd;
const DHP = 0xde;
const EXP = 0xdf;
const COM = 0xfe;
const APP0 = 0xe0;
const APP15 = 0xef;

const bad = (reason: string) => malformed('JPEG', reason);
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== DHT && m !== 0xc8 && m !== DAC;
const isRst = (m: number) => m >= 0xd0 && m <= 0xd7;

export function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === SOI && b[2] === 0xff;
}

export interface StrippedJpeg {
  bytes: Uint8Array;
  removed: RemovedMetadata[];
  /** The EXIF orientation kept (1 when there was none). */
  orientation: number;
}

export function stripJpeg(b: Uint8Array): StrippedJpeg {
  const removed = new RemovedList();
  const out: Uint8Array[] = [b.subarray(0, 2)];
  let orientation = 1;
  let jfifEnd = 0; // in `out` terms: where a JFIF segment ends, to put the orientation after it
  let outLength = 2;
  const keep = (segment: Uint8Array) => {
    out.push(segment);
    outLength += segment.length;
  };
  const icc = new IccSegments();
  let sawFrame = false;
  let sawScan = false;
  let p = 2;
  for (;;) {
    if (p >= b.length) throw bad('it ends before its end-of-image marker');
    if (b[p] !== 0xff) throw bad(`no marker at byte ${p}`);
    while (p < b.length && b[p] === 0xff) p++; // fill bytes
    if (p >= b.length) throw bad('it ends inside a marker');
    const marker = b[p]!;
    p++;
    if (marker === EOI) {
      if (!sawScan) throw bad('it has no image data');
      keep(new Uint8Array([0xff, EOI]));
      if (p < b.length) removed.add('data after the image');
      break;
    }
    if (marker === SOI || marker === 0x00 || marker === 0x01 || isRst(marker)) throw bad(`unexpected marker ${marker.toString(16)} at byte ${p - 1}`);
    if (p + 2 > b.length) throw bad('it ends inside a segment length');
    const length = (b[p]! << 8) | b[p + 1]!;
    if (length < 2 || p + length > b.length) throw bad('a segment runs past the end');
    const start = p - 2;
    const data = b.subarray(p + 2, p + length);
    let end = p + length;
    if (marker === SOS) {
      if (!sawFrame) throw bad('image data before its frame header');
      const components = data[0] ?? 0;
      if (components < 1 || components > 4 || length !== 6 + 2 * components) throw bad('a malformed scan header');
      end = scanEnd(b, end);
      sawScan = true;
      keep(b.subarray(start, end));
    } else if (marker >= APP0 && marker <= APP15) {
      const kept = applicationSegment(marker, data, removed);
      if (kept && kept !== 'exif' && marker === APP0 + 2) icc.add(data);
      if (kept === 'exif') {
        orientation = readExif(data.subarray(6), removed) ?? orientation;
      } else if (kept) {
        keep(kept);
        if (marker === APP0 && outLength === 2 + kept.length) jfifEnd = outLength;
      }
    } else if (marker === COM) {
      removed.add('comment');
    } else if (isTableOrFrame(marker)) {
      checkTableOrFrame(marker, data);
      if (isSof(marker) || marker === 0xf7) sawFrame = true;
      keep(b.subarray(start, end));
    } else {
      // JPG and JPGn extensions and reserved markers: nothing a browser decodes needs them.
      removed.add('other metadata');
    }
    p = end;
  }
  icc.check();
  const body = concat(out);
  if (orientation === 1) return { bytes: body, removed: removed.list(), orientation };
  const at = jfifEnd || 2;
  return { bytes: concat([body.subarray(0, at), exifSegment(orientation), body.subarray(at)]), removed: removed.list(), orientation };
}

/** The end of the entropy-coded data starting at `from`: the first marker that is not a stuffed zero, a restart or fill. */
function scanEnd(b: Uint8Array, from: number): number {
  let at = from;
  for (;;) {
    at = b.indexOf(0xff, at);
    if (at < 0 || at + 1 >= b.length) throw bad('it ends inside the image data');
    const next = b[at + 1]!;
    if (next === 0x00 || isRst(next) || next === 0xff) {
      at += next === 0xff ? 1 : 2;
      continue;
    }
    return at;
  }
}

/**
 * An APPn segment: what to keep of it (a rebuilt segment), `'exif'` for an EXIF block (dropped, read
 * for its orientation), or undefined when it is dropped; what was dropped goes into `removed`.
 */
function applicationSegment(marker: number, data: Uint8Array, removed: RemovedList): Uint8Array | 'exif' | undefined {
  if (marker === APP0 && hasAscii(data, 0, 'JFIF\u0000')) {
    if (data.length < 14) throw bad('a short JFIF header');
    if (data[12] !== 0 && data[13] !== 0) removed.add('embedded thumbnail');
    else if (data.length > 14) removed.add('other metadata');
    const jfif = data.slice(0, 14);
    jfif[12] = 0; // no thumbnail
    jfif[13] = 0;
    return segment(APP0, jfif);
  }
  if (marker === APP0 + 2 && hasAscii(data, 0, 'ICC_PROFILE\u0000')) {
    if (data.length < 14 || data[12] === 0 || data[12]! > data[13]!) throw bad('a malformed ICC profile segment');
    return segment(marker, data);
  }
  if (marker === APP0 + 14 && hasAscii(data, 0, 'Adobe')) {
    if (data.length < 12) throw bad('a short Adobe segment');
    return segment(marker, data.subarray(0, 12));
  }
  if (marker === APP0 + 1 && hasAscii(data, 0, 'Exif\u0000')) return 'exif';
  removed.add(describeApplicationSegment(marker, data));
  return undefined;
}

function describeApplicationSegment(marker: number, data: Uint8Array): RemovedMetadata {
  if (marker === APP0 && hasAscii(data, 0, 'JFXX\u0000')) return 'embedded thumbnail';
  if (marker === APP0 + 1 && (hasAscii(data, 0, 'http://ns.adobe.com/xap/1.0/') || hasAscii(data, 0, 'http://ns.adobe.com/xmp/extension/'))) return 'XMP metadata';
  if (marker === APP0 + 2 && hasAscii(data, 0, 'MPF\u0000')) return 'secondary images (MPF)';
  if (marker === APP0 + 11 && hasAscii(data, 0, 'JP')) return 'content credentials (C2PA)';
  if (marker === APP0 + 13) return 'IPTC / Photoshop metadata';
  return 'other metadata';
}

function isTableOrFrame(m: number): boolean {
  return isSof(m) || m === DHT || m === DQT || m === DRI || m === DAC || m === DNL || m === DHP || m === EXP || m === 0xf7 /* JPEG-LS frame */;
}

/** Check that a kept table or frame segment has the structure its marker says. */
function checkTableOrFrame(marker: number, d: Uint8Array): void {
  const n = d.length;
  if (isSof(marker) || marker === DHP || marker === 0xf7) {
    const components = d[5] ?? 0;
    if (n < 6 || components < 1 || n !== 6 + 3 * components) throw bad('a malformed frame header');
    return;
  }
  if (marker === DQT) {
    for (let at = 0; at < n; ) {
      const precision = d[at]! >> 4;
      if (precision > 1 || (d[at]! & 0x0f) > 3) throw bad('a malformed quantisation table');
      at += 1 + 64 * (precision + 1);
      if (at > n) throw bad('a malformed quantisation table');
    }
    if (n === 0) throw bad('an empty quantisation table');
    return;
  }
  if (marker === DHT) {
    for (let at = 0; at < n; ) {
      if (at + 17 > n || d[at]! >> 4 > 1 || (d[at]! & 0x0f) > 3) throw bad('a malformed Huffman table');
      let symbols = 0;
      for (let i = 1; i <= 16; i++) symbols += d[at + i]!;
      if (symbols > 256) throw bad('a malformed Huffman table');
      at += 17 + symbols;
      if (at > n) throw bad('a malformed Huffman table');
    }
    if (n === 0) throw bad('an empty Huffman table');
    return;
  }
  if (marker === DAC) {
    if (n === 0 || n % 2 !== 0) throw bad('a malformed arithmetic-coding table');
    for (let at = 0; at < n; at += 2) {
      const tableClass = d[at]! >> 4;
      const value = d[at + 1]!;
      if (tableClass > 1 || (d[at]! & 0x0f) > 3) throw bad('a malformed arithmetic-coding table');
      if (tableClass === 0 ? (value & 0x0f) > value >> 4 : value < 1 || value > 63) throw bad('a malformed arithmetic-coding table');
    }
    return;
  }
  if (marker === EXP) {
    if (n !== 1) throw bad('a malformed expand segment');
    return;
  }
  // DRI, DNL: one 16-bit number.
  if (n !== 2) throw bad(marker === DRI ? 'a malformed restart interval' : 'a malformed line count');
}

/**
 * The ICC profile's segments, checked to add up to the size the profile declares: a damaged segment
 * length could otherwise make a kept profile segment swallow the metadata segment after it.
 */
class IccSegments {
  private readonly parts = new Map<number, Uint8Array>();
  private count = 0;
  add(data: Uint8Array): void {
    const sequence = data[12]!;
    const count = data[13]!;
    if ((this.count && count !== this.count) || this.parts.has(sequence)) throw bad('inconsistent ICC profile segments');
    this.count = count;
    this.parts.set(sequence, data.subarray(14));
  }
  check(): void {
    if (!this.count) return;
    const first = this.parts.get(1);
    if (this.parts.size !== this.count || !first || first.length < 4) throw bad('an incomplete ICC profile');
    const declared = ((first[0]! << 24) | (first[1]! << 16) | (first[2]! << 8) | first[3]!) >>> 0;
    let total = 0;
    for (const part of this.parts.values()) total += part.length;
    if (total !== declared) throw bad('an ICC profile of another size than it declares');
  }
}

function segment(marker: number, data: Uint8Array): Uint8Array {
  const length = data.length + 2;
  if (length > 0xffff) throw bad('a segment too long');
  const s = new Uint8Array(length + 2);
  s.set([0xff, marker, length >> 8, length & 0xff]);
  s.set(data, 4);
  return s;
}

function exifSegment(orientation: number): Uint8Array {
  return segment(APP0 + 1, concat([new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0]), orientationOnlyExif(orientation)]));
}
