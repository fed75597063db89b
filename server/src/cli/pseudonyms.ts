/**
 * The credentialing office's side of pseudonymous posting (shared/src/pseudonyms.ts), for
 * `curbside-admin credentials pseudonym-key | sign-pseudonyms | revoke-pseudonym-key`.
 *
 * The office trusts the hub with nothing: every request it signs blind it checks itself, with its own
 * key — the requester's attestation (signed by this office, for this organisation, user, device and
 * specialty, valid now, not revoked), the request's signature by the identity key that attestation
 * binds, and the per-user cap, counted in a ledger kept beside the token keys (the hub's count is not
 * believed). So a hub can neither mint tokens (it has no RSA private key) nor obtain them in a
 * clinician's name (it cannot sign a request with their device's key).
 */
import { createPublicKey, sign, verify, webcrypto, type KeyObject } from 'node:crypto';
import { readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RSABSSA } from '@cloudflare/blindrsa-ts';
import {
  CredentialRevocationSchema,
  CredentialSchema,
  PseudonymKeyRevocationSchema,
  PseudonymKeySchema,
  PseudonymRequestDocSchema,
  SignedCredentialSchema,
  canonicalJson,
  credentialMessage,
  fromBase64Url,
  parseSigned,
  pseudonymRequestMessage,
  toBase64Url,
  type CredentialsResult,
  type PseudonymKey,
  type PseudonymRequest,
  type PseudonymRequestDoc,
  type SignedCredential,
} from '@curbside/shared';
import { z } from 'zod';
import { signedByOffice } from '../domain/credentials.js';

const suite = () => RSABSSA.SHA384.PSS.Randomized();
const RSA_PSS_SHA384 = { name: 'RSA-PSS', hash: 'SHA-384' } as const;

function signByOffice(officeKey: KeyObject, document: object): SignedCredential {
  const signed = canonicalJson(document);
  return { signed, signature: sign(null, credentialMessage(signed), officeKey).toString('base64url') };
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/** A file-name-safe slug of an epoch and specialty (the certificate inside says exactly which). */
function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'x';
}

/** Where a token key's private half (PKCS#8 PEM, mode 0600) and its certificate (JSON) go in the office's directory. */
export function pseudonymKeyFiles(dir: string, epoch: string, specialty: string): { privateKey: string; certificate: string } {
  const base = join(dir, `pseudonym-${slug(epoch)}-${slug(specialty)}`);
  return { privateKey: `${base}.pem`, certificate: `${base}.cert.json` };
}

/**
 * Make a token key for (epoch, specialty) and certify it with the office's Ed25519 key: the RSA private
 * half is written to `dir` (mode 0600, never overwriting a file) with the certificate beside it.
 */
export async function createPseudonymKey(
  officeKey: KeyObject,
  dir: string,
  fields: { orgId: string; epoch: string; specialty: string; perUser: number; days: number; now?: number },
): Promise<{ certificate: SignedCredential; key: PseudonymKey; files: { privateKey: string; certificate: string } }> {
  const now = fields.now ?? Date.now();
  const pair = await suite().generateKey({ publicExponent: Uint8Array.from([1, 0, 1]), modulusLength: 2048 });
  const spki = await webcrypto.subtle.exportKey('spki', pair.publicKey as webcrypto.CryptoKey);
  const key = PseudonymKeySchema.parse({
    v: 1,
    type: 'pseudonym-key',
    orgId: fields.orgId,
    epoch: fields.epoch,
    specialty: fields.specialty,
    publicKey: toBase64Url(new Uint8Array(spki)),
    perUser: fields.perUser,
    notBefore: now,
    notAfter: now + fields.days * 86_400_000,
  });
  const certificate = signByOffice(officeKey, key);
  const files = pseudonymKeyFiles(dir, fields.epoch, fields.specialty);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', pair.privateKey as webcrypto.CryptoKey);
  await writeFile(files.privateKey, pem('PRIVATE KEY', pkcs8), { mode: 0o600, flag: 'wx' });
  await writeFile(files.certificate, `${JSON.stringify(certificate, null, 2)}\n`, { flag: 'wx' });
  return { certificate, key, files };
}

/** The office ends an epoch's tokens (from now on). */
export function signPseudonymKeyRevocation(officeKey: KeyObject, fields: { orgId: string; epoch: string; specialty: string; now?: number }): SignedCredential {
  return signByOffice(officeKey, PseudonymKeyRevocationSchema.parse({ v: 1, type: 'pseudonym-key-revocation', orgId: fields.orgId, epoch: fields.epoch, specialty: fields.specialty, revokedAt: fields.now ?? Date.now() }));
}

/** A token key the office holds: its certificate (checked against the office's own key) and its private half. */
export interface HeldPseudonymKey {
  key: PseudonymKey;
  certificate: SignedCredential;
  privateKey: webcrypto.CryptoKey;
}

/** The office key's public half as the hub keeps it (raw Ed25519, base64url), for the shared `signedByOffice`. */
function officePublicKey(officeKey: KeyObject): string {
  return createPublicKey(officeKey).export({ format: 'jwk' }).x!;
}

/** Every token key in `dir` whose certificate this office's key signed. */
export async function loadPseudonymKeys(officeKey: KeyObject, dir: string): Promise<HeldPseudonymKey[]> {
  const officePublic = officePublicKey(officeKey);
  const held: HeldPseudonymKey[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.cert.json')).sort()) {
    const certificate = SignedCredentialSchema.parse(JSON.parse(await readFile(join(dir, name), 'utf8')));
    const key = parseSigned(PseudonymKeySchema, certificate.signed);
    if (!key || !signedByOffice(officePublic, certificate)) {
      throw new Error(`${name} is not a token key certificate signed by this office's key`);
    }
    const pemText = await readFile(join(dir, name.replace(/\.cert\.json$/, '.pem')), 'utf8');
    const der = Buffer.from(pemText.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const privateKey = (await webcrypto.subtle.importKey('pkcs8', der, RSA_PSS_SHA384, true, ['sign']));
    held.push({ key, certificate, privateKey });
  }
  return held;
}

/** What the office has answered, kept beside its token keys: the hub's word on this is never taken. */
const LedgerSchema = z.object({
  /** Request ids answered (a replayed request is never answered twice). */
  answered: z.array(z.string()),
  /** Tokens issued per `orgId userId epoch specialty` (JSON array as the key). */
  issued: z.record(z.string(), z.number().int().nonnegative()),
});
export type PseudonymLedger = z.infer<typeof LedgerSchema>;
const LEDGER = 'issued.json';

export async function readLedger(dir: string): Promise<PseudonymLedger> {
  try {
    return LedgerSchema.parse(JSON.parse(await readFile(join(dir, LEDGER), 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { answered: [], issued: {} };
    throw err;
  }
}

export async function writeLedger(dir: string, ledger: PseudonymLedger): Promise<void> {
  const tmp = join(dir, `${LEDGER}.tmp`);
  await writeFile(tmp, `${JSON.stringify(ledger)}\n`, { mode: 0o600 });
  await rename(tmp, join(dir, LEDGER));
}

export function ledgerKey(doc: Pick<PseudonymRequestDoc, 'orgId' | 'userId' | 'epoch' | 'specialty'>): string {
  return JSON.stringify([doc.orgId, doc.userId, doc.epoch, doc.specialty]);
}

/**
 * The office's own check of one request, before it signs anything: `{ ok: true, doc, held }` or why not.
 * `credentials` are the requester's attestations and revocations as the hub gave them: each counts only
 * if this office's key signed it.
 */
export function checkPseudonymRequest(
  request: PseudonymRequest,
  ctx: { orgId: string; officeKey: KeyObject; held: readonly HeldPseudonymKey[]; credentials: CredentialsResult; ledger: PseudonymLedger; now: number },
): { ok: true; doc: PseudonymRequestDoc; held: HeldPseudonymKey } | { ok: false; reason: string; doc?: PseudonymRequestDoc } {
  const doc = parseSigned(PseudonymRequestDocSchema, request.request);
  if (!doc) return { ok: false, reason: 'not a canonical request' };
  if (doc.orgId !== ctx.orgId) return { ok: false, reason: 'for another organisation', doc };
  if (ctx.ledger.answered.includes(doc.requestId)) return { ok: false, reason: 'answered before', doc };
  const held = ctx.held.find((h) => h.key.orgId === doc.orgId && h.key.epoch === doc.epoch && h.key.specialty === doc.specialty);
  if (!held) return { ok: false, reason: `no token key for epoch ${doc.epoch}, ${doc.specialty}`, doc };
  if (ctx.now < held.key.notBefore || ctx.now >= held.key.notAfter) return { ok: false, reason: 'the token key is not valid now', doc };
  const officePublic = officePublicKey(ctx.officeKey);
  const byOffice = (d: SignedCredential) => signedByOffice(officePublic, d);
  const revoked = new Set(ctx.credentials.revocations.filter(byOffice).map((d) => parseSigned(CredentialRevocationSchema, d.signed)).filter((r) => r?.orgId === doc.orgId).map((r) => r!.serial));
  const attestation = ctx.credentials.attestations
    .filter(byOffice)
    .map((d) => parseSigned(CredentialSchema, d.signed))
    .find((c) => c !== undefined && c.orgId === doc.orgId && c.userId === doc.userId && c.deviceId === doc.deviceId && c.specialty === doc.specialty && c.issuedAt <= ctx.now && ctx.now < c.expiresAt && !revoked.has(c.serial));
  if (!attestation) return { ok: false, reason: 'no valid attestation of this office for this user, device and specialty', doc };
  const signature = fromBase64Url(request.signature);
  let signedByDevice = false;
  try {
    const deviceKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: attestation.identityKey }, format: 'jwk' });
    signedByDevice = signature !== undefined && verify(null, pseudonymRequestMessage(request.request), deviceKey, signature);
  } catch {
    signedByDevice = false;
  }
  if (!signedByDevice) {
    return { ok: false, reason: 'not signed by the identity key the attestation binds', doc };
  }
  const issued = ctx.ledger.issued[ledgerKey(doc)] ?? 0;
  if (issued + doc.blinded.length > held.key.perUser) return { ok: false, reason: `over the cap of ${held.key.perUser} tokens per clinician (${issued} issued)`, doc };
  return { ok: true, doc, held };
}

/** Blind-sign each blinded message of a checked request (RFC 9474 BlindSign). */
export async function blindSignAll(held: HeldPseudonymKey, blinded: readonly string[]): Promise<string[]> {
  const s = suite();
  const out: string[] = [];
  for (const b of blinded) out.push(toBase64Url(await s.blindSign(held.privateKey, fromBase64Url(b)!)));
  return out;
}
