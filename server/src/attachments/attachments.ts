/**
 * Encrypted attachments on the hub (issue #21): uploads of ciphertext in parts, their status, the
 * download, the check a send makes when it names attachments, and the sweep. Transport-free: the
 * HTTP routes (http/attachments.ts) and the gateway call it with a verified caller.
 *
 * Who may do what: the uploading device creates, sends parts and finishes, while its user is a member
 * of the conversation; any device of a current member reads the status and downloads a complete
 * upload. Anyone else (another organisation, a non-member, an unknown id) gets NOT_FOUND and changes
 * nothing, so ids cannot be probed.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ErrorCode, partCount, partLength, type AttachmentCreateRequest, type AttachmentStatus } from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../ports/storage.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { AttachmentRecord } from '../ports/attachments.js';
import { DEFAULT_ATTACHMENTS, type AttachmentsConfig } from './config.js';
import { MemoryBlobStore } from '../adapters/memory/blobs.js';
import { GridFsBlobStore } from '../adapters/mongo/gridfs-blobs.js';
import { MongoStorage } from '../adapters/mongo/storage.js';
import type { HubMetrics } from '../metrics/metrics.js';

export type Caller = { orgId: string; userId: string; deviceId: string };

/** How old a cut-off part write must be before its leftovers are swept (longer than any part write takes). */
const LEFTOVER_AGE_MS = 3600_000;
/** Records one sweep deletes at most (the sweep runs again at the next interval). */
const SWEEP_BATCH = 200;
/** Missing parts named in an UPLOAD_INCOMPLETE error. */
const MISSING_SHOWN = 20;

export interface AttachmentsOptions {
  storage: Storage;
  blobs: BlobStore;
  config: AttachmentsConfig;
  /** How long a message is kept (RETENTION_DAYS): an attachment a message names is kept as long. */
  retentionMs: number;
  logger: Logger;
  now?: () => number;
  /** Ciphertext bytes stored (upload) and served (download). */
  countBytes?: (direction: 'upload' | 'download', bytes: number) => void;
}

function notFound(attachmentId: string): HubError {
  return new HubError(ErrorCode.NOT_FOUND, 'No such attachment', { attachmentId });
}

export class Attachments {
  private readonly now: () => number;

  constructor(private readonly options: AttachmentsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Start an upload: size and quota are checked here, before any byte is stored. */
  async create(caller: Caller, req: Required<AttachmentCreateRequest>): Promise<AttachmentStatus> {
    const { storage, config } = this.options;
    if (req.size > config.maxBytes) {
      throw new HubError(ErrorCode.ATTACHMENT_TOO_LARGE, `Attachments may be at most ${config.maxBytes} bytes`, { maxBytes: config.maxBytes });
    }
    const conversation = await storage.getConversation(caller.orgId, req.conversationId);
    if (!conversation || !conversation.memberUserIds.includes(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, 'Not a member of this conversation', { conversationId: req.conversationId });
    }
    if (config.orgQuotaBytes > 0) {
      // Checked, then inserted: uploads created at the same moment on several nodes may pass
      // together and overshoot by their sizes (docs/attachments.md). Nothing is stored either way.
      const used = await storage.attachmentBytes(caller.orgId);
      if (used + req.size > config.orgQuotaBytes) {
        throw new HubError(ErrorCode.QUOTA_EXCEEDED, "Your organisation's attachment storage is full", { quotaBytes: config.orgQuotaBytes, usedBytes: used });
      }
    }
    const record: AttachmentRecord = {
      orgId: caller.orgId,
      attachmentId: `att_${randomBytes(18).toString('base64url')}`,
      conversationId: conversation.id,
      uploaderUserId: caller.userId,
      uploaderDeviceId: caller.deviceId,
      size: req.size,
      partSize: req.partSize,
      createdAt: this.now(),
    };
    await storage.createAttachment(record);
    return this.statusOf(record, []);
  }

  /** The upload's status: which parts are stored. For its uploader and members' devices. */
  async status(caller: Caller, attachmentId: string): Promise<AttachmentStatus> {
    const record = await this.access(caller, attachmentId, 'member');
    return this.statusOf(record, (await this.options.blobs.listParts(attachmentId)).map((p) => p.index));
  }

  /** Store one part from `source`, which must yield exactly the part's length (`contentLength`, checked first). */
  async putPart(caller: Caller, attachmentId: string, index: number, contentLength: number | undefined, source: Readable): Promise<{ index: number; bytes: number; stored: 'new' | 'again' }> {
    const record = await this.access(caller, attachmentId, 'uploader');
    const parts = partCount(record.size, record.partSize);
    if (index >= parts) throw new HubError(ErrorCode.INVALID_PAYLOAD, `This upload has parts 0 to ${parts - 1}`, { parts });
    const expected = partLength(record.size, record.partSize, index);
    if (contentLength !== expected) throw new HubError(ErrorCode.INVALID_PAYLOAD, `Part ${index} is ${expected} bytes: send exactly that, with Content-Length`, { expectedBytes: expected });
    if (record.finishedAt !== undefined) throw new HubError(ErrorCode.CONFLICT, 'This upload is finished; its parts cannot change', { attachmentId });
    const result = await this.options.blobs.putPart({ blobId: attachmentId, index, expectedBytes: expected, source });
    if (result.status === 'wrong_size') throw new HubError(ErrorCode.INVALID_PAYLOAD, `Part ${index} is ${expected} bytes; got ${result.received}`, { expectedBytes: expected });
    if (result.status === 'stored') this.options.countBytes?.('upload', result.bytes);
    return { index, bytes: result.bytes, stored: result.status === 'stored' ? 'new' : 'again' };
  }

  /** Every part is stored: the upload is complete (and may be named in a message, and downloaded). */
  async finish(caller: Caller, attachmentId: string): Promise<AttachmentStatus> {
    const record = await this.access(caller, attachmentId, 'uploader');
    const stored = (await this.options.blobs.listParts(attachmentId)).map((p) => p.index);
    this.assertAllStored(record, stored);
    if (record.finishedAt === undefined) await this.options.storage.finishAttachment(caller.orgId, attachmentId, this.now());
    return this.statusOf({ ...record, finishedAt: record.finishedAt ?? this.now() }, stored);
  }

  /** A complete upload's ciphertext, part after part, streamed. For members' devices. */
  async download(caller: Caller, attachmentId: string): Promise<{ size: number; conversationId: string; stream: Readable }> {
    const record = await this.access(caller, attachmentId, 'member');
    if (record.finishedAt === undefined) throw new HubError(ErrorCode.UPLOAD_INCOMPLETE, 'This attachment is still being uploaded', { attachmentId });
    const { blobs } = this.options;
    const parts = partCount(record.size, record.partSize);
    const count = this.options.countBytes;
    async function* ciphertext(): AsyncGenerator<Buffer> {
      for (let i = 0; i < parts; i++) {
        const part = await blobs.readPart(attachmentId, i);
        if (!part) throw new Error(`attachment ${attachmentId} lost part ${i}`);
        for await (const chunk of part) {
          count?.('download', (chunk as Buffer).byteLength);
          yield chunk as Buffer;
        }
      }
    }
    return { size: record.size, conversationId: record.conversationId, stream: Readable.from(ciphertext(), { objectMode: false }) };
  }

  /**
   * A send names these attachments: each must be a complete upload of this device in this
   * conversation. Checked before the message is stored (nothing is stored otherwise); each is then
   * kept for the message's retention.
   */
  async reference(caller: Caller, conversationId: string, attachmentIds: readonly string[]): Promise<void> {
    const records: AttachmentRecord[] = [];
    for (const id of attachmentIds) {
      const record = await this.access(caller, id, 'uploader');
      if (record.conversationId !== conversationId) throw notFound(id);
      if (record.finishedAt === undefined) throw new HubError(ErrorCode.UPLOAD_INCOMPLETE, 'Finish the upload before sending the message that names it', { attachmentId: id });
      records.push(record);
    }
    const now = this.now();
    for (const r of records) await this.options.storage.referenceAttachment(caller.orgId, r.attachmentId, now, now + this.options.retentionMs);
  }

  /**
   * Delete uploads no message named within `unreferencedMs`, and attachments past their messages'
   * retention: the bytes first, then the record (a sweep cut off in between deletes them next time).
   */
  async sweep(now = this.now()): Promise<number> {
    const { storage, blobs, config, logger } = this.options;
    const due = await storage.expiredAttachments({ now, unreferencedBefore: now - config.unreferencedMs, limit: SWEEP_BATCH });
    for (const r of due) {
      await blobs.deleteBlob(r.attachmentId);
      await storage.deleteAttachment(r.orgId, r.attachmentId);
    }
    const leftovers = await blobs.sweepLeftovers(now - LEFTOVER_AGE_MS);
    if (due.length || leftovers) logger.info({ deleted: due.length, leftovers }, 'swept attachments');
    return due.length;
  }

  private async access(caller: Caller, attachmentId: string, as: 'uploader' | 'member'): Promise<AttachmentRecord> {
    const { storage } = this.options;
    const record = await storage.getAttachment(caller.orgId, attachmentId);
    if (!record) throw notFound(attachmentId);
    if (as === 'uploader' && (record.uploaderUserId !== caller.userId || record.uploaderDeviceId !== caller.deviceId)) throw notFound(attachmentId);
    const conversation = await storage.getConversation(caller.orgId, record.conversationId);
    if (!conversation || !conversation.memberUserIds.includes(caller.userId)) throw notFound(attachmentId);
    return record;
  }

  private assertAllStored(record: AttachmentRecord, stored: readonly number[]): void {
    const have = new Set(stored);
    const missing: number[] = [];
    for (let i = 0; i < partCount(record.size, record.partSize) && missing.length < MISSING_SHOWN; i++) if (!have.has(i)) missing.push(i);
    if (missing.length) throw new HubError(ErrorCode.UPLOAD_INCOMPLETE, 'Some parts are not stored yet', { attachmentId: record.attachmentId, missingParts: missing });
  }

  private statusOf(record: AttachmentRecord, stored: number[]): AttachmentStatus {
    return {
      attachmentId: record.attachmentId,
      conversationId: record.conversationId,
      size: record.size,
      partSize: record.partSize,
      parts: partCount(record.size, record.partSize),
      storedParts: stored,
      state: record.finishedAt === undefined ? 'uploading' : 'complete',
      createdAt: record.createdAt,
    };
  }
}

/**
 * A hub's attachments: on `blobs` if given, else GridFS in the database of `underlying` when it is a
 * `MongoStorage`, else memory. `storage` is the (instrumented) port the service calls.
 */
export function attachmentsFor(input: {
  storage: Storage;
  underlying: Storage;
  blobs: BlobStore | undefined;
  config: { attachments?: AttachmentsConfig | undefined; retentionMs?: number | undefined };
  logger: Logger;
  metrics: Pick<HubMetrics, 'attachmentBytes'>;
}): { attachments: Attachments; blobs: BlobStore } {
  const blobs = input.blobs ?? (input.underlying instanceof MongoStorage ? new GridFsBlobStore(input.underlying.connection) : new MemoryBlobStore());
  const attachments = new Attachments({
    storage: input.storage,
    blobs,
    config: input.config.attachments ?? DEFAULT_ATTACHMENTS,
    retentionMs: input.config.retentionMs ?? 30 * 24 * 3600 * 1000,
    logger: input.logger,
    countBytes: (direction, bytes) => input.metrics.attachmentBytes.inc({ direction }, bytes),
  });
  return { attachments, blobs };
}
