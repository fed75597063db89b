import { compositeKey, type PseudonymAnswer, type SignedCredential } from '@curbside/shared';
import type { PseudonymStore, StoredPseudonymRequest } from '../../ports/pseudonyms.js';

/** `PseudonymStore` in memory (the embedded default and fast tests). */
export class MemoryPseudonyms implements PseudonymStore {
  private readonly keys = new Map<string, SignedCredential>();
  private readonly revocations = new Map<string, SignedCredential>();
  private readonly requests = new Map<string, { orgId: string; r: StoredPseudonymRequest; answer?: string[]; answeredAt?: number }>();
  private readonly requested = new Map<string, number>();
  private readonly spent = new Set<string>();

  async putPseudonymKey(orgId: string, epoch: string, specialty: string, document: SignedCredential): Promise<'stored' | 'same' | 'conflict'> {
    const id = compositeKey(orgId, epoch, specialty);
    const current = this.keys.get(id);
    if (current) return current.signed === document.signed && current.signature === document.signature ? 'same' : 'conflict';
    this.keys.set(id, { ...document });
    return 'stored';
  }

  async putPseudonymKeyRevocation(orgId: string, epoch: string, specialty: string, document: SignedCredential): Promise<void> {
    const id = compositeKey(orgId, epoch, specialty);
    if (!this.revocations.has(id)) this.revocations.set(id, { ...document });
  }

  async pseudonymKeys(orgId: string) {
    const mine = (m: Map<string, SignedCredential>) => [...m].filter(([id]) => id.startsWith(compositeKey(orgId, ''))).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, d]) => ({ ...d }));
    return { keys: mine(this.keys), revocations: mine(this.revocations) };
  }

  async putPseudonymRequest(orgId: string, r: StoredPseudonymRequest, cap: number): Promise<'stored' | 'exists' | 'over-cap'> {
    const id = compositeKey(orgId, r.requestId);
    if (this.requests.has(id)) return 'exists';
    const counter = compositeKey(orgId, r.userId, r.epoch, r.specialty);
    const sofar = this.requested.get(counter) ?? 0;
    if (sofar + r.count > cap) return 'over-cap';
    this.requested.set(counter, sofar + r.count);
    this.requests.set(id, { orgId, r: structuredClone(r) });
    return 'stored';
  }

  async pseudonymRequested(orgId: string, userId: string, epoch: string, specialty: string): Promise<number> {
    return this.requested.get(compositeKey(orgId, userId, epoch, specialty)) ?? 0;
  }

  async pendingPseudonymRequests(orgId: string, limit: number): Promise<StoredPseudonymRequest[]> {
    return [...this.requests.values()]
      .filter((x) => x.orgId === orgId && !x.answer)
      .sort((a, b) => a.r.createdAt - b.r.createdAt || (a.r.requestId < b.r.requestId ? -1 : 1))
      .slice(0, limit)
      .map((x) => structuredClone(x.r));
  }

  async pseudonymRequest(orgId: string, requestId: string): Promise<StoredPseudonymRequest | undefined> {
    const x = this.requests.get(compositeKey(orgId, requestId));
    return x && structuredClone(x.r);
  }

  async answerPseudonymRequest(orgId: string, requestId: string, blindSignatures: readonly string[], now: number): Promise<'answered' | 'already' | 'not-found'> {
    const x = this.requests.get(compositeKey(orgId, requestId));
    if (!x) return 'not-found';
    if (x.answer) return 'already';
    x.answer = [...blindSignatures];
    x.answeredAt = now;
    return 'answered';
  }

  async pseudonymAnswers(orgId: string, userId: string, deviceId: string, requestIds: readonly string[]): Promise<PseudonymAnswer[]> {
    return [...new Set(requestIds)]
      .map((id) => this.requests.get(compositeKey(orgId, id)))
      .filter((x) => x !== undefined && x.r.userId === userId && x.r.deviceId === deviceId && x.answer)
      .map((x) => x!)
      .sort((a, b) => a.r.createdAt - b.r.createdAt || (a.r.requestId < b.r.requestId ? -1 : 1))
      .map((x) => ({ requestId: x.r.requestId, epoch: x.r.epoch, specialty: x.r.specialty, blindSignatures: [...x.answer!] }));
  }

  async spendPseudonym(orgId: string, scope: string, nullifier: string): Promise<'ok' | 'spent'> {
    const id = compositeKey(orgId, scope, nullifier);
    if (this.spent.has(id)) return 'spent';
    this.spent.add(id);
    return 'ok';
  }
}
