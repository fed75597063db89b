/**
 * Consult pools (issue #23): "Dermatology curbside", "Paediatric ID". A pool is a care team created
 * with a `poolTopic` (the way an on-call role is one created with a `roleName`): its signed log names
 * its members, who joined themselves (`join`, accepted only from a device whose clinician holds a
 * verified credential) and its moderators (owner and admins), who may hide a case for every member
 * (`hide`). The topic is directory metadata the hub holds in plaintext, so clinicians can find pools;
 * everything posted in a pool is end-to-end encrypted to its members with sender keys, like a team's
 * messages.
 *
 * A consult is structured inside the sealed message ({@link ConsultPart}): a case (the question is the
 * message text; an age band and a sex, never a name; de-identified images as attachments), replies
 * threaded under it, "helpful" marks and a closing summary by the asker, and a note that a case moved
 * to a private conversation. The hub sees none of it.
 */
import { z } from 'zod';
import { IdSchema, storedTextSchema, type Ack } from './schemas.js';
import { Limits } from './limits.js';
import type { ClientEvent } from './events.js';
import type { RoleLogResult } from './roles.js';

/** Age bands a case may give (never a date of birth). */
export const AGE_BANDS = ['neonate', 'infant', 'child', 'adolescent', '18-29', '30-39', '40-49', '50-59', '60-69', '70-79', '80+', 'unknown'] as const;
export type AgeBand = (typeof AGE_BANDS)[number];
export const SEXES = ['female', 'male', 'intersex', 'unknown'] as const;
export type Sex = (typeof SEXES)[number];

/**
 * What a pool message is, sealed with its text:
 * - `case`: a new case; the text is the question;
 * - `reply`: a reply to the case `caseId` (the case's message id); the text is the reply;
 * - `helpful`: the asker marks the reply `replyId` helpful;
 * - `close`: the asker closes the case; the text is the summary;
 * - `moved`: the case continues in a private conversation with `withUserId` (said in the pool, by the asker).
 */
export const ConsultPartSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('case'), ageBand: z.enum(AGE_BANDS), sex: z.enum(SEXES) }),
  z.strictObject({ type: z.literal('reply'), caseId: IdSchema }),
  z.strictObject({ type: z.literal('helpful'), caseId: IdSchema, replyId: IdSchema }),
  z.strictObject({ type: z.literal('close'), caseId: IdSchema }),
  z.strictObject({ type: z.literal('moved'), caseId: IdSchema, withUserId: IdSchema }),
]);
export type ConsultPart = z.infer<typeof ConsultPartSchema>;

/** A pool as the hub lists it. Clients verify its log (`pool:log`) before joining. */
export const PoolSummarySchema = z.object({
  poolId: IdSchema,
  topic: z.string(),
  memberCount: z.number().int().nonnegative(),
  /** The caller is a member. */
  member: z.boolean(),
});
export type PoolSummary = z.infer<typeof PoolSummarySchema>;

/** `pool:search`: the organisation's pools whose topic contains every word of `query` (all, without one), by topic. */
export const PoolSearchRequestSchema = z.strictObject({
  query: storedTextSchema(Limits.MAX_DIRECTORY_QUERY_LENGTH).optional(),
  limit: z.number().int().min(1).max(Limits.MAX_POOL_RESULTS).optional(),
});
export type PoolSearchRequest = z.input<typeof PoolSearchRequestSchema>;
export const PoolSearchResultSchema = z.object({ pools: z.array(PoolSummarySchema) });
export type PoolSearchResult = z.infer<typeof PoolSearchResultSchema>;

/** `pool:log`: a pool's signed statements from `fromIndex`, a page at a time (as `role:log`). */
export const PoolLogRequestSchema = z.strictObject({ poolId: IdSchema, fromIndex: z.number().int().nonnegative().optional() });
export type PoolLogRequest = z.input<typeof PoolLogRequestSchema>;

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging).
declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.POOL_SEARCH]: (req: PoolSearchRequest, ack: (res: Ack<PoolSearchResult>) => void) => void;
    [ClientEvent.POOL_LOG]: (req: PoolLogRequest, ack: (res: Ack<RoleLogResult>) => void) => void;
  }
}
