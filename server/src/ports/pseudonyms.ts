/**
 * Pseudonymous posting (shared/src/pseudonyms.ts): the token keys the credentialing office certified,
 * its epoch revocations, the devices' token requests (blinded messages only) with the office's blind
 * signatures, and the spent nullifiers. Nothing here names a finalized token: a token is stored only as
 * its nullifier, and only when it is spent. Part of `Storage`, covered by
 * `test/contract/pseudonyms.contract.test.ts` over memory and MongoDB (FerretDB on SQLite and PostgreSQL).
 */
import type { PseudonymAnswer, PseudonymRequest, SignedCredential } from '@curbside/shared';

export interface StoredPseudonymRequest {
  requestId: string;
  userId: string;
  deviceId: string;
  epoch: string;
  specialty: string;
  /** Blinded messages asked for (what counts against the cap). */
  count: number;
  createdAt: number;
  /** The device's signed request, as it sent it. */
  request: PseudonymRequest;
}

export interface PseudonymStore {
  /** Store the certified key of (organisation, epoch, specialty), once: the same document again is `same`, another `conflict`. */
  putPseudonymKey(orgId: string, epoch: string, specialty: string, document: SignedCredential): Promise<'stored' | 'same' | 'conflict'>;
  /** Store an epoch revocation (a second one for the same epoch and specialty is kept out). */
  putPseudonymKeyRevocation(orgId: string, epoch: string, specialty: string, document: SignedCredential): Promise<void>;
  /** Every certified key and epoch revocation of the organisation. */
  pseudonymKeys(orgId: string): Promise<{ keys: SignedCredential[]; revocations: SignedCredential[] }>;
  /**
   * Store a request, atomically counting its tokens against the user's cap for (epoch, specialty):
   * `over-cap` when the tokens already asked for plus these would exceed `cap` (nothing stored),
   * `exists` for a request id stored before (nothing counted).
   */
  putPseudonymRequest(orgId: string, request: StoredPseudonymRequest, cap: number): Promise<'stored' | 'exists' | 'over-cap'>;
  /** Tokens the user asked for in (epoch, specialty) so far. */
  pseudonymRequested(orgId: string, userId: string, epoch: string, specialty: string): Promise<number>;
  /** Requests not answered yet, oldest first. */
  pendingPseudonymRequests(orgId: string, limit: number): Promise<StoredPseudonymRequest[]>;
  pseudonymRequest(orgId: string, requestId: string): Promise<StoredPseudonymRequest | undefined>;
  /** Keep the office's blind signatures for a request, once (`already` when it was answered before; nothing changes). */
  answerPseudonymRequest(orgId: string, requestId: string, blindSignatures: readonly string[], now: number): Promise<'answered' | 'already' | 'not-found'>;
  /** The answers to these requests of one device (requests not answered yet, or another device's, are left out), oldest first. */
  pseudonymAnswers(orgId: string, userId: string, deviceId: string, requestIds: readonly string[]): Promise<PseudonymAnswer[]>;
  /** Spend a token's nullifier in a scope (e.g. a pool), atomically: `spent` when it was spent there before. */
  spendPseudonym(orgId: string, scope: string, nullifier: string, now: number): Promise<'ok' | 'spent'>;
}
