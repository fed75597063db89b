/**
 * Encrypted attachments (issue #21): clinical images and documents, encrypted on the device and
 * uploaded as ciphertext to the hub over HTTP, then named in an ordinary end-to-end-encrypted message
 * whose sealed content carries the key (docs/attachments.md).
 *
 * The hub sees: the conversation, the uploading device, the ciphertext's size and part size, when it
 * was uploaded, finished and referenced. It never sees the key, the file's name, media type, caption
 * or thumbnail: those travel sealed in the message (`AttachmentDescriptor`).
 *
 * An upload is a fixed number of parts of `partSize` bytes (the last one shorter); each part is
 * stored durably on its own, so an upload cut by a disconnect or a hub crash resumes from the parts
 * the hub reports stored (`GET /attachments/:id`).
 */
import { z } from 'zod';
import { IdSchema, TimestampSchema } from './schemas.js';
import { Limits } from './limits.js';

export const AttachmentLimits = {
  /** Smallest and largest part a client may choose (bytes of ciphertext per `PUT`). */
  MIN_PART_BYTES: 1024,
  MAX_PART_BYTES: 16 * 1024 * 1024,
  /** Parts one upload may have. */
  MAX_PARTS: 10_000,
  /** An encrypted thumbnail carried inline in the sealed message, in bytes (before base64). */
  MAX_THUMBNAIL_BYTES: 32 * 1024,
  /** A file name in the sealed descriptor, in characters. */
  MAX_NAME_LENGTH: 255,
  /** A caption in the sealed descriptor, in characters. */
  MAX_CAPTION_LENGTH: 4000,
  /** Entries in the sealed "metadata removed" report. */
  MAX_REMOVED_METADATA: 100,
  /** Attachments one message may name (`EnvelopeSendRequest.attachmentIds`). */
  MAX_ATTACHMENTS_PER_MESSAGE: Limits.MAX_ATTACHMENTS_PER_MESSAGE,
  /** The hub's default largest attachment (ATTACHMENT_MAX_BYTES). */
  DEFAULT_MAX_BYTES: 100 * 1024 * 1024,
} as const;

/** The HTTP endpoints, all behind `Authorization: Bearer <access token>` (the socket's token). */
export const AttachmentPath = {
  /** POST: create an upload (`AttachmentCreateRequest` → `AttachmentStatus`). */
  CREATE: '/attachments',
  /** GET: an upload's status (stored parts); the uploader and members may ask. */
  STATUS: '/attachments/:attachmentId',
  /** PUT: one part's bytes (`application/octet-stream`, exact `Content-Length`). Uploader only. */
  PART: '/attachments/:attachmentId/parts/:index',
  /** POST: every part is stored: the upload is complete (uploader only). */
  FINISH: '/attachments/:attachmentId/finish',
  /** GET: the whole ciphertext, streamed (members of the conversation; complete uploads only). */
  CONTENT: '/attachments/:attachmentId/content',
} as const;

/** Fill an `AttachmentPath` pattern. */
export function attachmentPath(pattern: (typeof AttachmentPath)[keyof typeof AttachmentPath], attachmentId: string, index?: number): string {
  return pattern.replace(':attachmentId', encodeURIComponent(attachmentId)).replace(':index', String(index ?? 0));
}

/** Header an OpenID Connect client names its device in (tokens without a `dev` claim), as in the socket handshake. */
export const DEVICE_ID_HEADER = 'x-curbside-device';
/** Header naming the user when the token's `sub` is not the user claim the hub reads (SDK option `userId`). */
export const USER_ID_HEADER = 'x-curbside-user';

export const AttachmentCreateRequestSchema = z
  .strictObject({
    conversationId: IdSchema,
    /** Bytes of ciphertext to upload (what counts against the size limit and the quota). */
    size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    /** Bytes per part; every part but the last has exactly this many. */
    partSize: z.number().int().min(AttachmentLimits.MIN_PART_BYTES).max(AttachmentLimits.MAX_PART_BYTES),
  })
  .refine((r) => Math.ceil(r.size / r.partSize) <= AttachmentLimits.MAX_PARTS, { message: `at most ${AttachmentLimits.MAX_PARTS} parts: choose a larger partSize`, path: ['partSize'] });
export type AttachmentCreateRequest = z.input<typeof AttachmentCreateRequestSchema>;

/** How many parts an upload of `size` bytes in parts of `partSize` has, and how long part `index` is. */
export function partCount(size: number, partSize: number): number {
  return Math.ceil(size / partSize);
}
export function partLength(size: number, partSize: number, index: number): number {
  return Math.min(partSize, size - index * partSize);
}

export const AttachmentStateSchema = z.enum(['uploading', 'complete']);

export const AttachmentStatusSchema = z.object({
  attachmentId: IdSchema,
  conversationId: IdSchema,
  size: z.number().int().positive(),
  partSize: z.number().int().positive(),
  parts: z.number().int().positive(),
  /** Parts durably stored, ascending: an interrupted upload sends the others. */
  storedParts: z.array(z.number().int().nonnegative()),
  state: AttachmentStateSchema,
  createdAt: TimestampSchema,
});
export type AttachmentStatus = z.infer<typeof AttachmentStatusSchema>;

/** The `:index` of a part URL. */
export const PartIndexSchema = z.coerce.number().int().nonnegative().max(AttachmentLimits.MAX_PARTS - 1);

// --- sealed inside the message (the hub never sees these) -----------------------------------------

const Base64Schema = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const NO_CONTROL = /^[^\x00-\x1f\x7f]*$/;

/** A thumbnail made on the device, inline in the sealed message (so encrypted with it, and never uploaded on its own). */
export const SealedThumbnailSchema = z.strictObject({
  mediaType: z.string().min(1).max(100).regex(NO_CONTROL),
  width: z.number().int().positive().max(4096),
  height: z.number().int().positive().max(4096),
  /** Base64 of the thumbnail image's bytes. */
  data: Base64Schema.min(4).max(Math.ceil(AttachmentLimits.MAX_THUMBNAIL_BYTES / 3) * 4),
});

/** Image formats the SDK recognises by their bytes (it strips the first three). */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'heic', 'avif', 'gif', 'tiff'] as const;
/** Why an image's metadata was not removed: the format cannot be stripped, the file is too large, or the sender turned it off. */
export const METADATA_KEPT_REASONS = ['format not supported', 'too large', 'de-identification turned off'] as const;

/**
 * What a message carries about its attachment, sealed end to end: everything needed to download,
 * check and decrypt it. `hash` is BLAKE2b-256 over the ciphertext as uploaded (all parts, in order):
 * secretstream's Poly1305 does not commit to the key, so the hash pins the exact bytes the sender made.
 */
export const AttachmentDescriptorSchema = z.strictObject({
  /** Version of this format. */
  v: z.literal(1),
  id: IdSchema,
  /** Base64 of the 32-byte secretstream key. */
  key: Base64Schema.length(44),
  /** Base64 of the 24-byte secretstream header. */
  header: Base64Schema.length(32),
  /** Hex BLAKE2b-256 of the ciphertext. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** Plaintext bytes. */
  size: z.number().int().nonnegative(),
  /** Ciphertext bytes (what the hub stores). */
  cipherSize: z.number().int().positive(),
  /** Plaintext bytes per secretstream chunk (the last chunk may be shorter). */
  chunkSize: z.number().int().positive().max(4 * 1024 * 1024),
  mediaType: z.string().min(1).max(100).regex(NO_CONTROL),
  name: z.string().max(AttachmentLimits.MAX_NAME_LENGTH).regex(NO_CONTROL).optional(),
  thumbnail: SealedThumbnailSchema.optional(),
  /** What de-identification removed before encryption (e.g. `EXIF GPS`, `XMP`), for the "metadata removed" note. */
  removedMetadata: z.array(z.string().max(200).regex(NO_CONTROL)).max(AttachmentLimits.MAX_REMOVED_METADATA).optional(),
  /**
   * An image the sender's device could NOT strip (its format, and why): it went with whatever metadata it
   * carries (where and when it was taken, the device), so recipients warn too.
   */
  metadataKept: z.strictObject({ format: z.enum(IMAGE_FORMATS), reason: z.enum(METADATA_KEPT_REASONS) }).optional(),
});
export type AttachmentDescriptor = z.infer<typeof AttachmentDescriptorSchema>;
