/**
 * What a run of the hub bench is asked to do: its command line (`--help` prints USAGE), the presets
 * (`--smoke`, `--quick`, the full run), and the load shape and limits derived from them, checked once.
 */
import { parseArgs } from 'node:util';
import { VARIANTS, type LoadShape, type VariantId } from './common.js';

export const { values: flags } = parseArgs({
  options: {
    variants: { type: 'string' },
    clients: { type: 'string' },
    'room-size': { type: 'string' },
    'room-share': { type: 'string' },
    'body-bytes': { type: 'string' },
    'header-bytes': { type: 'string' },
    'large-share': { type: 'string' },
    'large-bytes': { type: 'string' },
    'share-bytes': { type: 'string' },
    'rekey-share': { type: 'string' },
    rates: { type: 'string' },
    senders: { type: 'string' },
    's-batch': { type: 'string' },
    'idle-only': { type: 'boolean', default: false },
    'step-s': { type: 'string' },
    'warmup-s': { type: 'string' },
    'drain-s': { type: 'string' },
    workers: { type: 'string' },
    'idle-clients': { type: 'string' },
    'connect-concurrency': { type: 'string' },
    'db-connect-concurrency': { type: 'string' },
    'p99-limit-ms': { type: 'string' },
    'loss-limit': { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
    retries: { type: 'string' },
    'hub-log-level': { type: 'string' },
    'hub-cpu-prof': { type: 'string' },
    'mongodb-uri': { type: 'string' },
    'redis-url': { type: 'string' },
    seed: { type: 'string' },
    label: { type: 'string' },
    out: { type: 'string' },
    docs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

export const USAGE = `Usage: tsx scripts/bench/run.ts [options]      (npm run build first; npm run bench does)
  --variants ws,socketio,memory,real,storage,two-nodes   which variants, in this order (default: all; storage = S, after D)
  --clients 2000            connected clients under load (rooms of --room-size; a multiple of it × --workers)
  --room-size 10            members per care-team room; 1:1 pairs are formed inside rooms
  --room-share 0.9          share of messages to rooms (the rest 1:1)
  --body-bytes 1024 --header-bytes 200    body = ciphertext + header
  --large-share 0.05 --large-bytes 16384  share of large bodies and their size
  --share-bytes 80          per-recipient-device share (wrapped message key) in 1:1 and rekeying envelopes
  --rekey-share 0.02        share of room messages with a share per member device (the rest: sender-key body only)
  --rates 25,50,100,250,500,1000,2000,4000   inbound msg/s steps (none: no open-loop steps)
  --senders 64              then a closed-loop step: this many senders, each sends again once acked (0: none)
  --s-batch N               S: documents per insertMany (default: D's envelopes per insert in its closed-loop step, else 16)
  --idle-only               only the idle test (RSS per connection, connect rate), no load
  --step-s 30 --warmup-s 5 --drain-s 5    seconds per step, warm-up at the first rate and before the closed loop (not recorded), drain after a step
  --workers 2               load-generator processes
  --idle-clients 5000       idle authenticated clients for the RSS and connect-rate test (0: skip)
  --connect-concurrency 50  connections each worker opens at once
  --db-connect-concurrency 4   the same for D and E (FerretDB on SQLite answers SQLITE_BUSY to many concurrent device upserts)
  --p99-limit-ms 100 --loss-limit 0.001   a step fails past these
  --keep-going              run every rate even after a failing step
  --retries 1               re-run a failing step this many times (the machine is shared and noisy); the last attempt counts
  --hub-log-level info      LOG_LEVEL of the hubs
  --hub-cpu-prof DIR        run hubs with --cpu-prof (profiles in DIR)
  --mongodb-uri URI --redis-url URL       services for D and E (default: REDIS_URL, else a redis-server of this run's own, so that
                                          the Redis counts are the hubs' only; MONGODB_URI, else FerretDB on PostgreSQL in a fresh
                                          database; CURBSIDE_FERRETDB_BACKEND=sqlite: on SQLite)
  --seed 1 --label TEXT
  --out FILE                JSON report (default results/bench-<date>[-quick][-N].json)
  --docs FILE|none          Markdown to add the run to (default docs/benchmarks.md; --smoke: none)
  --quick                   ~5 min: 1000 clients, 10 s steps, 2000 idle clients
  --smoke                   seconds: 40 clients, two 2 s steps at 20 and 40 msg/s, 40 idle clients`;

if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

export const num = (name: string, raw: string | undefined, def: number, min = 0): number => {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min} (got "${raw}")`);
  return n;
};

export const smoke = flags.smoke;
export const quick = flags.quick;
export const preset = smoke
  ? { clients: 40, rates: '20,40', stepS: 2, warmupS: 1, drainS: 15, workers: 1, idle: 40, concurrency: 20, senders: 8 }
  : quick
    ? { clients: 1000, rates: '25,50,100,250,500,1000,2000,4000', stepS: 10, warmupS: 3, drainS: 4, workers: 2, idle: 2000, concurrency: 50, senders: 64 }
    : { clients: 2000, rates: '25,50,100,250,500,1000,2000,4000', stepS: 30, warmupS: 5, drainS: 5, workers: 2, idle: 5000, concurrency: 50, senders: 64 };

export const shape: LoadShape = {
  roomSize: num('room-size', flags['room-size'], 10, 2),
  roomShare: num('room-share', flags['room-share'], 0.9),
  bodyBytes: num('body-bytes', flags['body-bytes'], 1024, 16),
  headerBytes: num('header-bytes', flags['header-bytes'], 200),
  largeShare: num('large-share', flags['large-share'], 0.05),
  largeBytes: num('large-bytes', flags['large-bytes'], 16 * 1024, 16),
  shareBytes: num('share-bytes', flags['share-bytes'], 80, 1),
  rekeyShare: num('rekey-share', flags['rekey-share'], 0.02),
};
export const workersN = Math.round(num('workers', flags.workers, preset.workers, 1));
export const clientsN = Math.round(num('clients', flags.clients, preset.clients, 2));
if (clientsN % (shape.roomSize * workersN) !== 0) throw new Error(`--clients (${clientsN}) must be a multiple of --room-size × --workers (${shape.roomSize * workersN})`);
export const rates = flags.rates === 'none' ? [] : (flags.rates ?? preset.rates).split(',').map((r) => num('rates', r.trim(), 0, 1));
export const sendersN = Math.round(num('senders', flags.senders, preset.senders));
if (sendersN % workersN !== 0) throw new Error(`--senders (${sendersN}) must be a multiple of --workers (${workersN})`);
export const sBatchFlag = flags['s-batch'] === undefined ? undefined : Math.round(num('s-batch', flags['s-batch'], 16, 1));
export const idleOnly = flags['idle-only'];
export const stepMs = num('step-s', flags['step-s'], preset.stepS, 0.5) * 1000;
export const warmupMs = num('warmup-s', flags['warmup-s'], preset.warmupS) * 1000;
export const drainMs = num('drain-s', flags['drain-s'], preset.drainS, 0.1) * 1000;
export const idleN = Math.round(num('idle-clients', flags['idle-clients'], preset.idle));
export const connectConcurrency = Math.round(num('connect-concurrency', flags['connect-concurrency'], preset.concurrency, 1));
export const dbConnectConcurrency = Math.round(num('db-connect-concurrency', flags['db-connect-concurrency'], 4, 1));
export const p99LimitMs = num('p99-limit-ms', flags['p99-limit-ms'], 100);
export const lossLimit = num('loss-limit', flags['loss-limit'], 0.001);
export const seed = Math.round(num('seed', flags.seed, 1));
export const retries = Math.round(num('retries', flags.retries, smoke ? 0 : 1));
export const logLevel = flags['hub-log-level'] ?? 'info';
export const variantIds = (flags.variants ?? VARIANTS.map((v) => v.id).join(',')).split(',').map((v) => v.trim()) as VariantId[];
for (const v of variantIds) if (!VARIANTS.some((x) => x.id === v)) throw new Error(`--variants: unknown variant "${v}" (ws, socketio, memory, real, storage, two-nodes)`);
