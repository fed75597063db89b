import mongoose from 'mongoose';
import { serviceUrls } from './services.js';

/** Run `run` with a connection of its own to the test database `dbName` (as an attacker with the database would). */
export async function withDb<T>(dbName: string, run: (db: mongoose.mongo.Db) => Promise<T>): Promise<T> {
  const conn = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
  try {
    return await run(conn.db!);
  } finally {
    await conn.close();
  }
}
