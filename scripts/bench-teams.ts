/**
 * Long file: one benchmark program (both variants, every size, the report), read top to bottom.
 *
 * Care-team benchmark: a message to a whole care team, with the hub in a child process, against a bare
 * socket.io relay (broadcast to a room; no auth, crypto, validation or storage) in the same run.
 *
 *   npx tsx scripts/bench-teams.ts                 (npm run bench:teams; `npm run build` first)
 *   npx tsx scripts/bench-teams.ts --quick         (smoke run: two small teams, a few messages)
 *   npx tsx scripts/bench-teams.ts --sizes 5,50 --messages 30 --rounds 2 --backend real
 *
 * Per team size (one device per member, every client in this process, the load generator):
 *   - Curbside: `node server/dist/main.js` in dev mode (PORT=0, tokens from POST /dev/token), or with
 *     `--backend real` against MONGODB_URI + REDIS_URL with tokens this script signs. The owner creates
 *     the team, then every sender sends once (warm-up: each first message carries that device's sender
 *     key to every other device over 1:1 sessions; its latency is reported separately).
 *   - Bare: the same number of socket.io clients in one room of a tiny socket.io server (this file with
 *     --serve-relay, in its own child process); each message is as large as Curbside's ciphertext body.
 *   - Rounds: in each round both variants send `--messages` messages, one after the other (the next send
 *     starts when every other member got the previous one and the sender had its ack), in alternating
 *     order, so load from other processes hits both alike.
 *
 * Measured per message: time from the send call until every other member's client emitted `message`
 * (Curbside; also: until every client had the raw `envelope`, and until the sender's ack) or got the
 * broadcast (bare). Per window: server CPU from /proc/<pid>/stat (utime+stime) and, at ns resolution,
 * the sum of /proc/<pid>/task/<tid>/schedstat; bytes the server wrote and read (/proc/<pid>/io
 * wchar/rchar, minus what it logged to its stdout/stderr pipes); this process's CPU (the generator:
 * a window where it used ≥ 90% of one core is flagged `limitedByGenerator`).
 *
 * With `--backend real`, also counted per measured window (the same windows), divided by its messages:
 *   - Redis: `INFO stats commandstats` deltas (one INFO call per sample, its own call and socket read taken out):
 *     commands by name (commands a Lua script runs count as well, as Redis counts them) and round trips, as
 *     Redis's `total_reads_processed` (socket reads: a pipelined batch is one, as the hub's auto-pipelining sends it).
 *   - Database: `serverStatus` `metrics.commands` deltas by command name (FerretDB answers these; its own
 *     serverStatus calls taken out). Counts are server-wide: exact only if nothing else uses that Redis / database,
 *     so an idle window (clients connected, nothing sent) before the rounds is counted too and reported per second.
 *
 * Writes results/teams-<date>.json (or --out) and prints Markdown rows for docs/benchmarks.md.
 */
import { runBench, startServer, type ServerProcess } from './bench/server-process.js';
import { execSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomUUID, sign as rsaSign, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { CurbsideClient, isCurbsideError, type ChatMessage, type Envelope } from '@curbside/client-sdk';
import { withTimeout } from '@curbside/shared';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const thisFile = fileURLToPath(import.meta.url);

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string' },
    messages: { type: 'string' },
    rounds: { type: 'string' },
    senders: { type: 'string' },
    'text-bytes': { type: 'string' },
    backend: { type: 'string', default: 'memory' },
    'hub-log-level': { type: 'string', default: 'info' },
    'message-timeout-ms': { type: 'string', default: '30000' },
    'gap-ms': { type: 'string', default: '0' },
    'hub-cpu-prof': { type: 'string' },
    'private-redis': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'serve-relay': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

const USAGE = `Usage: tsx scripts/bench-teams.ts [options]
  --sizes 5,10,50,200      team sizes (members, one device each)
  --messages 40            measured messages per variant per round
  --rounds 3               rounds (each: bare and Curbside, alternating order)
  --senders N              members that send (round-robin; each warms up once) (default: every member)
  --text-bytes 1000        characters of text per message (the bare relay sends Curbside's body size)
  --backend memory|real    real: REDIS_URL (default: 127.0.0.1:6379 or a redis-server of its own) and MONGODB_URI
                           (default: a FerretDB of its own on PostgreSQL, in a fresh database;
                           CURBSIDE_FERRETDB_BACKEND=sqlite: on SQLite)
  --private-redis          real: run the hub on a redis-server of this run's own (free port), so the Redis counts
                           below are the hub's alone (a shared Redis counts everyone's commands)
  --hub-log-level info     LOG_LEVEL of the hub
  --message-timeout-ms 30000
  --gap-ms 0               pause between measured sends (0: back to back)
  --hub-cpu-prof DIR       run the hub with --cpu-prof, profiles in DIR
  --quick                  smoke run: sizes 3,5, 5 messages, 1 round
  --out FILE               JSON report path (default results/teams-<date>.json, teams-real-<date>.json)`;

// --------------------------------------------------------------------------------------------
// The bare relay (child process mode)
// --------------------------------------------------------------------------------------------

/** A socket.io server that puts every client in its room and broadcasts what one sends to the others. */
async function serveRelay(): Promise<void> {
  const io = new Server({ serveClient: false, maxHttpBufferSize: 1024 * 1024 });
  io.on('connection', (socket) => {
    socket.on('join', (room: string, ack: () => void) => {
      void socket.join(room);
      ack();
    });
    socket.on('msg', (room: string, payload: Uint8Array, ack: () => void) => {
      socket.to(room).emit('msg', payload);
      ack();
    });
  });
  const httpServer = (await import('node:http')).createServer();
  io.attach(httpServer);
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const addr = httpServer.address() as { port: number };
  process.stdout.write(`bare socket.io relay\n  Listening on http://127.0.0.1:${addr.port}\n`);
  process.on('SIGTERM', () => {
    void io.close();
    process.exit(0);
  });
}


// --------------------------------------------------------------------------------------------
// Child processes and /proc
// --------------------------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcSample {
  /** utime + stime from /proc/<pid>/stat, ms (resolution 1000/CLK_TCK). */
  statCpuMs: number;
  /** Sum over the process's threads of the first schedstat field (ns on CPU), ms; NaN if unavailable. */
  schedCpuMs: number;
  rssKb: number;
  rchar: number;
  wchar: number;
}

function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based) → indexes 11 and 12 here.
  const statCpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  let schedNs = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        schedNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between readdir and read
      }
    }
  } catch {
    schedNs = NaN;
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  let rchar = NaN;
  let wchar = NaN;
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    rchar = Number(/rchar: (\d+)/.exec(io)?.[1]);
    wchar = Number(/wchar: (\d+)/.exec(io)?.[1]);
  } catch {
    // /proc/<pid>/io needs ptrace access; leave bytes unknown
  }
  return { statCpuMs, schedCpuMs: schedNs / 1e6, rssKb, rchar, wchar };
}

// --------------------------------------------------------------------------------------------
// Statistics
// --------------------------------------------------------------------------------------------

interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles, ms with 0.01 ms precision. */
function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(at(50)), p99: r(at(99)), max: r(s[s.length - 1] ?? NaN), mean: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)) };
}

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

// --------------------------------------------------------------------------------------------
// Measurement windows
// --------------------------------------------------------------------------------------------

interface Sample {
  /** Until every other member had it (Curbside: `message` event, after decryption). */
  allMs: number;
  /** Curbside: until every other member's client had the raw `envelope` (before decryption). */
  allEnvelopesMs?: number;
  /** Until the first other member had it. */
  firstMs: number;
  /** Until the sender's ack (Curbside: the hub's durable ack). */
  ackMs: number;
}

interface WindowResult {
  messages: number;
  /** The send loop, without the settle afterwards. */
  wallMs: number;
  server: { statCpuMs: number; schedCpuMs: number; wireOutBytes: number; wireInBytes: number };
  generatorCpuMs: number;
  /** Curbside: envelopes pushed to the members' clients in the window (all kinds, and receipts among them). */
  pushed?: { envelopes: number; receipts: number };
  /** Curbside, real backend: Redis and database commands in the window (from the send loop's start to the settle after it). */
  services?: CountDelta;
}

// --------------------------------------------------------------------------------------------
// Redis and database command counts (real backend)
// --------------------------------------------------------------------------------------------

interface CountSample {
  at: number;
  redis: { reads: number; commands: Record<string, number> };
  db: { commands: Record<string, number> } | { error: string };
}

interface CountDelta {
  ms: number;
  redis: { roundTrips: number; commands: number; byCommand: Record<string, number> };
  db: { commands: number; byCommand: Record<string, number> } | { error: string };
}

interface ServiceCounters {
  sample(): Promise<CountSample>;
  close(): Promise<void>;
}

/** Counts the Redis at `redisUrl` and the MongoDB-wire database at `mongoUri` answer for, server-wide. */
async function serviceCounters(redisUrl: string, mongoUri: string): Promise<ServiceCounters> {
  const { Redis } = await import('ioredis');
  const { default: mongoose } = await import('mongoose');
  const redis = new Redis(redisUrl, { enableAutoPipelining: false });
  // Our own driver's heartbeats land in the database's counts: as rare as the driver allows.
  const conn = await mongoose.createConnection(mongoUri, { dbName: 'admin', heartbeatFrequencyMS: 600_000 }).asPromise();
  return {
    sample: async () => {
      // One command, one socket read (Redis ≥ 7 takes several sections).
      const info = (await redis.call('INFO', 'stats', 'commandstats')) as string;
      const reads = Number(/total_reads_processed:(\d+)/.exec(info)?.[1] ?? NaN);
      const commands: Record<string, number> = {};
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[m[1]!] = Number(m[2]);
      let db: CountSample['db'];
      try {
        const status = (await conn.db!.admin().command({ serverStatus: 1 })) as { metrics?: { commands?: Record<string, { total?: number }> } };
        const byName = status.metrics?.commands;
        db = byName
          ? { commands: Object.fromEntries(Object.entries(byName).map(([k, v]) => [k, Number(v.total ?? 0)])) }
          : { error: 'serverStatus has no metrics.commands' };
      } catch (e) {
        db = { error: `serverStatus failed: ${e instanceof Error ? e.message : String(e)}` };
      }
      return { at: performance.now(), redis: { reads, commands }, db };
    },
    close: async () => {
      redis.disconnect();
      await conn.close();
    },
  };
}

/** What happened between two samples, without the sampling itself (one INFO and one serverStatus per sample). */
function diffCounts(a: CountSample, b: CountSample): CountDelta {
  const diff = (x: Record<string, number>, y: Record<string, number>, own: string) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(y)) {
      if (k === own) continue; // ours: the first sample's call is counted after it answered
      const d = v - (x[k] ?? 0);
      if (d) out[k] = d;
    }
    return out;
  };
  const sum = (r: Record<string, number>) => Object.values(r).reduce((s, v) => s + v, 0);
  const redisBy = diff(a.redis.commands, b.redis.commands, 'info');
  const dbBy = 'error' in a.db ? undefined : 'error' in b.db ? undefined : diff(a.db.commands, b.db.commands, 'serverStatus');
  return {
    ms: b.at - a.at,
    // The second sample's own read is counted before it answers.
    redis: { roundTrips: b.redis.reads - a.redis.reads - 1, commands: sum(redisBy), byCommand: redisBy },
    db: dbBy ? { commands: sum(dbBy), byCommand: dbBy } : { error: 'error' in b.db ? b.db.error : (a.db as { error: string }).error },
  };
}

/** Add deltas up (the windows of one variant), then per message or per second. */
function addCounts(ds: CountDelta[]): CountDelta | undefined {
  if (!ds.length) return undefined;
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };
  const redisBy: Record<string, number> = {};
  const dbBy: Record<string, number> = {};
  let dbError: string | undefined;
  for (const d of ds) {
    add(redisBy, d.redis.byCommand);
    if ('error' in d.db) dbError = d.db.error;
    else add(dbBy, d.db.byCommand);
  }
  const sum = (r: Record<string, number>) => Object.values(r).reduce((s, v) => s + v, 0);
  return {
    ms: ds.reduce((s, d) => s + d.ms, 0),
    redis: { roundTrips: ds.reduce((s, d) => s + d.redis.roundTrips, 0), commands: sum(redisBy), byCommand: redisBy },
    db: dbError ? { error: dbError } : { commands: sum(dbBy), byCommand: dbBy },
  };
}

function scaleCounts(d: CountDelta, by: number) {
  const sc = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, round3(v / by)]));
  return {
    redis: { roundTrips: round3(d.redis.roundTrips / by), commands: round3(d.redis.commands / by), byCommand: sc(d.redis.byCommand) },
    db: 'error' in d.db ? d.db : { commands: round3(d.db.commands / by), byCommand: sc(d.db.byCommand) },
  };
}

/** One variant's team, ready to send. */
interface Team {
  size: number;
  send(senderIndex: number, tag: string): Promise<Sample>;
  server: ServerProcess;
  counters?: () => { envelopes: number; receipts: number };
  /** Curbside on the real backend: the Redis and database the hub uses, counted. */
  services?: ServiceCounters;
}

/**
 * Wait until nothing more arrives for the team (Curbside: delivered receipts are batched for 150 ms and
 * then fanned out), so a window's server CPU and bytes are those of its own messages and what they caused.
 */
async function settle(team: Team, quietMs = 400, maxMs = 15_000): Promise<void> {
  if (!team.counters) return;
  const deadline = performance.now() + maxMs;
  let last = team.counters().envelopes;
  let since = performance.now();
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = team.counters().envelopes;
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) return;
  }
}

async function measureWindow(
  team: Team,
  count: number,
  tagPrefix: string,
  senders: number,
  offset: number,
  gapMs: number,
): Promise<{ samples: Sample[]; window: WindowResult }> {
  const samples: Sample[] = [];
  await settle(team);
  const svcBefore = await team.services?.sample();
  const before = procSample(team.server.pid);
  const pipeBefore = team.server.pipeBytes();
  const countersBefore = team.counters?.();
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    if (gapMs > 0 && i > 0) await new Promise((r) => setTimeout(r, gapMs));
    samples.push(await team.send((offset + i) % senders, `${tagPrefix}-${i}`));
  }
  // The generator's share is over the sends; the server's cost also counts what the messages caused after.
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpuBefore);
  await settle(team);
  const after = procSample(team.server.pid);
  const logged = team.server.pipeBytes() - pipeBefore;
  const countersAfter = team.counters?.();
  const svcAfter = await team.services?.sample();
  return {
    samples,
    window: {
      messages: count,
      wallMs,
      server: {
        statCpuMs: after.statCpuMs - before.statCpuMs,
        schedCpuMs: after.schedCpuMs - before.schedCpuMs,
        wireOutBytes: after.wchar - before.wchar - logged,
        wireInBytes: after.rchar - before.rchar,
      },
      generatorCpuMs: (cpu.user + cpu.system) / 1000,
      ...(countersBefore && countersAfter
        ? { pushed: { envelopes: countersAfter.envelopes - countersBefore.envelopes, receipts: countersAfter.receipts - countersBefore.receipts } }
        : {}),
      ...(svcBefore && svcAfter ? { services: diffCounts(svcBefore, svcAfter) } : {}),
    },
  };
}


async function inBatches<T>(items: T[], size: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map((x, j) => fn(x, i + j)));
}

// --------------------------------------------------------------------------------------------
// Curbside
// --------------------------------------------------------------------------------------------

interface TokenSource {
  mint(userId: string, deviceId: string): Promise<string>;
  hubEnv: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

const ORG = 'bench-org';

function b64url(x: Buffer | string): string {
  return Buffer.from(x).toString('base64url');
}

/** Dev mode: the hub mints tokens at POST /dev/token. */
function devTokens(getUrl: () => string): TokenSource {
  return {
    hubEnv: {},
    mint: async (userId, deviceId) => {
      const res = await fetch(`${getUrl()}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId, deviceId, orgId: ORG, ttlSeconds: 3600 }),
      });
      if (!res.ok) throw new Error(`POST /dev/token: HTTP ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    cleanup: async () => {},
  };
}

/** Real backend: this script plays the identity provider (RS256), the hub gets its public key. */
function realTokens(runId: string, mongoUri: string, redisUrl: string): TokenSource {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey: KeyObject = createPrivateKey(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const issuer = 'https://idp.bench.example';
  const audience = 'curbside';
  const dbName = `bench_teams_${runId}`;
  const keyPrefix = `bench-teams-${runId}:`;
  return {
    hubEnv: {
      MONGODB_URI: mongoUri,
      REDIS_URL: redisUrl,
      MONGODB_DB: dbName,
      REDIS_KEY_PREFIX: keyPrefix,
      JWT_PUBLIC_KEY: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      JWT_ALGORITHM: 'RS256',
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: audience,
    },
    mint: async (userId, deviceId) => {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
      const payload = b64url(JSON.stringify({ sub: userId, org: ORG, dev: deviceId, iss: issuer, aud: audience, iat: now, exp: now + 3600, jti: randomUUID() }));
      const signature = rsaSign('RSA-SHA256', Buffer.from(`${header}.${payload}`), privateKey);
      return `${header}.${payload}.${b64url(signature)}`;
    },
    cleanup: async () => {
      // Drop what the run stored: its database and its Redis keys.
      const { default: mongoose } = await import('mongoose');
      const conn = await mongoose.createConnection(mongoUri, { dbName }).asPromise();
      await conn.dropDatabase().catch(() => {});
      await conn.close();
      const { Redis } = await import('ioredis');
      const redis = new Redis(redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

interface CurbsideTeam extends Team {
  clients: CurbsideClient[];
  bodyBytes: number;
  problems: string[];
  close(): Promise<void>;
}

async function curbsideTeam(size: number, server: ServerProcess, tokens: TokenSource, textBytes: number, timeoutMs: number): Promise<CurbsideTeam> {
  const users = Array.from({ length: size }, (_, i) => ({ userId: `m${i}-of-${size}`, deviceId: `m${i}-of-${size}-phone` }));
  const clients: CurbsideClient[] = [];
  const problems: string[] = [];
  const note = (p: string) => {
    if (problems.length < 20) problems.push(p);
  };
  let current: { tag: string; messages: number; envelopes: number; t0: number; tFirst: number; tEnv: number; done: () => void } | undefined;
  let bodyBytes = 0;
  let teamId = '';
  const pushed = { envelopes: 0, receipts: 0 };
  const closeAll = async () => {
    for (const c of clients) c.disconnect();
  };
  try {
    await inBatches(users, 20, async (u, index) => {
      const token = await tokens.mint(u.userId, u.deviceId);
      const client = new CurbsideClient({ url: server.url, token, transports: ['websocket'], requestTimeoutMs: timeoutMs, reconnectDelayMs: 200 });
      client.on('error', (e) => note(`${u.userId}: error ${e.code}: ${e.message}`));
      client.on('decryptionError', (e) => note(`${u.userId}: decryptionError ${e.message}`));
      client.on('disconnected', (d) => d.reason !== 'client' && note(`${u.userId}: disconnected (${d.reason})`));
      client.on('envelope', (e: Envelope) => {
        if (e.conversationId === teamId) {
          pushed.envelopes++;
          if (e.kind === 'receipt') pushed.receipts++;
        }
        if (!current || e.kind === 'receipt' || e.conversationId !== teamId || !e.body || e.membership) return;
        bodyBytes = e.body.byteLength;
        const now = performance.now();
        if (++current.envelopes === 1) current.tFirst = now;
        if (current.envelopes === size - 1) current.tEnv = now;
      });
      client.on('message', (m: ChatMessage) => {
        if (!current || m.conversationId !== teamId || !m.text.startsWith(current.tag)) return;
        if (++current.messages === size - 1) current.done();
      });
      clients[index] = client;
      await client.connect();
    });
    const owner = clients[0]!;
    ({ teamId } = await owner.teams.create(`bench team of ${size}`, users.slice(1).map((u) => ({ userId: u.userId }))));
    const deadline = Date.now() + timeoutMs;
    for (const c of clients) {
      while ((await c.teams.state(teamId)) === undefined) {
        if (Date.now() > deadline) throw new Error(`members did not verify the team within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  const pad = (tag: string) => tag + '|' + 'x'.repeat(Math.max(0, textBytes - tag.length - 1));
  return {
    size,
    server,
    clients,
    problems,
    get bodyBytes() {
      return bodyBytes;
    },
    close: closeAll,
    counters: () => ({ ...pushed }),
    send: async (senderIndex, tag) => {
      const sample: Partial<Sample> = {};
      const delivered = new Promise<void>((done) => {
        current = { tag: `${tag}|`, messages: 0, envelopes: 0, t0: performance.now(), tFirst: NaN, tEnv: NaN, done };
      });
      const c = current!;
      const acked = clients[senderIndex]!.sendText(teamId, pad(tag)).then(() => {
        sample.ackMs = performance.now() - c.t0;
      });
      const all = delivered.then(() => {
        sample.allMs = performance.now() - c.t0;
      });
      try {
        await withTimeout(Promise.all([acked, all]), timeoutMs, () => new Error(`timed out after ${timeoutMs} ms: message ${tag}: ${c.messages}/${size - 1} members decrypted it, ${c.envelopes} had the envelope`));
      } finally {
        current = undefined;
      }
      return { allMs: sample.allMs!, ackMs: sample.ackMs!, allEnvelopesMs: c.tEnv - c.t0, firstMs: c.tFirst - c.t0 };
    },
  };
}

// --------------------------------------------------------------------------------------------
// Bare socket.io relay
// --------------------------------------------------------------------------------------------

async function bareTeam(size: number, server: ServerProcess, payloadBytes: () => number, timeoutMs: number): Promise<Team & { close(): void }> {
  const room = `team-${size}`;
  const sockets: ClientSocket[] = [];
  let current: { id: number; got: number; t0: number; tFirst: number; done: () => void } | undefined;
  let nextId = 1;
  await inBatches(
    Array.from({ length: size }, (_, i) => i),
    50,
    async () => {
      const s = ioClient(server.url, { transports: ['websocket'], forceNew: true, reconnection: false });
      sockets.push(s);
      s.on('msg', (p: Uint8Array) => {
        if (!current || p.byteLength < 4 || new DataView(p.buffer, p.byteOffset, 4).getUint32(0) !== current.id) return;
        if (++current.got === 1) current.tFirst = performance.now();
        if (current.got === size - 1) current.done();
      });
      await new Promise<void>((ok, fail) => {
        s.once('connect', ok);
        s.once('connect_error', fail);
      });
      await s.timeout(timeoutMs).emitWithAck('join', room);
    },
  );
  return {
    size,
    server,
    close: () => sockets.forEach((s) => s.disconnect()),
    send: async (senderIndex, tag) => {
      const payload = new Uint8Array(Math.max(4, payloadBytes()));
      globalThis.crypto.getRandomValues(payload.subarray(4, Math.min(payload.length, 65_536)));
      const id = nextId++;
      new DataView(payload.buffer).setUint32(0, id);
      const sample: Partial<Sample> = {};
      const delivered = new Promise<void>((done) => {
        current = { id, got: 0, t0: performance.now(), tFirst: NaN, done };
      });
      const c = current!;
      const acked = sockets[senderIndex]!
        .timeout(timeoutMs)
        .emitWithAck('msg', room, payload)
        .then(() => {
          sample.ackMs = performance.now() - c.t0;
        });
      const all = delivered.then(() => {
        sample.allMs = performance.now() - c.t0;
      });
      try {
        await withTimeout(Promise.all([acked, all]), timeoutMs, () => new Error(`timed out after ${timeoutMs} ms: bare message ${tag}: ${c.got}/${size - 1} received`));
      } finally {
        current = undefined;
      }
      return { allMs: sample.allMs!, ackMs: sample.ackMs!, firstMs: c.tFirst - c.t0 };
    },
  };
}

// --------------------------------------------------------------------------------------------
// The run
// --------------------------------------------------------------------------------------------

/** "CODE: message {details}" → "CODE (path: first issue)" for a table cell. */
function shortError(error: string | undefined): string {
  if (!error) return 'unknown error';
  const code = /^([A-Z_]+):/.exec(error)?.[1];
  const issue = /"path":"([^"]*)","message":"([^"]*)"/.exec(error);
  return code ? `${code}${issue ? ` (${issue[1]}: ${issue[2]})` : ''}` : error.slice(0, 80);
}

function describe(e: unknown): string {
  if (isCurbsideError(e)) return `${e.code}: ${e.message}${e.details ? ` ${JSON.stringify(e.details)}` : ''}`;
  return e instanceof Error ? e.message : String(e);
}

function sh(cmd: string): string {
  try {
    return execSync(cmd, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function positiveInt(name: string, raw: string | undefined, def: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1 (got "${raw}")`);
  return n;
}

/** Newest mtime under dir (files ending in .ts), to warn when dist is older than the sources. */
function newestTs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

type CurbsideResult = VariantResult & {
  firstMessage?: unknown;
  warmup?: Summary;
  problems?: string[];
  setupMs?: number;
  /** Real backend: Redis and database commands per measured message (see method.counts). */
  countsPerMessage?: { windowMs: number } & ReturnType<typeof scaleCounts>;
  /** Real backend: the same with the team connected and idle, per second. */
  idleCountsPerSecond?: { windowMs: number } & ReturnType<typeof scaleCounts>;
};

interface VariantResult {
  ok: boolean;
  error?: string;
  latencyMs?: { all: Summary; allEnvelopes?: Summary; first: Summary; ack: Summary };
  rounds?: Array<{ p50AllMs: number; p99AllMs: number; window: WindowResult; generatorCpuShare: number }>;
  perMessage?: {
    /** Server CPU per message from /proc/<pid>/stat utime+stime, ms (pooled over rounds). */
    serverCpuMsStat: number | null;
    /** The same from the threads' schedstat (ns resolution), ms. */
    serverCpuMsSched: number | null;
    wireOutBytes: number | null;
    wireInBytes: number | null;
    /** Curbside: envelopes the hub pushed to members' clients per message, all kinds / delivered receipts among them. */
    envelopesPushed?: number | null;
    receiptsPushed?: number | null;
  };
  server?: { rssMbAfterSetup: number; rssMbEnd: number };
  generator?: { cpuShareMax: number; limitedByGenerator: boolean };
}

async function main(): Promise<void> {
  const quick = flags.quick;
  const sizes = (flags.sizes ?? (quick ? '3,5' : '5,10,50,200')).split(',').map((s) => positiveInt('sizes', s.trim(), 0));
  if (sizes.some((s) => s < 2)) throw new Error('--sizes: a team needs at least 2 members');
  const messages = positiveInt('messages', flags.messages, quick ? 5 : 40);
  const rounds = positiveInt('rounds', flags.rounds, quick ? 1 : 3);
  const textBytes = positiveInt('text-bytes', flags['text-bytes'], 1000);
  const timeoutMs = positiveInt('message-timeout-ms', flags['message-timeout-ms'], 30_000);
  const gapMs = Number(flags['gap-ms']);
  if (!Number.isFinite(gapMs) || gapMs < 0) throw new Error(`--gap-ms must be a number ≥ 0 (got "${flags['gap-ms']}")`);
  const sendersFlag = flags.senders === undefined ? undefined : positiveInt('senders', flags.senders, 1);
  const backend = flags.backend;
  if (backend !== 'memory' && backend !== 'real') throw new Error(`--backend must be memory or real (got "${backend}")`);

  const mainJs = join(root, 'server', 'dist', 'main.js');
  if (!existsSync(mainJs) || !existsSync(join(root, 'client-sdk', 'dist', 'index.js'))) {
    throw new Error('server/dist or client-sdk/dist is missing: run `npm run build` first (npm run bench:teams does)');
  }
  const staleWarnings: string[] = [];
  for (const pkg of ['shared', 'server', 'client-sdk']) {
    // tsc -b rewrites the build info on every build that changed anything (it may leave unchanged .js files alone).
    const info = join(root, pkg, 'tsconfig.tsbuildinfo');
    if (existsSync(info) && newestTs(join(root, pkg, 'src')) > statSync(info).mtimeMs + 1000) staleWarnings.push(`${pkg}/src changed after the last build`);
  }
  for (const w of staleWarnings) console.warn(`warning: ${w} — run npm run build`);

  const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  const startedAt = new Date();
  const load0 = loadavg();
  const hubEnvBase: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: flags['hub-log-level'],
    NODE_ID: `bench-${runId}`,
    // The limiters stay on (their cost counts) but must not refuse a benchmark: every client has one IP,
    // and a sender's warm-up claims keys of every other member.
    RATE_LIMIT_HANDSHAKE: '1000000/60',
    RATE_LIMIT_ENVELOPE_SEND: '1000000/10',
    RATE_LIMIT_KEYS_CLAIM: '1000000/60',
  };
  const hubArgs = [...(flags['hub-cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(flags['hub-cpu-prof'])}`] : []), mainJs];
  let hubUrl = '';
  // The real backend's services: REDIS_URL / MONGODB_URI, or found or started as npm test does (test/support/services.ts).
  let svc: { redisUrl: string; mongoUri: string; started: string[]; stop(): Promise<void> } | undefined;
  if (backend === 'real') {
    const s = await import('../test/support/services.js');
    const redis = flags['private-redis'] ? await s.startRedisServer() : await s.ensureRedis();
    const mongo = await s.ensureDevMongo();
    svc = {
      redisUrl: redis.url,
      mongoUri: mongo.url,
      started: [...(redis.owned ? [`redis-server ${redis.url}`] : []), ...(mongo.owned ? [`${mongo.label} ${mongo.url}`] : [])],
      stop: async () => {
        await Promise.all([redis.stop(), mongo.stop()]);
      },
    };
    console.log(`real backend: Redis ${svc.redisUrl}, database ${svc.mongoUri.replace(/\/\/[^@/]*@/, '//…@')}${svc.started.length ? ` (started: ${svc.started.join(', ')})` : ''}`);
  }
  const tokens = backend === 'memory' ? devTokens(() => hubUrl) : realTokens(runId, svc!.mongoUri, svc!.redisUrl);
  const counters = svc ? await serviceCounters(svc.redisUrl, svc.mongoUri) : undefined;

  let lastBodyBytes: number | undefined;
  const results: Array<{ size: number; senders: number; loadavg1AtStart: number; bodyBytes: number | null; bareMessageBytes: number; curbside: CurbsideResult; bare: VariantResult; ratios: Record<string, number | null> }> = [];

  for (const size of sizes) {
    const senders = Math.min(size, sendersFlag ?? size);
    const loadAtStart = loadavg()[0]!;
    console.log(`\n== team of ${size} (${senders} senders, ${rounds} round(s) × ${messages} messages per variant)`);
    const [hub, relay] = await Promise.all([
      startServer('hub', hubArgs, { cwd: root, env: { ...hubEnvBase, ...tokens.hubEnv }, timeoutMs: 30_000, stopGraceMs: 5_000 }),
      startServer('relay', [...process.execArgv, thisFile, '--serve-relay'], { cwd: root, env: { ...process.env }, timeoutMs: 30_000, stopGraceMs: 5_000 }),
    ]);
    hubUrl = hub.url;
    const curbside: CurbsideResult = { ok: false };
    const bare: VariantResult = { ok: false };
    let cTeam: CurbsideTeam | undefined;
    let bTeam: (Team & { close(): void }) | undefined;
    try {
      const tSetup = performance.now();
      try {
        cTeam = await curbsideTeam(size, hub, tokens, textBytes, timeoutMs);
        curbside.setupMs = Math.round(performance.now() - tSetup);
        console.log(`   curbside: ${size} clients connected and verified the team in ${curbside.setupMs} ms; warm-up…`);
        // Warm-up: every sender sends once. Each such first message carries the sender's key to every other device.
        const warm: Sample[] = [];
        for (let i = 0; i < senders; i++) warm.push(await cTeam.send(i, `warm-${size}-${i}`));
        const first = warm[0]!;
        curbside.firstMessage = { allMs: round3(first.allMs), allEnvelopesMs: round3(first.allEnvelopesMs ?? NaN), ackMs: round3(first.ackMs) };
        curbside.warmup = summarize(warm.map((s) => s.allMs));
        console.log(`   first message ${first.allMs.toFixed(1)} ms; warm-up (${senders} first messages) p50 ${curbside.warmup.p50} ms`);
      } catch (e) {
        curbside.error = describe(e);
        console.log(`   curbside FAILED: ${curbside.error}`);
        if (cTeam?.problems.length) console.log(`   client problems: ${cTeam.problems.join('; ')}`);
      }
      // The bare relay sends what Curbside's body weighed (the same text gives the same size in every team);
      // before any Curbside body was seen, the sender-key body of this text length: text + 126 bytes.
      const payloadBytes = () => {
        if (cTeam?.bodyBytes) lastBodyBytes = cTeam.bodyBytes;
        return lastBodyBytes ?? textBytes + 126;
      };
      bTeam = await bareTeam(size, relay, payloadBytes, timeoutMs);
      // Bare warm-up: as many messages as Curbside's, so both start measured rounds equally warm.
      for (let i = 0; i < senders; i++) await bTeam.send(i, `warm-${i}`);
      if (cTeam && counters && !curbside.error) {
        // What the hub does to Redis and the database with the team connected and nothing sent (presence
        // heartbeats, revocation re-checks, driver heartbeats; anyone else on a shared Redis): per second.
        cTeam.services = counters;
        await settle(cTeam);
        const a = await counters.sample();
        await new Promise((r) => setTimeout(r, 3000));
        const idle = diffCounts(a, await counters.sample());
        curbside.idleCountsPerSecond = { windowMs: Math.round(idle.ms), ...scaleCounts(idle, idle.ms / 1000) };
        console.log(`   idle (3 s, nothing sent): Redis ${curbside.idleCountsPerSecond.redis.commands} commands/s, database ${'error' in curbside.idleCountsPerSecond.db ? curbside.idleCountsPerSecond.db.error : `${curbside.idleCountsPerSecond.db.commands} commands/s`}`);
      }

      const rssAfterSetup = { hub: procSample(hub.pid).rssKb, relay: procSample(relay.pid).rssKb };
      const collected = { curbside: [] as Sample[], bare: [] as Sample[] };
      const windows = { curbside: [] as Array<{ samples: Sample[]; window: WindowResult }>, bare: [] as Array<{ samples: Sample[]; window: WindowResult }> };
      for (let r = 0; r < rounds; r++) {
        const order: Array<'bare' | 'curbside'> = r % 2 === 0 ? ['bare', 'curbside'] : ['curbside', 'bare'];
        for (const variant of order) {
          const team = variant === 'bare' ? bTeam : cTeam;
          if (!team || (variant === 'curbside' && curbside.error)) continue;
          try {
            const w = await measureWindow(team, messages, `${variant}-${size}-r${r}`, senders, r * messages, gapMs);
            windows[variant].push(w);
            collected[variant].push(...w.samples);
          } catch (e) {
            (variant === 'bare' ? bare : curbside).error = describe(e);
            console.log(`   ${variant} FAILED in round ${r}: ${describe(e)}`);
          }
        }
        const last = (v: 'bare' | 'curbside') => windows[v][windows[v].length - 1];
        const fmt = (v: 'bare' | 'curbside') => {
          const w = last(v);
          if (!w || windows[v].length !== r + 1) return `${v} –`;
          const s = summarize(w.samples.map((x) => x.allMs));
          return `${v} p50 ${s.p50} ms p99 ${s.p99} ms, server ${(w.window.server.schedCpuMs / messages).toFixed(2)} ms CPU/msg, generator ${Math.round((w.window.generatorCpuMs / w.window.wallMs) * 100)}%`;
        };
        console.log(`   round ${r + 1}: ${fmt('bare')} | ${fmt('curbside')}`);
        const counted = windows.curbside.length === r + 1 ? last('curbside')?.window.services : undefined;
        if (counted) {
          const by = (m: Record<string, number>) => Object.entries(m).sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${(n / messages).toFixed(2)}`).join(', ');
          console.log(
            `     per message: Redis ${(counted.redis.commands / messages).toFixed(2)} commands (${by(counted.redis.byCommand)}), ${(counted.redis.roundTrips / messages).toFixed(2)} round trips; ` +
              `database ${'error' in counted.db ? counted.db.error : `${(counted.db.commands / messages).toFixed(2)} commands (${by(counted.db.byCommand)})`}`,
          );
        }
      }
      const rssEnd = { hub: procSample(hub.pid).rssKb, relay: procSample(relay.pid).rssKb };

      const finish = (v: 'bare' | 'curbside', out: VariantResult, rss: { after: number; end: number }) => {
        const ws = windows[v];
        if (!ws.length) return;
        out.ok = !out.error;
        const samples = collected[v];
        out.latencyMs = {
          all: summarize(samples.map((s) => s.allMs)),
          ...(v === 'curbside' ? { allEnvelopes: summarize(samples.map((s) => s.allEnvelopesMs ?? NaN)) } : {}),
          first: summarize(samples.map((s) => s.firstMs)),
          ack: summarize(samples.map((s) => s.ackMs)),
        };
        const total = (f: (w: WindowResult) => number) => ws.reduce((a, w) => a + f(w.window), 0);
        const count = total((w) => w.messages);
        out.perMessage = {
          serverCpuMsStat: round3(total((w) => w.server.statCpuMs) / count),
          serverCpuMsSched: round3(total((w) => w.server.schedCpuMs) / count),
          wireOutBytes: round3(total((w) => w.server.wireOutBytes) / count),
          wireInBytes: round3(total((w) => w.server.wireInBytes) / count),
          ...(v === 'curbside'
            ? { envelopesPushed: round3(total((w) => w.pushed?.envelopes ?? 0) / count), receiptsPushed: round3(total((w) => w.pushed?.receipts ?? 0) / count) }
            : {}),
        };
        const counted = addCounts(ws.flatMap((w) => (w.window.services ? [w.window.services] : [])));
        if (v === 'curbside' && counted) {
          curbside.countsPerMessage = { windowMs: Math.round(counted.ms), ...scaleCounts(counted, count) };
        }
        out.rounds = ws.map((w) => {
          const s = summarize(w.samples.map((x) => x.allMs));
          return { p50AllMs: s.p50, p99AllMs: s.p99, window: w.window, generatorCpuShare: round3(w.window.generatorCpuMs / w.window.wallMs) ?? NaN };
        });
        const shareMax = Math.max(...out.rounds.map((r) => r.generatorCpuShare));
        out.server = { rssMbAfterSetup: Math.round(rss.after / 102.4) / 10, rssMbEnd: Math.round(rss.end / 102.4) / 10 };
        out.generator = { cpuShareMax: shareMax, limitedByGenerator: shareMax >= 0.9 };
      };
      finish('curbside', curbside, { after: rssAfterSetup.hub, end: rssEnd.hub });
      finish('bare', bare, { after: rssAfterSetup.relay, end: rssEnd.relay });
      if (cTeam?.problems.length) curbside.problems = cTeam.problems;
    } finally {
      await cTeam?.close();
      bTeam?.close();
      await Promise.all([hub.stop(), relay.stop()]);
    }

    // Ratios Curbside ÷ bare: pooled, and the median of the per-round ratios (robust against noise).
    const perRound = (f: (w: WindowResult, samples: Summary) => number) => {
      const c = curbside.rounds ?? [];
      const b = bare.rounds ?? [];
      const n = Math.min(c.length, b.length);
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        const bv = f(b[i]!.window, { p50: b[i]!.p50AllMs } as Summary);
        if (bv > 0) xs.push(f(c[i]!.window, { p50: c[i]!.p50AllMs } as Summary) / bv);
      }
      return round3(median(xs));
    };
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? round3(a / b) : null);
    const ratios = {
      p50: ratio(curbside.latencyMs?.all.p50, bare.latencyMs?.all.p50),
      p99: ratio(curbside.latencyMs?.all.p99, bare.latencyMs?.all.p99),
      p50MedianOfRounds: perRound((_w, s) => s.p50),
      serverCpuPerMessage: ratio(curbside.perMessage?.serverCpuMsSched, bare.perMessage?.serverCpuMsSched),
      serverCpuPerMessageMedianOfRounds: perRound((w) => w.server.schedCpuMs / w.messages),
      wireOutPerMessage: ratio(curbside.perMessage?.wireOutBytes, bare.perMessage?.wireOutBytes),
    };
    results.push({
      size,
      senders,
      loadavg1AtStart: Math.round(loadAtStart * 100) / 100,
      bodyBytes: cTeam?.bodyBytes || null,
      bareMessageBytes: lastBodyBytes ?? textBytes + 126,
      curbside,
      bare,
      ratios,
    });
    console.log(`   ratios Curbside/bare: p50 ${ratios.p50}×, p99 ${ratios.p99}×, hub CPU per message ${ratios.serverCpuPerMessage}×`);
  }

  await counters?.close();
  await tokens.cleanup();
  await svc?.stop();

  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux: keep os.cpus()
  }
  const date = startedAt.toISOString().slice(0, 10);
  const dirty = sh('git status --porcelain -- shared server client-sdk');
  const report = {
    benchmark: 'teams',
    date,
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    machine: { nproc: Number(sh('nproc')) || cpus().length, cpuModel, loadavgStart: load0.map((x) => Math.round(x * 100) / 100), loadavgEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
    node: process.version,
    commit: sh('git rev-parse --short HEAD'),
    /** Uncommitted changes under shared/, server/, client-sdk/ when the run started (they were measured too). */
    uncommitted: dirty === 'unknown' ? 'unknown' : dirty.split('\n').filter(Boolean),
    staleBuildWarnings: staleWarnings,
    backend,
    method: {
      quick,
      sizes,
      messagesPerRound: messages,
      rounds,
      textBytes,
      sequential: true,
      gapMs,
      warmup: 'every sender sends once (its first message carries its sender key to every other device); not in the measured rounds',
      latency: 'send call → every other member: Curbside `message` event (decrypted) / bare `msg` received',
      serverCpu: 'server process, /proc/<pid>/stat utime+stime and Σ /proc/<pid>/task/*/schedstat over each measured window',
      wireBytes:
        '/proc/<pid>/io wchar/rchar deltas (socket writes/reads incl. WebSocket framing, minus stdout/stderr); no TCP/IP headers; with --backend real also the hub’s traffic to Redis and the database',
      generatorLimitedAt: 'bench process CPU ≥ 90% of one core in a measured window',
      ...(svc
        ? {
            services: { redis: svc.redisUrl, database: svc.mongoUri.replace(/\/\/[^@/]*@/, '//…@'), startedByThisRun: svc.started },
            counts:
              'curbside.countsPerMessage: summed over the measured windows (send loop start → settle after it) ÷ messages. Redis: INFO stats commandstats deltas, ' +
              'commands by name (incl. those a Lua script runs) and round trips = total_reads_processed (socket reads; a pipelined batch is one); ' +
              'database: serverStatus metrics.commands deltas by name. The sampling’s own INFO / serverStatus taken out. Server-wide counts: ' +
              'curbside.idleCountsPerSecond is a 3 s window with the team connected and nothing sent (background, incl. other users of a shared server).',
          }
        : {}),
      hubEnv: { LOG_LEVEL: hubEnvBase.LOG_LEVEL, RATE_LIMIT_HANDSHAKE: hubEnvBase.RATE_LIMIT_HANDSHAKE, RATE_LIMIT_ENVELOPE_SEND: hubEnvBase.RATE_LIMIT_ENVELOPE_SEND, RATE_LIMIT_KEYS_CLAIM: hubEnvBase.RATE_LIMIT_KEYS_CLAIM },
      clkTck: CLK_TCK,
    },
    sizes: results,
  };

  const file = flags.out ? resolve(flags.out) : join(root, 'results', `teams-${backend === 'real' ? 'real-' : ''}${date}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${file} (${report.durationS} s)\n`);

  const f = (x: number | null | undefined, d = 1) => (x == null || !Number.isFinite(x) ? '–' : x.toFixed(d));
  console.log('| date | machine | node | commit | backend | team | p50 / p99 ms (bare) | first message ms | hub CPU ms/msg (relay) | Curbside/bare p50 | Curbside/bare CPU | generator CPU | Redis cmds / round trips per msg | DB cmds per msg |');
  console.log('| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    const c = r.curbside;
    const b = r.bare;
    const first = c.firstMessage as { allMs: number | null } | undefined;
    const gen = c.generator ? `${Math.round(c.generator.cpuShareMax * 100)}%${c.generator.limitedByGenerator ? ' (limited)' : ''}` : '–';
    const bareLat = `(${f(b.latencyMs?.all.p50)} / ${f(b.latencyMs?.all.p99)})`;
    const lat = c.latencyMs ? `${f(c.latencyMs.all.p50)} / ${f(c.latencyMs.all.p99)} ${bareLat}` : `Curbside failed: ${shortError(c.error)} ${bareLat}`;
    console.log(
      `| ${date} | ${report.machine.nproc} × ${cpuModel} | ${process.version} | ${report.commit}${report.uncommitted.length ? '+' : ''} | ${backend} | ${r.size} | ${lat} | ${f(first?.allMs)} | ` +
        `${f(c.perMessage?.serverCpuMsSched, 2)} (${f(b.perMessage?.serverCpuMsSched, 2)}) | ${f(r.ratios.p50, 2)}× | ${f(r.ratios.serverCpuPerMessage, 1)}× | ${gen} | ` +
        `${c.countsPerMessage ? `${f(c.countsPerMessage.redis.commands, 2)} / ${f(c.countsPerMessage.redis.roundTrips, 2)}` : '–'} | ` +
        `${c.countsPerMessage && !('error' in c.countsPerMessage.db) ? f(c.countsPerMessage.db.commands, 2) : '–'} |`,
    );
  }
  process.exit(0);
}

// Dispatch last: every module-level constant above is initialised by now.
if (flags['serve-relay']) {
  await serveRelay();
} else if (flags.help) {
  console.log(USAGE);
} else {
  runBench(main);
}
