import { ErrorCode, RETRYABLE_ERROR_CODES, type WireError } from '@curbside/shared';

/**
 * The one error class the SDK throws and emits. `code` comes from the shared error table, so an
 * app can switch on it; `details` carries structured, content-free context.
 *
 * @example
 * ```ts
 * try { await client.send(conversationId, bytes); }
 * catch (e) { if (isCurbsideError(e) && e.code === 'FORBIDDEN') showNotAMember(); }
 * ```
 */
export class CurbsideError extends Error {
  override readonly name = 'CurbsideError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  /** Whether retrying the same call later may succeed. */
  get retryable(): boolean {
    return RETRYABLE_ERROR_CODES.has(this.code);
  }

  static fromWire(error: WireError): CurbsideError {
    return new CurbsideError(error.code, error.message, error.details);
  }
}

/** Type guard for {@link CurbsideError}, safe across bundles that each carry a copy of the SDK. */
export function isCurbsideError(value: unknown): value is CurbsideError {
  return (
    value instanceof CurbsideError ||
    (value instanceof Error && value.name === 'CurbsideError' && typeof (value as { code?: unknown }).code === 'string')
  );
}

export { ErrorCode };
