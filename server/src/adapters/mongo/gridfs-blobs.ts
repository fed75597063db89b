/**
 * `BlobStore` on MongoDB GridFS (`GridFSBucket` of the driver mongoose runs on; works on FerretDB
 * over SQLite and PostgreSQL too). One GridFS file per part, named `<blobId>/<index>`.
 *
 * GridFS writes a file's chunks first and its `files` document only when the upload stream closes:
 * a part whose files document exists is complete, and `listParts` reads only those. A hub killed
 * mid-part leaves chunks without a files document; so before writing, a part's file id is noted in
 * `attachment_part_writes` (insert, unique id), and removed once the part is stored or abandoned.
 * `sweepLeftovers` deletes the chunks of notes older than the given time whose file never closed.
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import mongoose, { type Connection } from 'mongoose';
import type { BlobStore, PutPartResult, StoredPart } from '../../ports/blob-store.js';

const { GridFSBucket, ObjectId } = mongoose.mongo;
type ObjectIdT = InstanceType<typeof ObjectId>;

const BUCKET = 'attachment_parts';
const WRITES = 'attachment_part_writes';
/** GridFS chunk size: under FerretDB's and MongoDB's document limits, big enough to keep per-chunk overhead low. */
const GRIDFS_CHUNK_BYTES = 255 * 1024;

interface FileMeta {
  blob: string;
  index: number;
}

interface WriteNote {
  _id: ObjectIdT;
  blob: string;
  index: number;
  startedAt: number;
}

export class GridFsBlobStore implements BlobStore {
  private bucketImpl: InstanceType<typeof GridFSBucket> | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly now: () => number = Date.now,
  ) {}

  /** The connection's database: known once it is open (`init`). */
  private db(): mongoose.mongo.Db {
    if (!this.conn.db) throw new Error('GridFsBlobStore: call init() first (the connection is not open)');
    return this.conn.db;
  }

  private get bucket(): InstanceType<typeof GridFSBucket> {
    return (this.bucketImpl ??= new GridFSBucket(this.db(), { bucketName: BUCKET, chunkSizeBytes: GRIDFS_CHUNK_BYTES }));
  }

  private files() {
    return this.db().collection<{ _id: ObjectIdT; length: number; uploadDate: Date; metadata: FileMeta }>(`${BUCKET}.files`);
  }

  private chunks() {
    return this.db().collection(`${BUCKET}.chunks`);
  }

  private writes() {
    return this.db().collection<WriteNote>(WRITES);
  }

  async init(): Promise<void> {
    await this.conn.asPromise();
    // GridFS's own indexes (files_id+n unique; filename+uploadDate) and ours: parts by blob.
    await this.chunks().createIndex({ files_id: 1, n: 1 }, { unique: true });
    await this.files().createIndex({ filename: 1, uploadDate: 1 });
    await this.files().createIndex({ 'metadata.blob': 1, 'metadata.index': 1 });
    await this.writes().createIndex({ startedAt: 1 });
    await this.writes().createIndex({ blob: 1 });
  }

  async putPart(input: { blobId: string; index: number; expectedBytes: number; source: Readable | AsyncIterable<Uint8Array> }): Promise<PutPartResult> {
    const { blobId, index, expectedBytes } = input;
    const existing = await this.files().findOne({ 'metadata.blob': blobId, 'metadata.index': index }, { sort: { _id: 1 } });
    if (existing) {
      // A retry whose first answer was lost: read the offered bytes (the client is sending them) and keep the stored copy.
      let received = 0;
      for await (const chunk of input.source as AsyncIterable<Uint8Array>) received += chunk.byteLength;
      return received === existing.length ? { status: 'exists', bytes: existing.length } : { status: 'wrong_size', received };
    }
    const id = new ObjectId();
    await this.writes().insertOne({ _id: id, blob: blobId, index, startedAt: this.now() });
    const meta: FileMeta = { blob: blobId, index };
    const upload = this.bucket.openUploadStreamWithId(id, `${blobId}/${index}`, { metadata: meta });
    let received = 0;
    // Chunks already written go now; the note stays, so that `sweepLeftovers` also removes any
    // chunk insert still in flight (it only takes notes older than every write it could race).
    const abandon = () => upload.abort().catch(() => {});
    try {
      for await (const chunk of input.source as AsyncIterable<Uint8Array>) {
        received += chunk.byteLength;
        if (received > expectedBytes) break;
        if (!upload.write(chunk)) await once(upload, 'drain');
      }
      if (received !== expectedBytes) {
        await abandon();
        return { status: 'wrong_size', received };
      }
      const done = once(upload, 'finish');
      upload.end();
      await done;
    } catch (err) {
      await abandon();
      throw err;
    }
    await this.writes().deleteOne({ _id: id });
    return { status: 'stored', bytes: received };
  }

  async listParts(blobId: string): Promise<StoredPart[]> {
    const files = await this.files().find({ 'metadata.blob': blobId }).sort({ 'metadata.index': 1, _id: 1 }).toArray();
    const out: StoredPart[] = [];
    for (const f of files) if (out.at(-1)?.index !== f.metadata.index) out.push({ index: f.metadata.index, bytes: f.length });
    return out;
  }

  async readPart(blobId: string, index: number): Promise<Readable | undefined> {
    const file = await this.files().findOne({ 'metadata.blob': blobId, 'metadata.index': index }, { sort: { _id: 1 } });
    if (!file) return undefined;
    return this.bucket.openDownloadStream(file._id);
  }

  async deleteBlob(blobId: string): Promise<void> {
    const files = await this.files().find({ 'metadata.blob': blobId }, { projection: { _id: 1 } }).toArray();
    const notes = await this.writes().find({ blob: blobId }).toArray();
    for (const id of [...files.map((f) => f._id), ...notes.map((n) => n._id)]) {
      // Chunks first: a files document without chunks would read as a broken part, chunks without one as nothing.
      await this.chunks().deleteMany({ files_id: id });
      await this.files().deleteOne({ _id: id });
    }
    await this.writes().deleteMany({ blob: blobId });
  }

  async sweepLeftovers(before: number): Promise<number> {
    const notes = await this.writes().find({ startedAt: { $lt: before } }).limit(100).toArray();
    let swept = 0;
    for (const note of notes) {
      // A write that closed but whose note was not removed (the hub died in between) is a stored part.
      if (!(await this.files().findOne({ _id: note._id }, { projection: { _id: 1 } }))) {
        await this.chunks().deleteMany({ files_id: note._id });
        swept++;
      }
      await this.writes().deleteOne({ _id: note._id });
    }
    return swept;
  }

  async close(): Promise<void> {
    // The connection belongs to the storage.
  }
}
