import { compositeKey, decodeCompositeKey } from '@curbside/shared';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Presence, PresenceConnection, PresenceOptions } from '../../ports/presence.js';

export interface RedisPresenceOptions extends PresenceOptions {
  /**
   * The client to use. The caller owns it: `close()` does not quit it, because the hub shares one
   * client between several users (presence, rate limits, ...) and closes it once at shutdown.
   */
  redis: Redis;
  /** Prepended to every key, e.g. `curbside:`; tests use a unique prefix each. */
  keyPrefix: string;
}

/**
 * How long an untouched key lives, as a multiple of `ttlMs`. Expiry of a connection is decided by
 * its score, not by this; the key TTL only garbage-collects keys of users whose connections all
 * died without a disconnect (e.g. every node holding them was killed) and who are never queried.
 */
const KEY_TTL_MULTIPLE = 10;

/**
 * Presence shared by every hub node through Redis.
 *
 * One sorted set per user, member `compositeKey(deviceId, connectionId)`, score = the connection's expiry
 * (epoch ms from the injected clock). Each node heartbeats the connections it holds; a node that
 * dies without saying goodbye (kill -9, crash, network split) stops heartbeating, its members'
 * scores fall behind the clock, and reads ignore and prune them. So no node ever has to clean up
 * after another one.
 *
 * Scores come from each node's own clock, so clock skew between nodes shifts expiry by the skew;
 * keep `ttlMs` well above any plausible skew (NTP-synced hosts: milliseconds).
 *
 * Keys and members are built by shared's `compositeKey`, so org `a:b` + user `c` never shares a key
 * with org `a` + user `b:c`.
 */
export class RedisPresence implements Presence {
  /** The client presence talks through (the hub times its commands for metrics). */
  readonly redis: Redis;
  private readonly keyPrefix: string;
  private readonly ttlMs: number;
  private readonly keyTtlMs: number;
  private readonly now: () => number;

  constructor(options: RedisPresenceOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${options.ttlMs}`);
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix;
    this.ttlMs = options.ttlMs;
    this.keyTtlMs = Math.ceil(options.ttlMs * KEY_TTL_MULTIPLE);
    this.now = options.now ?? Date.now;
  }

  async connect(conn: PresenceConnection): Promise<void> {
    await this.heartbeat([conn]);
  }

  async disconnect(conn: PresenceConnection): Promise<void> {
    // Removing an unknown member is a no-op; Redis deletes the key when the set becomes empty.
    await this.redis.zrem(this.key(conn), member(conn));
  }

  /** One MULTI for all connections: a node with thousands of sockets makes one round trip. */
  async heartbeat(conns: readonly PresenceConnection[]): Promise<void> {
    if (conns.length === 0) return;
    const expiresAt = this.now() + this.ttlMs;
    const byKey = new Map<string, (string | number)[]>();
    for (const c of conns) {
      const k = this.key(c);
      let args = byKey.get(k);
      if (!args) byKey.set(k, (args = []));
      args.push(expiresAt, member(c));
    }
    const tx = this.redis.multi();
    for (const [k, args] of byKey) {
      tx.zadd(k, ...args);
      tx.pexpire(k, this.keyTtlMs);
    }
    await execOrThrow(tx);
  }

  async onlineDevices(orgId: string, userId: string): Promise<string[]> {
    const k = this.key({ orgId, userId });
    const now = this.now();
    // Online means expiresAt > now (as in MemoryPresence): prune the rest, then read what is left.
    // ZRANGEBYSCORE rather than ZRANGE ... BYSCORE keeps Redis < 6.2 working.
    const [, members] = await execOrThrow(this.redis.multi().zremrangebyscore(k, '-inf', now).zrangebyscore(k, `(${now}`, '+inf'));
    const devices = new Set<string>();
    for (const m of members as string[]) devices.add(decodeCompositeKey(m)[0]!);
    return [...devices].sort();
  }

  async ping(): Promise<void> {
    const reply = await this.redis.ping();
    if (reply !== 'PONG') throw new Error(`unexpected PING reply from Redis: ${reply}`);
  }

  /** Nothing to release: the client belongs to the caller (see `RedisPresenceOptions.redis`). */
  async close(): Promise<void> {}

  private key(c: { orgId: string; userId: string }): string {
    return `${this.keyPrefix}presence:${compositeKey(c.orgId, c.userId)}`;
  }
}

function member(c: PresenceConnection): string {
  return compositeKey(c.deviceId, c.connectionId);
}

/** Run a MULTI and return the replies, throwing the first command error (exec only reports them). */
async function execOrThrow(tx: ChainableCommander): Promise<unknown[]> {
  const results = await tx.exec();
  if (!results) throw new Error('Redis transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
