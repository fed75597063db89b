/**
 * The hub's REST endpoints besides the operator API (admin.ts): health, readiness and, in dev mode
 * only, minting tokens.
 */
import { z } from 'zod';
import { IdSchema, TimestampSchema } from './schemas.js';

/** `GET /healthz`: liveness only; nothing about the deployment (node names, mode) for whoever asks. */
export const HealthResponseSchema = z.strictObject({ status: z.literal('ok') });
export type HealthResponse = z.infer<typeof HealthResponseSchema>;

export const ReadyCheckSchema = z.object({ ok: z.boolean(), latencyMs: z.number().optional(), error: z.string().optional() });
/**
 * `GET /readyz`: 200 `ready` or 503 `not_ready`. The checks (latencies, dependency errors) are there only
 * for a caller with `Authorization: Bearer <ADMIN_TOKEN>`.
 */
export const ReadyResponseSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.record(z.string(), ReadyCheckSchema).optional(),
});
export type ReadyResponse = z.infer<typeof ReadyResponseSchema>;

/** Dev mode only: mint an access token for any user and device. */
export const DevTokenRequestSchema = z.strictObject({
  userId: IdSchema,
  deviceId: IdSchema,
  orgId: IdSchema.optional(),
  name: z.string().max(200).optional(),
  /** Directory profile claims the token carries (`profile_role`, `department`). */
  role: z.string().max(200).optional(),
  department: z.string().max(200).optional(),
  /** Lifetime in seconds (default 3600). */
  ttlSeconds: z.number().int().min(1).max(24 * 3600).optional(),
});
export type DevTokenRequest = z.input<typeof DevTokenRequestSchema>;
export const DevTokenResponseSchema = z.object({ token: z.string(), expiresAt: TimestampSchema });
export type DevTokenResponse = z.infer<typeof DevTokenResponseSchema>;

export const RestPath = {
  HEALTH: '/healthz',
  READY: '/readyz',
  DEV_TOKEN: '/dev/token',
  ADMIN_REVOKE_TOKEN: '/admin/tokens/revoke',
  ADMIN_RESTORE_DEVICE: '/admin/devices/restore',
} as const;
export type RestPath = (typeof RestPath)[keyof typeof RestPath];
