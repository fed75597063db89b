/**
 * Long file: one benchmark program (variants, load, measurement), read top to bottom; the results' shape, the
 * comparisons between variants and the writing of the report and its Markdown block are in report.ts;
 * adding up and judging one step, and its console lines, in step-result.ts; the generator processes in
 * generators.ts (the load itself in worker.ts); the idle test in idle-test.ts; the command line, presets
 * and limits in options.ts.
 *
 * Hub throughput benchmark (docs/benchmarks.md, "Hub throughput"): the full pipeline against bare
 * relays, same run, same machine, same load generator.
 *
 *   npm run bench                       build, then crypto, care-team and this benchmark
 *   npx tsx scripts/bench/run.ts        this benchmark only (`npm run build` first)
 *   npx tsx scripts/bench/run.ts --quick            a few minutes: fewer clients, short steps
 *   npx tsx scripts/bench/run.ts --smoke --out F    seconds, tiny load: checks the harness (npm test)
 *   npx tsx scripts/bench/run.ts --help             every knob
 *
 * Variants (each in its own process(es), one after the other):
 *   A ws         bare `ws` relay (the ceiling)
 *   B socketio   bare socket.io relay with Curbside's MessagePack parser (no auth/validation/storage)
 *   C memory     Curbside hub, memory adapters (server/dist/main.js, ES256 tokens this script signs)
 *   D real       Curbside hub on Redis + the Mongo-wire DB (FerretDB on PostgreSQL unless MONGODB_URI or
 *                CURBSIDE_FERRETDB_BACKEND=sqlite): durable write before the ack
 *   S storage    the storage ceiling: the same envelope documents inserted into the same database by the
 *                plain mongodb driver at the hub's batch size and concurrency (storage-ceiling.ts)
 *   E two-nodes  two Curbside hubs behind the socket.io Redis adapter, clients alternate between them
 *
 * Per variant: an idle test (N authenticated idle clients: connect rate, connect p99 including auth,
 * RSS per connection after a full GC), then the load: W generator processes (worker.ts) connect the
 * clients (rooms of 10 and 1:1 pairs inside them), Curbside devices publish signed keys and create
 * their conversations, and the inbound rate steps up (open loop). Curbside receivers ack what they
 * processed as the SDK does (one `sync:ack` per device per 500 ms at most). Per step: delivery latency
 * p50/p99/p99.9 (HDR), time to ack (Curbside: the durable ack), loss, duplicates, hub CPU, event-loop
 * delay p99 (perf_hooks in the server, see eld-preload.mjs), generator CPU. A step is invalid when the
 * generators sent < 95% of the target; stepping stops at the first step that is invalid or fails
 * (p99 > --p99-limit-ms or loss > --loss-limit). The headline is the highest passing rate. Then a
 * closed-loop step: --senders concurrent senders, each sending its next message when the last is acked
 * (the throughput at that concurrency, and what D / min(B, S) compares). For D and E every step also
 * counts Redis commands and round trips and database commands and reads per message (counts.ts).
 *
 * Rate limits: the hub keeps its limiters on (their cost counts) with RATE_LIMIT_ENVELOPE_SEND,
 * RATE_LIMIT_HANDSHAKE and RATE_LIMIT_KEYS_CLAIM raised so that they never refuse the benchmark.
 */
import { procCpuMs, procRssKb, runBench, startServer, type ServerProcess } from './server-process.js';
import { startStackCpu } from './stack-cpu.js';
import { execSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { counters } from './counts.js';
import { storageCeiling } from './storage-ceiling.js';
import { comparisons, machine, publish, r2, summary, type StepResult, type VariantResult } from './report.js';
import { closedLoopLines, countsLines, cpuAtTop, headline, merge, stepLine, stepResult } from './step-result.js';
import { startWorker, type Worker } from './generators.js';
import { idleTest } from './idle-test.js';
import { clientsN, connectConcurrency, dbConnectConcurrency, drainMs, flags, idleN, idleOnly, logLevel, lossLimit, p99LimitMs, quick, rates, retries, sBatchFlag, seed, sendersN, shape, smoke, stepMs, variantIds, warmupMs, workersN } from './options.js';
import { VARIANTS, type ConnectReport, type StepReport, type VariantId, type WorkerToRunner } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

/** The hubs' /metrics (database command counts) are read with this. */
const METRICS_TOKEN = `bench-${randomUUID()}`;

const mainJs = join(root, 'server', 'dist', 'main.js');
const preloadUrl = pathToFileURL(join(here, 'eld-preload.mjs')).href;
const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;

// --------------------------------------------------------------------------------------------
// Child processes
// --------------------------------------------------------------------------------------------

/** Services (FerretDB, redis-server) this run started: stopped on exit and on a signal too. */
let stopServices: (() => Promise<void>) | undefined;



// --------------------------------------------------------------------------------------------
// Services and variants
// --------------------------------------------------------------------------------------------

const jwtPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwtConf = { issuer: 'https://idp.bench.example', audience: 'curbside', orgId: 'bench-org' };

interface Services {
  redisUrl: string;
  mongoUri: string;
  /** FerretDB's process when this run started it: its CPU is reported per step. */
  dbPid: number | undefined;
  /** The run's own redis-server, and FerretDB's PostgreSQL database: their CPU is in each step's stack. */
  redisPid: number | undefined;
  postgresDatabase: string | undefined;
  /** Which database D and E ran on (`--mongodb-uri`, `MONGODB_URI`, FerretDB on PostgreSQL or SQLite). */
  database: string;
  stop(): Promise<void>;
}

async function services(): Promise<Services> {
  const redisFlag = flags['redis-url'];
  const mongoFlag = flags['mongodb-uri'];
  // test/support/services.ts finds or starts Redis (as npm test does) and FerretDB, on PostgreSQL unless
  // CURBSIDE_FERRETDB_BACKEND=sqlite.
  const svc = await import('../../test/support/services.js');
  // A Redis of the run's own unless one is named: INFO counts are server-wide.
  const redis = redisFlag ? undefined : process.env.REDIS_URL ? await svc.ensureRedis() : await svc.startRedisServer();
  const mongo = mongoFlag ? undefined : await svc.ensureDevMongo();
  if (mongo) console.log(`database for D and E: ${mongo.label} ${mongo.url}`);
  return {
    redisUrl: redisFlag ?? redis!.url,
    mongoUri: mongoFlag ?? mongo!.url,
    dbPid: (mongo as { child?: ChildProcess } | undefined)?.child?.pid,
    redisPid: (redis as { child?: ChildProcess } | undefined)?.child?.pid,
    postgresDatabase: (mongo as { database?: string } | undefined)?.database,
    database: mongo ? mongo.label.replace(/ \(database .*\)$/, '') : '--mongodb-uri',
    stop: async () => {
      await Promise.all([redis?.stop(), mongo?.stop()]);
    },
  };
}

interface Running {
  servers: ServerProcess[];
  cleanup(): Promise<void>;
}

/** `purpose` keeps the idle test's servers and database apart from the load's. */
async function startVariant(id: VariantId, svc: Services | undefined, purpose: 'idle' | 'load' = 'load'): Promise<Running> {
  // A profile is written when the process exits: give a loaded hub time to close and write it.
  const prof = flags['hub-cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${join(resolve(flags['hub-cpu-prof']), id)}`] : [];
  const nodeArgs = ['--expose-gc', '--import', preloadUrl];
  if (id === 'ws' || id === 'socketio') {
    const s = await startServer(id, [...nodeArgs, '--import', 'tsx', ...prof, join(here, 'relays.ts'), id], { cwd: root, env: { ...process.env }, ipc: true });
    return { servers: [s], cleanup: async () => {} };
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: logLevel,
    RATE_LIMIT_HANDSHAKE: '100000000/60',
    RATE_LIMIT_ENVELOPE_SEND: '100000000/10',
    RATE_LIMIT_KEYS_CLAIM: '100000000/60',
    JWT_PUBLIC_KEY: jwtPair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    JWT_ALGORITHM: 'ES256',
    JWT_ISSUER: jwtConf.issuer,
    JWT_AUDIENCE: jwtConf.audience,
    METRICS_TOKEN,
  };
  let cleanup = async () => {};
  if (id !== 'memory') {
    if (!svc) throw new Error('services missing');
    const dbName = `bench_${runId}_${id.replace('-', '_')}_${purpose}`;
    const keyPrefix = `bench-${runId}-${id}-${purpose}:`;
    Object.assign(env, { MONGODB_URI: svc.mongoUri, REDIS_URL: svc.redisUrl, MONGODB_DB: dbName, REDIS_KEY_PREFIX: keyPrefix });
    cleanup = async () => {
      const { default: mongoose } = await import('mongoose');
      const conn = await mongoose.createConnection(svc.mongoUri, { dbName }).asPromise();
      await conn.dropDatabase().catch(() => {});
      await conn.close();
      const { Redis } = await import('ioredis');
      const redis = new Redis(svc.redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    };
  }
  const nodes = id === 'two-nodes' ? 2 : 1;
  const servers: ServerProcess[] = [];
  for (let n = 0; n < nodes; n++) servers.push(await startServer(`${id}#${n + 1}`, [...nodeArgs, ...prof, mainJs], { cwd: root, env: { ...env, NODE_ID: `bench-${id}-${n + 1}` }, ipc: true, ...(prof.length ? { stopGraceMs: 120_000 } : {}) }));
  return { servers, cleanup };
}

// --------------------------------------------------------------------------------------------
// One variant
// --------------------------------------------------------------------------------------------

async function runVariant(id: VariantId, svc: Services | undefined): Promise<VariantResult> {
  const meta = VARIANTS.find((v) => v.id === id)!;
  const out: VariantResult = { id, letter: meta.letter, title: meta.title, steps: [] };
  console.log(`\n== ${meta.letter}: ${meta.title}`);
  let running: Running;
  try {
    running = await startVariant(id, svc);
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
    console.log(`   FAILED to start: ${out.error}`);
    return out;
  }
  const workers = Array.from({ length: workersN }, () => startWorker());
  const usersPer = clientsN / workersN;
  try {
    await Promise.all(
      workers.map((w, i) =>
        w.ask(
          {
            type: 'init',
            worker: i,
            variant: id,
            urls: running.servers.map((s) => s.url),
            firstUser: i * usersPer,
            users: usersPer,
            shape,
            runId,
            jwt: { privateKeyPem: jwtPair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), ...jwtConf },
            connectConcurrency: id === 'real' || id === 'two-nodes' ? dbConnectConcurrency : connectConcurrency,
            seed,
          },
          'ready',
        ),
      ),
    );

    // Idle test: N authenticated idle clients on servers (and a database) of its own, started fresh
    // and stopped after, so the load below runs on a database holding only the load's users (on
    // FerretDB v1 every query scans its collection, so 5,000 idle users would slow every load step).
    if (idleN > 0) {
      const idle = await startVariant(id, svc, 'idle');
      try {
        out.idle = await idleTest(workers, idle.servers, idleN);
      } finally {
        await Promise.all(idle.servers.map((s) => s.stop()));
        await idle.cleanup().catch((e: unknown) => console.log(`   idle cleanup failed: ${(e as Error).message}`));
      }
    }

    if (idleOnly) return out;
    // Load: connect, set up, warm up, step.
    const t0 = performance.now();
    const conn = await Promise.all(workers.map((w) => w.ask<ConnectReport>({ type: 'connect' }, 'connected')));
    const connected = conn.reduce((a, r) => a + r.connected, 0);
    if (connected !== clientsN) throw new Error(`only ${connected}/${clientsN} clients connected: ${conn.flatMap((r) => r.errors).join('; ')}`);
    const connectWall = performance.now() - t0;
    const ts = performance.now();
    const setups = await Promise.all(workers.map((w) => w.ask<Extract<WorkerToRunner, { type: 'setup-done' }>>({ type: 'setup' }, 'setup-done')));
    out.load = {
      clients: connected,
      conversations: setups.reduce((a, s) => a + s.conversations, 0),
      connect: { connectPerS: r2((connected / connectWall) * 1000), connectMs: summary(merge(conn.map((r) => r.histogram))) },
      setupMs: Math.round(performance.now() - ts),
    };
    console.log(`   load: ${connected} clients, ${out.load.conversations} conversations, set up in ${out.load.setupMs} ms`);

    const counted = (id === 'real' || id === 'two-nodes') && svc ? await counters(svc.redisUrl, running.servers.map((s) => `${s.url}/metrics`), METRICS_TOKEN) : undefined;
    const runStep = stepRunner(id, svc, running, workers, counted);

    if (warmupMs > 0 && rates.length > 0) {
      const w = await runStep(0, rates[0] ?? 50, warmupMs);
      console.log(`   warm-up at ${rates[0] ?? 50} msg/s: p99 ${w.latencyMs.p99} ms (not recorded)`);
    }
    for (let i = 0; i < rates.length; i++) {
      let s = await runStep(i + 1, rates[i]!, stepMs);
      for (let a = 1; a <= retries && !s.passed; a++) {
        console.log(`   ${String(s.rate).padStart(5)} msg/s failed (${s.failure}; load ${s.loadavg1}); again`);
        s = { ...(await runStep(i + 1, rates[i]!, stepMs)), attempts: a + 1 };
      }
      out.steps.push(s);
      for (const line of [stepLine(s), ...countsLines(s)]) console.log(line);
      // Errors answered to senders, or most deliveries lost, are faults, not limits: show what the hubs warned of.
      if (Object.keys(s.ackErrors).length > 0 || (s.lossRate ?? 0) > 0.5) for (const h of running.servers) console.log(`   --- ${h.name} warnings and errors (last 20) ---\n${warnings(h.output(), 20)}`);
      if (!s.passed && !flags['keep-going']) break;
    }
    if (sendersN > 0) {
      // Warm-up at the same concurrency first (not recorded): every member of every conversation sends
      // once, so the step measures the steady state (directory caches filled, senders noted), not
      // first-touch reads and writes; then --warmup-s more at random.
      if (warmupMs > 0) {
        const touch = await runStep(0, 0, 0, sendersN, true);
        console.log(`   warm-up: every member of every conversation sent once (${touch.sent} messages)${touch.perMessage ? `, ${touch.perMessage.dbReads} database reads per message` : ''}`);
        await runStep(0, 0, warmupMs, sendersN);
      }
      const s = await runStep(rates.length + 1, 0, stepMs, sendersN);
      out.closedLoop = s;
      for (const line of closedLoopLines(s)) console.log(line);
    }
    counted?.close();
    out.headline = headline(out.steps, rates);
    out.cpu = cpuAtTop(out.steps);
    console.log(`   → highest passing rate ${out.headline.msgPerS} msg/s (${out.headline.limitedBy})`);
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
    console.log(`   FAILED: ${out.error}`);
    for (const s of running.servers) console.log(`   --- ${s.name} output (tail) ---\n${s.output().slice(-2000)}`);
  } finally {
    for (const w of workers) {
      try {
        w.proc.send({ type: 'close' });
      } catch {
        // already gone
      }
    }
    await Promise.all(workers.map((w) => new Promise<void>((r) => (w.proc.exitCode !== null ? r() : w.proc.once('exit', () => r())))));
    await Promise.all(running.servers.map((s) => s.stop()));
    await running.cleanup().catch((e: unknown) => console.log(`   cleanup failed: ${(e as Error).message}`));
  }
  return out;
}

/**
 * One step's measurement for a running variant: resets the hubs' event-loop delay, samples the Redis
 * and database counters and every process's CPU around the generators' step, and adds it all up.
 */
function stepRunner(id: VariantId, svc: Services | undefined, running: Running, workers: Worker[], counted: Awaited<ReturnType<typeof counters>> | undefined) {
  const pids = running.servers.map((s) => s.pid);
  const backed = id === 'real' || id === 'two-nodes';
  const dbPid = backed ? svc?.dbPid : undefined;
  return async (step: number, rate: number, durationMs: number, senders = 0, touch = false): Promise<StepResult> => {
    await Promise.all(running.servers.map((s) => s.ask({ type: 'eld', reset: true }, 'eld')));
    const count0 = await counted?.sample();
    const cpu0 = pids.map(procCpuMs);
    const stack = startStackCpu({ hub: pids, generators: workers.map((w) => w.proc.pid!), ferretdb: dbPid, redis: backed ? svc?.redisPid : undefined, postgresDatabase: backed ? svc?.postgresDatabase : undefined });
    const load1 = loadavg()[0]!;
    const t = performance.now();
    const reps = await Promise.all(
      workers.map((w) => w.ask<StepReport>({ type: 'step', step, rate: rate / workersN, durationMs, drainMs, senders: senders / workersN, touch }, 'step-done', (touch ? 600_000 : durationMs) + drainMs + 120_000)),
    );
    const count1 = await counted?.sample();
    const hubCpuMs = pids.map((p, i) => procCpuMs(p) - cpu0[i]!).reduce((a, b) => a + b, 0);
    const totalWallMs = performance.now() - t;
    const stackCpu = stack.stop(reps.reduce((a, r) => a + r.sent, 0));
    const eld = await Promise.all(running.servers.map((s) => s.ask<{ p50: number; p99: number; max: number; mean: number }>({ type: 'eld' }, 'eld')));
    return stepResult({
      rate,
      senders,
      reps,
      counts: count0 && count1 ? { before: count0, after: count1 } : undefined,
      hubCpuMs,
      totalWallMs,
      stack: stackCpu,
      eld,
      hubRssKb: pids.map(procRssKb),
      loadavg1: load1,
      db: dbPid !== undefined,
      limits: { p99Ms: p99LimitMs, loss: lossLimit },
    });
  };
}

/**
 * S: the plain driver's insert rate into the same database, at the hub's batch size (D's envelopes
 * per insert in its closed-loop step, unless --s-batch) and with as many documents in flight as D had
 * senders (writers = senders ÷ batch), for one step; then the same with one lastSeq raise per batch.
 */
async function runStorage(svc: Services | undefined, d: VariantResult | undefined): Promise<VariantResult> {
  const meta = VARIANTS.find((v) => v.id === 'storage')!;
  const out: VariantResult = { id: 'storage', letter: meta.letter, title: meta.title, steps: [] };
  console.log(`\n== ${meta.letter}: ${meta.title}`);
  if (!svc) {
    out.error = 'no database';
    return out;
  }
  const measured = d?.closedLoop?.perMessage?.envelopesPerInsert;
  const batch = sBatchFlag ?? (measured ? Math.max(1, Math.round(measured)) : 16);
  const batchFrom = sBatchFlag !== undefined ? '--s-batch' : measured ? `D's closed loop (${measured} envelopes per insert)` : 'default (D not measured)';
  const inFlight = Math.max(1, sendersN || 64);
  const concurrency = Math.max(1, Math.round(inFlight / batch));
  const base = { mongoUri: svc.mongoUri, concurrency, batch, durationMs: stepMs, shape, conversations: Math.max(1, clientsN / shape.roomSize + clientsN / 2) };
  try {
    const dbCpu0 = svc.dbPid ? procCpuMs(svc.dbPid) : NaN;
    // The database's own CPU per inserted document (FerretDB and its PostgreSQL backends; the driver's side is the runner's).
    const dbStack = startStackCpu({ hub: [], generators: [], ferretdb: svc.dbPid, postgresDatabase: svc.postgresDatabase });
    const inserts = await storageCeiling({ ...base, dbName: `bench_${runId}_storage_a`, seqRaise: false });
    const dbPerDoc = dbStack.stop(inserts.docs);
    const insertsAndRaise = await storageCeiling({ ...base, dbName: `bench_${runId}_storage_b`, seqRaise: true });
    // The hub's pattern: the raise as the insert of one set of seq marks per batch (the previous hub's: the $max raise above).
    const insertsAndMarks = await storageCeiling({ ...base, dbName: `bench_${runId}_storage_c`, seqRaise: true, marks: true });
    out.storage = { inserts, insertsAndRaise, insertsAndMarks, batchFrom, ...(dbPerDoc.msPerMsg.total > 0 ? { dbCpuMsPerDoc: dbPerDoc.msPerMsg } : {}) };
    out.headline = { msgPerS: inserts.docsPerS, limitedBy: 'the database (no latency bound: the plain driver as fast as it goes)' };
    console.log(
      `   ${concurrency} writers × insertMany of ${batch} (batch from ${batchFrom}): ${inserts.docsPerS} docs/s (batch p50/p99 ${inserts.batchMs.p50}/${inserts.batchMs.p99} ms); ` +
        `with seq marks (the hub's pattern): ${insertsAndMarks.docsPerS} docs/s; with a $max lastSeq raise per batch (the previous hub's): ${insertsAndRaise.docsPerS} docs/s${Number.isFinite(dbCpu0) ? `; DB CPU ${Math.round(procCpuMs(svc.dbPid!) - dbCpu0)} ms` : ''}`,
    );
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
    console.log(`   FAILED: ${out.error}`);
  }
  return out;
}

// --------------------------------------------------------------------------------------------
// Report
// --------------------------------------------------------------------------------------------

function sh(cmd: string): string {
  try {
    return execSync(cmd, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  if (!existsSync(mainJs)) throw new Error('server/dist/main.js is missing: run `npm run build` first (npm run bench does)');
  const startedAt = new Date();
  const load0 = loadavg();
  const needServices = variantIds.some((v) => v === 'real' || v === 'two-nodes' || v === 'storage');
  const svc = needServices ? await services() : undefined;
  stopServices = svc?.stop;
  if (svc) console.log(`services: redis ${svc.redisUrl}, mongodb ${svc.mongoUri}`);
  const results: VariantResult[] = [];
  try {
    // What is done so far survives an interrupted run.
    const partial = join(root, 'results', `.bench-partial-${runId}.json`);
    for (const id of variantIds) {
      results.push(id === 'storage' ? await runStorage(svc, results.find((r) => r.id === 'real')) : await runVariant(id, svc));
      mkdirSync(dirname(partial), { recursive: true });
      writeFileSync(partial, JSON.stringify({ startedAt: startedAt.toISOString(), commit: sh('git rev-parse --short HEAD'), variants: results }, null, 2) + '\n');
    }
    rmSync(partial, { force: true });
  } finally {
    await svc?.stop();
  }

  const { ratios, cpuRatios, targets, p99Crossing, stackBound } = comparisons(results);
  const date = startedAt.toISOString().slice(0, 10);
  const dirty = sh('git status --porcelain -- shared server client-sdk scripts/bench');
  const report = {
    benchmark: 'hub',
    date,
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
    label: flags.label ?? null,
    machine: machine(load0, Number(sh('nproc'))),
    node: process.version,
    commit: sh('git rev-parse --short HEAD'),
    uncommitted: dirty === 'unknown' ? 'unknown' : dirty.split('\n').filter(Boolean),
    method: {
      mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
      database: svc?.database ?? null,
      clients: clientsN,
      workers: workersN,
      shape,
      rates,
      senders: sendersN,
      stepS: stepMs / 1000,
      warmupS: warmupMs / 1000,
      drainS: drainMs / 1000,
      idleClients: idleN,
      connectConcurrency,
      dbConnectConcurrency,
      p99LimitMs,
      lossLimit,
      seed,
      retries,
      hubLogLevel: logLevel,
      hubRateLimits: 'RATE_LIMIT_ENVELOPE_SEND=100000000/10, RATE_LIMIT_HANDSHAKE=100000000/60, RATE_LIMIT_KEYS_CLAIM=100000000/60 (limiters on, never refusing)',
      latency: 'sender → each receiving client, one clock (rooms live inside one generator process); HDR histogram, µs',
      ack: 'send → ack (Curbside: the durable ack after the database write; relays: their plain ack)',
      valid: 'a step is invalid when the generators sent < 95% of its target (open loop; sends more than 1 s late are skipped)',
      generatorSaturated: 'a generator process used ≥ 90% of one core during the send window',
      hubCpu: '/proc/<pid>/stat utime+stime over the step (send window + drain), ÷ wall time, summed over hub processes (1.0 = one core)',
      eventLoopDelay: 'perf_hooks.monitorEventLoopDelay in each server (resolution 5 ms, reported as the delay beyond it), reset at step start',
      rssPerConnection: '(RSS after N idle authenticated clients − RSS before) ÷ N, both after a full GC, summed over server processes',
    },
    variants: results,
    ratios,
    cpuRatios,
    targets,
    p99Crossing,
    perMessage: results.find((r) => r.id === 'real')?.closedLoop?.perMessage ?? null,
    stackBound,
  };

  publish(report, { out: flags.out, docs: flags.docs, mode: smoke ? 'smoke' : quick ? 'quick' : 'full' });
  const failed = results.filter((r) => r.error);
  process.exit(failed.length ? 1 : 0);
}

runBench(main, { onSignal: () => stopServices?.(), report: (e) => console.error(e instanceof Error ? e.message : e) });

/** The last `n` lines of a hub's pino output at level warn or above. */
function warnings(output: string, n: number): string {
  return output
    .split('\n')
    .filter((line) => Number(/"level":(\d+)/.exec(line)?.[1] ?? 0) >= 40)
    .slice(-n)
    .join('\n');
}
