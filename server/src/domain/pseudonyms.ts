/**
 * Pseudonymous posting on the hub (shared/src/pseudonyms.ts). The hub relays between devices and the
 * credentialing office: it keeps the office's certified token keys and epoch revocations (checked
 * against the organisation's credentialing key), the devices' signed requests (blinded messages: the
 * hub cannot tell which token a request becomes) and the office's blind signatures, and spends token
 * nullifiers. It cannot mint a token (the RSA private keys stay with the office), and it never sees a
 * finalized token until one is spent, when only its nullifier is kept.
 */
import {
  ErrorCode,
  Limits,
  PseudonymKeyRevocationSchema,
  PseudonymKeySchema,
  PseudonymRequestDocSchema,
  certifiedPseudonymKeys,
  importPseudonymPublicKey,
  parseSigned,
  pseudonymRequestMessage,
  verifyPseudonymToken,
  type PseudonymCollectResult,
  type PseudonymKeysResult,
  type PseudonymRequest,
  type PseudonymRequestResult,
  type PseudonymToken,
  type SignedCredential,
} from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import { checkOfficeSignature } from './credentials.js';
import { ed25519Verify } from './ed25519.js';

export interface Caller {
  orgId: string;
  userId: string;
  deviceId: string;
}

/** What a verified token says: its specialty and epoch, the one-time posting key and the nullifier. */
export interface VerifiedToken {
  epoch: string;
  specialty: string;
  postingKey: string;
  nullifier: string;
}

export class Pseudonyms {
  constructor(
    private readonly storage: Storage,
    /** Whether the device holds a valid attestation of this specialty (Credentials.holdsValid). */
    private readonly holdsValid: (orgId: string, userId: string, deviceId: string, specialty: string) => Promise<boolean>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Store a token key the office certified, after checking its signature and organisation. One key per (epoch, specialty). */
  async publishKey(orgId: string, document: SignedCredential): Promise<{ epoch: string; specialty: string; changed: boolean }> {
    const key = parseSigned(PseudonymKeySchema, document.signed);
    if (!key) throw invalid('not a canonical pseudonym key certificate');
    if (key.orgId !== orgId) throw invalid('the certificate is for another organisation');
    await checkOfficeSignature(this.storage, orgId, document);
    if (!(await importPseudonymPublicKey(key.publicKey))) throw invalid('the public key is not an RSA-PSS key of at least 2048 bits');
    const outcome = await this.storage.putPseudonymKey(orgId, key.epoch, key.specialty, { signed: document.signed, signature: document.signature });
    if (outcome === 'conflict') throw new HubError(ErrorCode.CONFLICT, 'This epoch and specialty have another token key (one key per epoch, so tokens cannot be sorted by key)', { epoch: key.epoch });
    return { epoch: key.epoch, specialty: key.specialty, changed: outcome === 'stored' };
  }

  /** Store an epoch revocation the office signed: no token of that epoch is accepted from `revokedAt` on. */
  async revokeKey(orgId: string, document: SignedCredential): Promise<{ epoch: string; specialty: string }> {
    const revocation = parseSigned(PseudonymKeyRevocationSchema, document.signed);
    if (!revocation) throw invalid('not a canonical pseudonym key revocation');
    if (revocation.orgId !== orgId) throw invalid('the revocation is for another organisation');
    await checkOfficeSignature(this.storage, orgId, document);
    const { keys } = await this.certified(orgId);
    if (!keys.some((k) => k.epoch === revocation.epoch && k.specialty === revocation.specialty)) throw new HubError(ErrorCode.NOT_FOUND, 'No token key for this epoch and specialty', { epoch: revocation.epoch });
    await this.storage.putPseudonymKeyRevocation(orgId, revocation.epoch, revocation.specialty, { signed: document.signed, signature: document.signature });
    return { epoch: revocation.epoch, specialty: revocation.specialty };
  }

  /** `pseudonym:keys`: the organisation's certified token keys and epoch revocations (clients check them again). */
  async keys(caller: { orgId: string }): Promise<PseudonymKeysResult> {
    const [orgKey, docs] = await Promise.all([this.storage.getCredentialKey(caller.orgId), this.storage.pseudonymKeys(caller.orgId)]);
    return { ...(orgKey ? { orgKey } : {}), ...docs };
  }

  /**
   * `pseudonym:request`: a device asks for tokens. Refused unless it is signed by the caller's device,
   * the device holds a valid attestation of the specialty, the epoch has a certified, unrevoked key valid
   * now, and the tokens asked for stay within the key's `perUser` cap (counted atomically).
   */
  async request(caller: Caller, req: PseudonymRequest): Promise<PseudonymRequestResult> {
    const doc = parseSigned(PseudonymRequestDocSchema, req.request);
    if (!doc) throw invalid('not a canonical pseudonym request');
    if (doc.orgId !== caller.orgId || doc.userId !== caller.userId || doc.deviceId !== caller.deviceId) {
      throw new HubError(ErrorCode.FORBIDDEN, 'A request is made by the device it names', {});
    }
    if (new Set(doc.blinded).size !== doc.blinded.length) throw invalid('a blinded message appears twice');
    const { keys, revocations } = await this.certified(caller.orgId);
    const key = keys.find((k) => k.epoch === doc.epoch && k.specialty === doc.specialty);
    const now = this.now();
    if (!key) throw new HubError(ErrorCode.NOT_FOUND, 'No token key for this epoch and specialty', { epoch: doc.epoch });
    if (revocations.some((r) => r.epoch === doc.epoch && r.specialty === doc.specialty) || now < key.notBefore || now >= key.notAfter) {
      throw new HubError(ErrorCode.FORBIDDEN, 'This epoch’s token key is revoked or not valid now', { epoch: doc.epoch, reason: 'epoch' });
    }
    const modulusBytes = (((await importPseudonymPublicKey(key.publicKey))?.algorithm as { modulusLength?: number } | undefined)?.modulusLength ?? 0) / 8;
    if (doc.blinded.some((b) => Buffer.from(b, 'base64url').length !== modulusBytes)) throw invalid('a blinded message is not the size of this key’s modulus', { bytes: modulusBytes });
    if (!(await this.holdsValid(caller.orgId, caller.userId, caller.deviceId, doc.specialty))) {
      throw new HubError(ErrorCode.FORBIDDEN, 'This device holds no valid credential of this specialty', { reason: 'credential' });
    }
    const device = (await this.storage.listDeviceIdentities(caller.orgId, [caller.userId])).find((d) => d.deviceId === caller.deviceId);
    if (!device || !ed25519Verify(device.identityKey, pseudonymRequestMessage(req.request), Buffer.from(req.signature, 'base64url'))) {
      throw new HubError(ErrorCode.BAD_SIGNATURE, 'The request is not signed by this device’s identity key', {});
    }
    const stored = await this.storage.putPseudonymRequest(
      caller.orgId,
      { requestId: doc.requestId, userId: caller.userId, deviceId: caller.deviceId, epoch: doc.epoch, specialty: doc.specialty, count: doc.blinded.length, createdAt: now, request: { request: req.request, signature: req.signature } },
      key.perUser,
    );
    if (stored === 'exists') throw new HubError(ErrorCode.CONFLICT, 'A request with this id exists already', { requestId: doc.requestId });
    if (stored === 'over-cap') {
      const requested = await this.storage.pseudonymRequested(caller.orgId, caller.userId, doc.epoch, doc.specialty);
      throw new HubError(ErrorCode.FORBIDDEN, `At most ${key.perUser} tokens per clinician in this epoch`, { reason: 'cap', perUser: key.perUser, requested });
    }
    return { requestId: doc.requestId, count: doc.blinded.length };
  }

  /** `pseudonym:collect`: the office's answers to these requests of this device (another device's are not answered). */
  async collect(caller: Caller, requestIds: readonly string[]): Promise<PseudonymCollectResult> {
    return { answers: await this.storage.pseudonymAnswers(caller.orgId, caller.userId, caller.deviceId, requestIds) };
  }

  /** Requests the office has not answered yet, oldest first (the office checks each one itself). */
  async pending(orgId: string, limit = 100): Promise<{ requests: PseudonymRequest[] }> {
    return { requests: (await this.storage.pendingPseudonymRequests(orgId, limit)).map((r) => r.request) };
  }

  /** The office's blind signatures for one request, one per blinded message. */
  async answer(orgId: string, requestId: string, blindSignatures: readonly string[]): Promise<{ requestId: string; count: number }> {
    const stored = await this.storage.pseudonymRequest(orgId, requestId);
    if (!stored) throw new HubError(ErrorCode.NOT_FOUND, 'No such pseudonym request', { requestId });
    if (blindSignatures.length !== stored.count || blindSignatures.length > Limits.MAX_PSEUDONYM_BATCH) throw invalid('one blind signature per blinded message', { expected: stored.count });
    const outcome = await this.storage.answerPseudonymRequest(orgId, requestId, blindSignatures, this.now());
    if (outcome === 'already') throw new HubError(ErrorCode.CONFLICT, 'This request was answered already', { requestId });
    if (outcome === 'not-found') throw new HubError(ErrorCode.NOT_FOUND, 'No such pseudonym request', { requestId });
    return { requestId, count: blindSignatures.length };
  }

  /**
   * Verify a token against the office's certified keys (`verifyPseudonymToken`, at the present time) and
   * spend it in `scope` (e.g. a pool id): what the pool post path calls before it accepts a
   * pseudonymous case. Throws BAD_SIGNATURE (`details.reason`) for a token that does not verify,
   * FORBIDDEN for one of another organisation, PSEUDONYM_SPENT when it was spent in this scope before.
   * @returns what the token says: its specialty and epoch, the one-time posting key and the nullifier
   */
  async verifyAndSpend(orgId: string, scope: string, token: PseudonymToken): Promise<VerifiedToken> {
    const v = await this.verify(orgId, token);
    if ((await this.spend(orgId, scope, v.nullifier)) === 'spent') throw new HubError(ErrorCode.PSEUDONYM_SPENT, 'This pseudonym token was used already', {});
    return v;
  }

  /**
   * Verify a token against the office's certified keys at the present time, without spending it.
   * Throws BAD_SIGNATURE (`details.reason`) or FORBIDDEN (another organisation) as `verifyAndSpend`.
   */
  async verify(orgId: string, token: PseudonymToken): Promise<VerifiedToken> {
    const [officeKey, docs] = await Promise.all([this.storage.getCredentialKey(orgId), this.storage.pseudonymKeys(orgId)]);
    if (!officeKey) throw new HubError(ErrorCode.BAD_SIGNATURE, 'This organisation has no credentialing key', { reason: 'no-key' });
    const v = await verifyPseudonymToken(token, docs, officeKey, this.now(), ed25519Verify);
    if (!v.ok) throw new HubError(ErrorCode.BAD_SIGNATURE, 'The pseudonym token does not verify', { reason: v.reason });
    if (v.orgId !== orgId) throw new HubError(ErrorCode.FORBIDDEN, 'The pseudonym token is for another organisation', {});
    return { epoch: v.epoch, specialty: v.specialty, postingKey: v.postingKey, nullifier: v.nullifier };
  }

  /** Spend a verified token's nullifier in `scope`: `spent` when it was spent there before. */
  spend(orgId: string, scope: string, nullifier: string): Promise<'ok' | 'spent'> {
    return this.storage.spendPseudonym(orgId, scope, nullifier, this.now());
  }

  private async certified(orgId: string) {
    const [officeKey, docs] = await Promise.all([this.storage.getCredentialKey(orgId), this.storage.pseudonymKeys(orgId)]);
    return officeKey ? certifiedPseudonymKeys(docs, orgId, officeKey, ed25519Verify) : { keys: [], revocations: [] };
  }
}

function invalid(message: string, details?: Record<string, unknown>): HubError {
  return new HubError(ErrorCode.INVALID_PAYLOAD, message, details);
}
