import { z } from 'zod';
import { IdSchema, ConversationSchema, SignedStatementSchema, TeamRoleSchema } from './schemas.js';
import { Limits } from './limits.js';

/**
 * Care teams: group conversations whose membership is a hash-chained log of statements, each
 * signed by a member device's identity key. The hub checks and applies them, but clients verify
 * the chain themselves and refuse any change the hub made on its own.
 */

/** Domain separation for statement signatures: Ed25519(identity, LABEL ‖ UTF-8 canonical statement). */
export const TEAM_STATEMENT_LABEL: Uint8Array = new TextEncoder().encode('Curbside team statement v1\u0000');

export function teamStatementMessage(canonicalStatement: string): Uint8Array {
  const body = new TextEncoder().encode(canonicalStatement);
  const out = new Uint8Array(TEAM_STATEMENT_LABEL.length + body.length);
  out.set(TEAM_STATEMENT_LABEL, 0);
  out.set(body, TEAM_STATEMENT_LABEL.length);
  return out;
}

/**
 * Canonical JSON: object keys sorted, no whitespace, no undefined. Signatures and hashes are over
 * this form, so both sides must produce it byte for byte.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: unsupported ${typeof value}`);
}

export const TeamMemberSchema = z.strictObject({ userId: IdSchema, role: TeamRoleSchema });

/** One membership statement, as signed. */
export const TeamStatementSchema = z.strictObject({
  v: z.literal(1),
  teamId: IdSchema,
  index: z.number().int().nonnegative(),
  /** Hex SHA-256 of the previous statement's canonical form; '' for the first. */
  prev: z.string().regex(/^([0-9a-f]{64})?$/),
  op: z.enum(['create', 'add', 'remove', 'role']),
  actorUserId: IdSchema,
  actorDeviceId: IdSchema,
  issuedAt: z.number().int().nonnegative(),
  title: z.string().trim().min(1).max(Limits.MAX_TITLE_LENGTH).optional(),
  members: z.array(TeamMemberSchema).min(1).max(Limits.MAX_CONVERSATION_MEMBERS).optional(),
  userId: IdSchema.optional(),
  role: TeamRoleSchema.optional(),
});
export type TeamStatement = z.infer<typeof TeamStatementSchema>;

/** `team:create` and `team:change` carry one signed statement. */
export const TeamStatementRequestSchema = z.strictObject({ signed: SignedStatementSchema });
export type TeamStatementRequest = z.input<typeof TeamStatementRequestSchema>;

export const TeamStatementResultSchema = z.object({ conversation: ConversationSchema, seq: z.number().int().positive() });
export type TeamStatementResult = z.output<typeof TeamStatementResultSchema>;

/** Typing indicators: relayed to the team's members, never stored. */
export const TypingRequestSchema = z.strictObject({ conversationId: IdSchema, typing: z.boolean() });
export type TypingRequest = z.input<typeof TypingRequestSchema>;
export const TypingNoticeSchema = z.object({ conversationId: IdSchema, userId: IdSchema, deviceId: IdSchema, typing: z.boolean() });
export type TypingNotice = z.output<typeof TypingNoticeSchema>;

export const PresenceQuerySchema = z.strictObject({ conversationId: IdSchema });
export type PresenceQuery = z.input<typeof PresenceQuerySchema>;
export const PresenceResultSchema = z.object({ online: z.array(z.object({ userId: IdSchema, deviceIds: z.array(IdSchema) })) });
export type PresenceResult = z.output<typeof PresenceResultSchema>;
