/**
 * What a rate-limited request costs in the hub and in Redis. Each `envelope:send`, `sync:ack` and
 * other event is charged to three budgets (device, user, organisation). Measured on real Redis, in
 * one run, alternating:
 *
 * - baseline: one `RateLimiterRedis.consume` per budget, three script calls (the hub before
 *   `consumeBudgets`; without the per-call deadline timer it also had, so the baseline is cheap);
 * - the hub's `RateLimits.consumeScoped`: the three budgets in one script call.
 *
 * Prints requests per second at `--concurrency`, this process's CPU and Redis's CPU (INFO cpu) per
 * request. Redis is the one `npm test` uses (REDIS_URL, 127.0.0.1:6379, or a private redis-server).
 *
 *   npx tsx scripts/bench/rate-limits.ts [--requests 30000] [--concurrency 64] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { RateLimits, rateLimitsOff } from '../../server/src/index.js';
import { ensureRedis, uniqueName } from '../../test/support/services.js';
import { runBench } from './server-process.js';

const { values: flags } = parseArgs({
  options: { requests: { type: 'string', default: '30000' }, concurrency: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' } },
});
const REQUESTS = Number(flags.requests);
const CONCURRENCY = Number(flags.concurrency);
const ROUNDS = Number(flags.rounds);

runBench(async () => {
  const service = await ensureRedis();
  const client = new Redis(service.url, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  const prefix = `${uniqueName('bench-rl')}:`;
  try {
    await client.ping();
    // Budgets nobody reaches: the cost of counting, not of refusing.
    const rules = { ...rateLimitsOff(), envelopeSend: { points: 1e9, durationSec: 60 } };
    const scoped = new RateLimits({ rules, budgetFactors: { user: 2, org: 3 }, redis: { client, keyPrefix: `${prefix}new:` } });
    const perBudget = ['envelopeSend', 'envelopeSend@user', 'envelopeSend@org'].map(
      (name) =>
        new RateLimiterRedis({
          points: 1e9,
          duration: 60,
          keyPrefix: `${prefix}old:rl:${name}`,
          storeClient: client,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new RateLimiterMemory({ points: 1e9, duration: 60 }),
        }),
    );
    const who = (i: number) => ({ orgId: 'org-a', userId: `u${i % 100}`, deviceId: `d${i % 500}` });
    const variants: Array<[string, (i: number) => Promise<unknown>]> = [
      ['three script calls (a RateLimiterRedis per budget)', (i) => Promise.all([perBudget[0]!.consume(`org-a d${i % 500}`), perBudget[1]!.consume(`org-a u${i % 100}`), perBudget[2]!.consume('org-a')])],
      ['one script call (RateLimits.consumeScoped)', (i) => scoped.consumeScoped('envelopeSend', who(i))],
    ];
    console.log(`${REQUESTS} requests of three budgets each, ${CONCURRENCY} at a time, Redis ${service.url}`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [label, one] of variants) {
        const r = await measure(client, one);
        console.log(`round ${round}, ${label}: ${r.perS.toFixed(0)} req/s; CPU per request: this process ${r.nodeUs.toFixed(1)} µs, Redis ${r.redisUs.toFixed(1)} µs`);
      }
    }
  } finally {
    const keys = await client.keys(`${prefix}*`);
    for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500));
    client.disconnect();
    await service.stop();
  }
});

async function measure(client: Redis, one: (i: number) => Promise<unknown>): Promise<{ perS: number; nodeUs: number; redisUs: number }> {
  const redisCpuS = async () => {
    const info = await client.info('cpu');
    return Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]);
  };
  const redis0 = await redisCpuS();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) await one(next++);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const redis = (await redisCpuS()) - redis0;
  return { perS: REQUESTS / seconds, nodeUs: (cpu.user + cpu.system) / REQUESTS, redisUs: (redis * 1e6) / REQUESTS };
}
