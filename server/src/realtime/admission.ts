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
/** At most one overload warning per this long. */
const WARN_EVERY_MS = 10_000;

export class Admission {
  private held = 0;
  private shedSinceWarning = 0;
  private warnedAt = -Infinity;

  constructor(
    private readonly limit: number,
    private readonly deps: { logger: Pick<Logger, 'warn'>; metrics?: Pick<HubMetrics, 'requestsShed'> | undefined; random?: () => number },
  ) {}

  /** Requests admitted and not yet answered. */
  get inFlight(): number {
    return this.held;
  }

  /**
   * Admit a request for `event`: `undefined` when it may go on (call `release` once it is answered),
   * else the error to answer it with.
   */
  admit(event: string): WireError | undefined {
    if (this.held < this.limit) {
      this.held++;
      return undefined;
    }
    this.deps.metrics?.requestsShed.inc({ event });
    this.shedSinceWarning++;
    const now = performance.now();
    if (now - this.warnedAt >= WARN_EVERY_MS) {
      this.deps.logger.warn({ inFlight: this.held, limit: this.limit, shed: this.shedSinceWarning }, 'overloaded: refusing new requests until some in flight are answered (MAX_IN_FLIGHT)');
      this.warnedAt = now;
      this.shedSinceWarning = 0;
    }
    const retryAfterMs = Math.round(SHED_RETRY_AFTER_MS * (1 + (this.deps.random ?? Math.random)()));
    return { code: ErrorCode.UNAVAILABLE, message: `This hub node is overloaded (${this.held} requests in flight); retry in ${retryAfterMs} ms`, details: { retryAfterMs, overloaded: true } };
  }

  /** An admitted request was answered. */
  release(): void {
    this.held--;
  }
}
