import { expect } from 'chai';
import mongoose from 'mongoose';
import { serviceUrls } from './services.js';

/**
 * The plaintext canary: no document of any collection of the test database holds any of `needles`
 * (binary fields read as raw bytes too). Answers what was scanned, so a test can check it was not empty.
 */
export async function expectNotStored(dbName: string, needles: readonly string[]): Promise<{ collections: string[]; documents: number }> {
  const conn = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
  try {
    const collections = (await conn.db!.listCollections().toArray()).map((c) => c.name);
    let documents = 0;
    for (const name of collections) {
      for (const doc of await conn.db!.collection(name).find({}).toArray()) {
        documents++;
        const asText = JSON.stringify(doc, (_k, v: unknown) => (v && typeof v === 'object' && '_bsontype' in v ? Buffer.from((v as unknown as { buffer: Uint8Array }).buffer).toString('latin1') : v));
        const raw = Buffer.from(asText, 'latin1');
        for (const n of needles) {
          expect(asText, `${name} holds the plaintext`).to.not.include(n);
          expect(raw.includes(Buffer.from(n)), `${name} holds the plaintext's bytes`).to.equal(false);
        }
      }
    }
    return { collections, documents };
  } finally {
    await conn.close();
  }
}
