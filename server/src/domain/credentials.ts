/**
 * Verified credentials on the hub (shared/src/credentials.ts). The hub stores what an organisation's
 * credentialing office signed, after checking it: the signature under the organisation's
 * credentialing key, the organisation, and (for an attestation) that it binds the identity key the
 * named device has published. Clients check all of it again; the hub never holds the office's private key.
 */
import {
  CredentialRevocationSchema,
  CredentialSchema,
  ErrorCode,
  credentialMessage,
  parseSigned,
  searchWords,
  type CredentialsGetRequest,
  type CredentialsResult,
  type CredentialsSearchRequest,
  type SignedCredential,
} from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import { ed25519Verify } from './ed25519.js';

const DEFAULT_RESULTS = 20;

export class Credentials {
  constructor(
    private readonly storage: Storage,
    private readonly now: () => number = Date.now,
  ) {}

  /** Set the organisation's credentialing public key, once. */
  async setKey(orgId: string, publicKey: string): Promise<{ orgId: string; publicKey: string; changed: boolean }> {
    const outcome = await this.storage.setCredentialKey(orgId, publicKey, this.now());
    if (outcome === 'conflict') {
      throw new HubError(ErrorCode.CONFLICT, 'This organisation has another credentialing key; clients have pinned it (rotating it is not supported yet)', { orgId });
    }
    return { orgId, publicKey, changed: outcome === 'set' };
  }

  /** Store an attestation the office signed, after checking it. */
  async attest(orgId: string, document: SignedCredential): Promise<{ serial: string; userId: string; expiresAt: number }> {
    const credential = parseSigned(CredentialSchema, document.signed);
    if (!credential) throw invalid('not a canonical attestation');
    if (credential.orgId !== orgId) throw invalid('the attestation is for another organisation');
    await checkOfficeSignature(this.storage, orgId, document);
    if (credential.expiresAt <= this.now()) throw invalid('the attestation has expired already');
    const devices = await this.storage.listDeviceIdentities(orgId, [credential.userId]);
    const device = devices.find((d) => d.deviceId === credential.deviceId);
    if (!device || Buffer.from(device.identityKey).toString('base64url') !== credential.identityKey) {
      throw invalid('the attestation binds an identity key that is not the one this device published', { userId: credential.userId, deviceId: credential.deviceId });
    }
    const stored = await this.storage.putAttestation(orgId, { serial: credential.serial, userId: credential.userId, specialty: credential.specialty, issuedAt: credential.issuedAt, document: { ...document } });
    if (stored === 'exists') throw new HubError(ErrorCode.CONFLICT, 'An attestation with this serial exists already', { serial: credential.serial });
    return { serial: credential.serial, userId: credential.userId, expiresAt: credential.expiresAt };
  }

  /** Store a revocation the office signed, of an attestation stored before. */
  async revoke(orgId: string, document: SignedCredential): Promise<{ serial: string }> {
    const revocation = parseSigned(CredentialRevocationSchema, document.signed);
    if (!revocation) throw invalid('not a canonical revocation');
    if (revocation.orgId !== orgId) throw invalid('the revocation is for another organisation');
    await checkOfficeSignature(this.storage, orgId, document);
    if (!(await this.storage.hasAttestation(orgId, revocation.serial))) throw new HubError(ErrorCode.NOT_FOUND, 'No attestation with this serial', { serial: revocation.serial });
    await this.storage.putRevocation(orgId, revocation.serial, { ...document });
    return { serial: revocation.serial };
  }

  /** `credentials:get`, within the caller's organisation. */
  async get(caller: { orgId: string }, req: CredentialsGetRequest): Promise<CredentialsResult> {
    const [orgKey, found] = await Promise.all([this.storage.getCredentialKey(caller.orgId), this.storage.credentialsOf(caller.orgId, req.userIds)]);
    return { ...(orgKey ? { orgKey } : {}), ...found };
  }

  /** `credentials:search` by specialty, within the caller's organisation. */
  async search(caller: { orgId: string }, req: CredentialsSearchRequest): Promise<CredentialsResult> {
    const [orgKey, found] = await Promise.all([this.storage.getCredentialKey(caller.orgId), this.storage.searchCredentials(caller.orgId, searchWords(req.query), req.limit ?? DEFAULT_RESULTS)]);
    return { ...(orgKey ? { orgKey } : {}), ...found };
  }

  /**
   * Whether a clinician's device holds a credential that verifies now: an attestation signed by the
   * organisation's key, for this user and device and the identity key the device published, not expired
   * and not revoked (revocations count only when they verify too). What a consult pool asks of a `join`;
   * without `deviceId`, any of the user's devices (a member a moderator enrols); with `specialty`, only an
   * attestation of that specialty counts (what a pseudonym token request asks).
   */
  async holdsValid(orgId: string, userId: string, deviceId?: string, specialty?: string): Promise<boolean> {
    return (await this.credentialed(orgId, [userId], deviceId, specialty)).has(userId);
  }

  /** Of `userIds`, those who hold a credential that verifies now (see {@link holdsValid}); three reads for them all. */
  async credentialed(orgId: string, userIds: readonly string[], deviceId?: string, specialty?: string): Promise<Set<string>> {
    const out = new Set<string>();
    const [key, found, devices] = await Promise.all([this.storage.getCredentialKey(orgId), this.storage.credentialsOf(orgId, [...userIds]), this.storage.listDeviceIdentities(orgId, [...userIds])]);
    if (!key || devices.length === 0) return out;
    const revoked = new Set(found.revocations.filter((d) => signedByOffice(key, d)).map((d) => parseSigned(CredentialRevocationSchema, d.signed)?.serial));
    const keys = new Map(devices.filter((d) => deviceId === undefined || d.deviceId === deviceId).map((d) => [`${d.userId}\n${d.deviceId}`, Buffer.from(d.identityKey).toString('base64url')]));
    const wanted = new Set(userIds);
    const now = this.now();
    for (const d of found.attestations) {
      const c = parseSigned(CredentialSchema, d.signed);
      if (!c || out.has(c.userId) || !wanted.has(c.userId) || c.orgId !== orgId || (specialty !== undefined && c.specialty !== specialty)) continue;
      if (keys.get(`${c.userId}\n${c.deviceId}`) === c.identityKey && c.issuedAt <= now && now < c.expiresAt && !revoked.has(c.serial) && signedByOffice(key, d)) out.add(c.userId);
    }
    return out;
  }
}

/** Whether `document` is signed under an organisation's credentialing key (`officeKey`, base64url): the one office-signature check. */
export function signedByOffice(officeKey: string, document: SignedCredential): boolean {
  return ed25519Verify(Buffer.from(officeKey, 'base64url'), credentialMessage(document.signed), Buffer.from(document.signature, 'base64url'));
}

/**
 * What the hub checks before it stores a document the office signed: throws NOT_FOUND when the
 * organisation has no credentialing key yet, BAD_SIGNATURE when `document` is not signed under it.
 */
export async function checkOfficeSignature(storage: Pick<Storage, 'getCredentialKey'>, orgId: string, document: SignedCredential): Promise<void> {
  const key = await storage.getCredentialKey(orgId);
  if (!key) throw new HubError(ErrorCode.NOT_FOUND, 'This organisation has no credentialing key yet (curbside-admin credentials publish-key)', { orgId });
  if (!signedByOffice(key, document)) {
    throw new HubError(ErrorCode.BAD_SIGNATURE, 'The signature does not verify under the organisation’s credentialing key', { orgId });
  }
}

function invalid(message: string, details?: Record<string, unknown>): HubError {
  return new HubError(ErrorCode.INVALID_PAYLOAD, message, details);
}
