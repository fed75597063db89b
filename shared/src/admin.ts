/**
 * The operator API (`/admin/...`, every request with `Authorization: Bearer <ADMIN_TOKEN>`), used by the
 * `curbside-admin` CLI. Reads answer metadata only: ids, roles, epochs, counts and times, never a
 * title, a message or a key. Every call, answered or refused, is written to the audit log.
 *
 * Who acts: the `X-Curbside-Operator` header (an operator's name or ticket, up to 200 characters;
 * `by` in a body wins), else `admin`.
 */
import { z } from 'zod';
import { EpochSchema, IdSchema, TeamRoleSchema, TimestampSchema, storedTextSchema } from './schemas.js';
import { OwnDeviceSchema } from './security.js';
import { DirectoryProfileSchema, ProfileFieldSchema } from './directory.js';

export const AdminPath = {
  USERS: '/admin/users',
  USER_DISABLE: '/admin/users/disable',
  USER_ENABLE: '/admin/users/enable',
  USER_PROFILE: '/admin/users/profile',
  DEVICE_REVOKE: '/admin/devices/revoke',
  DEVICE_RESTORE: '/admin/devices/restore',
  TOKEN_REVOKE: '/admin/tokens/revoke',
  TEAMS: '/admin/teams',
  AUDIT_EXPORT: '/admin/audit/export',
  AUDIT_VERIFY: '/admin/audit/verify',
  KEYS: '/admin/keys',
  KEYS_RELOAD: '/admin/keys/reload',
  ALERT_SETTINGS: '/admin/alerts/settings',
  /** The organisation's credentialing public key (credentials.ts). */
  CREDENTIAL_KEY: '/admin/credentials/key',
  /** Signed attestations: store one (POST), list a user's (GET). */
  CREDENTIALS: '/admin/credentials',
  CREDENTIAL_REVOKE: '/admin/credentials/revoke',
  /** Pseudonymous posting (pseudonyms.ts): publish a certified token key, revoke an epoch. */
  PSEUDONYM_KEYS: '/admin/pseudonyms/keys',
  PSEUDONYM_REVOKE: '/admin/pseudonyms/revoke',
  /** Token requests not answered yet (GET), and the office's blind signatures for one (POST `/answers`). */
  PSEUDONYM_REQUESTS: '/admin/pseudonyms/requests',
  PSEUDONYM_ANSWERS: '/admin/pseudonyms/answers',
} as const;

/** The header naming the operator for the audit log. */
export const ADMIN_OPERATOR_HEADER = 'x-curbside-operator';

/** The operator, as the audit log keeps it: no control characters (`storedTextSchema`). */
const By = storedTextSchema(200).optional();
/** A query-string number (`?limit=50`). */
const QueryInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** `GET /admin/users?orgId=&after=&limit=`: users ordered by id, each with their devices. */
export const AdminUsersQuerySchema = z.strictObject({ orgId: IdSchema, after: IdSchema.optional(), limit: QueryInt(1, 500).optional() });
export type AdminUsersQuery = z.input<typeof AdminUsersQuerySchema>;

/** A user's device as an operator sees it: what its owner sees (`devices:mine`), without its key or "current". */
export const AdminDeviceSchema = OwnDeviceSchema.omit({ current: true, identityKey: true });
export const AdminUserSchema = z.object({
  userId: IdSchema,
  createdAt: TimestampSchema,
  lastSeenAt: TimestampSchema,
  disabledAt: TimestampSchema.optional(),
  devices: z.array(AdminDeviceSchema),
});
export const AdminUsersResponseSchema = z.object({
  orgId: IdSchema,
  users: z.array(AdminUserSchema),
  /** Pass as `after` for the next page; absent on the last page. */
  next: IdSchema.optional(),
});
export type AdminUser = z.infer<typeof AdminUserSchema>;
export type AdminUsersResponse = z.infer<typeof AdminUsersResponseSchema>;

/** `POST /admin/users/disable` and `/enable`. Disabling closes the user's sockets on every node and refuses their handshakes (`USER_DISABLED`). */
export const AdminUserActionSchema = z.strictObject({ orgId: IdSchema, userId: IdSchema, by: By });
export type AdminUserAction = z.input<typeof AdminUserActionSchema>;
export const AdminUserActionResultSchema = z.object({ orgId: IdSchema, userId: IdSchema, status: z.enum(['disabled', 'already', 'enabled', 'not_disabled']) });
export type AdminUserActionResult = z.infer<typeof AdminUserActionResultSchema>;

/** An operator's profile field: a value, `''` to clear the operator's value (the token's shows again), absent to leave it. */
const AdminProfileField = z.union([ProfileFieldSchema, z.literal('')]).optional();

/**
 * `POST /admin/users/profile`: set a user's directory profile (display name, role or specialty,
 * department). An operator's value wins over what the user's tokens state, field by field. Answers the
 * profile clients now see.
 */
export const AdminUserProfileRequestSchema = z
  .strictObject({ orgId: IdSchema, userId: IdSchema, displayName: AdminProfileField, role: AdminProfileField, department: AdminProfileField, by: By })
  .refine((b) => b.displayName !== undefined || b.role !== undefined || b.department !== undefined, { message: 'give at least one of displayName, role and department' });
export type AdminUserProfileRequest = z.input<typeof AdminUserProfileRequestSchema>;
export const AdminUserProfileResultSchema = z.object({ orgId: IdSchema, profile: DirectoryProfileSchema });
export type AdminUserProfileResult = z.infer<typeof AdminUserProfileResultSchema>;

/**
 * `POST /admin/tokens/revoke` (with `Authorization: Bearer <ADMIN_TOKEN>`): revoke one access token by its
 * `jti`. Its sockets on every node close at once; it is refused at every handshake until `expiresAt`.
 */
export const AdminTokenRevokeRequestSchema = z.strictObject({
  orgId: IdSchema,
  /** The token's `jti`. */
  tokenId: z.string().min(1).max(200),
  /** When the token expires (epoch ms): the revocation is kept that long (plus a grace period). */
  expiresAt: TimestampSchema,
  /** Who asked (an operator's name or ticket), for the audit log. */
  by: By,
});
export type AdminTokenRevokeRequest = z.input<typeof AdminTokenRevokeRequestSchema>;

/**
 * `POST /admin/devices/restore` (with the admin token): undo a device's revocation (e.g. a phone its
 * owner found again, or a sibling revoked by a thief). The device signs in again and publishes new keys.
 */
export const AdminDeviceRestoreRequestSchema = z.strictObject({
  orgId: IdSchema,
  deviceId: IdSchema,
  by: By,
});
export type AdminDeviceRestoreRequest = z.input<typeof AdminDeviceRestoreRequestSchema>;

/** `POST /admin/devices/revoke`: as the owner's own `device:revoke`, without needing the owner. */
export const AdminDeviceRevokeRequestSchema = z.strictObject({ orgId: IdSchema, userId: IdSchema, deviceId: IdSchema, by: By });
export type AdminDeviceRevokeRequest = z.input<typeof AdminDeviceRevokeRequestSchema>;
export const AdminDeviceRevokeResultSchema = z.object({ deviceId: IdSchema, revoked: z.boolean() });

/** `POST /admin/devices/restore` (schema of the request: `AdminDeviceRestoreRequestSchema`). */
export const AdminDeviceRestoreResultSchema = z.object({ restored: z.boolean() });

/** `GET /admin/teams?orgId=&teamId=` one care team, or `?orgId=&userId=` the teams a user is in. */
export const AdminTeamsQuerySchema = z
  .strictObject({ orgId: IdSchema, teamId: IdSchema.optional(), userId: IdSchema.optional() })
  .refine((q) => (q.teamId === undefined) !== (q.userId === undefined), { message: 'give exactly one of teamId and userId' });
export type AdminTeamsQuery = z.input<typeof AdminTeamsQuerySchema>;

/** A care team's membership metadata: never its sealed title or any message. */
export const AdminTeamSchema = z.object({
  teamId: IdSchema,
  createdBy: IdSchema,
  createdAt: TimestampSchema,
  /** The membership epoch (head of the signed log) every team message must be bound to. */
  epoch: EpochSchema.optional(),
  /** Signed membership statements applied (create, add, remove, role changes, renames). */
  statements: z.number().int().nonnegative(),
  /** Highest sequence number (messages, receipts and statements). */
  lastSeq: z.number().int().nonnegative(),
  members: z.array(z.object({ userId: IdSchema, role: TeamRoleSchema })),
  counts: z.object({ members: z.number().int(), owners: z.number().int(), admins: z.number().int() }),
});
export const AdminTeamsResponseSchema = z.object({ orgId: IdSchema, teams: z.array(AdminTeamSchema) });
export type AdminTeam = z.infer<typeof AdminTeamSchema>;
export type AdminTeamsResponse = z.infer<typeof AdminTeamsResponseSchema>;

/**
 * `GET /admin/audit/export?chain=`: the audit log as NDJSON (`application/x-ndjson`), one entry per
 * line, chain by chain in index order (every chain when none is named).
 */
export const AdminAuditExportQuerySchema = z.strictObject({ chain: z.string().min(1).max(400).optional() });

/** `GET /admin/audit/verify`: the hash-chain verdict (see `verifyAuditLog`). 200 when intact, 409 when not. */
export const AdminAuditVerdictSchema = z.object({
  ok: z.boolean(),
  chains: z.array(z.object({ chain: z.string(), entries: z.number().int(), headHash: z.string().optional(), problems: z.array(z.string()) })),
});
export type AdminAuditVerdict = z.infer<typeof AdminAuditVerdictSchema>;

/** `GET /admin/keys` and `POST /admin/keys/reload`: the identity provider's verification keys in force, per node. */
export const AdminKeysNodeSchema = z.object({
  node: z.string(),
  /**
   * `file` (JWT_PUBLIC_KEY_FILE, reloadable), `env` (JWT_PUBLIC_KEY), `dev` (dev mode's own key) or `oidc`
   * (the OpenID Connect provider's key set, rotated there; reload fetches it again).
   */
  source: z.enum(['file', 'env', 'dev', 'oidc']),
  algorithm: z.string(),
  fingerprints: z.array(z.string()),
  error: z.string().optional(),
});
export const AdminKeysResponseSchema = z.object({ nodes: z.array(AdminKeysNodeSchema) });
export type AdminKeysNode = z.infer<typeof AdminKeysNodeSchema>;
export type AdminKeysResponse = z.infer<typeof AdminKeysResponseSchema>;
export const AdminKeysReloadRequestSchema = z.strictObject({ by: By });

/**
 * `GET /admin/alerts/settings?orgId=` and `POST /admin/alerts/settings`: how often the organisation's
 * unacknowledged urgent and emergent messages are re-notified, and how many times (issue #20). A POST
 * changes the fields it gives and keeps the others; `null` hands a field back to the deployment's
 * default (ALERT_REPEAT_URGENT_MS, …). Every node uses a
 * change within `ALERT_SETTINGS_CACHE_MS` (10 s); alerts raised before keep their first due time.
 */
const RepeatMs = z.number().int().min(1_000).max(86_400_000);
export const AdminAlertSettingsQuerySchema = z.strictObject({ orgId: IdSchema });
export const AdminAlertSettingsRequestSchema = z
  .strictObject({ orgId: IdSchema, urgentMs: RepeatMs.nullable().optional(), emergentMs: RepeatMs.nullable().optional(), maxRepeats: z.number().int().min(1).max(1_000).nullable().optional(), by: By })
  .refine((b) => b.urgentMs == null || b.emergentMs == null || b.emergentMs <= b.urgentMs, { message: 'emergentMs must not be longer than urgentMs', path: ['emergentMs'] });
export type AdminAlertSettingsRequest = z.input<typeof AdminAlertSettingsRequestSchema>;
export const AdminAlertSettingsSchema = z.object({
  orgId: IdSchema,
  urgentMs: RepeatMs,
  emergentMs: RepeatMs,
  maxRepeats: z.number().int(),
  /** Which fields the organisation set (the others are the deployment's defaults). */
  set: z.array(z.enum(['urgentMs', 'emergentMs', 'maxRepeats'])),
});
export type AdminAlertSettings = z.infer<typeof AdminAlertSettingsSchema>;

// The inter-node event map lives in socket.ts; this entry extends it (declaration merging), as
// security.ts does for its events, so socket.ts does not import the admin contract.
declare module './socket.js' {
  interface InterServerEvents {
    /** An operator rotated the identity provider's keys: every node re-reads JWT_PUBLIC_KEY_FILE and answers what it now accepts. */
    'admin:keys-reload': (done: (answer: AdminKeysNode) => void) => void;
  }
}
