/**
 * What a stored field costs the database: FerretDB converts every field of a document on the way in,
 * so the same bytes cost more as many fields than as one. Measures, on FerretDB over PostgreSQL in a
 * fresh database (CPU of FerretDB and of the PostgreSQL backends serving it, per stored item):
 *
 * - audit entries: a document per entry (releases before blocks), a block with the entries as an array
 *   of subdocuments (the first release with blocks), a block with the entries as one JSON text (now);
 * - envelopes: per-device shares as `{ deviceId, ciphertext }` subdocuments (before) and packed into
 *   one binary field as the hub stores them (`packShares`), with `--shares` shares each.
 *
 *   npx tsx scripts/bench/field-cost.ts [--batches 200] [--shares 9] [--rounds 2]
 *
 * Run it on a quiet machine: the figures are CPU time, and other jobs' database work is not counted,
 * but their load slows everything. docs/benchmarks.md ("audit entries stored as blocks") has results.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { packShares } from '../../server/src/adapters/mongo/shares.js';
import { startFerretDbPostgres } from '../../test/support/services.js';
import { runBench } from './server-process.js';
import { startStackCpu } from './stack-cpu.js';

const { values: flags } = parseArgs({
  options: { batches: { type: 'string', default: '200' }, shares: { type: 'string', default: '9' }, rounds: { type: 'string', default: '2' } },
});
const BATCHES = Number(flags.batches);
const SHARES = Number(flags.shares);
const ROUNDS = Number(flags.rounds);
const AUDIT_BATCH = 50;
const ENVELOPE_BATCH = 14;

type Doc = mongoose.mongo.Document;

function auditEntry(i: number): Doc {
  return {
    id: `entry-${i}`,
    index: i,
    prevHash: randomBytes(32).toString('hex'),
    hash: randomBytes(32).toString('hex'),
    at: Date.now(),
    action: 'envelope:send',
    outcome: 'ok',
    orgId: 'org-1',
    userId: `user-${i % 100}`,
    deviceId: `device-${i % 300}`,
    ip: '10.0.0.1',
    conversationId: `conversation-${i % 600}`,
    messageId: `message-${i}`,
    seq: i,
    clientMessageId: `client-${i}`,
  };
}

const audit: Record<string, (batch: number) => Doc[]> = {
  'audit: a document per entry': (b) => Array.from({ length: AUDIT_BATCH }, (_, k) => ({ _id: `e-${b}-${k}`, chain: 'node-1', ...auditEntry(b * AUDIT_BATCH + k) })),
  'audit: a block, entries as subdocuments': (b) => [{ _id: `b-${b}`, chain: 'node-1', index: b * AUDIT_BATCH, entries: Array.from({ length: AUDIT_BATCH }, (_, k) => auditEntry(b * AUDIT_BATCH + k)) }],
  'audit: a block, entries as one JSON text': (b) => [{ _id: `b-${b}`, chain: 'node-1', index: b * AUDIT_BATCH, entries: JSON.stringify(Array.from({ length: AUDIT_BATCH }, (_, k) => auditEntry(b * AUDIT_BATCH + k))) }],
};

const body = randomBytes(1224);
function envelope(i: number, shares: 'subdocuments' | 'packed'): Doc {
  const list = Array.from({ length: SHARES }, (_, k) => ({ deviceId: `device-${(i + k) % 1000}`, ciphertext: randomBytes(80) }));
  return {
    _id: `org-1 device-${i % 300} client-${i}`,
    messageId: `message-${i}`,
    orgId: 'org-1',
    conversationId: `conversation-${i % 600}`,
    seq: i,
    senderUserId: `user-${i % 100}`,
    senderDeviceId: `device-${i % 300}`,
    clientMessageId: `client-${i}`,
    sentAt: Date.now(),
    body,
    expiresAt: Date.now() + 30 * 24 * 3600_000,
    ...(shares === 'packed' ? { shares: packShares(list) } : { recipients: list }),
  };
}

const envelopes: Record<string, (batch: number) => Doc[]> = {
  [`envelopes: ${SHARES} shares as subdocuments`]: (b) => Array.from({ length: ENVELOPE_BATCH }, (_, k) => envelope(b * ENVELOPE_BATCH + k, 'subdocuments')),
  [`envelopes: ${SHARES} shares packed`]: (b) => Array.from({ length: ENVELOPE_BATCH }, (_, k) => envelope(b * ENVELOPE_BATCH + k, 'packed')),
};

async function main(): Promise<void> {
  const ferret = await startFerretDbPostgres('bench_fields');
  const client = await mongoose.mongo.MongoClient.connect(ferret.url);
  try {
    const db = client.db('fields');
    console.log(`FerretDB on PostgreSQL (database ${ferret.database}); ${BATCHES} batches per case, ${ROUNDS} rounds`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, make] of Object.entries({ ...audit, ...envelopes })) {
        const coll = db.collection(`c${round}_${name.replace(/[^a-z0-9]+/gi, '_')}`);
        await coll.insertOne({ _id: 'warm' as never });
        let items = 0;
        const cpu = startStackCpu({ hub: [], generators: [], ferretdb: ferret.child.pid, postgresDatabase: ferret.database });
        const t0 = performance.now();
        for (let b = 0; b < BATCHES; b++) {
          const docs = make(b);
          await coll.insertMany(docs, { ordered: false });
          items += name.startsWith('audit') ? AUDIT_BATCH : docs.length;
        }
        const wallMs = (performance.now() - t0) / BATCHES;
        const { msPerMsg } = cpu.stop(items);
        const us = (ms: number | undefined) => Math.round((ms ?? NaN) * 1000);
        console.log(
          `round ${round}  ${name.padEnd(44)} ${wallMs.toFixed(2).padStart(6)} ms per batch; per item FerretDB ${us(msPerMsg.ferretdb)} µs, PostgreSQL ${us(msPerMsg.postgres)} µs`,
        );
      }
    }
  } finally {
    await client.close();
    await ferret.stop();
  }
}

runBench(main);
