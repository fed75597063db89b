/**
 * WebP (a RIFF container): keep the image chunks (`VP8 `, `VP8L`, `ALPH`, `ANIM`, `ANMF`), the colour
 * profile (`ICCP`) and the `VP8X` header with its EXIF and XMP flags cleared; drop `EXIF`, `XMP ` and any
 * other chunk, and data after the RIFF. An orientation in EXIF is put back as an EXIF chunk holding only
 * that tag (extended format only: a simple-format file's EXIF is never applied by decoders anyway).
 */
import { orientationOnlyExif, readExif } from './exif.js';
import { RemovedList, concat, hasAscii, malformed, type RemovedMetadata } from './removed.js';

const KEEP = new Set(['VP8 ', 'VP8L', 'VP8X', 'ALPH', 'ANIM', 'ANMF', 'ICCP']);
const IMAGE = new Set(['VP8 ', 'VP8L', 'ANMF']);
const FLAG_EXIF = 0x08;
const FLAG_XMP = 0x04;

const bad = (reason: string) => malformed('WebP', reason);

export function isWebp(b: Uint8Array): boolean {
  return b.length >= 12 && hasAscii(b, 0, 'RIFF') && hasAscii(b, 8, 'WEBP');
}

export interface StrippedWebp {
  bytes: Uint8Array;
  removed: RemovedMetadata[];
  orientation: number;
}

export function stripWebp(b: Uint8Array): StrippedWebp {
  const removed = new RemovedList();
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const riffEnd = 8 + view.getUint32(4, true);
  if (riffEnd > b.length || riffEnd < 12) throw bad('its RIFF size does not match the file');
  const kept: Uint8Array[] = [];
  let header: Uint8Array | undefined;
  let orientation = 1;
  let sawImage = false;
  for (let p = 12; p < riffEnd; ) {
    if (p + 8 > riffEnd) throw bad('it ends inside a chunk header');
    const type = String.fromCharCode(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!);
    const size = view.getUint32(p + 4, true);
    const end = p + 8 + size + (size % 2);
    if (p + 8 + size > riffEnd) throw bad(`chunk ${JSON.stringify(type)} runs past the end`);
    const data = b.subarray(p + 8, p + 8 + size);
    if (type === 'VP8X') {
      if (p !== 12 || size !== 10) throw bad('a misplaced or malformed VP8X header');
      header = data.slice();
      header[0] = header[0]! & ~(FLAG_EXIF | FLAG_XMP);
    } else if (KEEP.has(type)) {
      if (IMAGE.has(type)) sawImage = true;
      checkKeptChunk(type, data);
      kept.push(chunk(type, data));
    } else if (type === 'EXIF') {
      orientation = readExif(hasAscii(data, 0, 'Exif\u0000\u0000') ? data.subarray(6) : data, removed) ?? orientation;
    } else if (type === 'XMP ') {
      removed.add('XMP metadata');
    } else {
      removed.add('other metadata');
    }
    p = Math.min(end, riffEnd);
  }
  if (!sawImage) throw bad('it has no image data');
  if (riffEnd < b.length) removed.add('data after the image');
  if (!header) orientation = 1;
  else if (orientation !== 1) {
    header[0] = header[0]! | FLAG_EXIF;
    kept.push(chunk('EXIF', orientationOnlyExif(orientation)));
  }
  const chunks = concat([...(header ? [chunk('VP8X', header)] : []), ...kept]);
  const riff = new Uint8Array(12);
  riff.set([0x52, 0x49, 0x46, 0x46]);
  new DataView(riff.buffer).setUint32(4, 4 + chunks.length, true);
  riff.set([0x57, 0x45, 0x42, 0x50], 8);
  return { bytes: concat([riff, chunks]), removed: removed.list(), orientation };
}

/**
 * A kept chunk must be what it says: a profile of the size it declares, animation frames made of whole
 * chunks, and no metadata chunk inside image data (a damaged chunk size could otherwise make an image
 * chunk swallow the EXIF or XMP chunk after it; by chance these 8 bytes fit in real image data about
 * once in 2^60 bytes).
 */
function checkKeptChunk(type: string, data: Uint8Array): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (type === 'ICCP') {
    if (data.length < 4 || view.getUint32(0) !== data.length) throw bad('an ICC profile of another size than it declares');
    return;
  }
  if (type === 'ANMF') {
    let p = 16;
    if (data.length < p) throw bad('a malformed animation frame');
    while (p < data.length) {
      if (p + 8 > data.length) throw bad('a malformed animation frame');
      const inner = String.fromCharCode(data[p]!, data[p + 1]!, data[p + 2]!, data[p + 3]!);
      const size = view.getUint32(p + 4, true);
      if (!['ALPH', 'VP8 ', 'VP8L'].includes(inner) || p + 8 + size > data.length) throw bad('a malformed animation frame');
      checkKeptChunk(inner, data.subarray(p + 8, p + 8 + size));
      p += 8 + size + (size % 2);
    }
    return;
  }
  for (let at = data.indexOf(0x45); at >= 0; at = data.indexOf(0x45, at + 1)) swallowed(data, view, at, 'EXIF');
  for (let at = data.indexOf(0x58); at >= 0; at = data.indexOf(0x58, at + 1)) swallowed(data, view, at, 'XMP ');
}

function swallowed(data: Uint8Array, view: DataView, at: number, fourcc: string): void {
  if (at + 8 <= data.length && hasAscii(data, at, fourcc) && at + 8 + view.getUint32(at + 4, true) <= data.length) {
    throw bad(`a chunk size that swallows a ${fourcc.trim()} chunk`);
  }
}

/** A RIFF chunk, padded to an even length. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const c = new Uint8Array(8 + data.length + (data.length % 2));
  for (let i = 0; i < 4; i++) c[i] = type.charCodeAt(i);
  new DataView(c.buffer).setUint32(4, data.length, true);
  c.set(data, 8);
  return c;
}
