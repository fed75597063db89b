/**
 * Rate limits with rate-limiter-flexible: shared counters on real Redis, the in-memory insurance
 * limiter when Redis is stopped (a private redis-server, never the shared one), memory in dev mode,
 * and the hub's typed RATE_LIMITED answers with `details.retryAfterMs`.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ErrorCode, type Conversation } from '@curbside/shared';
import { HubError, RateLimits, rateLimitsOff, type HubConfig, type SecurityConfig } from '@curbside/server';
import { sharedBackend } from '../support/hub.js';
import { serviceUrls, startRedisServer, uniqueName } from '../support/services.js';
import { testDeviceKeys } from '../support/keys.js';
import { blockEventLoop } from '../support/busy.js';
import { connectRaw, errorCode, handshakeOutcome, rawHubs } from './support.js';

const rules = (over: Partial<SecurityConfig['rateLimits']>): SecurityConfig['rateLimits'] => ({ ...rateLimitsOff(), ...over });

async function outcome(p: Promise<void>): Promise<string | number> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    expect(e).to.be.instanceOf(HubError);
    expect((e as HubError).code).to.equal(ErrorCode.RATE_LIMITED);
    const retry = (e as HubError).details?.retryAfterMs as number;
    expect(retry).to.be.a('number').greaterThan(0);
    return retry;
  }
}

describe('rate limits', function () {
  describe('RateLimits on real Redis', function () {
    const clients: Redis[] = [];
    afterEach(() => clients.splice(0).forEach((c) => c.disconnect()));
    /** A connected client: before it is ready, the limiter deliberately uses its insurance limiter. */
    const redis = async (url = serviceUrls().redisUrl) => {
      const c = new Redis(url, { maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      await c.ping();
      return c;
    };

    it('two hub nodes share one budget per key, and RATE_LIMITED says when to retry', async () => {
      const keyPrefix = `${uniqueName('rl')}:`;
      const node1 = new RateLimits({ rules: rules({ envelopeSend: { points: 5, durationSec: 10 } }), redis: { client: await redis(), keyPrefix } });
      const node2 = new RateLimits({ rules: rules({ envelopeSend: { points: 5, durationSec: 10 } }), redis: { client: await redis(), keyPrefix } });
      const results = [];
      for (let i = 0; i < 6; i++) results.push(await outcome((i % 2 ? node2 : node1).consume('envelopeSend', 'org-a\ndev-1')));
      expect(results.slice(0, 5)).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'ok']);
      expect(results[5]).to.be.a('number').within(1, 10_000);
      // Another key has its own budget.
      expect(await outcome(node2.consume('envelopeSend', 'org-a\ndev-2'))).to.equal('ok');
      // The counter lives in Redis under the hub's prefix.
      const keys = await (await redis()).keys(`${keyPrefix}rl:envelopeSend*`);
      expect(keys.length).to.equal(2);
      await (await redis()).del(...keys);
    });

    it('a request costing several points (keys:claim per user named) spends them, capped at one window', async () => {
      const keyPrefix = `${uniqueName('rl')}:`;
      const rl = new RateLimits({ rules: rules({ keysClaim: { points: 10, durationSec: 60 } }), redis: { client: await redis(), keyPrefix } });
      expect(await outcome(rl.consume('keysClaim', 'u', 8))).to.equal('ok');
      expect(await outcome(rl.consume('keysClaim', 'u', 3))).to.be.a('number');
      expect(await outcome(rl.consume('keysClaim', 'v', 500)), 'a request larger than the window still passes on a fresh budget').to.equal('ok');
      const r = await redis();
      await r.del(...(await r.keys(`${keyPrefix}*`)));
    });

    it('with Redis stopped, each node falls back to its in-memory insurance limiter at once, and back to Redis when it returns', async () => {
      const server = await startRedisServer();
      try {
        const client = await redis(server.url);
        const rl = new RateLimits({ rules: rules({ envelopeSend: { points: 3, durationSec: 30 } }), redis: { client, keyPrefix: 'private:' }, redisTimeoutMs: 200 });
        expect(await outcome(rl.consume('envelopeSend', 'k'))).to.equal('ok');
        expect(await client.get('private:rl:envelopeSend:k')).to.equal('1');

        await server.stop();
        // Answered by the in-memory insurance limiter, not by waiting for Redis to come back (the bound
        // is for a hung test, not a measurement).
        const consumeFour = (async () => {
          const out = [];
          for (let i = 0; i < 4; i++) out.push(await outcome(rl.consume('envelopeSend', 'k')));
          return out;
        })();
        const down = await Promise.race([consumeFour, new Promise<string[]>((r) => setTimeout(() => r(['waited on the dead Redis']), 15_000))]);
        expect(down.slice(0, 3)).to.deep.equal(['ok', 'ok', 'ok']);
        expect(down[3], 'the insurance limiter enforces the same rule').to.be.a('number');

        const again = await startRedisServer(server.port);
        try {
          const deadline = Date.now() + 10_000;
          while (client.status !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          expect(client.status).to.equal('ready');
          expect(await outcome(rl.consume('envelopeSend', 'k2'))).to.equal('ok');
          expect(await client.get('private:rl:envelopeSend:k2'), 'counting in Redis again').to.equal('1');
        } finally {
          await again.stop();
        }
      } finally {
        await server.stop();
      }
    });

    it('a node whose event loop lagged past the Redis timeout still decides on the shared budget, not its own memory', async () => {
      const keyPrefix = `${uniqueName('rl')}:`;
      const rule = rules({ envelopeSend: { points: 3, durationSec: 60 } });
      const busy = new RateLimits({ rules: rule, redis: { client: await redis(), keyPrefix }, redisTimeoutMs: 20 });
      const other = new RateLimits({ rules: rule, redis: { client: await redis(), keyPrefix } });
      expect(await outcome(busy.consume('envelopeSend', 'warm-up')), 'warm: the script is loaded').to.equal('ok');
      for (let i = 0; i < 3; i++) expect(await outcome(other.consume('envelopeSend', 'org-a\ndev-1'))).to.equal('ok');
      for (let round = 0; round < 3; round++) {
        const answer = outcome(busy.consume('envelopeSend', 'org-a\ndev-1'));
        blockEventLoop(200); // Redis answers within a millisecond; the 20 ms timer is long overdue when the loop turns
        expect(await answer, `round ${round}: the budget the other node spent`).to.be.a('number');
      }
      expect(await outcome(busy.consume('envelopeSend', 'org-a\ndev-2')), 'another key still passes').to.equal('ok');
      const r = await redis();
      expect(await r.get(`${keyPrefix}rl:envelopeSend:org-a\ndev-1`), 'every attempt counted in Redis').to.equal('6');
      await r.del(...(await r.keys(`${keyPrefix}*`)));
    });

    it('a request with device, user and organisation budgets costs one Redis command, on the counters RateLimiterRedis keeps', async () => {
      const server = await startRedisServer(); // private: its command counts are this test's alone
      try {
        const client = await redis(server.url);
        const rule = rules({ envelopeSend: { points: 2, durationSec: 60 } });
        const node1 = new RateLimits({ rules: rule, budgetFactors: { user: 2, org: 3 }, redis: { client, keyPrefix: 'p:' } });
        const node2 = new RateLimits({ rules: rule, budgetFactors: { user: 2, org: 3 }, redis: { client: await redis(server.url), keyPrefix: 'p:' } });
        const lee = (deviceId: string) => ({ orgId: 'org-a', userId: 'dr-lee', deviceId });
        const scoped = (rl: RateLimits, who: { orgId: string; userId: string; deviceId: string }) =>
          rl.consumeScoped('envelopeSend', who).then(
            () => 'ok',
            (e: unknown) => `${(e as HubError).code} ${String((e as HubError).details?.limit)} ${(e as HubError).details?.retryAfterMs as number > 0}`,
          );
        await client.config('RESETSTAT');
        // Device 2, user 4, organisation 6 per minute; refused requests count too. Two nodes, one budget.
        const out = [await scoped(node1, lee('phone')), await scoped(node2, lee('phone')), await scoped(node1, lee('phone'))];
        out.push(await scoped(node2, lee('laptop')), await scoped(node1, lee('tablet')));
        out.push(await scoped(node2, { orgId: 'org-a', userId: 'dr-kim', deviceId: 'kim' }), await scoped(node1, { orgId: 'org-a', userId: 'dr-kim', deviceId: 'kim' }));
        out.push(await scoped(node2, { orgId: 'org-b', userId: 'dr-kim', deviceId: 'kim' }));
        expect(out).to.deep.equal([
          'ok',
          'ok',
          `${ErrorCode.RATE_LIMITED} envelopeSend true`,
          'ok',
          `${ErrorCode.RATE_LIMITED} envelopeSend@user true`,
          'ok',
          `${ErrorCode.RATE_LIMITED} envelopeSend@org true`,
          'ok',
        ]);
        const calls = (await client.info('commandstats')).split('\n').filter((l) => /^cmdstat_(evalsha|eval):/.test(l));
        const total = calls.reduce((n, l) => n + Number(/calls=(\d+)/.exec(l)![1]), 0);
        expect(total, calls.join(' ')).to.equal(out.length);
        // RateLimiterRedis (what a single-budget consume and `spent` use) reads the same counters.
        expect(await client.get('p:rl:envelopeSend@user:org-a dr-lee')).to.equal('5');
        expect(await client.get('p:rl:envelopeSend@org:org-a')).to.equal('7');
        expect(await node2.spent('envelopeSend', 'org-a phone'), 'the device budget is spent').to.equal(true);
        expect(await client.pttl('p:rl:envelopeSend:org-a phone')).to.be.within(1, 60_000);
      } finally {
        await server.stop();
      }
    });

    it('a scoped request falls back to the insurance limiters when Redis is stopped, and still refuses past the user budget', async () => {
      const server = await startRedisServer();
      try {
        const client = await redis(server.url);
        const rl = new RateLimits({ rules: rules({ envelopeSend: { points: 2, durationSec: 60 } }), budgetFactors: { user: 2, org: 100 }, redis: { client, keyPrefix: 'p:' }, redisTimeoutMs: 200 });
        const who = (deviceId: string) => ({ orgId: 'org-a', userId: 'dr-lee', deviceId });
        await server.stop();
        const out = [];
        for (const d of ['phone', 'phone', 'phone', 'laptop', 'tablet']) out.push(await outcome(rl.consumeScoped('envelopeSend', who(d))));
        expect(out.map((o) => (o === 'ok' ? o : 'limited'))).to.deep.equal(['ok', 'ok', 'limited', 'ok', 'limited']);
      } finally {
        await server.stop();
      }
    });

    it('a scoped request on a node whose event loop lagged still decides on the shared budgets', async () => {
      const keyPrefix = `${uniqueName('rl')}:`;
      const rule = rules({ envelopeSend: { points: 3, durationSec: 60 } });
      const busy = new RateLimits({ rules: rule, budgetFactors: { user: 1, org: 10 }, redis: { client: await redis(), keyPrefix }, redisTimeoutMs: 20 });
      const other = new RateLimits({ rules: rule, budgetFactors: { user: 1, org: 10 }, redis: { client: await redis(), keyPrefix } });
      const who = (deviceId: string) => ({ orgId: 'org-a', userId: 'dr-lee', deviceId });
      expect(await outcome(busy.consumeScoped('envelopeSend', who('warm-up'))), 'warm: the script is loaded').to.equal('ok');
      for (let i = 0; i < 2; i++) expect(await outcome(other.consumeScoped('envelopeSend', who('phone')))).to.equal('ok');
      const answer = outcome(busy.consumeScoped('envelopeSend', who('laptop')));
      blockEventLoop(200);
      expect(await answer, 'the user budget (3) the other node spent').to.be.a('number');
      const r = await redis();
      expect(await r.get(`${keyPrefix}rl:envelopeSend@user:org-a dr-lee`), 'counted in Redis, not in memory').to.equal('4');
      await r.del(...(await r.keys(`${keyPrefix}*`)));
    });

    it('dev mode (no Redis) counts in memory', async () => {
      const rl = new RateLimits({ rules: rules({ handshake: { points: 2, durationSec: 60 } }) });
      expect([await outcome(rl.consume('handshake', 'ip')), await outcome(rl.consume('handshake', 'ip'))]).to.deep.equal(['ok', 'ok']);
      expect(await outcome(rl.consume('handshake', 'ip'))).to.be.a('number');
    });
  });

  describe('the hub', function () {
    const { harness, open } = rawHubs();
    const limited = (over: Partial<SecurityConfig['rateLimits']>) => (c: HubConfig) => {
      c.security = { corsOrigins: [], rateLimits: rules(over), revocationRecheckMs: 60_000 };
    };

    it('limits envelope:send per device on real Redis: the refused send is RATE_LIMITED with retryAfterMs and stores nothing', async () => {
      const t = await harness.start('real', sharedBackend(), limited({ envelopeSend: { points: 3, durationSec: 30 } }));
      const lee = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
      const leeDesk = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-desk' }));
      open.push(lee, leeDesk);
      const conv = await lee.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' });
      const conversationId = conv.ok ? conv.data.id : '';
      const acks = [];
      for (let i = 0; i < 4; i++) acks.push(await lee.call('envelope:send', { conversationId, clientMessageId: `m${i}`, body: new Uint8Array([i + 1]) }));
      expect(acks.map(errorCode)).to.deep.equal(['ok', 'ok', 'ok', ErrorCode.RATE_LIMITED]);
      const refused = acks[3]!;
      expect(!refused.ok && refused.error.details?.retryAfterMs).to.be.a('number').within(1, 30_000);
      expect(await t.storage.findSent('org-a', 'lee-phone', 'm3')).to.equal(undefined);
      // Per device: the same user's other device has its own budget.
      expect(errorCode(await leeDesk.call('envelope:send', { conversationId, clientMessageId: 'd0', body: new Uint8Array([9]) }))).to.equal('ok');
    });

    it('limits verified handshakes per device, and failed ones per address', async () => {
      const t = await harness.start('real', sharedBackend(), limited({ handshake: { points: 2, durationSec: 60 }, handshakeFailures: { points: 2, durationSec: 60 } }));
      const outcomes = [];
      outcomes.push(await handshakeOutcome(t.url, 'garbage'));
      outcomes.push(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })));
      outcomes.push(await handshakeOutcome(t.url, undefined));
      outcomes.push(await handshakeOutcome(t.url, 'garbage again'));
      outcomes.push(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })));
      outcomes.push(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })));
      outcomes.push(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-laptop' })));
      expect(outcomes).to.deep.equal([ErrorCode.AUTH_INVALID, 'connected', ErrorCode.AUTH_REQUIRED, ErrorCode.RATE_LIMITED, 'connected', ErrorCode.RATE_LIMITED, 'connected']);
    });

    it('limits keys:claim per user, one point per user named, so bundles cannot be harvested', async () => {
      const t = await harness.start('real', sharedBackend(), limited({ keysClaim: { points: 4, durationSec: 60 } }));
      const target = await connectRaw(t.url, t.idp.mint({ userId: 'dr-patel', deviceId: 'patel-phone' }));
      const harvester = await connectRaw(t.url, t.idp.mint({ userId: 'dr-mallory', deviceId: 'm1' }));
      const harvester2 = await connectRaw(t.url, t.idp.mint({ userId: 'dr-mallory', deviceId: 'm2' }));
      open.push(target, harvester, harvester2);
      const k = testDeviceKeys();
      expect(errorCode(await target.call('keys:publish', { identityKey: k.identityKey, signedPrekey: k.signedPrekey(), oneTimePrekeys: k.oneTimePrekeys(50) }))).to.equal('ok');
      const codes = [];
      codes.push(errorCode(await harvester.call('keys:claim', { userIds: ['dr-patel', 'dr-x', 'dr-y'] })));
      codes.push(errorCode(await harvester2.call('keys:claim', { userIds: ['dr-patel'] })));
      codes.push(errorCode(await harvester.call('keys:claim', { userIds: ['dr-patel'] })));
      expect(codes, 'per user, across the user’s devices').to.deep.equal(['ok', 'ok', ErrorCode.RATE_LIMITED]);
      expect(await t.storage.countOneTimePrekeys('org-a', 'patel-phone')).to.equal(48);
    });

    it('keeps limiting (per node) and answering when its Redis is stopped', async function () {
      const server = await startRedisServer();
      try {
        const t = await harness.start('real', { ...sharedBackend(), redisUrl: server.url }, limited({ envelopeSend: { points: 2, durationSec: 30 } }));
        const lee = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
        open.push(lee);
        const conv = await lee.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' });
        const conversationId = conv.ok ? conv.data.id : '';
        await server.stop();
        const acks = [];
        for (let i = 0; i < 3; i++) acks.push(await lee.call('envelope:send', { conversationId, clientMessageId: `m${i}`, body: new Uint8Array([1]) }));
        // Answered at all (the raw client's calls time out otherwise), and limited by the per-node insurance limiter.
        expect(acks.map(errorCode)).to.deep.equal(['ok', 'ok', ErrorCode.RATE_LIMITED]);
      } finally {
        await server.stop();
      }
    });

    it('dev mode (memory adapters) limits too', async () => {
      const t = await harness.start('memory', sharedBackend(), limited({ handshake: { points: 1, durationSec: 60 } }));
      expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'a', deviceId: 'b' }))).to.equal('connected');
      expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'a', deviceId: 'b' }))).to.equal(ErrorCode.RATE_LIMITED);
    });
  });
});
