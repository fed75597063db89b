/**
 * Start-up checks that need the network: MongoDB and Redis answer, within `connectTimeoutMs`. A
 * problem is a `ConfigError` naming the setting and the host tried (main.ts prints one line and
 * exits 78), instead of a driver's stack trace after 30 s of retries.
 */
import mongoose from 'mongoose';
import { Redis } from 'ioredis';
import { ConfigError, type ConfigIssue, type HubConfig } from './config.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Resolves when every configured dependency answered; rejects with a ConfigError listing each that did not. */
export async function checkDependencies(config: HubConfig): Promise<void> {
  const timeoutMs = config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const results = await Promise.all([
    config.mongo ? checkMongo(config.mongo.uri, timeoutMs) : undefined,
    config.redis ? checkRedis(config.redis.url, timeoutMs) : undefined,
  ]);
  const issues = results.filter((r): r is ConfigIssue => r !== undefined);
  if (issues.length) throw new ConfigError(issues);
}

/** A MongoDB connection string the driver can parse, and a server that answers a ping in time. */
export async function checkMongo(uri: string, timeoutMs: number): Promise<ConfigIssue | undefined> {
  let client: InstanceType<typeof mongoose.mongo.MongoClient>;
  try {
    client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  } catch (err) {
    return { setting: 'MONGODB_URI', reason: `is not a valid connection string: ${oneLine(err)} (e.g. mongodb://db1,db2,db3/curbside?replicaSet=rs0)` };
  }
  const opts = client.options as { hosts?: Array<{ toString(): string }>; srvHost?: string };
  const hosts = opts.srvHost ?? (opts.hosts ?? []).map((h) => h.toString()).join(',');
  try {
    await bounded(
      (async () => {
        await client.connect();
        await client.db('admin').command({ ping: 1 });
      })(),
      timeoutMs + 500,
    );
    return undefined;
  } catch (err) {
    if (unanswered(err) || (err as Error).name === 'MongoServerSelectionError') {
      return { setting: 'MONGODB_URI', reason: `no MongoDB answered at ${hosts} within ${timeoutMs} ms (CONNECT_TIMEOUT_MS): ${oneLine(err)}` };
    }
    return { setting: 'MONGODB_URI', reason: `MongoDB at ${hosts} refused the connection (credentials or options in the URI?): ${oneLine(err)}` };
  } finally {
    await client.close(true).catch(() => {});
  }
}

/** A Redis that accepts a connection (and its credentials) and answers PING in time. */
export async function checkRedis(url: string, timeoutMs: number): Promise<ConfigIssue | undefined> {
  let client: Redis;
  try {
    client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  } catch (err) {
    return { setting: 'REDIS_URL', reason: `is not a valid Redis URL: ${oneLine(err)}` };
  }
  let lastError: unknown;
  client.on('error', (err) => (lastError = err));
  const host = `${client.options.host ?? '?'}:${client.options.port ?? '?'}`;
  try {
    await bounded(
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      timeoutMs + 500,
    );
    return undefined;
  } catch (err) {
    const cause = lastError ?? err;
    if (unanswered(cause) || unanswered(err)) return { setting: 'REDIS_URL', reason: `no Redis answered at ${host} within ${timeoutMs} ms (CONNECT_TIMEOUT_MS): ${oneLine(cause)}` };
    return { setting: 'REDIS_URL', reason: `Redis at ${host} refused the connection (password or user in the URL?): ${oneLine(cause)}` };
  } finally {
    client.disconnect();
  }
}

/** A network failure or our own timeout: nobody answered (as opposed to a server that answered "no"). */
function unanswered(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code)) return true;
  const msg = err instanceof Error ? err.message : '';
  return msg === 'timed out' || /Connection is closed|connect ETIMEDOUT|ECONNREFUSED/.test(msg);
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
    }),
  ]);
}

/** An error's message on one line, without a stack. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s+/g, ' ').trim().slice(0, 300) || (err instanceof Error ? err.name : 'unknown error');
}
