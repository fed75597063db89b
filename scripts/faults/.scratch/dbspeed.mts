import { FaultCluster } from '/work/main/scripts/faults/cluster.js';
import mongoose from 'mongoose';
const c = await FaultCluster.start({ nodes: 1 });
const conn = await mongoose.createConnection(c.mongoUri, { dbName: 'speed' }).asPromise();
const col = conn.db!.collection('env');
await col.createIndex({ orgId: 1, senderDeviceId: 1, clientMessageId: 1 }, { unique: true });
await col.createIndex({ orgId: 1, conversationId: 1, seq: 1 }, { unique: true });
const blob = Buffer.alloc(4000, 7);
for (const n of [100, 400, 1600]) {
  const have = await col.countDocuments();
  const docs = [];
  for (let i = have; i < n; i++) docs.push({ _id: `m${i}` as any, orgId: 'o', conversationId: 'c', seq: i + 1, senderDeviceId: `d${i % 8}`, clientMessageId: `x${i}`, body: blob, recipients: Array.from({ length: 7 }, (_, k) => ({ deviceId: `d${k}`, ciphertext: Buffer.alloc(200) })) });
  if (docs.length) await col.insertMany(docs);
  let t = performance.now();
  for (let k = 0; k < 20; k++) await col.findOne({ orgId: 'o', senderDeviceId: 'd3', clientMessageId: `x${k}` });
  const find = (performance.now() - t) / 20;
  t = performance.now();
  for (let k = 0; k < 20; k++) await col.findOne({ _id: `m${k}` as any });
  const byId = (performance.now() - t) / 20;
  t = performance.now();
  for (let k = 0; k < 20; k++) await col.insertOne({ _id: `z${n}-${k}` as any, orgId: 'o', conversationId: 'c2', seq: n * 100 + k, senderDeviceId: 'q', clientMessageId: `z${n}-${k}` });
  const ins = (performance.now() - t) / 20;
  console.log(`${n} docs: findOne by fields ${find.toFixed(1)} ms, by _id ${byId.toFixed(1)} ms, insertOne ${ins.toFixed(1)} ms`);
}
await conn.close(); await c.stop();
