import { z } from 'zod';
import { IdSchema, ConversationSchema, SignedStatementSchema, TeamRoleSchema, TimestampSchema, storedTextSchema } from './schemas.js';
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
 * Canonical JSON (the RFC 8785 subset we need): object keys sorted by UTF-16 code units, no
 * whitespace, undefined properties left out, strings and numbers as `JSON.stringify` writes them.
 * Signatures and hashes are over this form, so the hub and every client produce it byte for byte.
 * Accepts null, booleans, finite numbers, strings, arrays and plain objects; anything else, or a
 * cycle, is a TypeError.
 */
export function canonicalJson(value: unknown): string {
  const seen = new Set<object>();
  const encode = (v: unknown): string => {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError('canonicalJson: non-finite number');
      return JSON.stringify(v);
    }
    if (typeof v !== 'object') throw new TypeError(`canonicalJson: unsupported ${typeof v}`);
    if (seen.has(v)) throw new TypeError('canonicalJson: cycle');
    seen.add(v);
    let out: string;
    if (Array.isArray(v)) {
      out = `[${v.map(encode).join(',')}]`;
    } else {
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonicalJson: only plain objects');
      const record = v as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      out = `{${keys.map((k) => `${JSON.stringify(k)}:${encode(record[k])}`).join(',')}}`;
    }
    seen.delete(v);
    return out;
  };
  return encode(value);
}

export const TeamMemberSchema = z.strictObject({ userId: IdSchema, role: TeamRoleSchema });

/** Base64url without padding, of `MAX_SEALED_TEAM_DETAILS_BYTES` at most. */
const SEALED_BOX_MAX_CHARS = Math.ceil((Limits.MAX_SEALED_TEAM_DETAILS_BYTES * 4) / 3);
/** Nonce (24) and tag (16) around at least one padding block (64): anything shorter is not a sealed box. */
const SEALED_BOX_MIN_CHARS = Math.ceil(((24 + 16 + 64) * 4) / 3);

/**
 * A care team's title and description, sealed end to end: XChaCha20-Poly1305 under a random team
 * details key that only member devices hold (handed out over the 1:1 sessions, like sender keys).
 * The hub sees the key id and a ciphertext of bounded, padded length, never the title.
 */
export const SealedTeamDetailsSchema = z.strictObject({
  /** Hex of the first 16 bytes of SHA-256("Curbside team details key v1" ‖ 0x00 ‖ key): names the key and commits to it. */
  keyId: z.string().regex(/^[0-9a-f]{32}$/),
  /** base64url (no padding) of nonce ‖ ciphertext; the associated data binds the team id and the key id. */
  box: z
    .string()
    .min(SEALED_BOX_MIN_CHARS)
    .max(SEALED_BOX_MAX_CHARS)
    .regex(/^[A-Za-z0-9_-]+$/),
});
export type SealedTeamDetails = z.infer<typeof SealedTeamDetailsSchema>;

/**
 * One shift of an on-call role: these members hold the role from `from` (inclusive) to `to`
 * (exclusive), epoch ms. Shifts may overlap (both shifts' members hold it then).
 */
export const ShiftSchema = z
  .strictObject({
    userIds: z.array(IdSchema).min(1).max(Limits.MAX_ROLE_SHIFT_USERS),
    from: TimestampSchema,
    to: TimestampSchema,
  })
  .refine((s) => s.from < s.to && s.to - s.from <= Limits.MAX_ROLE_SHIFT_MS, 'a shift ends after it starts, within MAX_ROLE_SHIFT_MS');
export type Shift = z.infer<typeof ShiftSchema>;

/**
 * A team's or role's escalation policy: who an urgent message sent there goes to next if nobody asked
 * acknowledges in time. Each tier names users, roles (whoever holds them when the message is sent), or
 * both, and activates `afterMs` after the send. The sender's SDK follows the verified policy when the
 * app names no tiers itself, so a hub can release a message early only to whom the signed policy names.
 */
export const EscalationPolicyTierSchema = z
  .strictObject({
    afterMs: z.number().int().min(Limits.MIN_ESCALATION_MS).max(Limits.MAX_ESCALATION_MS),
    userIds: z.array(IdSchema).max(Limits.MAX_ESCALATION_TIER_USERS),
    roleIds: z.array(IdSchema).max(Limits.MAX_ESCALATION_TIERS),
  })
  .refine((t) => t.userIds.length + t.roleIds.length > 0, 'a tier names users or roles');
export const EscalationPolicySchema = z
  .strictObject({ tiers: z.array(EscalationPolicyTierSchema).max(Limits.MAX_ESCALATION_TIERS) })
  .refine((p) => p.tiers.every((t, i) => i === 0 || t.afterMs > p.tiers[i - 1]!.afterMs), 'tiers activate in order (afterMs ascending)');
export type EscalationPolicy = z.infer<typeof EscalationPolicySchema>;

/** One membership statement, as signed. */
export const TeamStatementSchema = z.strictObject({
  v: z.literal(1),
  teamId: IdSchema,
  index: z.number().int().nonnegative(),
  /** Hex SHA-256 of the previous statement's canonical form; '' for the first. */
  prev: z.string().regex(/^([0-9a-f]{64})?$/),
  /**
   * `hold` and `schedule` exist only in on-call roles (a team created with `roleName`): `hold` is a
   * member taking the role now ("I'm taking cardiology on-call"), `schedule` an owner or admin setting
   * the shifts. `policy`: an owner or admin sets the escalation policy (no tiers: none).
   * `join` and `hide` exist only in consult pools (a team created with `poolTopic`): `join` is a
   * clinician adding themselves (the hub accepts it only with a verified credential), `hide` a
   * moderator (owner or admin) hiding a case for every member.
   */
  op: z.enum(['create', 'add', 'remove', 'role', 'details', 'hold', 'schedule', 'policy', 'join', 'hide']),
  actorUserId: IdSchema,
  actorDeviceId: IdSchema,
  issuedAt: z.number().int().nonnegative(),
  /** create and details: the team's title and description, sealed (there is no plaintext title). */
  sealedDetails: SealedTeamDetailsSchema.optional(),
  members: z.array(TeamMemberSchema).min(1).max(Limits.MAX_CONVERSATION_MEMBERS).optional(),
  userId: IdSchema.optional(),
  role: TeamRoleSchema.optional(),
  /**
   * create: makes the team an on-call role ("Cardiology on-call") whose members are the clinicians
   * who may hold it. The name is directory metadata the hub holds in plaintext, so people can find the
   * role; the team's sealed title and the messages stay end to end encrypted.
   */
  roleName: storedTextSchema(Limits.MAX_ROLE_NAME_LENGTH).optional(),
  /**
   * create: makes the team a consult pool ("Dermatology curbside") that verified clinicians join
   * themselves. The topic is directory metadata the hub holds in plaintext, as a role's name.
   */
  poolTopic: storedTextSchema(Limits.MAX_POOL_TOPIC_LENGTH).optional(),
  /** hide: the case (its message id) hidden for every member. */
  messageId: IdSchema.optional(),
  /** policy: the escalation policy, replacing the previous one. */
  escalation: EscalationPolicySchema.optional(),
  /** schedule: the role's shifts, replacing the previous ones. */
  shifts: z.array(ShiftSchema).max(Limits.MAX_ROLE_SHIFTS).optional(),
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
