/**
 * On-call roles (issue #20): "Cardiology on-call", "Rapid response", "Ward 4 charge nurse". A role is a
 * care team created with a `roleName`: its signed log names the clinicians who may hold the role (its
 * members), the shifts (`schedule`, by an owner or admin) and explicit hand-offs (`hold`, "I'm taking
 * cardiology on-call", signed by the member taking it). Who holds it at any time follows from the log
 * (`holdersAt`), which every client verifies as it verifies a team's membership.
 *
 * Anyone in the organisation may write to a role: `role:open` gives the caller's own thread with the
 * role (a conversation whose members are the caller and the role's members). The caller's SDK seals
 * each message for the devices of whoever holds the role at send time, and the role's members who do
 * not hold it get the envelope without a key. A holder handing the role over hands the pending urgent
 * messages to the next holder's devices (`EnvelopeSendRequest.handoff`).
 *
 * The role's name, its members and shifts are metadata the hub holds in plaintext (like the directory);
 * what is written to the role is end-to-end encrypted.
 */
import { z } from 'zod';
import { IdSchema, SignedStatementSchema, TimestampSchema, storedTextSchema, type Ack, type Conversation } from './schemas.js';
import { Limits } from './limits.js';
import type { ClientEvent } from './events.js';

/** A role as the hub lists it. Clients verify it from `role:log` before trusting who holds it. */
export const RoleSummarySchema = z.object({
  roleId: IdSchema,
  name: z.string(),
  memberUserIds: z.array(IdSchema),
  /** Who holds it now, as the hub applied the log. */
  holderUserIds: z.array(IdSchema),
  /** When a shift next starts or ends, if one does. */
  nextChangeAt: TimestampSchema.optional(),
});
export type RoleSummary = z.infer<typeof RoleSummarySchema>;

/** `role:search`: the organisation's roles whose name contains every word of `query` (all, without one), by name. */
export const RoleSearchRequestSchema = z.strictObject({
  query: storedTextSchema(Limits.MAX_DIRECTORY_QUERY_LENGTH).optional(),
  limit: z.number().int().min(1).max(Limits.MAX_ROLE_RESULTS).optional(),
});
export type RoleSearchRequest = z.input<typeof RoleSearchRequestSchema>;
export const RoleSearchResultSchema = z.object({ roles: z.array(RoleSummarySchema) });
export type RoleSearchResult = z.infer<typeof RoleSearchResultSchema>;

/** `role:log`: a role's signed statements from index `fromIndex` (default 0), in order, a page at a time. */
export const RoleLogRequestSchema = z.strictObject({ roleId: IdSchema, fromIndex: z.number().int().nonnegative().optional() });
export type RoleLogRequest = z.input<typeof RoleLogRequestSchema>;
export const RoleLogResultSchema = z.object({ statements: z.array(SignedStatementSchema), more: z.boolean() });
export type RoleLogResult = z.output<typeof RoleLogResultSchema>;

/** `role:open`: the caller's thread with a role (created on first use; one per caller and role). */
export const RoleOpenRequestSchema = z.strictObject({ roleId: IdSchema });
export type RoleOpenRequest = z.input<typeof RoleOpenRequestSchema>;

/** Whether a role's name matches every word (the one rule every adapter applies). */
export function roleMatches(name: string, words: readonly string[]): boolean {
  const haystack = name.toLowerCase();
  return words.every((w) => haystack.includes(w));
}

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging).
declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.ROLE_SEARCH]: (req: RoleSearchRequest, ack: (res: Ack<RoleSearchResult>) => void) => void;
    [ClientEvent.ROLE_LOG]: (req: RoleLogRequest, ack: (res: Ack<RoleLogResult>) => void) => void;
    [ClientEvent.ROLE_OPEN]: (req: RoleOpenRequest, ack: (res: Ack<Conversation>) => void) => void;
  }
}
