/**
 * `client.attachments`: send a file as an end-to-end-encrypted attachment, and download one a message
 * carries (issue #21; docs/attachments.md).
 *
 * Sending encrypts the file on the device under a random key (secretstream, file-crypto.ts), uploads
 * the ciphertext to the hub in parts, and then sends an ordinary end-to-end-encrypted message (1:1 or
 * care team) whose sealed content carries the key, the ciphertext hash, the size, media type, name,
 * caption, the thumbnail and the "metadata removed" report. The hub sees ciphertext, its size, and
 * which conversation it belongs to; nothing else.
 */
import { deidentifyOutgoing, type AttachmentMetadataReport } from './outgoing-metadata.js';
import { makeThumbnail, type AttachmentThumbnail } from './thumbnail.js';
import { AttachmentLimits, ErrorCode, type AttachmentDescriptor, type ConsultPart, type SendResult } from '@curbside/shared';
import { getSodium, sodiumReady } from '../crypto/index.js';
import { CurbsideError } from '../errors.js';
import { CHUNK_BYTES, CHUNK_OVERHEAD, cipherSizeOf, decryptFile, encryptFile, rechunk } from './file-crypto.js';
import { AttachmentTransfer, type HubHttp, type RetryPolicy } from './transfer.js';

/** What `send` accepts: bytes, a Blob or File, a web ReadableStream, or any async iterable of bytes (a Node stream). */
export type AttachmentInput = Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** Progress of one upload or download, in bytes (ciphertext stored for an upload, plaintext delivered for a download). */
export interface AttachmentProgress {
  phase: 'upload' | 'download';
  bytes: number;
  total: number;
  /**
   * On an upload's first report (`bytes: 0`, before any byte is uploaded): what happened to the file's
   * metadata, the same as `send`'s result says. `status: 'not-removed'` is an image sent with its metadata.
   */
  metadata?: AttachmentMetadataReport;
}

export type { AttachmentMetadataReport } from './outgoing-metadata.js';

export type { AttachmentThumbnail } from './thumbnail.js';

export interface AttachmentSendOptions {
  /** Text shown with the file (the message's text). @default '' */
  caption?: string;
  /** File name shown to recipients. @default a File's name, else none */
  name?: string;
  /** @default a Blob's type, else `application/octet-stream` */
  mediaType?: string;
  /**
   * Plaintext size, for a stream whose length the SDK cannot know in advance. Without it such a
   * stream is read into memory first (the hub must be told the size before the first byte).
   */
  size?: number;
  /** At most `AttachmentLimits.MAX_THUMBNAIL_BYTES`. */
  thumbnail?: AttachmentThumbnail;
  /** What de-identification removed (e.g. `['EXIF GPS position', 'XMP']`), shown as a "metadata removed" note. */
  removedMetadata?: string[];
  /**
   * Strip identifying metadata from a JPEG, PNG or WebP before it is encrypted (GPS position, dates, camera
   * serial, owner, XMP, IPTC, comments; the orientation is kept; see `stripImageMetadata`), report it in `removedMetadata`, and, in a
   * browser, make a thumbnail from the stripped image when none is given. The image is recognised by its
   * bytes, whatever `mediaType` or the file's name say. Other images (HEIC, AVIF, GIF, TIFF) are sent with
   * their metadata: the result's `metadata` says so (`status: 'not-removed'`). @default true
   */
  deidentify?: boolean;
  onProgress?: (progress: AttachmentProgress) => void;
  /** The message's idempotency key. @default a random UUID */
  clientMessageId?: string;
  /** In a consult pool: what the message is in a consult (`client.consults.postCase` sets it for a case's image). */
  consult?: ConsultPart;
}

export interface AttachmentDownloadOptions {
  onProgress?: (progress: AttachmentProgress) => void;
}

/**
 * A download in progress: iterate it (`for await`), take it as a web `ReadableStream`, or collect
 * every byte with `bytes()`. One of the three, once.
 */
export interface AttachmentDownload extends AsyncIterable<Uint8Array> {
  /** The plaintext as a web ReadableStream (for a `Response`, a file writer, …). */
  stream(): ReadableStream<Uint8Array>;
  /** Every plaintext byte, checked (resolves only when the whole file authenticated and its hash matched). */
  bytes(): Promise<Uint8Array>;
}

/** @internal Secretstream chunks per uploaded part, and parts in flight at once, by default (see `AttachmentsDeps`). */
export const DEFAULT_CHUNKS_PER_PART = 64;
export const DEFAULT_PARALLEL_PARTS = 3;

export interface AttachmentsDeps {
  hub: HubHttp;
  /** Send the message that carries the descriptor (the client's text path: queued, encrypted, retried). */
  sendMessage(conversationId: string, caption: string, clientMessageId: string, attachment: AttachmentDescriptor, consult?: ConsultPart): Promise<SendResult>;
  retry?: RetryPolicy;
  /**
   * Secretstream chunks per uploaded part: what a resume resends at most. @default 64 (about 4 MiB;
   * measured on a memory hub, 20 MB: 16 chunks × 2 in flight 98 MB/s, 64 × 2 141 MB/s, 64 × 4 145 MB/s)
   */
  chunksPerPart?: number;
  /** Parts in flight at once (the next is encrypted while others upload). @default 3 */
  parallelParts?: number;
}

const b64 = (bytes: Uint8Array) => getSodium().to_base64(bytes, getSodium().base64_variants.ORIGINAL);
const fromB64 = (text: string) => getSodium().from_base64(text, getSodium().base64_variants.ORIGINAL);

/** `client.attachments`. */
export class Attachments {
  private readonly transfer: AttachmentTransfer;

  constructor(private readonly deps: AttachmentsDeps) {
    this.transfer = new AttachmentTransfer(deps.hub, deps.retry);
  }

  /**
   * Encrypt `input` on this device, upload it, and send a message carrying it to the conversation's
   * members (1:1 or care team). An upload cut off by a lost connection or a hub node going down resumes
   * from the last part the hub stored. Resolves once the message is sent.
   *
   * @example
   * ```ts
   * const file = input.files[0]; // a File from <input type="file">
   * const { attachment } = await client.attachments.send(conversationId, file, {
   *   caption: 'Rash on the forearm, day 3',
   *   onProgress: ({ bytes, total }) => bar.value = bytes / total,
   * });
   * ```
   * @param conversationId - a conversation (or care team) this user is a member of
   * @param input - the file's bytes
   * @throws CurbsideError ATTACHMENT_TOO_LARGE, QUOTA_EXCEEDED, FORBIDDEN (not a member) from the hub
   *   before anything is uploaded; INVALID_PAYLOAD locally (a thumbnail too big, a stream of another
   *   length than `size`); UNAVAILABLE when the hub stayed unreachable through every retry
   */
  async send(conversationId: string, input: AttachmentInput, options: AttachmentSendOptions = {}): Promise<{ result: SendResult; attachment: AttachmentDescriptor; metadata: AttachmentMetadataReport }> {
    await sodiumReady();
    if (options.thumbnail && (options.thumbnail.bytes.length === 0 || options.thumbnail.bytes.length > AttachmentLimits.MAX_THUMBNAIL_BYTES)) {
      throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, `A thumbnail is 1 to ${AttachmentLimits.MAX_THUMBNAIL_BYTES} bytes`);
    }
    // Recognised by its first bytes; a JPEG, PNG or WebP is read whole and stripped, and the stripped bytes are what is encrypted.
    const prepared = await deidentifyOutgoing(
      await plaintextOf(input, options.size),
      options.mediaType ?? (input instanceof Blob && input.type ? input.type : 'application/octet-stream'),
      options.deidentify ?? true,
    );
    const { source, mediaType, report: metadata } = prepared;
    let removedMetadata = options.removedMetadata;
    let thumbnail = options.thumbnail;
    if (metadata.status === 'removed') {
      removedMetadata = [...new Set([...(removedMetadata ?? []), ...metadata.removed])];
      thumbnail ??= await makeThumbnail(prepared.stripped!, mediaType);
    }
    const name = options.name ?? (typeof File !== 'undefined' && input instanceof File ? input.name : undefined);
    const cipherSize = cipherSizeOf(source.size);
    options.onProgress?.({ phase: 'upload', bytes: 0, total: cipherSize, metadata });
    const partSize = (this.deps.chunksPerPart ?? DEFAULT_CHUNKS_PER_PART) * (CHUNK_BYTES + CHUNK_OVERHEAD);
    const upload = await this.transfer.create({ conversationId, size: cipherSize, partSize });
    const id = upload.attachmentId;
    const { chunks, info } = encryptFile(source.chunks);
    let stored = 0;
    const progress = (bytes: number) => {
      stored += bytes;
      options.onProgress?.({ phase: 'upload', bytes: stored, total: cipherSize });
    };
    const inFlight: Array<Promise<void>> = [];
    let index = 0;
    for await (const part of rechunk(chunks, partSize)) {
      const sending = this.uploadPart(id, index++, part, progress);
      sending.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      inFlight.push(sending);
      if (inFlight.length >= (this.deps.parallelParts ?? DEFAULT_PARALLEL_PARTS)) await inFlight.shift();
    }
    await Promise.all(inFlight);
    if (info.size !== source.size || info.cipherSize !== cipherSize) {
      throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, `The input had ${info.size} bytes, not the ${source.size} announced`);
    }
    await this.transfer.finish(id);
    const attachment: AttachmentDescriptor = {
      v: 1,
      id,
      key: b64(info.key),
      header: b64(info.header),
      hash: getSodium().to_hex(info.hash!),
      size: source.size,
      cipherSize,
      chunkSize: CHUNK_BYTES,
      mediaType,
      ...(name !== undefined ? { name } : {}),
      ...(thumbnail ? { thumbnail: { mediaType: thumbnail.mediaType, width: thumbnail.width, height: thumbnail.height, data: b64(thumbnail.bytes) } } : {}),
      ...(removedMetadata?.length ? { removedMetadata: [...removedMetadata].slice(0, AttachmentLimits.MAX_REMOVED_METADATA) } : {}),
      // Recipients warn too: the image went with what it carries.
      ...(metadata.status === 'not-removed' ? { metadataKept: { format: metadata.format, reason: metadata.reason } } : {}),
    };
    const result = await this.deps.sendMessage(conversationId, options.caption ?? '', options.clientMessageId ?? globalThis.crypto.randomUUID(), attachment, options.consult);
    return { result, attachment, metadata };
  }

  /**
   * Download, check and decrypt the attachment a message carries (`message.attachment`), as a stream:
   * plaintext comes out chunk by chunk as it is checked.
   *
   * @example
   * ```ts
   * const bytes = await client.attachments.download(message.attachment!).bytes();
   * ```
   * @throws CurbsideError (while reading) ATTACHMENT_TAMPERED when any byte was changed, chunks were
   *   reordered or dropped, or data was added; NOT_FOUND when this user may not read it (or it is gone);
   *   UNAVAILABLE when the hub could not be reached or the download was cut off
   */
  download(attachment: AttachmentDescriptor, options: AttachmentDownloadOptions = {}): AttachmentDownload {
    const transfer = this.transfer;
    async function* plaintext(): AsyncGenerator<Uint8Array> {
      await sodiumReady();
      const { body } = await transfer.download(attachment.id);
      let delivered = 0;
      for await (const chunk of decryptFile(body, {
        key: fromB64(attachment.key),
        header: fromB64(attachment.header),
        hash: getSodium().from_hex(attachment.hash),
        cipherSize: attachment.cipherSize,
        chunkBytes: attachment.chunkSize,
      })) {
        delivered += chunk.length;
        options.onProgress?.({ phase: 'download', bytes: delivered, total: attachment.size });
        yield chunk;
      }
    }
    const iterator = plaintext();
    return {
      [Symbol.asyncIterator]: () => iterator,
      stream: () =>
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            try {
              const step = await iterator.next();
              if (step.done) controller.close();
              else controller.enqueue(step.value);
            } catch (e) {
              controller.error(e);
            }
          },
          async cancel() {
            await iterator.return(undefined);
          },
        }),
      bytes: async () => {
        const out = new Uint8Array(attachment.size);
        let offset = 0;
        for await (const chunk of iterator) {
          if (offset + chunk.length > out.length) throw new CurbsideError(ErrorCode.ATTACHMENT_TAMPERED, 'This attachment was damaged or tampered with and cannot be opened', { reason: 'larger than sealed' });
          out.set(chunk, offset);
          offset += chunk.length;
        }
        if (offset !== out.length) throw new CurbsideError(ErrorCode.ATTACHMENT_TAMPERED, 'This attachment was damaged or tampered with and cannot be opened', { reason: 'smaller than sealed' });
        return out;
      },
    };
  }

  /** The thumbnail a message's attachment carries, as bytes (it came sealed with the message). */
  thumbnail(attachment: AttachmentDescriptor): (Omit<AttachmentThumbnail, 'bytes'> & { bytes: Uint8Array }) | undefined {
    const t = attachment.thumbnail;
    return t ? { mediaType: t.mediaType, width: t.width, height: t.height, bytes: fromB64(t.data) } : undefined;
  }

  /** One part, until the hub has it: after a failure, ask which parts it stored (the answer may have been lost, not the part). */
  private async uploadPart(id: string, index: number, bytes: Uint8Array, progress: (bytes: number) => void): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transfer.putPart(id, index, bytes);
        progress(bytes.length);
        return;
      } catch (e) {
        if (!AttachmentTransfer.retryable(e) || attempt >= this.transfer.attempts) throw e;
        await this.transfer.backoff(attempt, e);
        const status = await this.transfer.status(id).catch(() => undefined);
        if (status?.storedParts.includes(index)) {
          progress(bytes.length);
          return;
        }
      }
    }
  }
}

/** The plaintext as an async iterable of bytes, and its size (a stream of unknown length is read first). */
async function plaintextOf(input: AttachmentInput, size: number | undefined): Promise<{ size: number; chunks: AsyncIterable<Uint8Array> }> {
  if (input instanceof Uint8Array) return { size: input.length, chunks: (async function* () { yield input; })() };
  if (typeof Blob !== 'undefined' && input instanceof Blob) return { size: input.size, chunks: readerChunks(input.stream()) };
  const chunks = typeof ReadableStream !== 'undefined' && input instanceof ReadableStream ? readerChunks(input) : (input as AsyncIterable<Uint8Array>);
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size < 0) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'size must be a whole number of bytes');
    return { size, chunks };
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const c of chunks) {
    parts.push(c);
    total += c.length;
  }
  return { size: total, chunks: (async function* () { yield* parts; })() };
}

async function* readerChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
