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

/**
 * `p`, or UNAVAILABLE (retryable) with `message` if it fails or takes longer than `ms`: for a shared
 * store such as Redis, whose client would otherwise queue commands for a long time while it is down.
 *
 * When the deadline passes, the answer is given up on only after the I/O that is already waiting has
 * been read (`setImmediate` runs after the event loop's poll phase; timers run before it). When the
 * event loop itself was blocked past the deadline, a reply that arrived meanwhile wins over the late
 * timer: a busy node does not take its own lag for Redis being down, and fall back to slower work.
 */
export async function unavailableAfter<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => (immediate = setImmediate(() => reject(new HubError(ErrorCode.UNAVAILABLE, message)))), ms);
      }),
    ]);
  } catch (err) {
    if (err instanceof HubError) throw err;
    throw new HubError(ErrorCode.UNAVAILABLE, message);
  } finally {
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  }
}
