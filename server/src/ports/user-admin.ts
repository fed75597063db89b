/**
 * Operator administration of users: the organisation's users page by page, and disabling a user (a
 * clinician who left, a compromised account). Part of `Storage` (every adapter implements it) and
 * covered by `test/security/user-admin.contract.test.ts` over memory and MongoDB.
 *
 * A disabled user's flag is kept in the database (durable) and, by `HubSecurity`, in Redis (read by
 * every node at each handshake and on live sockets), the same way device revocation is.
 */
export interface AdminUserRecord {
  orgId: string;
  userId: string;
  createdAt: number;
  lastSeenAt: number;
  /** When an operator disabled the user, if they are disabled. */
  disabledAt: number | undefined;
}

export interface UserAdmin {
  /** The organisation's users ordered by user id, after `after` (exclusive), at most `limit`. */
  listUsers(orgId: string, page: { after?: string | undefined; limit: number }): Promise<AdminUserRecord[]>;
  /**
   * Mark the user disabled. Idempotent.
   * @returns `not_found` when the organisation has no such user, `already` when they were disabled before.
   */
  disableUser(input: { orgId: string; userId: string; now: number }): Promise<{ status: 'disabled' | 'already' | 'not_found' }>;
  /** Lift the flag: the user may sign in again. */
  enableUser(orgId: string, userId: string): Promise<{ status: 'enabled' | 'not_disabled' }>;
  /** When the user was disabled, if they are. */
  userDisabledAt(orgId: string, userId: string): Promise<number | undefined>;
}
