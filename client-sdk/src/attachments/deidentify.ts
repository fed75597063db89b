/**
 * De-identification of images on the device, before they are encrypted (issue #21): a photo of a rash
 * must not carry where it was taken, the phone's serial number or the owner's name. Pure TypeScript over
 * bytes, the same in browsers and in Node. The formats' rules are in deidentify/{jpeg,png,webp}.ts.
 *
 * The format is recognised by its bytes, never by the name or media type a file claims. JPEG, PNG and
 * WebP are stripped; HEIC, AVIF, GIF and TIFF are recognised and reported as not de-identified (their
 * metadata stays: an app should say so, or convert them first); anything else passes through unchanged.
 * The orientation is kept, as a metadata block holding only that tag: a clinical image shown sideways is
 * a real problem, every viewer applies the tag, and it identifies no one.
 */
import type { IMAGE_FORMATS } from '@curbside/shared';
import { isJpeg, stripJpeg } from './deidentify/jpeg.js';
import { isPng, stripPng } from './deidentify/png.js';
import { isWebp, stripWebp } from './deidentify/webp.js';
import { hasAscii, type RemovedMetadata } from './deidentify/removed.js';

export { REMOVED_METADATA_CATEGORY, type RemovedMetadata, type RemovedMetadataCategory } from './deidentify/removed.js';

/** An image format as recognised from its bytes. */
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** The result of {@link stripImageMetadata}. */
export interface DeidentifiedImage {
  /** The image without its metadata (the input itself when `deidentified` is false). */
  bytes: Uint8Array;
  /** The media type of the detected format, else the one given, else `application/octet-stream`. */
  mediaType: string;
  /** The format recognised from the bytes; undefined when they are no image format known here. */
  format?: ImageFormat;
  /**
   * Whether the metadata was stripped (JPEG, PNG, WebP). False for every other format, including
   * images whose metadata this SDK cannot strip (HEIC, AVIF, GIF, TIFF): warn before sending those.
   */
  deidentified: boolean;
  /** What was removed, in words a clinician can be shown, each once (empty when there was nothing). */
  removed: RemovedMetadata[];
  /** The EXIF orientation (1–8) kept in the stripped image; 1 when there was none or it was not stripped. */
  orientation: number;
}

const MEDIA_TYPE: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  heic: 'image/heic',
  avif: 'image/avif',
  gif: 'image/gif',
  tiff: 'image/tiff',
};

/**
 * Strip identifying metadata from an image, recognised by its bytes: GPS position, dates, camera make,
 * model and serial number, owner and artist names, EXIF, XMP, IPTC, comments, embedded thumbnails and
 * secondary images, and data after the image. What decoding needs stays (colour profile, tables,
 * pixels), and so does the orientation. Nothing of what was removed is kept, only what kind it was.
 *
 * @example
 * ```ts
 * const clean = stripImageMetadata(new Uint8Array(await file.arrayBuffer()), file.type);
 * if (!clean.deidentified && clean.format) warn(`A ${clean.format.toUpperCase()} image keeps its metadata`);
 * else if (clean.removed.length) note(`Removed: ${clean.removed.join(', ')}`); // "GPS position, date and time, …"
 * ```
 * @param bytes - the whole file
 * @param mediaType - the media type the file claims; used only when the bytes are no known image format
 * @throws CurbsideError INVALID_PAYLOAD (`details.format`, `details.reason`) when a JPEG, PNG or WebP is
 *   truncated or malformed: nothing half-stripped is ever returned
 */
export function stripImageMetadata(bytes: Uint8Array, mediaType?: string): DeidentifiedImage {
  const format = detectImageFormat(bytes);
  const stripped = format === 'jpeg' ? stripJpeg(bytes) : format === 'png' ? stripPng(bytes) : format === 'webp' ? stripWebp(bytes) : undefined;
  if (stripped) return { ...stripped, mediaType: MEDIA_TYPE[format!], format, deidentified: true };
  return {
    bytes,
    mediaType: format ? MEDIA_TYPE[format] : (mediaType ?? 'application/octet-stream'),
    ...(format ? { format } : {}),
    deidentified: false,
    removed: [],
    orientation: 1,
  };
}

/**
 * The image format of `bytes`, from their first bytes (magic numbers and, for HEIC and AVIF, the
 * ISO-BMFF `ftyp` brands); undefined for anything else.
 */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (isJpeg(bytes)) return 'jpeg';
  if (isPng(bytes)) return 'png';
  if (isWebp(bytes)) return 'webp';
  if (hasAscii(bytes, 0, 'GIF87a') || hasAscii(bytes, 0, 'GIF89a')) return 'gif';
  if (hasAscii(bytes, 0, 'II*\u0000') || hasAscii(bytes, 0, 'MM\u0000*')) return 'tiff';
  if (hasAscii(bytes, 4, 'ftyp')) {
    const boxEnd = Math.min(bytes.length, 16 + 4 * 64, ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0);
    const brands: string[] = [];
    for (let at = 8; at + 4 <= boxEnd; at += at === 8 ? 8 : 4) brands.push(String.fromCharCode(...bytes.subarray(at, at + 4)));
    if (brands.some((b) => b === 'avif' || b === 'avis')) return 'avif';
    if (brands.some((b) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(b))) return 'heic';
  }
  return undefined;
}
