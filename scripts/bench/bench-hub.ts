/**
 * A hub process for a benchmark on the real backend: its own database and Redis key prefix, the
 * benchmark's identity provider, and every rate limit raised out of the way (their cost stays in the
 * pipeline), plus the benchmark's own settings.
 */
import { execSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { BenchIdp } from './idp.js';
import { ensureDevMongo, ensureRedis } from '../../test/support/services.js';
import { startServer, type ServerProcess } from './server-process.js';

const RAISED_LIMITS = {
  RATE_LIMIT_ENVELOPE_SEND: '1000000/10',
  RATE_LIMIT_HANDSHAKE: '1000000/60',
  RATE_LIMIT_MEMBERSHIP: '1000000/60',
  RATE_LIMIT_READS: '1000000/60',
  RATE_LIMIT_KEYS_CLAIM: '1000000/60',
  RATE_LIMIT_KEYS_CLAIM_TARGET: '1000000/60',
  RATE_LIMIT_ADDED_TO_CONVERSATIONS: '1000000/60',
  RATE_LIMIT_ATTACHMENTS: '1000000/60',
};

export function startBenchHub(o: { root: string; runId: string; redisUrl: string; mongoUrl: string; dbName: string; idp: BenchIdp; env?: Record<string, string> }): Promise<ServerProcess> {
  return startServer('hub', [join(o.root, 'server', 'dist', 'main.js')], {
    cwd: o.root,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      PORT: '0',
      HOST: '127.0.0.1',
      MONGODB_URI: o.mongoUrl,
      MONGODB_DB: o.dbName,
      REDIS_URL: o.redisUrl,
      REDIS_KEY_PREFIX: `${o.runId}:`,
      ...o.idp.hubEnv,
      ...RAISED_LIMITS,
      ...o.env,
    },
    timeoutMs: 60_000,
    stopGraceMs: 5_000,
  });
}

/** Where and when a benchmark ran: the head of every report. */
export function runContext(root: string): { date: string; machine: string; node: string; commit: string; loadavg1: number } {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout (an unpacked tarball): the report says so
  }
  return { date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, node: process.version, commit, loadavg1: loadavg()[0] ?? 0 };
}

/** Run a benchmark with Redis and the Mongo-wire database (those running, else ones it starts and stops). */
export async function withBenchServices(run: (redisUrl: string, mongoUrl: string, mongoLabel: string) => Promise<void>): Promise<void> {
  const redis = await ensureRedis();
  const mongo = await ensureDevMongo();
  try {
    await run(redis.url, mongo.url, mongo.label);
  } finally {
    await Promise.all([redis.stop(), mongo.stop()]);
  }
}
