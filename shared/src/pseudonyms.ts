/**
 * Pseudonymous posting (issue #23): one-time tokens that say "the holder has a valid credential of
 * specialty S in organisation O" and nothing else, signed blind by the organisation's credentialing
 * office with RSA blind signatures (RFC 9474, RSABSSA-SHA384-PSS-Randomized).
 *
 * - Per (epoch, specialty) the office makes an RSA key and certifies its public half with its Ed25519
 *   credentialing key (`pseudonym-key`, signed like attestations: `credentialMessage`). `perUser` caps
 *   the tokens one clinician may get in the epoch. An office-signed `pseudonym-key-revocation` ends the
 *   epoch: no token of it verifies from `revokedAt` on.
 * - A device asks for tokens with a request signed by its identity key (the one its attestation binds),
 *   carrying blinded messages only; the office checks the attestation and the cap itself and signs blind.
 * - A token is `{ message, prefix, signature }`: the canonical message names the org, epoch, specialty and
 *   a fresh one-time Ed25519 key (the posting key); `prefix` is RFC 9474's 32 random bytes, and the RSA
 *   signature is over `prefix ‖ message`. Its nullifier is the SHA-256 of the message: spent once per scope.
 *
 * Verification uses WebCrypto only (`globalThis.crypto.subtle`: Node 20 and browsers), so this package
 * needs no RSA library; making and signing blinded messages happens in the SDK and the office CLI.
 */
import { z } from 'zod';
import { IdSchema, TimestampSchema, storedTextSchema, type Ack } from './schemas.js';
import { Limits } from './limits.js';
import { PublicKeyTextSchema, SignatureTextSchema, SignedCredentialSchema, credentialMessage, parseSigned, type SignedCredential } from './credentials.js';
import type { ClientEvent } from './events.js';

/** The RFC 9474 variant every token uses. */
export const PSEUDONYM_SUITE = 'RSABSSA-SHA384-PSS-Randomized';
/** RSA-PSS salt length of that variant (the SHA-384 output size). */
export const PSEUDONYM_PSS_SALT_BYTES = 48;
/** Smallest RSA modulus a token key may have, in bits. */
export const PSEUDONYM_MIN_MODULUS_BITS = 2048;

/** base64url (no padding) of an RSA public key as SubjectPublicKeyInfo DER (2048 to 4096 bits). */
export const RsaPublicKeyTextSchema = z.string().regex(/^[A-Za-z0-9_-]{380,1100}$/, 'an RSA SubjectPublicKeyInfo in base64url');
/** base64url (no padding) of an RSA-sized value: a blinded message or a (blind) signature, 2048 to 4096 bits. */
export const RsaBlockTextSchema = z.string().regex(/^[A-Za-z0-9_-]{342,683}$/, 'a 2048- to 4096-bit RSA value in base64url');
/** base64url (no padding) of RFC 9474's 32-byte random message prefix. */
export const PseudonymPrefixSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, '32 bytes in base64url');

const Specialty = storedTextSchema(Limits.MAX_PROFILE_FIELD_LENGTH);

/** The office certifies one token key per (organisation, epoch, specialty). */
export const PseudonymKeySchema = z
  .strictObject({
    v: z.literal(1),
    type: z.literal('pseudonym-key'),
    orgId: IdSchema,
    /** The revocation epoch's name (e.g. `2026-12`): revoking it ends every token of this key. */
    epoch: IdSchema,
    specialty: Specialty,
    /** The RSA public key, SubjectPublicKeyInfo DER in base64url. */
    publicKey: RsaPublicKeyTextSchema,
    /** How many tokens one clinician may get in this epoch, for this specialty. */
    perUser: z.number().int().min(1).max(Limits.MAX_PSEUDONYMS_PER_USER),
    notBefore: TimestampSchema,
    notAfter: TimestampSchema,
  })
  .refine((k) => k.notAfter > k.notBefore, 'notAfter after notBefore');
export type PseudonymKey = z.infer<typeof PseudonymKeySchema>;

/** The office ends an epoch: none of its tokens verifies for a time at or after `revokedAt`. */
export const PseudonymKeyRevocationSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal('pseudonym-key-revocation'),
  orgId: IdSchema,
  epoch: IdSchema,
  specialty: Specialty,
  revokedAt: TimestampSchema,
});
export type PseudonymKeyRevocation = z.infer<typeof PseudonymKeyRevocationSchema>;

/** What a token's RSA signature is over (after RFC 9474's random prefix), as canonical JSON. */
export const PseudonymMessageSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal('pseudonym'),
  orgId: IdSchema,
  epoch: IdSchema,
  specialty: Specialty,
  /** A fresh one-time Ed25519 public key (base64url): the poster signs with its private half. */
  key: PublicKeyTextSchema,
});
export type PseudonymMessage = z.infer<typeof PseudonymMessageSchema>;

/** A finalized token: the canonical message, the random prefix and the office's RSA-PSS signature over `prefix ‖ message`. */
export const PseudonymTokenSchema = z.strictObject({
  message: z.string().min(2).max(1024),
  prefix: PseudonymPrefixSchema,
  signature: RsaBlockTextSchema,
});
export type PseudonymToken = z.infer<typeof PseudonymTokenSchema>;

/** The certified token keys and epoch revocations of an organisation (`pseudonym:keys`). */
export const PseudonymKeysResultSchema = z.object({
  /** The credentialing key the hub has for the organisation: clients check it against the one they pinned. */
  orgKey: PublicKeyTextSchema.optional(),
  keys: z.array(SignedCredentialSchema),
  revocations: z.array(SignedCredentialSchema),
});
export type PseudonymKeysResult = z.infer<typeof PseudonymKeysResultSchema>;

/** Domain separation for a device's signature on its token request. */
export const PSEUDONYM_REQUEST_LABEL: Uint8Array = new TextEncoder().encode('Curbside pseudonym request v1\u0000');

/** The bytes a device's identity key signs for one canonical token request. */
export function pseudonymRequestMessage(canonical: string): Uint8Array {
  const body = new TextEncoder().encode(canonical);
  const out = new Uint8Array(PSEUDONYM_REQUEST_LABEL.length + body.length);
  out.set(PSEUDONYM_REQUEST_LABEL, 0);
  out.set(body, PSEUDONYM_REQUEST_LABEL.length);
  return out;
}

/**
 * A device asks for tokens: signed by its identity key, so a hub cannot ask in a clinician's name
 * (the office checks this signature under the key the clinician's attestation binds).
 */
export const PseudonymRequestDocSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal('pseudonym-request'),
  /** Chosen by the device; the office answers each id once. */
  requestId: IdSchema,
  orgId: IdSchema,
  userId: IdSchema,
  deviceId: IdSchema,
  epoch: IdSchema,
  specialty: Specialty,
  blinded: z.array(RsaBlockTextSchema).min(1).max(Limits.MAX_PSEUDONYM_BATCH),
  createdAt: TimestampSchema,
});
export type PseudonymRequestDoc = z.infer<typeof PseudonymRequestDocSchema>;

/** `pseudonym:keys` takes no arguments. */
export const PseudonymEmptyRequestSchema = z.strictObject({});

/** `pseudonym:request`: the canonical request and the device's Ed25519 signature over `pseudonymRequestMessage`. */
export const PseudonymRequestSchema = z.strictObject({
  request: z.string().min(2).max(16_384),
  signature: SignatureTextSchema,
});
export type PseudonymRequest = z.infer<typeof PseudonymRequestSchema>;
export const PseudonymRequestResultSchema = z.object({ requestId: IdSchema, count: z.number().int() });
export type PseudonymRequestResult = z.infer<typeof PseudonymRequestResultSchema>;

/** The office's answer to one request: a blind signature per blinded message, in order. */
export const PseudonymAnswerSchema = z.object({
  requestId: IdSchema,
  epoch: IdSchema,
  specialty: Specialty,
  blindSignatures: z.array(RsaBlockTextSchema).min(1).max(Limits.MAX_PSEUDONYM_BATCH),
});
export type PseudonymAnswer = z.infer<typeof PseudonymAnswerSchema>;
/** `pseudonym:collect`: the office's answers to these requests of the calling device (those answered so far). */
export const PseudonymCollectRequestSchema = z.strictObject({ requestIds: z.array(IdSchema).min(1).max(Limits.MAX_PSEUDONYM_COLLECT) });
export type PseudonymCollectRequest = z.input<typeof PseudonymCollectRequestSchema>;
export const PseudonymCollectResultSchema = z.object({ answers: z.array(PseudonymAnswerSchema) });
export type PseudonymCollectResult = z.infer<typeof PseudonymCollectResultSchema>;

/** `POST /admin/pseudonyms/keys` (a certified key) and `/admin/pseudonyms/revoke` (an epoch revocation). */
export const AdminPseudonymDocumentRequestSchema = z.strictObject({ orgId: IdSchema, document: SignedCredentialSchema, by: storedTextSchema(200).optional() });
export type AdminPseudonymDocumentRequest = z.input<typeof AdminPseudonymDocumentRequestSchema>;
/** `GET /admin/pseudonyms/requests?orgId=`: requests not answered yet, oldest first. */
export const AdminPseudonymRequestsQuerySchema = z.strictObject({ orgId: IdSchema, limit: z.coerce.number().int().min(1).max(500).optional() });
export const AdminPseudonymRequestsResponseSchema = z.object({ requests: z.array(PseudonymRequestSchema) });
export type AdminPseudonymRequestsResponse = z.infer<typeof AdminPseudonymRequestsResponseSchema>;
/** `POST /admin/pseudonyms/answers`: the office's blind signatures for one request. */
export const AdminPseudonymAnswerRequestSchema = z.strictObject({
  orgId: IdSchema,
  requestId: IdSchema,
  blindSignatures: z.array(RsaBlockTextSchema).min(1).max(Limits.MAX_PSEUDONYM_BATCH),
  by: storedTextSchema(200).optional(),
});
export type AdminPseudonymAnswerRequest = z.input<typeof AdminPseudonymAnswerRequestSchema>;

/** Why a token does not verify. */
export type PseudonymRejection =
  | 'malformed'
  | 'no-key'
  | 'ambiguous-key'
  | 'revoked'
  | 'not-yet-valid'
  | 'expired'
  | 'bad-signature';
export type PseudonymVerification =
  | { ok: true; orgId: string; epoch: string; specialty: string; postingKey: string; nullifier: string }
  | { ok: false; reason: PseudonymRejection };

/** Ed25519 verification: WebCrypto by default; the SDK passes libsodium's, the hub Node's. */
export type Ed25519Verify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean>;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available');
  return s;
}

/** base64url (with or without padding) to bytes; undefined when it is not base64url. */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) return undefined;
  const b64 = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  try {
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/** bytes to base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const webCryptoEd25519: Ed25519Verify = async (publicKey, message, signature) => {
  try {
    const key = await subtle().importKey('raw', new Uint8Array(publicKey), { name: 'Ed25519' }, false, ['verify']);
    return await subtle().verify({ name: 'Ed25519' }, key, new Uint8Array(signature), new Uint8Array(message));
  } catch {
    return false;
  }
};

/** The nullifier of a token: hex SHA-256 of its message. A token is spent once per scope under it. */
export async function pseudonymNullifier(token: Pick<PseudonymToken, 'message'>): Promise<string> {
  const digest = new Uint8Array(await subtle().digest('SHA-256', new TextEncoder().encode(token.message)));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The bytes RFC 9474's randomized variant signs: `prefix ‖ message`. */
export function pseudonymSignedBytes(prefix: Uint8Array, message: string): Uint8Array<ArrayBuffer> {
  const body = new TextEncoder().encode(message);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

/** Import a token key's SubjectPublicKeyInfo for RSA-PSS with SHA-384; undefined when it is not one of at least 2048 bits. */
export async function importPseudonymPublicKey(spki: string, usages: KeyUsage[] = ['verify']): Promise<CryptoKey | undefined> {
  const der = fromBase64Url(spki);
  if (!der) return undefined;
  try {
    const key = await subtle().importKey('spki', der, { name: 'RSA-PSS', hash: 'SHA-384' }, true, usages);
    const bits = (key.algorithm as RsaHashedKeyAlgorithm).modulusLength;
    return bits >= PSEUDONYM_MIN_MODULUS_BITS ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The certified keys and revocations that verify under the office's key, for one organisation. A
 * document with a bad signature, another organisation or a non-canonical form is left out.
 */
export async function certifiedPseudonymKeys(
  docs: Pick<PseudonymKeysResult, 'keys' | 'revocations'>,
  orgId: string,
  officePublicKey: string,
  verifyEd25519: Ed25519Verify = webCryptoEd25519,
): Promise<{ keys: PseudonymKey[]; revocations: PseudonymKeyRevocation[] }> {
  const office = fromBase64Url(officePublicKey);
  const signedByOffice = async (d: SignedCredential) => {
    const signature = fromBase64Url(d.signature);
    return office !== undefined && signature !== undefined && (await verifyEd25519(office, credentialMessage(d.signed), signature));
  };
  const keys: PseudonymKey[] = [];
  for (const d of docs.keys) {
    const k = parseSigned(PseudonymKeySchema, d.signed);
    if (k && k.orgId === orgId && (await signedByOffice(d))) keys.push(k);
  }
  const revocations: PseudonymKeyRevocation[] = [];
  for (const d of docs.revocations) {
    const r = parseSigned(PseudonymKeyRevocationSchema, d.signed);
    if (r && r.orgId === orgId && (await signedByOffice(d))) revocations.push(r);
  }
  return { keys, revocations };
}

/**
 * Verify a token for a post made at `now`: its message is canonical; exactly one key the office
 * certified (under `officePublicKey`) for its organisation, epoch and specialty exists; that epoch is not
 * revoked at `now` and the key is valid at `now` (`notBefore <= now < notAfter`); and the RSA-PSS
 * signature over `prefix ‖ message` verifies under it. Readers pass the time the hub sequenced the post,
 * so an old post stays verified after its epoch ends; the hub passes the present when a token is spent.
 *
 * @param token - the token as posted
 * @param docs - the signed key certificates and epoch revocations (`pseudonym:keys`), unchecked
 * @param officePublicKey - the organisation's credentialing key as this party trusts it (base64url)
 * @param now - the post's time (ms since the epoch)
 * @example
 * ```ts
 * const v = await verifyPseudonymToken(token, await hub.pseudonymKeys(), pinnedOfficeKey, post.createdAt);
 * if (v.ok) label = `A verified ${v.specialty} clinician`;
 * ```
 */
export async function verifyPseudonymToken(
  token: PseudonymToken,
  docs: Pick<PseudonymKeysResult, 'keys' | 'revocations'>,
  officePublicKey: string,
  now: number,
  verifyEd25519: Ed25519Verify = webCryptoEd25519,
): Promise<PseudonymVerification> {
  const parsed = PseudonymTokenSchema.safeParse(token);
  if (!parsed.success) return { ok: false, reason: 'malformed' };
  const message = parseSigned(PseudonymMessageSchema, token.message);
  const prefix = fromBase64Url(token.prefix);
  const signature = fromBase64Url(token.signature);
  if (!message || !prefix || prefix.length !== 32 || !signature) return { ok: false, reason: 'malformed' };
  const certified = await certifiedPseudonymKeys(docs, message.orgId, officePublicKey, verifyEd25519);
  const same = (d: { epoch: string; specialty: string }) => d.epoch === message.epoch && d.specialty === message.specialty;
  const candidates = [...new Set(certified.keys.filter(same).map((k) => k.publicKey))];
  if (candidates.length === 0) return { ok: false, reason: 'no-key' };
  // Two keys for one epoch would let an office sort clinicians by which key signed their tokens.
  if (candidates.length > 1) return { ok: false, reason: 'ambiguous-key' };
  const key = certified.keys.find((k) => same(k))!;
  if (certified.revocations.some((r) => same(r) && r.revokedAt <= now)) return { ok: false, reason: 'revoked' };
  if (now < key.notBefore) return { ok: false, reason: 'not-yet-valid' };
  if (now >= key.notAfter) return { ok: false, reason: 'expired' };
  const rsa = await importPseudonymPublicKey(key.publicKey);
  if (!rsa) return { ok: false, reason: 'no-key' };
  let valid = false;
  try {
    valid = await subtle().verify({ name: 'RSA-PSS', saltLength: PSEUDONYM_PSS_SALT_BYTES }, rsa, signature, pseudonymSignedBytes(prefix, token.message));
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: 'bad-signature' };
  return { ok: true, orgId: message.orgId, epoch: message.epoch, specialty: message.specialty, postingKey: message.key, nullifier: await pseudonymNullifier(token) };
}

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging).
declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.PSEUDONYM_KEYS]: (req: Record<string, never>, ack: (res: Ack<PseudonymKeysResult>) => void) => void;
    [ClientEvent.PSEUDONYM_REQUEST]: (req: PseudonymRequest, ack: (res: Ack<PseudonymRequestResult>) => void) => void;
    [ClientEvent.PSEUDONYM_COLLECT]: (req: PseudonymCollectRequest, ack: (res: Ack<PseudonymCollectResult>) => void) => void;
  }
}
