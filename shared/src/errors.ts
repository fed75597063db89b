import { z } from 'zod';

/**
 * Every error the hub can report, over a socket ack, a handshake rejection or a REST body.
 * One table: the server and the SDK both import it, neither redeclares it.
 */
export const ErrorCode = {
  /** The request did not match its schema. `details.issues` lists what was wrong. */
  INVALID_PAYLOAD: 'INVALID_PAYLOAD',
  /** A field or the whole event is larger than the documented limit. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** REST: the body's `Content-Encoding` or media type is not one the endpoint takes (JSON, identity/gzip/deflate/br). */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** No token was presented at the handshake. */
  AUTH_REQUIRED: 'AUTH_REQUIRED',
  /** The token failed verification: bad signature, wrong algorithm, issuer, audience or claims. */
  AUTH_INVALID: 'AUTH_INVALID',
  /** The token was valid once but has expired; refresh it and reconnect. */
  AUTH_EXPIRED: 'AUTH_EXPIRED',
  /** The caller is authenticated but may not do this (e.g. not a member of the conversation). */
  FORBIDDEN: 'FORBIDDEN',
  /** The thing named does not exist for this caller's organisation. */
  NOT_FOUND: 'NOT_FOUND',
  /**
   * An end-to-end-encrypted send did not name exactly the devices the hub knows for the conversation.
   * `details.missing` lists `{ userId, deviceId }` to add (fetch their bundles), `details.extra` device ids to drop.
   */
  DEVICE_LIST_STALE: 'DEVICE_LIST_STALE',
  /** A signed prekey's signature does not verify under the device's identity key. */
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  /** The device already registered a different identity key; a new key needs a new device id. */
  IDENTITY_MISMATCH: 'IDENTITY_MISMATCH',
  /**
   * Raised by the SDK: a contact's identity key changed (or the hub offered a different one), so
   * nothing is sent to them until the user accepts the new key. `details.userId` names the contact.
   */
  UNTRUSTED_IDENTITY: 'UNTRUSTED_IDENTITY',
  /** Raised by the SDK: a message could not be decrypted. The stream goes on; see the `decryptionError` event. */
  DECRYPTION_FAILED: 'DECRYPTION_FAILED',
  /** A care-team statement breaks the rules (bad signature, wrong index or chain, actor lacks the role). */
  INVALID_STATEMENT: 'INVALID_STATEMENT',
  /** Another change got there first (e.g. a concurrent team statement): refresh and retry. */
  CONFLICT: 'CONFLICT',
  /**
   * A care-team message was bound to a membership epoch that is not the team's current one (a
   * membership change was sequenced first). Nothing was stored: apply the pending statements
   * (sync), rotate the sender key, encrypt again and resend with the same client message id.
   * `details.conversationId` names the team.
   */
  STALE_EPOCH: 'STALE_EPOCH',
  /** A client message id was reused for a different message. */
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  /** The caller sent too much too fast; `details.retryAfterMs` says when to try again. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A dependency (database, Redis) is not reachable; the request changed nothing. Retry later. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The hub is not ready to serve (readiness probe). */
  NOT_READY: 'NOT_READY',
  /** The request timed out before the hub answered (raised by the SDK). */
  TIMEOUT: 'TIMEOUT',
  /** The SDK is not connected and the operation cannot be queued. */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** The feature is switched off in this deployment (e.g. dev tokens outside dev mode). */
  DISABLED: 'DISABLED',
  /** Anything unexpected. The hub logs the cause; clients never see a stack. */
  INTERNAL: 'INTERNAL',
  /** The token (by its `jti`) or the device was revoked: do not retry with the same credentials. */
  AUTH_REVOKED: 'AUTH_REVOKED',
  /**
   * The action needs a recent sign-in (the token's `auth_time` within `details.maxAgeSec`), e.g.
   * revoking another of the user's devices: sign in again and retry with the fresh token.
   */
  REAUTHENTICATION_REQUIRED: 'REAUTHENTICATION_REQUIRED',
  /**
   * This device is not in its user's signed device list yet: it may connect, but it sends and
   * receives nothing until another of the user's devices links it (SDK `linkDevice`).
   */
  DEVICE_NOT_LINKED: 'DEVICE_NOT_LINKED',
  /**
   * A signed device list does not verify: bad signature, a signer outside the previous list, a
   * device whose identity key differs from the one it published, or a revoked device.
   */
  DEVICE_LIST_INVALID: 'DEVICE_LIST_INVALID',
  /**
   * Raised by the SDK: the hub presented a lower device-list version for a contact than this device
   * already verified (a rollback). Nothing is sent to that contact. `details.userId` names them.
   */
  DEVICE_LIST_ROLLBACK: 'DEVICE_LIST_ROLLBACK',
  /** Raised by the SDK: the link code entered does not match the device's identity key. */
  LINK_CODE_MISMATCH: 'LINK_CODE_MISMATCH',
  /** An operator disabled this user: none of their devices may connect until they are enabled again. */
  USER_DISABLED: 'USER_DISABLED',
  /** An attachment is larger than the hub's limit (`details.maxBytes`); nothing was stored. */
  ATTACHMENT_TOO_LARGE: 'ATTACHMENT_TOO_LARGE',
  /**
   * The organisation's attachment storage quota would be exceeded (`details.quotaBytes`,
   * `details.usedBytes`); nothing was stored. Space comes back as attachments pass retention.
   */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /**
   * The upload is not complete: some parts are not stored yet (`details.missingParts`, the first few),
   * so it cannot be finished, downloaded or named in a message. Send the missing parts first.
   */
  UPLOAD_INCOMPLETE: 'UPLOAD_INCOMPLETE',
  /**
   * Raised by the SDK: a downloaded attachment failed its checks (a chunk does not authenticate, the
   * stream ends before its final chunk, data follows it, or the ciphertext hash differs from the one
   * the sender sealed). Nothing of it should be shown as the sender's file.
   */
  ATTACHMENT_TAMPERED: 'ATTACHMENT_TAMPERED',
  /** A pseudonym token was spent already in this scope (e.g. a second post with it to the same pool). Take another token. */
  PSEUDONYM_SPENT: 'PSEUDONYM_SPENT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ErrorCodeSchema = z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]);

/** Whether a client may retry the same request unchanged and expect it to succeed later. */
export const RETRYABLE_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.UNAVAILABLE,
  ErrorCode.TIMEOUT,
  ErrorCode.NOT_CONNECTED,
  ErrorCode.INTERNAL,
]);

/** The body of every error on the wire. `details` never carries message content or keys. */
export const WireErrorSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type WireError = z.infer<typeof WireErrorSchema>;

/** REST error responses: `{ "error": WireError }`. */
export const RestErrorBodySchema = z.object({ error: WireErrorSchema });
export type RestErrorBody = z.infer<typeof RestErrorBodySchema>;

/** HTTP status for each error code, used by the REST layer. */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  INVALID_PAYLOAD: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  AUTH_EXPIRED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  DEVICE_LIST_STALE: 409,
  BAD_SIGNATURE: 400,
  IDENTITY_MISMATCH: 409,
  UNTRUSTED_IDENTITY: 409,
  DECRYPTION_FAILED: 400,
  INVALID_STATEMENT: 400,
  CONFLICT: 409,
  STALE_EPOCH: 409,
  IDEMPOTENCY_CONFLICT: 409,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  NOT_READY: 503,
  TIMEOUT: 504,
  NOT_CONNECTED: 503,
  DISABLED: 403,
  INTERNAL: 500,
  AUTH_REVOKED: 401,
  REAUTHENTICATION_REQUIRED: 401,
  DEVICE_NOT_LINKED: 403,
  DEVICE_LIST_INVALID: 400,
  DEVICE_LIST_ROLLBACK: 409,
  LINK_CODE_MISMATCH: 400,
  USER_DISABLED: 403,
  ATTACHMENT_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 507,
  UPLOAD_INCOMPLETE: 409,
  ATTACHMENT_TAMPERED: 400,
  PSEUDONYM_SPENT: 409,
};

/**
 * Why the hub closed a socket, sent in the `session:closing` event just before it disconnects.
 * String values so logs and SDK events read plainly.
 */
export const CloseCode = {
  /** The hub node is shutting down; reconnect (possibly to another node). */
  SERVER_SHUTDOWN: 'SERVER_SHUTDOWN',
  /** The token expired while connected; refresh and reconnect. */
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  /** The device or token was revoked; do not reconnect with the same credentials. */
  REVOKED: 'REVOKED',
  /** The client fell too far behind; reconnect and resync. */
  SLOW_CONSUMER: 'SLOW_CONSUMER',
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
export const CloseCodeSchema = z.enum(Object.values(CloseCode) as [CloseCode, ...CloseCode[]]);
