/**
 * The cost of each storage operation the hub's hot paths use, on the memory store and on the
 * Mongo-wire database, against a dataset of bench size: `npm run bench:storage`.
 *
 *   --users 500 --teams 50 --envelopes 5000 --reps 40 --mongodb-uri URI
 *
 * Each operation runs `reps` times one after another (no queueing), after a warm-up; the table gives
 * the median and p90 wall time and, where this run started FerretDB, its CPU per operation.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { procCpuMs } from './server-process.js';
import { MemoryStorage, MongoStorage, type Storage } from '../../server/src/index.js';

const { values: flags } = parseArgs({
  options: {
    users: { type: 'string', default: '500' },
    teams: { type: 'string', default: '50' },
    envelopes: { type: 'string', default: '5000' },
    reps: { type: 'string', default: '40' },
    'mongodb-uri': { type: 'string' },
    only: { type: 'string' },
  },
});
const USERS = Number(flags.users);
const TEAMS = Number(flags.teams);
const ENVELOPES = Number(flags.envelopes);
const REPS = Number(flags.reps);
const ORG = 'org-bench';

function cpuMs(pid: number | undefined): number {
  return pid === undefined ? NaN : procCpuMs(pid);
}

interface Fixture {
  users: string[];
  devices: string[];
  teams: Array<{ id: string; members: string[]; lastSeq: number }>;
}

async function populate(store: Storage): Promise<Fixture> {
  const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
  const devices = users.map((u) => `${u}-d1`);
  const now = Date.now();
  for (let i = 0; i < USERS; i++) {
    await store.touchDevice({ orgId: ORG, userId: users[i]!, deviceId: devices[i]!, now });
    await store.publishKeys({
      orgId: ORG,
      deviceId: devices[i]!,
      identityKey: randomBytes(32),
      signedPrekey: { keyId: 1, publicKey: randomBytes(32), signature: randomBytes(64) },
      oneTimePrekeys: Array.from({ length: 20 }, (_, k) => ({ keyId: k + 1, publicKey: randomBytes(32) })),
      maxStored: 200,
      now,
    });
  }
  const teams: Fixture['teams'] = [];
  for (let t = 0; t < TEAMS; t++) {
    const members = users.slice((t * 10) % USERS, ((t * 10) % USERS) + 10);
    const { conversation } = await store.createConversation({ orgId: ORG, kind: 'group', createdBy: members[0]!, memberUserIds: members.slice(1), now });
    teams.push({ id: conversation.id, members, lastSeq: 0 });
  }
  const body = randomBytes(1200);
  for (let e = 0; e < ENVELOPES; e++) {
    const team = teams[e % teams.length]!;
    const sender = team.members[e % team.members.length]!;
    const r = await store.appendEnvelope({
      orgId: ORG,
      conversationId: team.id,
      senderUserId: sender,
      senderDeviceId: `${sender}-d1`,
      clientMessageId: randomUUID(),
      body,
      deliverTo: team.members.filter((m) => m !== sender).map((m) => `${m}-d1`),
      expiresAt: now + 86_400_000,
      lastSeqSeen: team.lastSeq,
      now,
    });
    if (r.status === 'stored') team.lastSeq = r.envelope.seq;
  }
  return { users, devices, teams };
}

type Op = (i: number) => Promise<unknown>;

function ops(store: Storage, fx: Fixture): Record<string, Op> {
  const team = (i: number) => fx.teams[i % fx.teams.length]!;
  const body = randomBytes(1200);
  return {
    'getConversation (by id)': (i) => store.getConversation(ORG, team(i).id),
    'listDeviceIdentities (10 users)': (i) => store.listDeviceIdentities(ORG, team(i).members),
    'appendEnvelope (1.2 KB body)': async (i) => {
      const t = team(i);
      const r = await store.appendEnvelope({
        orgId: ORG,
        conversationId: t.id,
        senderUserId: t.members[0]!,
        senderDeviceId: `${t.members[0]!}-d1`,
        clientMessageId: randomUUID(),
        body,
        deliverTo: t.members.slice(1).map((m) => `${m}-d1`),
        expiresAt: Date.now() + 86_400_000,
        lastSeqSeen: t.lastSeq,
        now: Date.now(),
      });
      if (r.status === 'stored') t.lastSeq = r.envelope.seq;
    },
    'ackDelivered (1 cursor)': (i) => store.ackDelivered(ORG, `${team(i).members[1]!}-d1`, [{ conversationId: team(i).id, afterSeq: team(i).lastSeq }]),
    'listConversationsForUser': (i) => store.listConversationsForUser(ORG, team(i).members[2]!),
    'touchDevice (handshake)': (i) => store.touchDevice({ orgId: ORG, userId: team(i).members[3]!, deviceId: `${team(i).members[3]!}-d1`, now: Date.now() }),
    'envelopesAfter (page of 50)': (i) => store.envelopesAfter(ORG, team(i).id, Math.max(0, team(i).lastSeq - 50), 50),
    'deviceRevokedAt': (i) => store.deviceRevokedAt(ORG, `${team(i).members[4]!}-d1`),
    'claimBundles (1 user)': (i) => store.claimBundles(ORG, [team(i).members[5]!]),
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function measure(name: string, store: Storage, dbPid: number | undefined): Promise<Array<{ op: string; p50: number; p90: number; dbCpu: number }>> {
  const t0 = performance.now();
  const fx = await populate(store);
  console.error(`${name}: populated ${USERS} users, ${TEAMS} teams, ${ENVELOPES} envelopes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const rows = [];
  for (const [op, fn] of Object.entries(ops(store, fx))) {
    if (flags.only && !op.includes(flags.only)) continue;
    for (let i = 0; i < 5; i++) await fn(i);
    const times: number[] = [];
    const c0 = cpuMs(dbPid);
    for (let i = 0; i < REPS; i++) {
      const s = performance.now();
      await fn(i);
      times.push(performance.now() - s);
    }
    const dbCpu = (cpuMs(dbPid) - c0) / REPS;
    rows.push({ op, p50: quantile(times, 0.5), p90: quantile(times, 0.9), dbCpu });
  }
  return rows;
}

const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
results.memory = await measure('memory', new MemoryStorage(), undefined);

let mongoUri = flags['mongodb-uri'];
let dbPid: number | undefined;
let stopDb: (() => Promise<void>) | undefined;
if (!mongoUri) {
  const svc = await import('../../test/support/services.js');
  const db = await svc.ensureDevMongo(); // FerretDB on PostgreSQL unless CURBSIDE_FERRETDB_BACKEND=sqlite
  console.log(`database: ${db.label} ${db.url}`);
  mongoUri = db.url;
  dbPid = (db as { child?: ChildProcess }).child?.pid;
  stopDb = () => db.stop();
}
const mongo = new MongoStorage({ uri: mongoUri, dbName: `storage_ops_${Date.now()}` });
await mongo.init();
try {
  results.mongo = await measure('mongo', mongo, dbPid);
} finally {
  await mongo.close();
  await stopDb?.();
}

const f = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(2));
console.log(`| operation | memory p50 ms | mongo p50 ms | mongo p90 ms | DB CPU ms/op |`);
console.log(`| --- | ---: | ---: | ---: | ---: |`);
for (const row of results.mongo) {
  const m = results.memory.find((r) => r.op === row.op);
  console.log(`| ${row.op} | ${f(m?.p50 ?? NaN)} | ${f(row.p50)} | ${f(row.p90)} | ${f(row.dbCpu)} |`);
}
