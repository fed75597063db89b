import { z } from 'zod';
import { Limits } from './limits.js';
import { CloseCodeSchema, WireErrorSchema } from './errors.js';

/**
 * Runtime schemas for everything that crosses the wire. Types are inferred from these, never
 * written twice: `z.input` is what a sender may pass, `z.output` what a receiver gets after parsing.
 */

/** Opaque identifiers: printable ASCII without spaces, bounded length. */
export const IdSchema = z
  .string()
  .min(1)
  .max(Limits.MAX_ID_LENGTH)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/**
 * Control characters (C0 and DEL). No text the hub stores may hold one: PostgreSQL's `jsonb`, under
 * FerretDB, refuses NUL outright (SQLSTATE 22P05), and none has a place in a name.
 */
const NO_CONTROL_CHARACTERS = /^[^\x00-\x1f\x7f]*$/;

/** Free text the hub stores (an operator's name for the audit log): trimmed, 1 to `max` characters, no control characters. */
export function storedTextSchema(max: number) {
  return z.string().trim().min(1).max(max).regex(NO_CONTROL_CHARACTERS, 'must not contain control characters');
}

/**
 * Raw bytes. socket.io carries them as binary attachments: Node delivers a Buffer (a Uint8Array),
 * browsers an ArrayBuffer. Both parse to a Uint8Array.
 */
export function bytesSchema(maxBytes: number) {
  return z
    .custom<Uint8Array | ArrayBuffer>(
      (v) => v instanceof Uint8Array || v instanceof ArrayBuffer,
      { message: 'expected binary data (Uint8Array or ArrayBuffer)' },
    )
    .superRefine((v, ctx) => {
      if (v.byteLength > maxBytes) {
        ctx.addIssue({
          code: 'too_big',
          maximum: maxBytes,
          origin: 'array',
          inclusive: true,
          input: v,
          message: `must be at most ${maxBytes} bytes (got ${v.byteLength})`,
        });
      }
      if (v.byteLength === 0) {
        ctx.addIssue({ code: 'custom', input: v, message: 'must not be empty' });
      }
    })
    .transform((v): Uint8Array => (v instanceof Uint8Array ? v : new Uint8Array(v)));
}

/**
 * A care team's membership epoch: the hex SHA-256 of the canonical form of the last statement of its
 * signed membership log (`TeamState.head`). Team messages are bound to it (in the sender-key
 * associated data and on the envelope), so a message encrypted for one membership cannot be
 * sequenced after a change to it (docs/threat-model.md).
 */
export const EpochSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** Epoch milliseconds. */
export const TimestampSchema = z.number().int().nonnegative();

// --- Conversations -------------------------------------------------------------------------

export const ConversationKind = { DIRECT: 'direct', GROUP: 'group' } as const;
export type ConversationKind = (typeof ConversationKind)[keyof typeof ConversationKind];

export const ConversationCreateRequestSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal(ConversationKind.DIRECT),
    /** The other clinician. Creating a direct conversation that exists returns the existing one. */
    peerUserId: IdSchema,
  }),
  z.strictObject({
    kind: z.literal(ConversationKind.GROUP),
    // No title: anything named here the hub would hold in plaintext. A named group is a care team
    // (`team:create`), whose title and description are sealed end to end.
    /** Members besides the creator, who is always a member. */
    memberUserIds: z.array(IdSchema).max(Limits.MAX_CONVERSATION_MEMBERS - 1),
  }),
]);
export type ConversationCreateRequest = z.input<typeof ConversationCreateRequestSchema>;

export const TeamRole = { OWNER: 'owner', ADMIN: 'admin', MEMBER: 'member' } as const;
export type TeamRole = (typeof TeamRole)[keyof typeof TeamRole];
export const TeamRoleSchema = z.enum([TeamRole.OWNER, TeamRole.ADMIN, TeamRole.MEMBER]);

/** A care-team membership statement and its signature (see `teams.ts`). Visible to the hub: it is routing metadata. */
export const SignedStatementSchema = z.strictObject({
  /** The canonical JSON of a `TeamStatement`. */
  statement: z.string().min(2).max(64 * 1024),
  signature: bytesSchema(64).refine((b) => b.byteLength === 64, 'a signature is 64 bytes'),
});
export type SignedStatement = z.output<typeof SignedStatementSchema>;

export const ConversationSchema = z.object({
  id: IdSchema,
  kind: z.enum([ConversationKind.DIRECT, ConversationKind.GROUP]),
  /** Only plain groups created before titles left the wire (a care team's title is sealed, `SealedTeamDetails`). */
  title: z.string().optional(),
  memberUserIds: z.array(IdSchema),
  createdBy: IdSchema,
  createdAt: TimestampSchema,
  /** Highest sequence number assigned so far (0 when empty). */
  lastSeq: z.number().int().nonnegative(),
  /** Care teams: each member's role as the hub applied the signed log (clients verify the log themselves). */
  roles: z.record(IdSchema, TeamRoleSchema).optional(),
  /** Care teams: whether membership is a signed log (`team:create`) rather than the hub's say-so. */
  signed: z.boolean().optional(),
  /** Care teams: the current membership epoch, which every team message must be bound to. */
  epoch: EpochSchema.optional(),
  /** Consult pools (consults.ts): a care team with a topic, which sealed posts may be sent to. */
  pool: z.literal(true).optional(),
  /**
   * A thread with an on-call role (roles.ts): its members are the requester (`createdBy`) and the
   * role's members; messages are sealed for the requester and whoever holds the role.
   */
  roleId: IdSchema.optional(),
});
export type Conversation = z.infer<typeof ConversationSchema>;

export const ConversationGetRequestSchema = z.strictObject({ conversationId: IdSchema });
export type ConversationGetRequest = z.input<typeof ConversationGetRequestSchema>;

/**
 * `conversation:list`, a page at a time (oldest first): pass the previous answer's `next` as `after`
 * until an answer has none. Pages keep every answer well under a frame, however many conversations
 * a clinician was added to.
 */
export const ConversationListRequestSchema = z.strictObject({
  /** @default 100 */
  limit: z.number().int().min(1).max(Limits.MAX_CONVERSATION_PAGE).optional(),
  /** The `next` of the previous page. */
  after: z.string().min(1).max(512).optional(),
});
export type ConversationListRequest = z.input<typeof ConversationListRequestSchema>;
export const ConversationListResultSchema = z.object({
  conversations: z.array(ConversationSchema),
  /** Present when there are more: the `after` of the next page. */
  next: z.string().optional(),
});
export type ConversationListResult = z.infer<typeof ConversationListResultSchema>;

// --- Envelopes -----------------------------------------------------------------------------

/** One device's share of an end-to-end-encrypted envelope. */
export const RecipientCiphertextSchema = z.strictObject({
  deviceId: IdSchema,
  ciphertext: bytesSchema(Limits.MAX_DEVICE_CIPHERTEXT_BYTES),
});
export type RecipientCiphertext = z.input<typeof RecipientCiphertextSchema>;

/** Priorities that raise an alert (alerts.ts; `routine` raises none). */
export const AlertPrioritySchema = z.enum(['urgent', 'emergent']);
export type AlertPriority = z.infer<typeof AlertPrioritySchema>;

/**
 * Who must acknowledge an alert: `any` — the first acknowledgement by a required recipient settles it
 * ("someone take this"); `all` — every required recipient must.
 */
export const AckPolicySchema = z.enum(['any', 'all']);
export type AckPolicy = z.infer<typeof AckPolicySchema>;

/**
 * A later tier of an escalation (alerts.ts): who is asked if nobody required acknowledged within
 * `afterMs` of the send, and, for each of their devices, the message's key wrapped over the sender's
 * 1:1 session with it. The hub holds the wrapped keys and hands them out only when the tier activates.
 */
export const EscalationTierSchema = z.strictObject({
  afterMs: z.number().int().min(Limits.MIN_ESCALATION_MS).max(Limits.MAX_ESCALATION_MS),
  userIds: z.array(IdSchema).min(1).max(Limits.MAX_ESCALATION_TIER_USERS),
  recipients: z.array(RecipientCiphertextSchema).min(1).max(Limits.MAX_RECIPIENT_DEVICES),
});
export type EscalationTier = z.input<typeof EscalationTierSchema>;

/** `EnvelopeSendRequest.alert`: raise an alert with this message (alerts.ts). */
export const AlertSpecSchema = z
  .strictObject({
    priority: AlertPrioritySchema,
    /** @default 'any' */
    ackPolicy: AckPolicySchema.optional(),
    /**
     * Escalation: the content sealed once more under its own key (`body`, for readers outside the
     * conversation), and the later tiers, in order of `afterMs`.
     */
    escalation: z
      .strictObject({ body: bytesSchema(Limits.MAX_CIPHERTEXT_BYTES), tiers: z.array(EscalationTierSchema).min(1).max(Limits.MAX_ESCALATION_TIERS) })
      .refine((e) => e.tiers.every((t, i) => i === 0 || t.afterMs > e.tiers[i - 1]!.afterMs), { message: 'tiers activate one after the other: afterMs must increase' })
      .refine((e) => new Set(e.tiers.flatMap((t) => t.userIds)).size === e.tiers.reduce((n, t) => n + t.userIds.length, 0), { message: 'a user may be named in one tier only, once' })
      .optional(),
  })
  .refine((a) => a.escalation === undefined || (a.ackPolicy ?? 'any') === 'any', { message: 'an escalation stops at the first acknowledgement: ackPolicy must be any', path: ['ackPolicy'] });
export type AlertSpec = z.input<typeof AlertSpecSchema>;

/** `EnvelopeSendRequest.attachmentIds`: the uploads a message names (attachments.ts). */
export const AttachmentIdsSchema = z
  .array(IdSchema)
  .min(1)
  .max(Limits.MAX_ATTACHMENTS_PER_MESSAGE)
  .refine((ids) => new Set(ids).size === ids.length, { message: 'each attachment may be named once' });

export const EnvelopeSendRequestSchema = z
  .strictObject({
    conversationId: IdSchema,
    /**
     * Chosen by the sending device, unique per device. Retrying a send with the same id is safe:
     * the hub stores and delivers it once and answers every retry with the same ack.
     */
    clientMessageId: IdSchema,
    /** Opaque to the hub; delivered to every member device (e.g. a message encrypted under a one-off key). */
    body: bytesSchema(Limits.MAX_CIPHERTEXT_BYTES).optional(),
    /**
     * Per-device ciphertexts; each device receives only its own. When present, the list must name
     * exactly the devices with published keys of every member except the sending device, or the hub
     * answers DEVICE_LIST_STALE with what is missing and extra.
     */
    recipients: z.array(RecipientCiphertextSchema).min(1).max(Limits.MAX_RECIPIENT_DEVICES).optional(),
    /**
     * `recipients` names only some devices on purpose (sender-key distribution to devices that lack
     * it, a receipt to the sender's devices). The hub then checks only that every named device
     * belongs to a member; the others get the envelope without a share.
     */
    partial: z.boolean().optional(),
    /** `receipt`: a delivery or read receipt (encrypted like any message); devices it does not name ignore it. */
    kind: z.enum(['message', 'receipt']).optional(),
    /**
     * Care teams: the membership epoch the `body` was encrypted for. Required with the `body` of a
     * care-team message (not a receipt); the hub refuses any other than the team's current one with
     * STALE_EPOCH, atomically with sequencing.
     */
    epoch: EpochSchema.optional(),
    /**
     * Raise an alert with this message (urgent or emergent; alerts.ts): the hub re-notifies the other
     * members' devices until it is acknowledged. Only with a message body (every member device gets it).
     */
    alert: AlertSpecSchema.optional(),
    /** Role threads (roles.ts): hands the pending alerts at these seqs to the new holders whose devices it names. */
    handoff: z.strictObject({ seqs: z.array(z.number().int().positive()).min(1).max(Limits.MAX_HANDOFF_MESSAGES) }).optional(),
    /**
     * Attachments the message names (attachments.ts): uploads this device finished in this
     * conversation. The hub checks them before storing anything and keeps them for the
     * conversation's retention; an upload no message names is swept. Only with a message body.
     */
    attachmentIds: AttachmentIdsSchema.optional(),
  })
  .refine((r) => r.body !== undefined || r.recipients !== undefined, { message: 'an envelope needs a body, recipients, or both' })
  .refine((r) => r.alert === undefined || (r.body !== undefined && r.kind !== 'receipt'), {
    message: 'an alert needs a message body (not a receipt)',
    path: ['alert'],
  })
  .refine((r) => r.handoff === undefined || (r.partial === true && r.recipients !== undefined && r.alert === undefined), {
    message: 'a hand-off is a partial send to the new holders’ devices, without an alert of its own',
    path: ['handoff'],
  })
  .refine((r) => r.attachmentIds === undefined || (r.body !== undefined && r.kind !== 'receipt'), {
    message: 'attachments go with a message body (not a receipt)',
    path: ['attachmentIds'],
  })
  .refine((r) => !r.recipients || new Set(r.recipients.map((x) => x.deviceId)).size === r.recipients.length, {
    message: 'each device may appear once in recipients',
    path: ['recipients'],
  });
export type EnvelopeSendRequest = z.input<typeof EnvelopeSendRequestSchema>;

export const SendResultSchema = z.object({
  messageId: IdSchema,
  conversationId: IdSchema,
  seq: z.number().int().positive(),
  sentAt: TimestampSchema,
  /** True when this send was a retry of one the hub already stored. */
  duplicate: z.boolean(),
});
export type SendResult = z.infer<typeof SendResultSchema>;

/**
 * An envelope as delivered to one device, live or through sync. `ciphertext` is that device's
 * own share; an envelope that named recipients but not this device (sent before the device
 * existed) arrives with neither `body` nor `ciphertext`, so the sequence stays gap-free.
 */
export const EnvelopeSchema = z.object({
  messageId: IdSchema,
  conversationId: IdSchema,
  seq: z.number().int().positive(),
  senderUserId: IdSchema,
  senderDeviceId: IdSchema,
  clientMessageId: IdSchema,
  sentAt: TimestampSchema,
  body: bytesSchema(Limits.MAX_CIPHERTEXT_BYTES).optional(),
  ciphertext: bytesSchema(Limits.MAX_DEVICE_CIPHERTEXT_BYTES).optional(),
  /** The send named only some devices (see `EnvelopeSendRequest.partial`). */
  partial: z.boolean().optional(),
  kind: z.enum(['message', 'receipt']).optional(),
  /** Care teams: the membership epoch the body was encrypted for (see `EnvelopeSendRequest.epoch`). */
  epoch: EpochSchema.optional(),
  /** A care-team membership statement, in the conversation's sequence. */
  membership: SignedStatementSchema.optional(),
});
export type Envelope = z.output<typeof EnvelopeSchema>;

// --- Device keys (public halves only: private keys never leave the device) ----------------

/** Ed25519 public identity key of a device. */
export const IdentityKeySchema = bytesSchema(32).refine((b) => b.byteLength === 32, 'an identity key is 32 bytes');
/** X25519 public key. */
export const PublicKeySchema = bytesSchema(32).refine((b) => b.byteLength === 32, 'a public key is 32 bytes');
export const KeyIdSchema = z.number().int().nonnegative().max(2 ** 31 - 1);

export const SignedPrekeySchema = z.strictObject({
  keyId: KeyIdSchema,
  publicKey: PublicKeySchema,
  /** Ed25519 signature by the identity key over `SIGNED_PREKEY_SIGNATURE_PREFIX ‖ publicKey`. */
  signature: bytesSchema(64).refine((b) => b.byteLength === 64, 'a signature is 64 bytes'),
});
export type SignedPrekey = z.output<typeof SignedPrekeySchema>;

export const OneTimePrekeySchema = z.strictObject({ keyId: KeyIdSchema, publicKey: PublicKeySchema });
export type OneTimePrekey = z.output<typeof OneTimePrekeySchema>;

export const KeysPublishRequestSchema = z.strictObject({
  identityKey: IdentityKeySchema,
  /** Required on a device's first publish; later ones rotate it. */
  signedPrekey: SignedPrekeySchema.optional(),
  oneTimePrekeys: z.array(OneTimePrekeySchema).max(Limits.MAX_PREKEY_BATCH).optional(),
});
export type KeysPublishRequest = z.input<typeof KeysPublishRequestSchema>;
export const KeysPublishResultSchema = z.object({ oneTimePrekeys: z.number().int().nonnegative() });
export type KeysPublishResult = z.infer<typeof KeysPublishResultSchema>;

export const KeysCountRequestSchema = z.strictObject({});
export type KeysCountRequest = z.input<typeof KeysCountRequestSchema>;
export const KeysCountResultSchema = KeysPublishResultSchema;
export type KeysCountResult = KeysPublishResult;

export const DeviceIdentitySchema = z.object({ userId: IdSchema, deviceId: IdSchema, identityKey: IdentityKeySchema });
export type DeviceIdentity = z.output<typeof DeviceIdentitySchema>;

export const UserListRequestSchema = z.strictObject({ userIds: z.array(IdSchema).min(1).max(Limits.MAX_KEY_QUERY_USERS) });
export type UserListRequest = z.input<typeof UserListRequestSchema>;
export const DevicesListResultSchema = z.object({
  /** Devices of users without a signed list, and the listed devices of those with one (never a revoked one). */
  devices: z.array(DeviceIdentitySchema),
  /** The newest signed device-list version per asked user that has one (fetch the chain with `devices:lists`). */
  listVersions: z.array(z.object({ userId: IdSchema, version: z.number().int().min(1) })).optional(),
});
export type DevicesListResult = z.output<typeof DevicesListResultSchema>;

/** What an initiator needs for X3DH with one device. */
export const PrekeyBundleSchema = z.object({
  userId: IdSchema,
  deviceId: IdSchema,
  identityKey: IdentityKeySchema,
  signedPrekey: SignedPrekeySchema,
  /** Absent when the device ran out: X3DH then uses the signed prekey alone. */
  oneTimePrekey: OneTimePrekeySchema.optional(),
});
export type PrekeyBundle = z.output<typeof PrekeyBundleSchema>;

/** Server push `keys:low`: the hub holds this few one-time prekeys for the device. */
export const KeysLowSchema = z.object({ remaining: z.number().int().nonnegative() });
export type KeysLow = z.output<typeof KeysLowSchema>;

/** Below this many one-time prekeys, the hub tells the device (`keys:low`) after a claim. */
export const PREKEYS_LOW_WATERMARK = 20;

export const KeysClaimRequestSchema = z.strictObject({
  userIds: z.array(IdSchema).min(1).max(Limits.MAX_KEY_QUERY_USERS),
  /** Only these devices (e.g. the `missing` of a DEVICE_LIST_STALE); default all of the users' devices. */
  deviceIds: z.array(IdSchema).max(Limits.MAX_RECIPIENT_DEVICES).optional(),
});
export type KeysClaimRequest = z.input<typeof KeysClaimRequestSchema>;
export const KeysClaimResultSchema = z.object({ bundles: z.array(PrekeyBundleSchema) });
export type KeysClaimResult = z.output<typeof KeysClaimResultSchema>;

// --- Sync ----------------------------------------------------------------------------------

export const SyncCursorSchema = z.strictObject({
  conversationId: IdSchema,
  /** The highest seq the device has processed without gaps; 0 for none. */
  afterSeq: z.number().int().nonnegative(),
});
export type SyncCursor = z.infer<typeof SyncCursorSchema>;

export const SyncFetchRequestSchema = z.strictObject({
  /** Conversations not listed start from seq 0. */
  cursors: z.array(SyncCursorSchema).max(Limits.MAX_SYNC_CURSORS),
  limit: z.number().int().min(1).max(Limits.MAX_SYNC_PAGE).optional(),
});
export type SyncFetchRequest = z.input<typeof SyncFetchRequestSchema>;

export const SyncAckRequestSchema = z.strictObject({
  /** Per conversation, the highest seq this device processed without gaps. */
  cursors: z.array(SyncCursorSchema).min(1).max(Limits.MAX_SYNC_CURSORS),
});
export type SyncAckRequest = z.input<typeof SyncAckRequestSchema>;

export const SyncFetchResultSchema = z.object({
  /** Ordered by conversation, then seq ascending; per conversation, contiguous from its cursor. */
  envelopes: z.array(EnvelopeSchema),
  /** True when the page limit cut the result: fetch again with advanced cursors. */
  more: z.boolean(),
});
export type SyncFetchResult = z.output<typeof SyncFetchResultSchema>;

// --- Acks and server pushes ----------------------------------------------------------------

/** Every acknowledgement has this shape. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: z.infer<typeof WireErrorSchema> };
export function ackSchema<T extends z.ZodType>(data: T) {
  return z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), data }),
    z.object({ ok: z.literal(false), error: WireErrorSchema }),
  ]);
}

export const SessionClosingSchema = z.object({ code: CloseCodeSchema, message: z.string() });
export type SessionClosing = z.infer<typeof SessionClosingSchema>;

// --- Handshake and tokens ------------------------------------------------------------------

/**
 * What the client puts in socket.io's `auth` field. `deviceId` states this device when access tokens
 * carry no `dev` claim (an OpenID Connect provider's tokens): the hub binds it to the token's user at
 * registration. `userId`, if given, must be the user the token names (catches a misconfigured app).
 */
export const HandshakeAuthSchema = z.object({ token: z.string().min(1).max(8192), deviceId: IdSchema.optional(), userId: IdSchema.optional() });
export type HandshakeAuth = z.infer<typeof HandshakeAuthSchema>;

/**
 * Claims the hub requires in an access token signed by a static key (besides `iss`, `aud`, `exp`,
 * checked by the verifier). `sub` is the clinician, `org` the organisation (tenant), `dev` the device
 * the token was issued to. Tokens from an OpenID Connect provider are read by the claim mapping in
 * the hub's configuration instead (OIDC_USER_CLAIM, OIDC_ORG_CLAIM…), and the device comes from the handshake.
 */
export const AccessTokenClaimsSchema = z.object({
  sub: IdSchema,
  org: IdSchema,
  dev: IdSchema,
  name: z.string().max(200).optional(),
  jti: z.string().max(200).optional(),
  exp: z.number().int(),
  iat: z.number().int().optional(),
  /** When the user last signed in (OIDC), epoch seconds: sensitive actions need it recent. */
  auth_time: z.number().int().optional(),
});
export type AccessTokenClaims = z.infer<typeof AccessTokenClaimsSchema>;
