/**
 * Verified credentials (shared/src/credentials.ts): each organisation's credentialing public key, the
 * attestations its office signed, and their revocations, as the office gave them (the hub checked the
 * signatures before storing; clients check them again). Part of `Storage`, covered by
 * `test/contract/credentials.contract.test.ts` over memory and MongoDB (FerretDB on SQLite and PostgreSQL).
 */
import type { SignedCredential } from '@curbside/shared';

export interface StoredAttestation {
  serial: string;
  userId: string;
  /** For search: what the office attests, as signed. */
  specialty: string;
  issuedAt: number;
  document: SignedCredential;
}

export interface CredentialStore {
  getCredentialKey(orgId: string): Promise<string | undefined>;
  /** Set the organisation's key once: the same key again is `same`, another one `conflict` (nothing changes). */
  setCredentialKey(orgId: string, publicKey: string, now: number): Promise<'set' | 'same' | 'conflict'>;
  /** Store an attestation under its serial, once (`exists` for a serial stored before). */
  putAttestation(orgId: string, attestation: StoredAttestation): Promise<'stored' | 'exists'>;
  /** Store a revocation of a serial (a second one for the same serial is kept out). */
  putRevocation(orgId: string, serial: string, document: SignedCredential): Promise<void>;
  /** Whether an attestation with this serial is stored. */
  hasAttestation(orgId: string, serial: string): Promise<boolean>;
  /** These users' attestations (newest first) and the revocations of them. */
  credentialsOf(orgId: string, userIds: readonly string[]): Promise<{ attestations: SignedCredential[]; revocations: SignedCredential[] }>;
  /** Attestations whose specialty contains every word (lower-case), newest first, at most `limit`, and their revocations. */
  searchCredentials(orgId: string, words: readonly string[], limit: number): Promise<{ attestations: SignedCredential[]; revocations: SignedCredential[] }>;
}
