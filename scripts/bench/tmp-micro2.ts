import { MongoClient } from 'mongodb';
import { readFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
const pid = Number(execSync('pgrep -f "curbside-ferretdb --listen 127.0.0.1:37018"').toString().trim().split('\n')[0]);
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const c = await MongoClient.connect('mongodb://127.0.0.1:37018/');
const db = c.db('micro' + Date.now());
const users = db.collection<any>('users');
for (let b = 0; b < 55; b++) await users.insertMany(Array.from({ length: 100 }, (_, i) => ({ _id: `org u${b * 100 + i}`, orgId: 'org', userId: `u${b * 100 + i}`, deviceIds: [`d${b * 100 + i}`], createdAt: 1, lastSeenAt: 1 })));
async function t(name: string, n: number, fn: (i: number) => Promise<unknown>) {
  const c0 = cpu(); const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  console.log(name.padEnd(40), 'wall/op', ((performance.now() - t0) / n).toFixed(2), 'ms  dbcpu/op', ((cpu() - c0) / n).toFixed(2), 'ms');
}
await t('findOne _id', 100, (i) => users.findOne({ _id: `org u${i * 7}` }));
await t('findOne _id + projection', 100, (i) => users.findOne({ _id: `org u${i * 7}` }, { projection: { deviceIds: 1 } }));
await t('find _id limit 1', 100, (i) => users.find({ _id: `org u${i * 7}` }).limit(1).toArray());
await t('find orgId+userId (scan)', 20, (i) => users.findOne({ orgId: 'org', userId: `u${i * 7}` }));

const c2 = await MongoClient.connect('mongodb://127.0.0.1:37018/');
const users2 = c2.db('microb' + Date.now()).collection<any>('users');
let t0 = performance.now();
for (let i = 0; i < 2000; i++) await users2.findOneAndUpdate({ _id: `org v${i}` }, { $set: { lastSeenAt: i }, $setOnInsert: { orgId: 'org', userId: `v${i}`, createdAt: i }, $addToSet: { deviceIds: `dv${i}` } }, { upsert: true, returnDocument: 'after' });
console.log('2000 upserts', (performance.now() - t0).toFixed(0), 'ms');
const c0 = cpu(); t0 = performance.now();
for (let i = 0; i < 100; i++) await users2.findOne({ _id: `org v${i * 7}` });
console.log('findOne _id after upserts: wall/op', ((performance.now() - t0) / 100).toFixed(2), 'dbcpu/op', ((cpu() - c0) / 100).toFixed(2));
await c2.close();
