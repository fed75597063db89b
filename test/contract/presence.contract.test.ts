/**
 * One contract for every Presence implementation: the same suite body runs over MemoryPresence and
 * RedisPresence, with an injected fake clock so expiry is tested without sleeping. Redis-only tests
 * at the end cover what only a shared store can do (several hub nodes) and the real clock.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { compositeKey } from '@curbside/shared';
import type { Presence, PresenceConnection, PresenceOptions } from '../../server/src/ports/presence.js';
import { MemoryPresence } from '../../server/src/adapters/memory/presence.js';
import { RedisPresence } from '../../server/src/adapters/redis/presence.js';
import { serviceUrls, uniqueName } from '../support/services.js';

const TTL = 30_000;

class FakeClock {
  t = Date.parse('2026-01-01T00:00:00Z');
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Harness {
  /** A presence instance; all instances made in one test share its store (Redis key prefix). */
  make(options: PresenceOptions): Presence;
  /** Called after each test. */
  cleanup(): Promise<void>;
}

interface Implementation {
  name: string;
  setup(): Promise<Harness>;
  teardown(): Promise<void>;
}

function newRedis(): Redis {
  return new Redis(serviceUrls().redisUrl, { maxRetriesPerRequest: 1 });
}

/** Every key under `prefix` (SCAN, not KEYS, so a shared Redis is not blocked). */
async function keysByPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    for (const k of keys) found.add(k);
  } while (cursor !== '0');
  return [...found];
}

async function deleteByPrefix(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysByPrefix(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
}

function redisImplementation(): Implementation {
  let redis: Redis | undefined;
  return {
    name: 'RedisPresence',
    async setup() {
      redis ??= newRedis();
      const client = redis;
      const keyPrefix = `${uniqueName('presence')}:`;
      const made: Presence[] = [];
      return {
        make: (o) => {
          const p = new RedisPresence({ ...o, redis: client, keyPrefix });
          made.push(p);
          return p;
        },
        async cleanup() {
          await Promise.all(made.map((p) => p.close()));
          await deleteByPrefix(client, keyPrefix);
        },
      };
    },
    async teardown() {
      await redis?.quit();
      redis = undefined;
    },
  };
}

function memoryImplementation(): Implementation {
  return {
    name: 'MemoryPresence',
    async setup() {
      const made: Presence[] = [];
      return {
        make: (o) => {
          const p = new MemoryPresence(o);
          made.push(p);
          return p;
        },
        async cleanup() {
          await Promise.all(made.map((p) => p.close()));
        },
      };
    },
    async teardown() {},
  };
}

function conn(overrides: Partial<PresenceConnection> = {}): PresenceConnection {
  return { orgId: 'org-1', userId: 'user-1', deviceId: 'dev-1', connectionId: 'sock-1', ...overrides };
}

for (const impl of [memoryImplementation(), redisImplementation()]) {
  describe(`Presence contract: ${impl.name}`, () => {
    let harness: Harness;
    let clock: FakeClock;
    let presence: Presence;

    beforeEach(async () => {
      harness = await impl.setup();
      clock = new FakeClock();
      presence = harness.make({ ttlMs: TTL, now: clock.now });
    });
    afterEach(async () => harness.cleanup());
    after(async () => impl.teardown());

    it('answers ping', async () => {
      await presence.ping();
    });

    it('lists nobody for a user who never connected', async () => {
      expect(await presence.onlineDevices('org-1', 'nobody')).to.deep.equal([]);
    });

    it('a connected device is online', async () => {
      await presence.connect(conn());
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
    });

    it('a device with two connections is listed once and stays online until both disconnect', async () => {
      const a = conn({ connectionId: 'sock-a' });
      const b = conn({ connectionId: 'sock-b' });
      await presence.connect(a);
      await presence.connect(b);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
      await presence.disconnect(a);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
      await presence.disconnect(b);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([]);
    });

    it('keeps users apart, and the same user id in two orgs apart', async () => {
      await presence.connect(conn({ orgId: 'org-1', userId: 'alice', deviceId: 'alice-phone', connectionId: 's1' }));
      await presence.connect(conn({ orgId: 'org-1', userId: 'bob', deviceId: 'bob-laptop', connectionId: 's2' }));
      await presence.connect(conn({ orgId: 'org-2', userId: 'alice', deviceId: 'other-alice-tablet', connectionId: 's3' }));
      expect(await presence.onlineDevices('org-1', 'alice')).to.deep.equal(['alice-phone']);
      expect(await presence.onlineDevices('org-1', 'bob')).to.deep.equal(['bob-laptop']);
      expect(await presence.onlineDevices('org-2', 'alice')).to.deep.equal(['other-alice-tablet']);
      expect(await presence.onlineDevices('org-2', 'bob')).to.deep.equal([]);
    });

    it('does not confuse org/user pairs whose concatenation is the same (ids may contain ":")', async () => {
      await presence.connect(conn({ orgId: 'a:b', userId: 'c', deviceId: 'd1', connectionId: 's1' }));
      await presence.connect(conn({ orgId: 'a', userId: 'b:c', deviceId: 'd2', connectionId: 's2' }));
      expect(await presence.onlineDevices('a:b', 'c')).to.deep.equal(['d1']);
      expect(await presence.onlineDevices('a', 'b:c')).to.deep.equal(['d2']);
    });

    it('a connection with no heartbeat for ttl goes offline', async () => {
      await presence.connect(conn());
      clock.advance(TTL - 1);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
      clock.advance(1);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([]);
      clock.advance(TTL);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([]);
    });

    it('heartbeats keep connections online past the original ttl, and only those heartbeated', async () => {
      const kept1 = conn({ deviceId: 'dev-1', connectionId: 's1' });
      const kept2 = conn({ deviceId: 'dev-2', connectionId: 's2' });
      const otherUser = conn({ userId: 'user-2', deviceId: 'dev-3', connectionId: 's3' });
      const dropped = conn({ deviceId: 'dev-4', connectionId: 's4' });
      for (const c of [kept1, kept2, otherUser, dropped]) await presence.connect(c);
      for (let i = 0; i < 5; i++) {
        clock.advance(TTL / 2);
        await presence.heartbeat([kept1, kept2, otherUser]);
      }
      clock.advance(TTL - 1);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1', 'dev-2']);
      expect(await presence.onlineDevices('org-1', 'user-2')).to.deep.equal(['dev-3']);
      clock.advance(1);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([]);
    });

    it('an empty heartbeat is harmless', async () => {
      await presence.heartbeat([]);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([]);
    });

    it('a connection that expired comes back with a heartbeat (e.g. after a Redis hiccup)', async () => {
      await presence.connect(conn());
      clock.advance(TTL * 2);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([]);
      await presence.heartbeat([conn()]);
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
    });

    it('disconnecting an unknown connection is harmless', async () => {
      await presence.disconnect(conn({ connectionId: 'never-seen' }));
      await presence.disconnect(conn({ orgId: 'nowhere', userId: 'no-one', connectionId: 'x' }));
      await presence.connect(conn({ connectionId: 'real' }));
      await presence.disconnect(conn({ connectionId: 'never-seen' }));
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
    });

    it('lists distinct devices sorted', async () => {
      const devices = ['zeta', 'Alpha', 'mid-2', 'mid-10', 'alpha', '0-first'];
      for (const [i, d] of devices.entries()) {
        await presence.connect(conn({ deviceId: d, connectionId: `s${i}` }));
        await presence.connect(conn({ deviceId: d, connectionId: `t${i}` }));
      }
      expect(await presence.onlineDevices('org-1', 'user-1')).to.deep.equal([...devices].sort());
    });
  });
}

describe('RedisPresence across hub nodes', () => {
  const clients: Redis[] = [];
  let keyPrefix: string;
  let admin: Redis;

  beforeEach(() => {
    keyPrefix = `${uniqueName('presence')}:`;
    admin = newRedis();
    clients.push(admin);
  });
  afterEach(async () => {
    await deleteByPrefix(admin, keyPrefix);
    await Promise.all(clients.splice(0).map((c) => (c.status === 'end' ? undefined : c.quit())));
  });

  function node(options: PresenceOptions): { redis: Redis; presence: RedisPresence } {
    const redis = newRedis();
    clients.push(redis);
    return { redis, presence: new RedisPresence({ ...options, redis, keyPrefix }) };
  }

  it('nodes see each other; a killed node\'s devices go offline while the survivor\'s stay', async () => {
    const clock = new FakeClock();
    const a = node({ ttlMs: TTL, now: clock.now });
    const b = node({ ttlMs: TTL, now: clock.now });
    const onA = [conn({ deviceId: 'phone', connectionId: 'a-1' }), conn({ deviceId: 'tablet', connectionId: 'a-2' })];
    const onB = [conn({ deviceId: 'laptop', connectionId: 'b-1' }), conn({ deviceId: 'phone', connectionId: 'b-2' })];
    for (const c of onA) await a.presence.connect(c);
    for (const c of onB) await b.presence.connect(c);

    expect(await a.presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['laptop', 'phone', 'tablet']);
    expect(await b.presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['laptop', 'phone', 'tablet']);

    clock.advance(TTL / 2);
    await a.presence.heartbeat(onA);
    await b.presence.heartbeat(onB);

    // kill -9 node A: its socket to Redis drops, no disconnects are sent, no more heartbeats.
    a.redis.disconnect();
    for (let i = 0; i < 3; i++) {
      clock.advance(TTL / 2);
      await b.presence.heartbeat(onB);
    }
    // 'phone' stays: it also holds a connection on B. 'tablet' was only on A.
    expect(await b.presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['laptop', 'phone']);
    // A node that starts later sees the same.
    const c = node({ ttlMs: TTL, now: clock.now });
    expect(await c.presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['laptop', 'phone']);
    // And the dead node's members were pruned, not just hidden.
    const [key] = await keysByPrefix(admin, keyPrefix);
    expect(await admin.zrange(key!, 0, -1)).to.have.members([compositeKey('laptop', 'b-1'), compositeKey('phone', 'b-2')]);
  });

  it('gives keys a TTL so abandoned users do not linger in Redis forever', async () => {
    const clock = new FakeClock();
    const a = node({ ttlMs: TTL, now: clock.now });
    await a.presence.connect(conn());
    const keys = await keysByPrefix(admin, keyPrefix);
    expect(keys).to.have.length(1);
    const pttl = await admin.pttl(keys[0]!);
    expect(pttl).to.be.greaterThan(TTL);
  });

  it('expires connections with the real clock', async function () {
    this.timeout(10_000);
    const a = node({ ttlMs: 300 });
    await a.presence.connect(conn());
    expect(await a.presence.onlineDevices('org-1', 'user-1')).to.deep.equal(['dev-1']);
    // Poll rather than sleep a fixed time: assert that expiry happens, not exactly when.
    const deadline = Date.now() + 5_000;
    let online = ['dev-1'];
    while (online.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      online = await a.presence.onlineDevices('org-1', 'user-1');
    }
    expect(online).to.deep.equal([]);
  });
});
