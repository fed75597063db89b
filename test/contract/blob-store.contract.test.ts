/**
 * BlobStore contract (server/src/ports/blob-store.ts) over MemoryBlobStore and GridFsBlobStore on each
 * of the run's Mongo-wire databases (FerretDB on SQLite and on PostgreSQL), two instances standing for
 * two hub nodes: what one stores, the other lists and reads.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { GridFsBlobStore, MemoryBlobStore, type BlobStore } from '@curbside/server';
import { mongoBackends, uniqueName } from '../support/services.js';
import { dropDatabase } from '../support/storage-impls.js';

interface BlobPair {
  a: BlobStore;
  b: BlobStore;
  /** The database, for the GridFS stores (to look under the port). */
  db?: mongoose.mongo.Db;
  cleanup(): Promise<void>;
}

const impls: Array<{ name: string; open(): Promise<BlobPair> }> = [
  {
    name: 'MemoryBlobStore',
    async open() {
      const s = new MemoryBlobStore();
      await s.init();
      return { a: s, b: s, cleanup: () => s.close() };
    },
  },
  ...mongoBackends().map((backend) => ({
    name: `GridFsBlobStore on ${backend.name}`,
    async open(): Promise<BlobPair> {
      const dbName = uniqueName('blobs');
      const conns = [mongoose.createConnection(backend.uri(), { dbName }), mongoose.createConnection(backend.uri(), { dbName })];
      await Promise.all(conns.map((c) => c.asPromise()));
      const [a, b] = conns.map((c) => new GridFsBlobStore(c));
      await Promise.all([a!.init(), b!.init()]);
      return {
        a: a!,
        b: b!,
        db: conns[0]!.db!,
        async cleanup() {
          await Promise.all(conns.map((c) => c.close()));
          await dropDatabase(backend.uri(), dbName);
        },
      };
    },
  })),
];

/** A source yielding `data` in pieces of `piece` bytes. */
function source(data: Uint8Array, piece = 100_000): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) pieces.push(Buffer.from(data.subarray(i, i + piece)));
  return Readable.from(pieces);
}

async function readAll(r: Readable | undefined): Promise<Buffer> {
  assert.ok(r, 'part is stored');
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

for (const impl of impls) {
  describe(`BlobStore contract: ${impl.name}`, function () {
    let h: BlobPair;
    beforeEach(async () => {
      h = await impl.open();
    });
    afterEach(() => h.cleanup());

    it('stores parts streamed in (bigger than a GridFS chunk) and reads them back exactly, from another node', async () => {
      const p0 = randomBytes(600_000);
      const p1 = randomBytes(1234);
      assert.deepEqual(await h.a.putPart({ blobId: 'blob-1', index: 1, expectedBytes: p1.length, source: source(p1) }), { status: 'stored', bytes: 1234 });
      assert.deepEqual(await h.b.listParts('blob-1'), [{ index: 1, bytes: 1234 }]);
      assert.deepEqual(await h.a.putPart({ blobId: 'blob-1', index: 0, expectedBytes: p0.length, source: source(p0) }), { status: 'stored', bytes: 600_000 });
      assert.deepEqual(await h.b.listParts('blob-1'), [
        { index: 0, bytes: 600_000 },
        { index: 1, bytes: 1234 },
      ]);
      assert.ok((await readAll(await h.b.readPart('blob-1', 0))).equals(p0));
      assert.ok((await readAll(await h.b.readPart('blob-1', 1))).equals(p1));
      assert.equal(await h.b.readPart('blob-1', 2), undefined);
      assert.deepEqual(await h.b.listParts('blob-2'), []);
    });

    it('refuses a source of the wrong size and keeps nothing of it', async () => {
      const data = randomBytes(300_000);
      const over = await h.a.putPart({ blobId: 'b', index: 0, expectedBytes: 200_000, source: source(data) });
      assert.equal(over.status, 'wrong_size');
      assert.ok(over.status === 'wrong_size' && over.received > 200_000);
      assert.deepEqual(await h.a.putPart({ blobId: 'b', index: 0, expectedBytes: 400_000, source: source(data) }), { status: 'wrong_size', received: 300_000 });
      assert.deepEqual(await h.b.listParts('b'), []);
      assert.equal(await h.b.readPart('b', 0), undefined);
    });

    it('a part stored again is kept once, the first copy', async () => {
      const data = randomBytes(5000);
      await h.a.putPart({ blobId: 'b', index: 0, expectedBytes: 5000, source: source(data) });
      assert.deepEqual(await h.b.putPart({ blobId: 'b', index: 0, expectedBytes: 5000, source: source(data) }), { status: 'exists', bytes: 5000 });
      assert.deepEqual(await h.a.listParts('b'), [{ index: 0, bytes: 5000 }]);
      assert.ok((await readAll(await h.a.readPart('b', 0))).equals(data));
    });

    it('a source that fails mid-way leaves no part behind, and the part can be sent again', async () => {
      const data = randomBytes(700_000);
      async function* failing() {
        yield data.subarray(0, 400_000);
        throw new Error('connection reset');
      }
      await assert.rejects(h.a.putPart({ blobId: 'b', index: 0, expectedBytes: data.length, source: failing() }), /connection reset/);
      assert.deepEqual(await h.b.listParts('b'), []);
      assert.deepEqual(await h.b.putPart({ blobId: 'b', index: 0, expectedBytes: data.length, source: source(data) }), { status: 'stored', bytes: 700_000 });
      assert.ok((await readAll(await h.a.readPart('b', 0))).equals(data));
      // What the failed write may have left is swept once it is old enough; the stored part stays.
      await h.a.sweepLeftovers(Date.now() + 1);
      assert.ok((await readAll(await h.b.readPart('b', 0))).equals(data));
      if (h.db) assert.equal(await h.db.collection('attachment_parts.chunks').countDocuments({}), 3, 'only the stored part’s chunks are left');
    });

    it('deleting a blob removes every part, and only that blob', async () => {
      for (const blobId of ['x', 'y']) for (const index of [0, 1]) await h.a.putPart({ blobId, index, expectedBytes: 3000, source: source(randomBytes(3000)) });
      await h.b.deleteBlob('x');
      await h.b.deleteBlob('x');
      assert.deepEqual(await h.a.listParts('x'), []);
      assert.deepEqual(await h.a.listParts('y'), [
        { index: 0, bytes: 3000 },
        { index: 1, bytes: 3000 },
      ]);
      if (h.db) assert.equal(await h.db.collection('attachment_parts.chunks').countDocuments({}), 2);
    });
  });
}
