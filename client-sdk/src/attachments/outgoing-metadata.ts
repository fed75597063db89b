/**
 * What `client.attachments.send` does about a file's metadata before encrypting it (issue #21). The
 * file's first bytes say whether it is an image, whatever its name or declared media type (a JPEG saved
 * as `scan.bin`, or a PNG a host page labels `image/jpeg`); a JPEG, PNG or WebP is read whole and
 * stripped; any other image goes as it is, and the report says so plainly: its metadata (GPS position,
 * time, device) went with it.
 */
import { ErrorCode, type METADATA_KEPT_REASONS } from '@curbside/shared';
import { CurbsideError } from '../errors.js';
import { detectImageFormat, stripImageMetadata, type ImageFormat, type RemovedMetadata } from './deidentify.js';

/**
 * What happened to a sent file's metadata: in `send`'s result, and in the first upload progress report
 * (before any byte is uploaded), so an app can warn while the file goes.
 *
 * @example
 * ```ts
 * const { metadata } = await client.attachments.send(conversationId, file);
 * if (metadata.status === 'not-removed') warn(`This ${metadata.format.toUpperCase()} image may carry its location: its metadata was NOT removed`);
 * ```
 */
export type AttachmentMetadataReport =
  | {
      /** An image (JPEG, PNG or WebP) stripped of its identifying metadata before it was encrypted. */
      status: 'removed';
      format: 'jpeg' | 'png' | 'webp';
      /** What was there, in plain words (empty when there was nothing to remove). */
      removed: RemovedMetadata[];
    }
  | {
      /**
       * An image whose metadata was NOT removed: it was sent with whatever it carries (where and when it was
       * taken, the device). Warn the user.
       */
      status: 'not-removed';
      format: ImageFormat;
      /**
       * Why: `format not supported` (HEIC, AVIF, GIF, TIFF: this SDK recognises them but cannot strip them;
       * convert them first, e.g. redraw through a canvas), `too large` (above 128 MiB, not read whole), or
       * `de-identification turned off` (`deidentify: false`).
       */
      reason: (typeof METADATA_KEPT_REASONS)[number];
    }
  | {
      /** No image format recognised from the file's bytes: sent as it is (a PDF, a DICOM file, …). */
      status: 'not-an-image';
    };

/** The plaintext of a file being sent: its size and its bytes. */
export interface Plaintext {
  size: number;
  chunks: AsyncIterable<Uint8Array>;
}

/** Enough of a file's start to recognise it (a HEIF `ftyp` box lists its brands within its first few hundred bytes). */
const HEAD_BYTES = 512;
/** Images up to this size are stripped (read whole: far above any photo); larger ones are sent as they are, reported `too large`. */
export const MAX_DEIDENTIFY_BYTES = 128 * 1024 * 1024;
const STRIPPED = new Set<ImageFormat>(['jpeg', 'png', 'webp']);

/**
 * Recognise `source` by its first bytes and, unless `deidentify` is false, strip a JPEG, PNG or WebP.
 * Returns what to encrypt, its media type (the recognised one once stripped, else `mediaType`), the
 * stripped bytes (for a thumbnail), and the report.
 *
 * @throws CurbsideError INVALID_PAYLOAD when a JPEG, PNG or WebP is truncated or malformed (nothing is sent),
 *   or the input is not `source.size` bytes long
 */
export async function deidentifyOutgoing(
  source: Plaintext,
  mediaType: string,
  deidentify: boolean,
): Promise<{ source: Plaintext; mediaType: string; stripped?: Uint8Array; report: AttachmentMetadataReport }> {
  const { head, rest } = await peek(source, HEAD_BYTES);
  const format = detectImageFormat(head);
  if (!format) return { source: rest, mediaType, report: { status: 'not-an-image' } };
  const kept = (reason: 'format not supported' | 'too large' | 'de-identification turned off') => ({ source: rest, mediaType, report: { status: 'not-removed' as const, format, reason } });
  if (!deidentify) return kept('de-identification turned off');
  if (!STRIPPED.has(format)) return kept('format not supported');
  if (source.size > MAX_DEIDENTIFY_BYTES) return kept('too large');
  const clean = stripImageMetadata(await collect(rest.chunks, source.size), mediaType);
  if (!clean.deidentified || (clean.format !== 'jpeg' && clean.format !== 'png' && clean.format !== 'webp')) {
    throw new CurbsideError(ErrorCode.INTERNAL, `A ${format} file was recognised but not stripped`); // detection is by the same bytes: cannot happen
  }
  return { source: once(clean.bytes), mediaType: clean.mediaType, stripped: clean.bytes, report: { status: 'removed', format: clean.format, removed: clean.removed } };
}

/** The first `n` bytes of `source` (fewer if it is shorter), and the same plaintext again, from its start. */
async function peek(source: Plaintext, n: number): Promise<{ head: Uint8Array; rest: Plaintext }> {
  const it = source.chunks[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const step = await it.next();
    if (step.done) break;
    taken.push(step.value);
    got += step.value.length;
  }
  const head = new Uint8Array(Math.min(n, got));
  let at = 0;
  for (const c of taken) {
    if (at >= head.length) break;
    const part = c.subarray(0, head.length - at);
    head.set(part, at);
    at += part.length;
  }
  async function* again(): AsyncGenerator<Uint8Array> {
    yield* taken;
    for (;;) {
      const step = await it.next();
      if (step.done) return;
      yield step.value;
    }
  }
  return { head, rest: { size: source.size, chunks: again() } };
}

function once(bytes: Uint8Array): Plaintext {
  return { size: bytes.length, chunks: (async function* () { yield bytes; })() };
}

/** Every byte of `chunks`, which must be exactly `size` long. */
async function collect(chunks: AsyncIterable<Uint8Array>, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  for await (const c of chunks) {
    if (at + c.length > size) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'The file is longer than its size');
    out.set(c, at);
    at += c.length;
  }
  if (at !== size) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'The file is shorter than its size');
  return out;
}
