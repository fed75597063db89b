/**
 * Verified credentials (issue #23): an organisation's credentialing office holds a credentialing key
 * (Ed25519; its private half never reaches the hub) and signs attestations: who a clinician is (name,
 * specialty, licence or registration number, institution), bound to the identity key of one of their
 * devices, until an expiry. Clients pin the organisation's credentialing key like a contact's identity
 * key and check each attestation themselves before showing a "verified" badge: a hub that swaps a
 * device's key, edits an attestation or hides the office's key change loses the badge, it cannot forge it.
 *
 * Attestations and revocations travel as canonical JSON (`canonicalJson`) with a base64url signature
 * over `CREDENTIAL_LABEL ‖ UTF-8 canonical JSON`. The hub keeps them in plaintext: they are directory
 * metadata (as a profile is), published so colleagues can find verified peers by specialty.
 */
import { z } from 'zod';
import { IdSchema, TimestampSchema, storedTextSchema, type Ack } from './schemas.js';
import { Limits } from './limits.js';
import { canonicalJson } from './teams.js';
import type { ClientEvent } from './events.js';

/** Domain separation for credentialing signatures. */
export const CREDENTIAL_LABEL: Uint8Array = new TextEncoder().encode('Curbside credential v1\u0000');

/** The bytes a credentialing key signs for one canonical attestation or revocation. */
export function credentialMessage(canonical: string): Uint8Array {
  const body = new TextEncoder().encode(canonical);
  const out = new Uint8Array(CREDENTIAL_LABEL.length + body.length);
  out.set(CREDENTIAL_LABEL, 0);
  out.set(body, CREDENTIAL_LABEL.length);
  return out;
}

/** base64url without padding of a 32-byte Ed25519 public key. */
export const PublicKeyTextSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a 32-byte key in base64url');
/** base64url without padding of a 64-byte Ed25519 signature. */
export const SignatureTextSchema = z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'a 64-byte signature in base64url');

const Field = storedTextSchema(Limits.MAX_PROFILE_FIELD_LENGTH);

/** What the office attests, as signed. */
export const CredentialSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal('attestation'),
  orgId: IdSchema,
  /** Unique per attestation: revocations name it. */
  serial: IdSchema,
  userId: IdSchema,
  /** The device whose identity key this binds, and that key (base64url). */
  deviceId: IdSchema,
  identityKey: PublicKeyTextSchema,
  displayName: Field,
  specialty: Field,
  /** Licence or registration number. */
  licence: Field,
  institution: Field,
  issuedAt: TimestampSchema,
  expiresAt: TimestampSchema,
}).refine((c) => c.expiresAt > c.issuedAt, 'expires after it is issued');
export type Credential = z.infer<typeof CredentialSchema>;

/** The office withdraws an attestation before its expiry. */
export const CredentialRevocationSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal('revocation'),
  orgId: IdSchema,
  serial: IdSchema,
  revokedAt: TimestampSchema,
  reason: storedTextSchema(200).optional(),
});
export type CredentialRevocation = z.infer<typeof CredentialRevocationSchema>;

/** A signed attestation or revocation: its canonical JSON and the credentialing key's signature. */
export const SignedCredentialSchema = z.strictObject({
  signed: z.string().min(2).max(4096),
  signature: SignatureTextSchema,
});
export type SignedCredential = z.infer<typeof SignedCredentialSchema>;

/** Parse a signed document's JSON into its schema, requiring the canonical form. Undefined when it is not one. */
export function parseSigned<T>(schema: z.ZodType<T>, signed: string): T | undefined {
  let value: unknown;
  try {
    value = JSON.parse(signed);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) return undefined;
  try {
    return canonicalJson(parsed.data) === signed ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** `credentials:get`: the organisation's credentialing key, and the attestations and revocations of these users. */
export const CredentialsGetRequestSchema = z.strictObject({ userIds: z.array(IdSchema).min(1).max(Limits.MAX_KEY_QUERY_USERS) });
export type CredentialsGetRequest = z.input<typeof CredentialsGetRequestSchema>;
export const CredentialsResultSchema = z.object({
  /** The credentialing key the hub has for the caller's organisation (clients pin it), if any. */
  orgKey: PublicKeyTextSchema.optional(),
  attestations: z.array(SignedCredentialSchema),
  revocations: z.array(SignedCredentialSchema),
});
export type CredentialsResult = z.infer<typeof CredentialsResultSchema>;

/** `credentials:search`: attestations whose specialty contains every word of `query` (case-insensitive), newest first. */
export const CredentialsSearchRequestSchema = z.strictObject({
  query: storedTextSchema(Limits.MAX_DIRECTORY_QUERY_LENGTH),
  limit: z.number().int().min(1).max(Limits.MAX_DIRECTORY_RESULTS).optional(),
});
export type CredentialsSearchRequest = z.input<typeof CredentialsSearchRequestSchema>;

/** `POST /admin/credentials/key`: the organisation's credentialing public key (set once; a different one is a CONFLICT). */
export const AdminCredentialKeyRequestSchema = z.strictObject({ orgId: IdSchema, publicKey: PublicKeyTextSchema, by: storedTextSchema(200).optional() });
export type AdminCredentialKeyRequest = z.input<typeof AdminCredentialKeyRequestSchema>;
/** `POST /admin/credentials` (an attestation) and `/admin/credentials/revoke` (a revocation): signed by the office. */
export const AdminSignedCredentialRequestSchema = z.strictObject({ orgId: IdSchema, document: SignedCredentialSchema, by: storedTextSchema(200).optional() });
export type AdminSignedCredentialRequest = z.input<typeof AdminSignedCredentialRequestSchema>;
/** `GET /admin/credentials?orgId=&userId=`: a user's attestations and their revocations, as stored. */
export const AdminCredentialsQuerySchema = z.strictObject({ orgId: IdSchema, userId: IdSchema });
export const AdminCredentialsResponseSchema = CredentialsResultSchema;

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging).
declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.CREDENTIALS_GET]: (req: CredentialsGetRequest, ack: (res: Ack<CredentialsResult>) => void) => void;
    [ClientEvent.CREDENTIALS_SEARCH]: (req: CredentialsSearchRequest, ack: (res: Ack<CredentialsResult>) => void) => void;
  }
}
