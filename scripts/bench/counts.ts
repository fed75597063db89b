/**
 * What one message costs, counted rather than timed (docs/benchmarks.md): Redis commands and round
 * trips from the Redis server (`INFO stats commandstats`; round trips = `total_reads_processed`, socket
 * reads, so an auto-pipelined batch is one), and database commands from each hub's /metrics
 * (`curbside_db_commands_total`, the driver's command monitoring, so only the hub's own commands).
 * Counts do not drift with machine load the way times do. Redis counts are server-wide: exact only on
 * a Redis nothing else uses (run.ts starts one of its own unless told otherwise).
 */

/** Commands that read the database. */
const DB_READS = new Set(['find', 'aggregate', 'count', 'distinct', 'getMore']);

export interface RedisSample {
  reads: number;
  commands: Record<string, number>;
}

/** A histogram's cumulative bucket counts, by upper bound in seconds (`+Inf` last). */
type Buckets = Map<number, number>;

/** The hub's own timings, as histograms: what a step's latency is made of, from inside the hub. */
const TIMED = {
  /** From an envelope:send arriving to its ack leaving. */
  ack: (name: string) => name === 'curbside_send_ack_seconds_bucket',
  /** The storage port's append (group commit, seq allocation and mark, durable). */
  append: (name: string, labels: string) => name === 'curbside_db_call_seconds_bucket' && labels.includes('op="appendEnvelope"'),
  /** Every Redis command of the hub. */
  redis: (name: string) => name === 'curbside_redis_command_seconds_bucket',
  /** The database commands of the send path, from sent to answered (the driver's timing). */
  insertEnvelopes: (name: string, labels: string) => dbCommand(name, labels, 'insert', 'envelopes'),
  insertMarks: (name: string, labels: string) => dbCommand(name, labels, 'insert', 'seq_mark_sets'),
  findMarks: (name: string, labels: string) => dbCommand(name, labels, 'find', 'seq_mark_sets'),
} as const;
function dbCommand(name: string, labels: string, command: string, collection: string): boolean {
  return name === 'curbside_db_command_seconds_bucket' && labels.includes(`command="${command}"`) && labels.includes(`collection="${collection}"`);
}
type Timed = keyof typeof TIMED;
const TIMINGS = Object.keys(TIMED) as Timed[];
const noBuckets = () => Object.fromEntries(TIMINGS.map((k) => [k, new Map()])) as Record<Timed, Buckets>;

export interface HubSample {
  dbCommands: Record<string, number>;
  envelopeInserts: number;
  envelopeDocs: number;
  envelopesIn: number;
  timed: Record<Timed, Buckets>;
}

/** Quantiles (ms) of a hub timing over a step, from its buckets: the bucket's upper bound, so "at most". */
export type HubTimes = Record<Timed, { count: number; p50Ms: number | null; p99Ms: number | null }>;

export interface CountSample {
  at: number;
  redis: RedisSample | { error: string };
  hubs: Array<HubSample | { error: string }>;
}

export interface PerMessage {
  messages: number;
  redisRoundTrips: number | null;
  redisCommands: number | null;
  redisByCommand: Record<string, number>;
  dbCommands: number | null;
  dbReads: number | null;
  dbByCommand: Record<string, number>;
  /** Envelopes per envelope insert command (the group-commit batch size). */
  envelopesPerInsert: number | null;
  error?: string;
}

/** The samplers of one run: a Redis connection of their own and the hubs' /metrics. */
export async function counters(redisUrl: string | undefined, metricsUrls: string[], token: string) {
  const { Redis } = await import('ioredis');
  const redis = redisUrl ? new Redis(redisUrl, { enableAutoPipelining: false, lazyConnect: false }) : undefined;
  const sampleRedis = async (): Promise<CountSample['redis']> => {
    if (!redis) return { error: 'no redis' };
    try {
      // One command, one socket read.
      const info = (await redis.call('INFO', 'stats', 'commandstats')) as string;
      const commands: Record<string, number> = {};
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[m[1]!] = Number(m[2]);
      return { reads: Number(/total_reads_processed:(\d+)/.exec(info)?.[1] ?? NaN), commands };
    } catch (e) {
      return { error: `INFO failed: ${(e as Error).message}` };
    }
  };
  const sampleHub = async (url: string): Promise<HubSample | { error: string }> => {
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) return { error: `/metrics answered ${res.status}` };
      const text = await res.text();
      const dbCommands: Record<string, number> = {};
      let envelopeDocs = 0;
      let envelopeInserts = 0;
      let envelopesIn = 0;
      const timed = noBuckets();
      for (const line of text.split('\n')) {
        const m = /^(curbside_[a-z_]+)(?:\{(.*)\})?\s+(\S+)/.exec(line);
        if (!m) continue;
        const value = Number(m[3]);
        for (const k of TIMINGS) {
          if (!TIMED[k](m[1]!, m[2] ?? '')) continue;
          // Summed over label sets (every Redis command): `le` is the bucket's upper bound.
          const le = Number(/le="([^"]*)"/.exec(m[2] ?? '')?.[1]?.replace('+Inf', 'Infinity'));
          timed[k].set(le, (timed[k].get(le) ?? 0) + value);
        }
        if (m[1] === 'curbside_db_commands_total') {
          const command = /command="([^"]*)"/.exec(m[2] ?? '')?.[1] ?? 'other';
          const collection = /collection="([^"]*)"/.exec(m[2] ?? '')?.[1] ?? '';
          // By command and collection: "find conversations", "insert envelopes", "hello".
          const k = collection ? `${command} ${collection}` : command;
          dbCommands[k] = (dbCommands[k] ?? 0) + value;
          if (command === 'insert' && collection === 'envelopes') envelopeInserts += value;
        } else if (m[1] === 'curbside_db_documents_inserted_total' && /collection="envelopes"/.test(m[2] ?? '')) envelopeDocs += value;
        else if (m[1] === 'curbside_envelopes_in_total') envelopesIn += value;
      }
      return { dbCommands, envelopeDocs, envelopeInserts, envelopesIn, timed };
    } catch (e) {
      return { error: `/metrics failed: ${(e as Error).message}` };
    }
  };
  return {
    sample: async (): Promise<CountSample> => {
      const [r, hubs] = await Promise.all([sampleRedis(), Promise.all(metricsUrls.map(sampleHub))]);
      return { at: performance.now(), redis: r, hubs };
    },
    close: () => redis?.disconnect(),
  };
}

function diff(a: Record<string, number>, b: Record<string, number>, skip?: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    if (k === skip) continue;
    const d = v - (a[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((s, v) => s + v, 0);
const per = (x: number, n: number) => (n > 0 ? Math.round((x / n) * 1000) / 1000 : null);

/**
 * Per message between two samples, `messages` being the sends of the window. The samplers' own
 * calls are taken out (one INFO per sample: its command and the second sample's socket read; the
 * /metrics scrapes send no database command).
 */
export function perMessage(a: CountSample, b: CountSample, messages: number): PerMessage {
  const errors: string[] = [];
  let redisRoundTrips: number | null = null;
  let redisCommands: number | null = null;
  let redisByCommand: Record<string, number> = {};
  if ('error' in a.redis || 'error' in b.redis) errors.push('error' in b.redis ? b.redis.error : (a.redis as { error: string }).error);
  else {
    redisByCommand = diff(a.redis.commands, b.redis.commands, 'info');
    redisCommands = per(sum(redisByCommand), messages);
    redisRoundTrips = per(b.redis.reads - a.redis.reads - 1, messages);
  }
  const dbBy: Record<string, number> = {};
  let docs = 0;
  let inserts = 0;
  for (let i = 0; i < b.hubs.length; i++) {
    const x = a.hubs[i];
    const y = b.hubs[i]!;
    if (!x || 'error' in x || 'error' in y) {
      errors.push('error' in y ? y.error : 'no first sample');
      continue;
    }
    for (const [k, v] of Object.entries(diff(x.dbCommands, y.dbCommands))) dbBy[k] = (dbBy[k] ?? 0) + v;
    docs += y.envelopeDocs - x.envelopeDocs;
    inserts += y.envelopeInserts - x.envelopeInserts;
  }
  const reads = Object.entries(dbBy).reduce((s, [k, v]) => s + (DB_READS.has(k.split(' ')[0]!) ? v : 0), 0);
  const round = (r: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      Object.entries(r)
        .sort((p, q) => q[1] - p[1])
        .map(([k, v]) => [k, per(v, messages) ?? 0]),
    );
  return {
    messages,
    redisRoundTrips,
    redisCommands,
    redisByCommand: round(redisByCommand),
    dbCommands: b.hubs.length ? per(sum(dbBy), messages) : null,
    dbReads: b.hubs.length ? per(reads, messages) : null,
    dbByCommand: round(dbBy),
    envelopesPerInsert: inserts > 0 ? Math.round((docs / inserts) * 100) / 100 : null,
    ...(errors.length ? { error: errors.join('; ') } : {}),
  };
}

/** The bound of the bucket holding quantile `q` of the counts a step added (null: nothing observed). */
function quantileMs(a: Buckets, b: Buckets, q: number): { count: number; ms: number | null } {
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const counts = bounds.map((le) => (b.get(le) ?? 0) - (a.get(le) ?? 0));
  const count = counts[counts.length - 1] ?? 0;
  if (count <= 0) return { count: 0, ms: null };
  const i = counts.findIndex((c) => c >= q * count);
  const le = bounds[i]!;
  return { count, ms: Number.isFinite(le) ? Math.round(le * 1000 * 10) / 10 : Infinity };
}

/** The hubs' own timings over a step (every hub's buckets added up). */
export function hubTimes(a: CountSample, b: CountSample): HubTimes | null {
  const sums = (sample: CountSample) => {
    const out = noBuckets();
    for (const h of sample.hubs) {
      if ('error' in h) return undefined;
      for (const k of TIMINGS) for (const [le, v] of h.timed[k]) out[k].set(le, (out[k].get(le) ?? 0) + v);
    }
    return out;
  };
  const x = sums(a);
  const y = sums(b);
  if (!x || !y) return null;
  const one = (k: Timed) => {
    const p50 = quantileMs(x[k], y[k], 0.5);
    return { count: p50.count, p50Ms: p50.ms, p99Ms: quantileMs(x[k], y[k], 0.99).ms };
  };
  return Object.fromEntries(TIMINGS.map((k) => [k, one(k)])) as HubTimes;
}
