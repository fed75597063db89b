import mongoose from 'mongoose';
import { MemoryStorage, MongoStorage, type Storage } from '@curbside/server';
import { mongoBackends, uniqueName } from './services.js';

/** Storage under test as two hub nodes would see it: two instances on one database (one instance for memory). */
export interface StoragePair {
  a: Storage;
  b: Storage;
  cleanup(): Promise<void>;
}

export interface StorageImpl {
  name: string;
  open(): Promise<StoragePair>;
}

/** Drop a test database on a Mongo-wire server. */
export async function dropDatabase(uri: string, dbName: string): Promise<void> {
  const conn = mongoose.createConnection(uri, { dbName });
  try {
    await conn.asPromise();
    await conn.dropDatabase();
  } finally {
    await conn.close();
  }
}

/**
 * Every implementation a contract suite runs over: MemoryStorage, and MongoStorage on each of the
 * run's Mongo-wire databases (FerretDB on SQLite and on PostgreSQL, or MONGODB_URI), two instances
 * started at once on a fresh database named after `prefix`, dropped at cleanup.
 */
export function storageImpls(prefix: string): StorageImpl[] {
  const memory: StorageImpl = {
    name: 'MemoryStorage',
    async open() {
      const s = new MemoryStorage();
      await s.init();
      return { a: s, b: s, cleanup: () => s.close() };
    },
  };
  const mongos = mongoBackends().map(
    (backend): StorageImpl => ({
      name: `MongoStorage on ${backend.name}`,
      async open() {
        const dbName = uniqueName(prefix);
        const a = new MongoStorage({ uri: backend.uri(), dbName });
        const b = new MongoStorage({ uri: backend.uri(), dbName });
        // Two nodes starting at once must not trip over each other's collection and index creation.
        await Promise.all([a.init(), b.init()]);
        return {
          a,
          b,
          async cleanup() {
            await Promise.all([a.close(), b.close()]);
            await dropDatabase(backend.uri(), dbName);
          },
        };
      },
    }),
  );
  return [memory, ...mongos];
}
