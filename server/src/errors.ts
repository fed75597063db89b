import { ErrorCode, type WireError } from '@curbside/shared';

/** An error the hub means to report to a client, with a code from the shared table. */
export class HubError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HubError';
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/**
 * The MongoDB driver's errors for "cannot reach the database now" (by name, so this module does
 * not load the driver). A request that failed on one of them may succeed later or on another node.
 */
const STORAGE_UNREACHABLE = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoPoolClearedError',
  'MongoTopologyClosedError',
]);

/** Whether `err` says the database cannot be reached (rather than that the request was wrong). */
export function isStorageUnreachable(err: unknown): boolean {
  return err instanceof Error && STORAGE_UNREACHABLE.has(err.name);
}

/**
 * Whatever was thrown, the wire form a client may see: HubErrors as they are, an unreachable
 * database as UNAVAILABLE (retryable), anything else as INTERNAL with a fixed message (the cause
 * goes to the log, never to the client).
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof HubError) return err.toWire();
  if (isStorageUnreachable(err)) return { code: ErrorCode.UNAVAILABLE, message: 'Storage is unavailable on this hub node; retry' };
  return { code: ErrorCode.INTERNAL, message: 'Internal error' };
}

/** What `beforeDeadline` answers when the deadline passed first. */
export const DEADLINE_PASSED: unique symbol = Symbol('deadline passed');

/**
 * Settles as `p` does, or with DEADLINE_PASSED once `ms` have passed. The deadline is taken only after
 * the I/O that is already waiting has been read (`setImmediate` runs after the event loop's poll phase;
 * timers run before it): when the event loop itself was blocked past the deadline, a reply that arrived
 * meanwhile wins over the late timer, so a busy node does not take its own lag for a shared store
 * (Redis) being down, and fall back to slower or looser work.
 */
export async function beforeDeadline<T>(p: Promise<T>, ms: number): Promise<T | typeof DEADLINE_PASSED> {
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<typeof DEADLINE_PASSED>((resolve) => {
        timer = setTimeout(() => (immediate = setImmediate(() => resolve(DEADLINE_PASSED))), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  }
}

/**
 * `p`, or UNAVAILABLE (retryable) with `message` if it fails or takes longer than `ms` (`beforeDeadline`):
 * for a shared store such as Redis, whose client would otherwise queue commands for a long time while
 * it is down.
 */
export async function unavailableAfter<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let result: T | typeof DEADLINE_PASSED;
  try {
    result = await beforeDeadline(p, ms);
  } catch (err) {
    if (err instanceof HubError) throw err;
    throw new HubError(ErrorCode.UNAVAILABLE, message);
  }
  if (result === DEADLINE_PASSED) throw new HubError(ErrorCode.UNAVAILABLE, message);
  return result;
}
