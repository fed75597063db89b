/**
 * Waiting, shared by the hub, the SDK and the scripts: one backoff formula and one timeout, so every
 * retry in Curbside spreads out and gives up the same way.
 */

export interface BackoffOptions {
  /** The first wait, in ms. */
  baseMs: number;
  /** No wait is longer than this, in ms. */
  maxMs: number;
  /** Spread each wait over ½× to 1½× (so many clients that failed together do not retry together). @default true */
  jitter?: boolean;
}

/**
 * How long to wait before retry number `attempt` (0 for the first retry): `baseMs · 2^attempt`, at
 * most `maxMs`, with jitter unless switched off.
 * @example
 * ```ts
 * setTimeout(retry, backoffMs(attempt, { baseMs: 250, maxMs: 10_000 }));
 * ```
 */
export function backoffMs(attempt: number, options: BackoffOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const ms = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  return options.jitter === false ? ms : jitter(ms);
}

/** `ms` spread over ½× to 1½×, rounded. */
export function jitter(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()));
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `promise`, or a rejection with `onTimeout()` if it has not settled within `ms`. The timer is
 * cleared either way, so a finished race keeps no process alive.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
