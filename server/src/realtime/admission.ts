/**
 * Load shedding: how many client requests one node handles at once. Past the limit a new request is
 * refused at once with a retryable UNAVAILABLE and a retry hint, before anything is read, checked or
 * written for it, so an overloaded node keeps answering (the requests it took finish in bounded time)
 * instead of queueing without bound until its event loop stalls, its Redis calls time out and every
 * answer comes seconds late. The SDK retries a shed request after the hint (its outbox keeps a send).
 */
import { ErrorCode, type WireError } from '@curbside/shared';
import type { Logger } from '../logger.js';
import type { HubMetrics } from '../metrics/metrics.js';

/** Requests one node handles at once by default (`MAX_IN_FLIGHT`). */
export const DEFAULT_MAX_IN_FLIGHT = 2000;
/** A shed request's retry hint: this, plus up to as much again at random so retries spread out. */
export const SHED_RETRY_AFTER_MS = 500;
/**
 * An admitted request unanswered this long has a handler that will not settle (every route settles
 * through its driver's and Redis's own timeouts well before): its place is given back, so a handful of
 * stuck requests cannot leave a node refusing everything. @default 2 min
 */
export const ADMISSION_HOLD_LIMIT_MS = 120_000;
/** At most one overload warning per this long. */
const WARN_EVERY_MS = 10_000;

/** A place taken by an admitted request. */
interface Place {
  event: string;
  at: number;
}

/** What `Admission.admit` answers: go on (and `release` once answered), or the error to answer with. */
export type Admitted = { ok: true; release: () => void } | { ok: false; error: WireError };

export class Admission {
  /** Places held, oldest first (a Set keeps insertion order). */
  private readonly held = new Set<Place>();
  private shedSinceWarning = 0;
  private warnedAt = -Infinity;
  private readonly now: () => number;
  private readonly holdLimitMs: number;

  constructor(
    private readonly limit: number,
    private readonly deps: {
      logger: Pick<Logger, 'warn' | 'error'>;
      metrics?: Pick<HubMetrics, 'requestsShed'> | undefined;
      random?: () => number;
      now?: () => number;
      /** @default ADMISSION_HOLD_LIMIT_MS */
      holdLimitMs?: number;
    },
  ) {
    this.now = deps.now ?? (() => performance.now());
    this.holdLimitMs = deps.holdLimitMs ?? ADMISSION_HOLD_LIMIT_MS;
  }

  /** Requests admitted and not yet answered. */
  get inFlight(): number {
    return this.held.size;
  }

  /** Admit a request for `event`, or refuse it when `limit` requests are in flight. */
  admit(event: string): Admitted {
    if (this.held.size >= this.limit) this.reclaimStuck();
    if (this.held.size < this.limit) {
      const place: Place = { event, at: this.now() };
      this.held.add(place);
      return { ok: true, release: () => void this.held.delete(place) };
    }
    this.deps.metrics?.requestsShed.inc({ event });
    this.shedSinceWarning++;
    const now = this.now();
    if (now - this.warnedAt >= WARN_EVERY_MS) {
      this.deps.logger.warn({ inFlight: this.held.size, limit: this.limit, shed: this.shedSinceWarning }, 'overloaded: refusing new requests until some in flight are answered (MAX_IN_FLIGHT)');
      this.warnedAt = now;
      this.shedSinceWarning = 0;
    }
    const retryAfterMs = Math.round(SHED_RETRY_AFTER_MS * (1 + (this.deps.random ?? Math.random)()));
    return {
      ok: false,
      error: { code: ErrorCode.UNAVAILABLE, message: `This hub node is overloaded (${this.held.size} requests in flight); retry in ${retryAfterMs} ms`, details: { retryAfterMs, overloaded: true } },
    };
  }

  /** Give back the places of requests unanswered for longer than the hold limit (oldest first). */
  private reclaimStuck(): void {
    const now = this.now();
    const stuck: string[] = [];
    for (const place of this.held) {
      if (now - place.at < this.holdLimitMs) break;
      this.held.delete(place);
      stuck.push(place.event);
    }
    if (stuck.length > 0) {
      this.deps.logger.error({ reclaimed: stuck.length, events: [...new Set(stuck)], holdLimitMs: this.holdLimitMs }, 'requests unanswered past the hold limit: their handlers are stuck; their places are given back');
    }
  }
}
