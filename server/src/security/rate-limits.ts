import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ErrorCode, compositeKey } from '@curbside/shared';
import { DEADLINE_PASSED, HubError, beforeDeadline } from '../errors.js';
import type { Logger } from '../logger.js';
import { EVENT_CLASSES, ORG_BUDGET_FACTOR, USER_BUDGET_FACTOR, type RateLimitRule, type SecurityConfig } from './config.js';

export type RateLimitName = keyof SecurityConfig['rateLimits'];
type BudgetFactors = NonNullable<SecurityConfig['budgetFactors']>;

/** Budgets above a device's, as multiples of its rule (same window). */
function scopedBudgets(factors: BudgetFactors): Partial<Record<RateLimitName, { user: number; org?: number }>> {
  return {
    handshake: { user: 4 },
    envelopeSend: factors,
    ...Object.fromEntries(EVENT_CLASSES.map((c) => [c, c === 'unknown' ? { user: factors.user } : factors])),
  };
}

/** Who a scoped budget is charged to. */
export interface BudgetKeys {
  orgId: string;
  userId: string;
  deviceId: string;
}

export interface RateLimitsOptions {
  rules: SecurityConfig['rateLimits'];
  /** @default `{ user: USER_BUDGET_FACTOR, org: ORG_BUDGET_FACTOR }` */
  budgetFactors?: BudgetFactors | undefined;
  /** Shared counters across hub nodes. Absent (dev mode): per-process memory counters. */
  redis?: { client: Redis; keyPrefix: string } | undefined;
  /**
   * A Redis call slower than this falls back to the in-memory insurance limiter (timed like the hub's
   * other Redis reads: a reply that came while the event loop was busy still counts). @default 250
   */
  redisTimeoutMs?: number;
  logger?: Pick<Logger, 'warn'> | undefined;
}

/**
 * Rate limits on rate-limiter-flexible. With Redis the counters are shared by every hub node
 * (`RateLimiterRedis`); when Redis is down, not ready or slow, each node falls back to an in-memory
 * insurance limiter with the same rule, so limits still hold per node and nothing waits on Redis.
 *
 * "Slow" is timed with `beforeDeadline`, not rate-limiter-flexible's `RLWrapperTimeouts`, whose timer
 * fired before a reply already waiting in the socket was read: a node whose event loop lagged past the
 * timeout decided on its own memory counters, and so let through requests whose shared budget other
 * nodes had spent (test/security/rate-limits.test.ts).
 */
export class RateLimits {
  /** By rule name, and `<name>@user` / `<name>@org` for the budgets above a device's. */
  private readonly limiters = new Map<string, { rule: RateLimitRule; limiter: RateLimiterAbstract; insurance?: RateLimiterMemory }>();
  private readonly redisTimeoutMs: number;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  private readonly scoped: ReturnType<typeof scopedBudgets>;
  /** The shared counters' Redis (absent in dev mode), for the one-call scoped budgets. */
  private readonly redis: Redis | undefined;

  constructor(options: RateLimitsOptions) {
    this.logger = options.logger;
    this.redisTimeoutMs = options.redisTimeoutMs ?? 250;
    this.scoped = scopedBudgets(options.budgetFactors ?? { user: USER_BUDGET_FACTOR, org: ORG_BUDGET_FACTOR });
    const rules: Array<[string, RateLimitRule]> = [];
    for (const [name, rule] of Object.entries(options.rules) as Array<[RateLimitName, RateLimitRule]>) {
      if (rule.points <= 0) continue;
      rules.push([name, rule]);
      const scoped = this.scoped[name];
      if (scoped) rules.push([`${name}@user`, { points: rule.points * scoped.user, durationSec: rule.durationSec }]);
      if (scoped?.org) rules.push([`${name}@org`, { points: rule.points * scoped.org, durationSec: rule.durationSec }]);
    }
    for (const [name, rule] of rules) {
      const base = { points: rule.points, duration: rule.durationSec, keyPrefix: `rl:${name}` };
      if (!options.redis) {
        this.limiters.set(name, { rule, limiter: new RateLimiterMemory(base) });
        continue;
      }
      // Redis errors (down, not ready) go to the insurance limiter inside RateLimiterRedis; a late answer here.
      const insurance = new RateLimiterMemory(base);
      const limiter = new RateLimiterRedis({
        ...base,
        keyPrefix: `${options.redis.keyPrefix}rl:${name}`,
        storeClient: options.redis.client,
        rejectIfRedisNotReady: true,
        insuranceLimiter: insurance,
      });
      this.limiters.set(name, { rule, limiter, insurance });
    }
    if (options.redis) {
      this.redis = options.redis.client;
      // ioredis sends it as EVALSHA, and loads it (EVAL) where the server does not have it yet.
      if (!(CONSUME_BUDGETS in options.redis.client)) options.redis.client.defineCommand(CONSUME_BUDGETS, { lua: CONSUME_BUDGETS_LUA });
    }
  }

  /**
   * Take `points` from the caller's budget.
   * @throws HubError RATE_LIMITED with `details.retryAfterMs` when the budget is spent.
   */
  async consume(name: RateLimitName, key: string, points = 1): Promise<void> {
    return this.consumeFrom(name, key, points);
  }

  /**
   * Take `points` from the device's budget for `name`, and from its user's and organisation's where
   * the rule has them (all at once; refused if any is spent, and every one is charged either way, as
   * a refused request counts). With Redis the budgets are one script call (`consumeBudgets`): one
   * command per request however many budgets it has, not one per budget.
   * @throws HubError RATE_LIMITED, naming the budget that was spent (the device's first, then the
   * user's, then the organisation's).
   */
  async consumeScoped(name: RateLimitName, who: BudgetKeys, points = 1): Promise<void> {
    const scoped = this.scoped[name];
    const budgets: Array<[string, string]> = [[name, rateKey(who.orgId, who.deviceId)]];
    if (scoped) budgets.push([`${name}@user`, rateKey(who.orgId, who.userId)]);
    if (scoped?.org) budgets.push([`${name}@org`, rateKey(who.orgId)]);
    const charged = budgets.flatMap(([limit, key]) => {
      const entry = this.limiters.get(limit);
      return entry ? [{ limit, key, entry, cost: costOf(points, entry.rule) }] : [];
    });
    const redis = this.redis;
    if (!redis || charged.length < 2) {
      await Promise.all(charged.map((c) => this.consumeFrom(c.limit, c.key, points)));
      return;
    }
    const answers = redis.status === 'ready' ? await this.inRedis(redis, charged) : undefined;
    if (!answers) {
      // Redis down, not ready, failing or late: each budget from its insurance limiter, as consumeFrom does.
      await Promise.all(charged.map((c) => this.consumeIn({ limiter: c.entry.insurance! }, c.limit, c.key, c.cost)));
      return;
    }
    charged.forEach((c, i) => {
      const [consumed, msLeft] = [answers[2 * i]!, answers[2 * i + 1]!];
      if (consumed > c.entry.rule.points) throw rateLimited(c.limit, msLeft);
    });
  }

  /** One `consumeBudgets` call for several budgets: `[consumed, ms left]` per budget, or undefined when Redis failed or was late. */
  private async inRedis(client: Redis, charged: Array<{ key: string; entry: { rule: RateLimitRule; limiter: RateLimiterAbstract }; cost: number }>): Promise<number[] | undefined> {
    // The key each budget's RateLimiterRedis reads and writes, named by the limiter itself.
    const keys = charged.map((c) => c.entry.limiter.getKey(c.key));
    const args = charged.flatMap((c) => [c.cost, c.entry.rule.durationSec]);
    const call = (client as unknown as ConsumeBudgets)[CONSUME_BUDGETS](keys.length, ...keys, ...args);
    try {
      const answer = await beforeDeadline(call, this.redisTimeoutMs);
      return answer === DEADLINE_PASSED ? undefined : answer;
    } catch {
      return undefined;
    }
  }

  /** Whether `key` has spent its `name` budget, without spending anything. */
  async spent(name: RateLimitName, key: string): Promise<boolean> {
    const entry = this.limiters.get(name);
    if (!entry) return false;
    try {
      const res = await this.ask(entry, (l) => l.get(key));
      return res !== null && res.consumedPoints >= entry.rule.points;
    } catch {
      return false;
    }
  }

  /** Ask the limiter; with Redis late (`redisTimeoutMs`), its insurance limiter instead. */
  private async ask<T>(entry: { limiter: RateLimiterAbstract; insurance?: RateLimiterMemory | undefined }, call: (limiter: RateLimiterAbstract) => Promise<T>): Promise<T> {
    if (!entry.insurance) return call(entry.limiter);
    const answer = await beforeDeadline(call(entry.limiter), this.redisTimeoutMs);
    return answer === DEADLINE_PASSED ? call(entry.insurance) : answer;
  }

  private async consumeFrom(name: string, key: string, points: number): Promise<void> {
    const entry = this.limiters.get(name);
    if (!entry) return;
    await this.consumeIn(entry, name, key, costOf(points, entry.rule));
  }

  private async consumeIn(entry: { limiter: RateLimiterAbstract; insurance?: RateLimiterMemory | undefined }, name: string, key: string, cost: number): Promise<void> {
    try {
      await this.ask(entry, (l) => l.consume(key, cost));
    } catch (err) {
      if (err instanceof RateLimiterRes) throw rateLimited(name, err.msBeforeNext);
      // Both Redis and the insurance limiter failed: let the request through rather than take the hub down.
      this.logger?.warn({ err, limit: name }, 'rate limiter failed; request allowed');
    }
  }
}

/** A single request never costs more than a whole window, or it could never pass. */
function costOf(points: number, rule: RateLimitRule): number {
  return Math.max(1, Math.min(points, rule.points));
}

function rateLimited(limit: string, msBeforeNext: number): HubError {
  const retryAfterMs = Math.max(1, Math.ceil(msBeforeNext));
  return new HubError(ErrorCode.RATE_LIMITED, `Too many requests (${limit}); retry in ${retryAfterMs} ms`, { limit, retryAfterMs });
}

/**
 * rate-limiter-flexible's counter script (RateLimiterRedis: a fixed window per key, created with its
 * expiry, then incremented), run for every key of one request in one call, so the counters are the
 * same ones `RateLimiterRedis` reads and writes. ARGV holds a (points, window seconds) pair per key;
 * the answer a (consumed, ms left) pair per key. The keys of one call must live on one Redis server
 * (the hub runs on one Redis server or a primary with replicas, not Redis Cluster; its directory
 * reads are multi-key too).
 */
const CONSUME_BUDGETS = 'curbsideConsumeBudgets';
const CONSUME_BUDGETS_LUA = `
local answer = {}
for i = 1, #KEYS do
  local points, seconds = ARGV[2 * i - 1], ARGV[2 * i]
  redis.call('set', KEYS[i], 0, 'EX', seconds, 'NX')
  local consumed = redis.call('incrby', KEYS[i], points)
  local ttl = redis.call('pttl', KEYS[i])
  if ttl == -1 then
    redis.call('expire', KEYS[i], seconds)
    ttl = 1000 * seconds
  end
  answer[2 * i - 1] = consumed
  answer[2 * i] = ttl
end
return answer
`;
type ConsumeBudgets = Record<typeof CONSUME_BUDGETS, (numKeys: number, ...keysThenArgs: Array<string | number>) => Promise<number[]>>;

/** Keys never collide across tenants: one `compositeKey` per (org, id) or address. */
export function rateKey(...parts: string[]): string {
  return compositeKey(...parts);
}
