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
 * Whatever was thrown, the wire form a client may see: HubErrors as they are, anything else as
 * INTERNAL with a fixed message (the cause goes to the log, never to the client).
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof HubError) return err.toWire();
  return { code: ErrorCode.INTERNAL, message: 'Internal error' };
}
