import { MongoClient } from 'mongodb';
import { readFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
const pid = Number(execSync('pgrep -f "curbside-ferretdb --listen 127.0.0.1:37019"').toString().trim().split('\n')[0]);
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const c = await MongoClient.connect('mongodb://127.0.0.1:37019/');
const dbs = (await c.db().admin().listDatabases()).databases.map((d) => d.name).filter((n) => n.startsWith('bench'));
console.log(dbs);
const db = c.db(dbs[0]!);
for (const name of ['users', 'devices', 'conversations', 'envelopes', 'audit_log']) {
  const t0 = performance.now();
  const n = await db.collection(name).estimatedDocumentCount();
  console.log(name, n, (performance.now() - t0).toFixed(1), 'ms');
}
const u = await db.collection<any>('users').find({}).limit(3).toArray();
console.log(JSON.stringify(u[0]).slice(0, 300));
for (let k = 0; k < 3; k++) {
  const c0 = cpu(); const t0 = performance.now();
  await db.collection<any>('users').findOne({ _id: u[k]._id });
  console.log('user point read', (performance.now() - t0).toFixed(1), 'ms wall; db cpu during', cpu() - c0);
}
const t1 = performance.now();
const e = await db.collection<any>('users').find({ _id: u[0]._id }).explain();
console.log('explain', (performance.now() - t1).toFixed(1), JSON.stringify(e).slice(0, 600));
await c.close();
