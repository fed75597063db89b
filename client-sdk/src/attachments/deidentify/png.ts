/**
 * PNG: keep the critical chunks and the ancillary chunks about colour, transparency, pixel size and
 * animation; drop text (`tEXt`, `zTXt`, `iTXt`: XMP, author, comments…), `eXIf`, `tIME`, every other
 * ancillary chunk, and data after `IEND`. Every chunk's CRC is checked; the ICC profile's free-text name
 * is replaced by a fixed one; an orientation in `eXIf` is put back as an `eXIf` holding only that tag.
 */
import { orientationOnlyExif, readExif } from './exif.js';
import { RemovedList, concat, malformed, type RemovedMetadata } from './removed.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CRITICAL = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND']);
/** Ancillary chunks about colour, transparency, pixel size or animation: kept. */
const KEEP = new Set(['cHRM', 'gAMA', 'sBIT', 'sRGB', 'bKGD', 'hIST', 'tRNS', 'pHYs', 'cICP', 'mDCv', 'cLLi', 'acTL', 'fcTL', 'fdAT']);
const ICC_NAME = 'ICC profile';

const bad = (reason: string) => malformed('PNG', reason);

export function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && SIGNATURE.every((v, i) => b[i] === v);
}

export interface StrippedPng {
  bytes: Uint8Array;
  removed: RemovedMetadata[];
  orientation: number;
}

export function stripPng(b: Uint8Array): StrippedPng {
  const removed = new RemovedList();
  const out: Uint8Array[] = [b.subarray(0, 8)];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let orientation = 1;
  let sawIdat = false;
  let p = 8;
  for (let index = 0; ; index++) {
    if (p + 12 > b.length) throw bad('it ends before its IEND chunk');
    const length = view.getUint32(p);
    const type = String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) throw bad(`a chunk type is not four letters at byte ${p}`);
    if (length > 0x7fffffff || p + 12 + length > b.length) throw bad(`chunk ${type} runs past the end`);
    const end = p + 12 + length;
    const data = b.subarray(p + 8, p + 8 + length);
    if (crc32(b.subarray(p + 4, p + 8 + length)) !== view.getUint32(p + 8 + length)) throw bad(`chunk ${type} fails its CRC`);
    if ((index === 0) !== (type === 'IHDR')) throw bad('IHDR is not its first chunk, or comes twice');
    if (type === 'IHDR' && length !== 13) throw bad('a malformed IHDR');
    const critical = type.charCodeAt(0) < 0x61;
    if (critical && !CRITICAL.has(type)) throw bad(`unknown critical chunk ${type}`);
    if (type === 'IDAT') sawIdat = true;
    if (critical || KEEP.has(type)) out.push(b.subarray(p, end));
    else if (type === 'iCCP') out.push(renamedIccProfile(data));
    else if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') removed.add(textChunkWhat(data));
    else if (type === 'eXIf') orientation = readExif(data, removed) ?? orientation;
    else if (type === 'tIME') removed.add('date and time');
    else if (type === 'caBX') removed.add('content credentials (C2PA)');
    else removed.add('other metadata');
    p = end;
    if (type === 'IEND') {
      if (p < b.length) removed.add('data after the image');
      break;
    }
  }
  if (!sawIdat) throw bad('it has no image data');
  // Right after IHDR: before the image data, as eXIf must be.
  if (orientation !== 1) out.splice(2, 0, chunk('eXIf', orientationOnlyExif(orientation)));
  return { bytes: concat(out), removed: removed.list(), orientation };
}

/** The iCCP chunk with its profile name (free text, up to 79 characters) replaced by a fixed one. */
function renamedIccProfile(data: Uint8Array): Uint8Array {
  const nul = data.indexOf(0);
  if (nul < 1 || nul > 79 || data.length < nul + 3) throw bad('a malformed ICC profile chunk');
  return chunk('iCCP', concat([new TextEncoder().encode(ICC_NAME), data.subarray(nul)]));
}

/** A PNG text chunk in words, from its keyword (never its text). */
function textChunkWhat(data: Uint8Array): RemovedMetadata {
  let keyword = '';
  for (let i = 0; i < Math.min(data.length, 80) && data[i] !== 0; i++) keyword += String.fromCharCode(data[i]!);
  const k = keyword.toLowerCase();
  if (k === 'xml:com.adobe.xmp') return 'XMP metadata';
  if (k === 'author') return 'owner or artist name';
  if (k === 'copyright') return 'copyright';
  if (k === 'creation time') return 'date and time';
  if (k === 'comment') return 'comment';
  if (k === 'description' || k === 'title') return 'description';
  if (k === 'software') return 'software';
  if (k === 'source') return 'camera make and model';
  if (k === 'raw profile type exif' || k === 'raw profile type app1') return 'EXIF metadata';
  if (k === 'raw profile type iptc' || k === 'raw profile type 8bim') return 'IPTC / Photoshop metadata';
  return 'text metadata';
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const c = new Uint8Array(12 + data.length);
  const view = new DataView(c.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
  c.set(data, 8);
  view.setUint32(8 + data.length, crc32(c.subarray(4, 8 + data.length)));
  return c;
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
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
