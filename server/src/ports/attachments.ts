/**
 * The hub's records of attachment uploads (issue #21): whose, for which conversation, how big, and
 * whether a sent message names them. The bytes are in the `BlobStore` (ports/blob-store.ts). Part
 * of `Storage` (every adapter implements it), covered by `test/contract/attachments.contract.test.ts`
 * over memory and MongoDB (FerretDB on SQLite and PostgreSQL).
 *
 * A record is inserted once under a unique id and changed only by its uploader's own steps (finish,
 * then references from its sends), so FerretDB's read-modify-write updates lose nothing that matters:
 * two racing references each set the same `referencedAt` field, and `retainUntil` only moves forward
 * within a send's retention window (docs/attachments.md).
 */
export interface AttachmentRecord {
  orgId: string;
  attachmentId: string;
  conversationId: string;
  uploaderUserId: string;
  uploaderDeviceId: string;
  /** Ciphertext bytes. */
  size: number;
  partSize: number;
  createdAt: number;
  /** When the uploader said every part is stored. */
  finishedAt?: number | undefined;
  /** When a sent message first named it. */
  referencedAt?: number | undefined;
  /** When it goes: the retention end of the latest message that named it. */
  retainUntil?: number | undefined;
}

export interface AttachmentStore {
  /** Insert a new upload's record (its id is new: chosen by the hub at random). */
  createAttachment(record: AttachmentRecord): Promise<void>;
  /** The record, only within `orgId` (another organisation's id behaves as unknown). */
  getAttachment(orgId: string, attachmentId: string): Promise<AttachmentRecord | undefined>;
  /** Mark the upload complete (idempotent: the first time stays). */
  finishAttachment(orgId: string, attachmentId: string, now: number): Promise<void>;
  /** A sent message names it: keep it until `retainUntil` (never earlier than a previous reference said). */
  referenceAttachment(orgId: string, attachmentId: string, now: number, retainUntil: number): Promise<void>;
  /** Ciphertext bytes the organisation's uploads hold (finished or not, referenced or not). */
  attachmentBytes(orgId: string): Promise<number>;
  /**
   * Records due to go, at most `limit`: never referenced and created before `unreferencedBefore`,
   * or referenced and past `retainUntil` at `now`.
   */
  expiredAttachments(input: { now: number; unreferencedBefore: number; limit: number }): Promise<AttachmentRecord[]>;
  /** Delete the record (its blob first: see `Attachments.sweep`). Idempotent. */
  deleteAttachment(orgId: string, attachmentId: string): Promise<void>;
}
