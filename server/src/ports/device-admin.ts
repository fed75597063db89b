/**
 * Device administration on top of the directory: a user's own devices with their state, and the
 * durable side of revoking a lost device. Part of `Storage` (every adapter implements it) and
 * covered by `test/security/device-admin.contract.test.ts` over memory and MongoDB.
 */
export interface OwnDeviceRecord {
  orgId: string;
  userId: string;
  deviceId: string;
  createdAt: number;
  lastSeenAt: number;
  /** Identity key and signed prekey published. */
  hasKeys: boolean;
  /** The published identity key, while the device has keys. */
  identityKey?: Uint8Array | undefined;
  revokedAt: number | undefined;
}

export interface DeviceAdmin {
  /** The user's devices, revoked ones included, ordered by device id. */
  listOwnDevices(orgId: string, userId: string): Promise<OwnDeviceRecord[]>;
  /**
   * Revoke a device of this user: record a tombstone (kept for good, so the device id can never
   * authenticate again) and delete its identity key, signed prekey and one-time prekeys, so nobody
   * can start a new session with it. Idempotent.
   * @returns `not_found` when the organisation has no such device of this user (another user's
   *   device or another organisation's looks the same), `already` when it was revoked before.
   */
  revokeDevice(input: { orgId: string; userId: string; deviceId: string; now: number }): Promise<{ status: 'revoked' | 'already' | 'not_found' }>;
  /** When the device was revoked, if it was. */
  deviceRevokedAt(orgId: string, deviceId: string): Promise<number | undefined>;
  /** Remove a device's tombstone (an operator's decision): it may sign in and publish keys again. */
  restoreDevice(orgId: string, deviceId: string): Promise<{ status: 'restored' | 'not_revoked' }>;
  /**
   * Keep a revoked access token (its `jti`) until `keepUntil`, past which the token is refused for its
   * expiry anyway: the durable side of revoking a token, so that a Redis that loses its revocations (a
   * flush, a fresh instance) does not make the token valid again. Idempotent; a later `keepUntil` wins.
   * Tokens kept past their `keepUntil` may be forgotten.
   */
  revokeToken(input: { orgId: string; tokenId: string; keepUntil: number; now: number }): Promise<void>;
  /** Whether the token was revoked and its `keepUntil` is still ahead of `now`. */
  tokenRevoked(orgId: string, tokenId: string, now: number): Promise<boolean>;
}
