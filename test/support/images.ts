/**
 * Test images for the de-identification tests: the real photos in test/fixtures/images, exiftool (the
 * independent reader, Debian's libimage-exiftool-perl) to write tags in and read them back, and small
 * images written by hand.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'images');

/** A committed fixture image (see test/fixtures/images/README.md). */
export function fixtureImage(name: string): Buffer {
  return readFileSync(join(fixtures, name));
}

/** A Samsung phone photo, little-endian EXIF: GPS, dates, make and model, software, unique id, user comment, XMP, EXIF thumbnail. */
export const SAMSUNG_PHOTO = 'phone-gps.jpg';
/** An iPhone 4S photo, big-endian EXIF: GPS, dates, lens, Apple maker notes, XMP, orientation 6 (rotate 90° clockwise), 205 × 102 stored. */
export const IPHONE_PHOTO = 'iphone-gps-rotated.jpg';
/** An HTC One M8 photo, big-endian EXIF: GPS, make and model, dates. */
export const HTC_PHOTO = 'htc-gps.jpg';

let work: string | undefined;
function workFile(name: string): string {
  work ??= mkdtempSync(join(tmpdir(), 'curbside-images-'));
  return join(work, name);
}

/** Fail, naming the Debian package, when exiftool is not installed: these tests need an independent reader. */
export function requireExiftool(): void {
  if (spawnSync('exiftool', ['-ver']).status !== 0) {
    throw new Error('exiftool is needed to check de-identification independently: install it (Debian: apt-get install libimage-exiftool-perl)');
  }
}

/** Every tag exiftool reads in a file, by group ("GPS:GPSLatitude", "XMP-dc:Creator", "File:ImageWidth", …). */
export function exifTags(bytes: Uint8Array, name: string): Record<string, unknown> {
  const file = workFile(name);
  writeFileSync(file, bytes);
  return (JSON.parse(execFileSync('exiftool', ['-j', '-G1', '-a', '-u', file], { encoding: 'utf8' })) as Array<Record<string, unknown>>)[0]!;
}

/** A copy of `bytes` with tags written in by exiftool (`-Tag=value` arguments). */
export function withTags(bytes: Uint8Array, name: string, args: string[]): Buffer {
  const file = workFile(name);
  writeFileSync(file, bytes);
  execFileSync('exiftool', ['-q', '-q', '-m', '-overwrite_original', ...args, file]);
  return readFileSync(file);
}

/** `identifyingTags` of what exiftool reads in `bytes`: the one-call check that nothing identifying is left. */
export function identifyingTagsIn(bytes: Uint8Array, name: string): string[] {
  return identifyingTags(exifTags(bytes, name));
}

/** Byte strings that only metadata holds in the images here (the fixtures and the tagged images below). */
const IDENTIFYING_BYTES = ['SM-N920T', 'iPhone', 'Apple', 'Dr Example', 'MRN 0042', 'ns.adobe.com', 'Photoshop', 'SAMSUNG'].map((s) => Buffer.from(s, 'latin1'));

/** Which of the identifying byte strings are in `bytes` (a quick check in process, no exiftool). */
export function identifyingBytes(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  return IDENTIFYING_BYTES.filter((s) => b.includes(s)).map((s) => s.toString('latin1'));
}

/**
 * Tags that identify someone or something, or are metadata blocks that should be gone: a whole group
 * (GPS, XMP, IPTC, maker notes, EXIF IFDs, embedded thumbnails, MPF…), or a tag anywhere by name.
 */
const IDENTIFYING =
  /^(GPS|XMP|IPTC|Photoshop|MPF|ExifIFD|IFD1|InteropIFD|MakerNotes|Apple|Samsung|Canon|HTC|JFXX|JUMBF|C2PA|Ducky|FlashPix|PNG-pHYs-x):|^PNG:(Author|Comment|Copyright|CreationTime|Description|Title|Software|Source|ModifyDate)|:(Comment|Artist|Creator|SerialNumber|Copyright|OwnerName|Model|Make|DateTimeOriginal|ModifyDate|CreateDate|Software|ThumbnailImage|By-line|ImageUniqueID|LensModel|UserComment|XPAuthor|XPComment)$/;

/** The identifying tags exiftool finds (see IDENTIFYING); an orientation is not one of them. */
export function identifyingTags(tags: Record<string, unknown>): string[] {
  return Object.keys(tags).filter((k) => IDENTIFYING.test(k));
}

/** The groups of what exiftool found, beyond the file system's and its own (e.g. ["File", "JFIF", "IFD0"]). */
export function metadataGroups(tags: Record<string, unknown>): string[] {
  return [...new Set(Object.keys(tags).map((k) => k.split(':')[0]!))].filter((g) => g !== 'SourceFile' && g !== 'System' && g !== 'ExifTool' && g !== 'Composite').sort();
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG chunk with its length and CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, tail]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A 3 × 2 RGBA PNG written by hand (IHDR, IDAT, IEND; `extra` chunks after IHDR); its top-left pixel is
 * fully transparent.
 */
export function tinyPng(extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(3, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  // Each row: filter type 0, then three RGBA pixels.
  const rows = Buffer.from([0, 0, 0, 0, 0, 0, 255, 0, 255, 0, 0, 0, 255, 0, 200, 200, 200, 255, 100, 100, 100, 255, 0, 0, 255, 255]);
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...extra, pngChunk('IDAT', deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A JPEG segment: marker, length, data. */
export function jpegSegment(marker: number, data: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(data.length + 2, 2);
  return Buffer.concat([head, data]);
}

/** `jpeg` with `segments` put right after its SOI. */
export function withSegments(jpeg: Uint8Array, segments: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from(jpeg.subarray(0, 2)), ...segments, Buffer.from(jpeg.subarray(2))]);
}

/** The position of the first segment with this marker in a JPEG, walking its segments (not inside them). */
export function markerAt(jpeg: Uint8Array, marker: number): number {
  for (let i = 2; i + 4 <= jpeg.length; i += 2 + ((jpeg[i + 2]! << 8) | jpeg[i + 3]!)) {
    if (jpeg[i] !== 0xff) break;
    if (jpeg[i + 1] === marker) return i;
  }
  throw new Error(`no marker ${marker.toString(16)} before the image data`);
}

/** A WebP: RIFF header around `chunks` (each `[fourcc, data]`). */
export function webpOf(chunks: Array<[string, Buffer]>): Buffer {
  const body = Buffer.concat(
    chunks.map(([type, data]) => {
      const head = Buffer.alloc(8);
      head.write(type, 0, 'latin1');
      head.writeUInt32LE(data.length, 4);
      return Buffer.concat([head, data, Buffer.alloc(data.length % 2)]);
    }),
  );
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(4 + body.length, 4);
  riff.write('WEBP', 8, 'latin1');
  return Buffer.concat([riff, body]);
}

/** The chunks of a WebP, `[fourcc, data]`. */
export function webpChunks(webp: Uint8Array): Array<[string, Buffer]> {
  const b = Buffer.from(webp);
  const out: Array<[string, Buffer]> = [];
  for (let p = 12; p + 8 <= b.length; ) {
    const size = b.readUInt32LE(p + 4);
    out.push([b.toString('latin1', p, p + 4), b.subarray(p + 8, p + 8 + size)]);
    p += 8 + size + (size % 2);
  }
  return out;
}

/** A minimal ICC profile: header and one tag (the media white point), enough for exiftool to read it. */
export function iccProfile(): Buffer {
  const p = Buffer.alloc(128 + 4 + 12 + 20);
  p.writeUInt32BE(p.length, 0);
  p.writeUInt32BE(0x02100000, 8);
  p.write('mntrRGB XYZ ', 12, 'latin1');
  p.write('acsp', 36, 'latin1');
  p.writeUInt32BE(1, 128); // one tag
  p.write('wtpt', 132, 'latin1');
  p.writeUInt32BE(144, 136);
  p.writeUInt32BE(20, 140);
  p.write('XYZ ', 144, 'latin1');
  p.writeInt32BE(0xf351, 152); // D50: 0.9505, 1, 1.089
  p.writeInt32BE(0x10000, 156);
  p.writeInt32BE(0x116cc, 160);
  return p;
}

/** {@link tinyPng} with an author, a comment, an EXIF artist, a GPS latitude and orientation 6 written in by exiftool (shown 2 × 3). */
export function taggedPng(): Buffer {
  return withTags(tinyPng(), 'tagged.png', ['-PNG:Author=Dr Example', '-PNG:Comment=MRN 0042', '-EXIF:Artist=Dr Example', '-GPSLatitude=51.5', '-GPSLatitudeRef=N', '-Orientation#=6']);
}

/** The python.webp fixture (16 × 16) with an EXIF artist, an XMP creator and orientation 6 written in by exiftool. */
export function taggedWebp(): Buffer {
  return withTags(fixtureImage('python.webp'), 'tagged.webp', ['-EXIF:Artist=Dr Example', '-XMP-dc:Creator=Dr Example', '-Orientation#=6']);
}

/** The JPEG thumbnail inside a photo's EXIF (IFD1): a real small JPEG. */
export function exifThumbnail(jpeg: Buffer): Buffer {
  const start = jpeg.indexOf(Buffer.from([0xff, 0xd8, 0xff]), 2);
  if (start <= 2) throw new Error('no JPEG thumbnail in the EXIF of this photo');
  return jpeg.subarray(start, jpeg.indexOf(Buffer.from([0xff, 0xd9]), start) + 2);
}

/**
 * An ISO base media file as HEIC and AVIF photos start: an `ftyp` box with brand `major` and the
 * `compatible` brands, then bytes standing in for the rest (a `meta` box that would hold Exif and GPS).
 */
export function isoBmffFile(major: string, ...compatible: string[]): Buffer {
  const box = Buffer.alloc(16 + 4 * compatible.length);
  box.writeUInt32BE(box.length, 0);
  box.write(`ftyp${major}`, 4, 'latin1');
  compatible.forEach((b, i) => box.write(b, 16 + 4 * i, 'latin1'));
  return Buffer.concat([box, Buffer.from('....meta box with Exif and GPS')]);
}
