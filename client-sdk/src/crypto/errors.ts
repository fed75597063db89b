/**
 * Errors raised by the SDK's end-to-end encryption layer.
 *
 * `message` is safe to show to a user (it never contains key material, identifiers or plaintext);
 * `detail` is for logs only and explains what exactly failed (still no key material or plaintext).
 */
export type CryptoErrorCode =
  | 'BAD_SIGNATURE'
  | 'AUTHENTICATION_FAILED'
  | 'WEAK_KEY'
  | 'DECRYPT_FAILED'
  | 'REPLAY'
  | 'GAP_TOO_LARGE'
  | 'TOO_MANY_SKIPPED'
  | 'BAD_MESSAGE'
  | 'UNKNOWN_PREKEY'
  | 'IDENTITY_MISMATCH';

const USER_MESSAGES: Readonly<Record<CryptoErrorCode, string>> = {
  BAD_SIGNATURE: "The contact's key bundle failed its signature check, so no secure session was started.",
  AUTHENTICATION_FAILED: 'A message failed its authentication check: it was damaged or tampered with, so it was not used.',
  WEAK_KEY: 'A key received from the network is not acceptable, so it was not used.',
  DECRYPT_FAILED: 'A message could not be decrypted: it was damaged or tampered with.',
  REPLAY: 'A message was received more than once; the copy was ignored.',
  GAP_TOO_LARGE: 'Too many messages are missing before this one, so it cannot be decrypted.',
  TOO_MANY_SKIPPED: 'Too many messages are missing in this conversation, so this one cannot be decrypted.',
  BAD_MESSAGE: 'A message was malformed and was ignored.',
  UNKNOWN_PREKEY: 'A message refers to a session key this device no longer has, so it cannot be decrypted.',
  IDENTITY_MISMATCH: "The contact's safety key has changed. Verify it before sending or reading messages.",
};

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  /** For logs only: what exactly failed. Never shown to users; never contains key material or plaintext. */
  readonly detail: string;

  constructor(
    readonly code: CryptoErrorCode,
    detail = '',
    options?: { cause?: unknown },
  ) {
    super(USER_MESSAGES[code], options);
    this.detail = detail;
  }
}

/** Type guard for {@link CryptoError}, safe across bundles that each carry a copy of the SDK. */
export function isCryptoError(value: unknown, code?: CryptoErrorCode): value is CryptoError {
  const ok =
    value instanceof CryptoError ||
    (value instanceof Error && value.name === 'CryptoError' && typeof (value as { code?: unknown }).code === 'string');
  return ok && (code === undefined || (value as CryptoError).code === code);
}
