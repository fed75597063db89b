import { ErrorCode, RETRYABLE_ERROR_CODES, type WireError } from '@curbside/shared';

/**
 * The one error class the SDK throws and emits. `code` comes from the shared error table, so an
 * app can switch on it (or ask {@link CurbsideError.is}); `details` carries structured, content-free
 * context.
 *
 * @example
 * ```ts
 * try { await client.sendText(conversationId, text); }
 * catch (e) { if (isCurbsideError(e) && e.is(ErrorCode.FORBIDDEN)) showNotAMember(); }
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

  /** Whether this error has one of these codes. */
  is(...codes: ErrorCode[]): boolean {
    return codes.includes(this.code);
  }

  /** Whether retrying the same call later may succeed. */
  get retryable(): boolean {
    return RETRYABLE_ERROR_CODES.has(this.code);
  }

  /**
   * How long the hub asked the caller to wait before retrying (`details.retryAfterMs`: a spent rate
   * limit, an overloaded node), or 0 when it gave no hint.
   */
  get retryAfterMs(): number {
    const hinted = this.details?.['retryAfterMs'];
    return typeof hinted === 'number' ? hinted : 0;
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

/** `e` as a CurbsideError: itself, or INTERNAL with its message (a bug or a platform failure). */
export function asCurbsideError(e: unknown): CurbsideError {
  if (isCurbsideError(e)) return e;
  return new CurbsideError(ErrorCode.INTERNAL, e instanceof Error ? e.message : String(e));
}

export { ErrorCode };
