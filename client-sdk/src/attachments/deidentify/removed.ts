/**
 * What de-identification can remove, in words a clinician can be shown, and the bits the format
 * strippers share (the typed error, byte helpers). No values of what was removed are ever kept.
 */
import { ErrorCode } from '@curbside/shared';
import { CurbsideError } from '../../errors.js';

/**
 * Each kind of metadata de-identification can remove, with the category it belongs to. The keys are
 * the words shown to users ("Metadata removed before sending: GPS position, date and time"); the
 * categories let an app group or translate them.
 */
export const REMOVED_METADATA_CATEGORY = {
  'GPS position': 'location',
  'date and time': 'time',
  'time zone': 'time',
  'camera make and model': 'device',
  'lens make and model': 'device',
  'camera serial number': 'device',
  'maker notes (may hold a serial number)': 'device',
  'image unique ID': 'device',
  software: 'device',
  'computer or document name': 'device',
  'owner or artist name': 'person',
  copyright: 'person',
  'content credentials (C2PA)': 'person',
  description: 'text',
  comment: 'text',
  keywords: 'text',
  'text metadata': 'text',
  'embedded thumbnail': 'image',
  'secondary images (MPF)': 'image',
  'data after the image': 'image',
  'EXIF metadata': 'metadata block',
  'XMP metadata': 'metadata block',
  'IPTC / Photoshop metadata': 'metadata block',
  'other metadata': 'other',
} as const;

/** One kind of metadata that was removed, e.g. `'GPS position'` (see {@link REMOVED_METADATA_CATEGORY}). */
export type RemovedMetadata = keyof typeof REMOVED_METADATA_CATEGORY;
/** What a removed item is about: where, when, which device, who, free text, hidden images, a whole block. */
export type RemovedMetadataCategory = (typeof REMOVED_METADATA_CATEGORY)[RemovedMetadata];

/** The removed kinds, each once, in the order they were found. */
export class RemovedList {
  private readonly items = new Set<RemovedMetadata>();
  add(what: RemovedMetadata): void {
    this.items.add(what);
  }
  list(): RemovedMetadata[] {
    return [...this.items];
  }
}

/** The typed error for an image that does not parse: nothing half-stripped is ever returned. */
export function malformed(format: string, reason: string): CurbsideError {
  return new CurbsideError(ErrorCode.INVALID_PAYLOAD, `Not a well-formed ${format} image (${reason}): it was not sent`, { format, reason });
}

/** Whether `b` holds the ASCII `text` at `from`. */
export function hasAscii(b: Uint8Array, from: number, text: string): boolean {
  if (from < 0 || from + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[from + i] !== text.charCodeAt(i)) return false;
  return true;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of parts) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}
