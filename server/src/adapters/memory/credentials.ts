import type { SignedCredential } from '@curbside/shared';
import type { CredentialStore, StoredAttestation } from '../../ports/credentials.js';

/** `CredentialStore` in memory (the embedded default and fast tests). */
export class MemoryCredentials implements CredentialStore {
  private readonly keys = new Map<string, string>();
  private readonly attestations = new Map<string, Map<string, StoredAttestation>>();
  private readonly revocations = new Map<string, Map<string, SignedCredential>>();

  async getCredentialKey(orgId: string): Promise<string | undefined> {
    return this.keys.get(orgId);
  }

  async setCredentialKey(orgId: string, publicKey: string): Promise<'set' | 'same' | 'conflict'> {
    const current = this.keys.get(orgId);
    if (current !== undefined) return current === publicKey ? 'same' : 'conflict';
    this.keys.set(orgId, publicKey);
    return 'set';
  }

  async putAttestation(orgId: string, a: StoredAttestation): Promise<'stored' | 'exists'> {
    const org = this.attestations.get(orgId) ?? new Map<string, StoredAttestation>();
    this.attestations.set(orgId, org);
    if (org.has(a.serial)) return 'exists';
    org.set(a.serial, structuredClone(a));
    return 'stored';
  }

  async putRevocation(orgId: string, serial: string, document: SignedCredential): Promise<void> {
    const org = this.revocations.get(orgId) ?? new Map<string, SignedCredential>();
    this.revocations.set(orgId, org);
    if (!org.has(serial)) org.set(serial, { ...document });
  }

  async hasAttestation(orgId: string, serial: string): Promise<boolean> {
    return this.attestations.get(orgId)?.has(serial) ?? false;
  }

  async credentialsOf(orgId: string, userIds: readonly string[]) {
    const wanted = new Set(userIds);
    return this.answer(orgId, [...(this.attestations.get(orgId)?.values() ?? [])].filter((a) => wanted.has(a.userId)));
  }

  async searchCredentials(orgId: string, words: readonly string[], limit: number) {
    const found = [...(this.attestations.get(orgId)?.values() ?? [])].filter((a) => words.every((w) => a.specialty.toLowerCase().includes(w)));
    return this.answer(orgId, found, limit);
  }

  private answer(orgId: string, found: StoredAttestation[], limit = Infinity) {
    const sorted = found.sort((a, b) => b.issuedAt - a.issuedAt || (a.serial < b.serial ? -1 : 1)).slice(0, limit);
    const revoked = this.revocations.get(orgId);
    return {
      attestations: sorted.map((a) => ({ ...a.document })),
      revocations: sorted.flatMap((a) => (revoked?.has(a.serial) ? [{ ...revoked.get(a.serial)! }] : [])),
    };
  }
}
