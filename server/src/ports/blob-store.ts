/**
 * Where attachment ciphertext lives: numbered parts of opaque blobs, streamed in and out, never held
 * whole in memory. Small on purpose, so that an S3-compatible store can follow (one object per part).
 * The hub's records of uploads (who, which conversation, how big, referenced or not) are elsewhere
 * (`AttachmentStore`, ports/attachments.ts); this port knows bytes only.
 *
 * Implementations: `MemoryBlobStore` (dev mode, tests of logic) and `GridFsBlobStore` (MongoDB
 * GridFS: one GridFS file per part). Both pass `test/contract/blob-store.contract.test.ts` over
 * memory, FerretDB-SQLite and FerretDB-PostgreSQL.
 *
 * A part is stored durably and completely or not at all: `listParts` names only parts whose every
 * byte is stored, so an upload cut off by a disconnect or a crashed hub resumes from exactly what it
 * reports. A part stored twice (a retry whose first answer was lost) is kept once: readers see the
 * oldest complete copy, and `deleteBlob` removes every copy.
 */
import type { Readable } from 'node:stream';

export interface StoredPart {
  index: number;
  bytes: number;
}

export type PutPartResult =
  | { status: 'stored'; bytes: number }
  /** The part was already stored completely; the bytes offered were read and dropped. */
  | { status: 'exists'; bytes: number }
  /** The source yielded more or fewer bytes than expected: nothing was kept. */
  | { status: 'wrong_size'; received: number };

export interface BlobStore {
  /** Create collections, indexes or buckets. Idempotent. */
  init(): Promise<void>;
  /**
   * Stream part `index` of `blobId` from `source` and resolve once it is durable. The source must
   * yield exactly `expectedBytes` (counted while streaming: a source that runs over is cut off at the
   * first byte too many). A source that fails mid-way rejects, and leaves nothing `listParts` reports.
   */
  putPart(input: { blobId: string; index: number; expectedBytes: number; source: Readable | AsyncIterable<Uint8Array> }): Promise<PutPartResult>;
  /** The parts stored completely, ascending by index, each once. */
  listParts(blobId: string): Promise<StoredPart[]>;
  /** Part `index`'s bytes, streamed; undefined when it is not stored. */
  readPart(blobId: string, index: number): Promise<Readable | undefined>;
  /** Every part of the blob, and any half-written remains. Idempotent. */
  deleteBlob(blobId: string): Promise<void>;
  /**
   * Remove what writes cut off before `before` (epoch ms) left behind (e.g. chunks of a GridFS file a
   * killed hub never closed). Safe on several nodes at once. Returns how many leftovers went.
   */
  sweepLeftovers(before: number): Promise<number>;
  close(): Promise<void>;
}
