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
   * the rule has them (all at once; refused if any is spent). With Redis the three go out in one
   * round trip (ioredis auto-pipelining).
   * @throws HubError RATE_LIMITED, naming the budget that was spent.
   */
  async consumeScoped(name: RateLimitName, who: BudgetKeys, points = 1): Promise<void> {
    const scoped = this.scoped[name];
    await Promise.all([
      this.consumeFrom(name, rateKey(who.orgId, who.deviceId), points),
      ...(scoped ? [this.consumeFrom(`${name}@user`, rateKey(who.orgId, who.userId), points)] : []),
      ...(scoped?.org ? [this.consumeFrom(`${name}@org`, rateKey(who.orgId), points)] : []),
    ]);
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
    // A single request never costs more than a whole window, or it could never pass.
    const cost = Math.max(1, Math.min(points, entry.rule.points));
    try {
      await this.ask(entry, (l) => l.consume(key, cost));
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const retryAfterMs = Math.max(1, Math.ceil(err.msBeforeNext));
        throw new HubError(ErrorCode.RATE_LIMITED, `Too many requests (${name}); retry in ${retryAfterMs} ms`, { limit: name, retryAfterMs });
      }
      // Both Redis and the insurance limiter failed: let the request through rather than take the hub down.
      this.logger?.warn({ err, limit: name }, 'rate limiter failed; request allowed');
    }
  }
}

/** Keys never collide across tenants: one `compositeKey` per (org, id) or address. */
export function rateKey(...parts: string[]): string {
  return compositeKey(...parts);
}
