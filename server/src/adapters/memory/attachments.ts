import { compositeKey } from '@curbside/shared';
import type { AttachmentRecord, AttachmentStore } from '../../ports/attachments.js';

/** `AttachmentStore` in memory (part of `MemoryStorage`). */
export class MemoryAttachments implements AttachmentStore {
  private readonly records = new Map<string, AttachmentRecord>();

  async createAttachment(record: AttachmentRecord): Promise<void> {
    const k = compositeKey(record.orgId, record.attachmentId);
    if (this.records.has(k)) throw new Error(`attachment ${record.attachmentId} exists`);
    this.records.set(k, { ...record });
  }

  async getAttachment(orgId: string, attachmentId: string): Promise<AttachmentRecord | undefined> {
    const r = this.records.get(compositeKey(orgId, attachmentId));
    return r ? { ...r } : undefined;
  }

  async finishAttachment(orgId: string, attachmentId: string, now: number): Promise<void> {
    const r = this.records.get(compositeKey(orgId, attachmentId));
    if (r && r.finishedAt === undefined) r.finishedAt = now;
  }

  async referenceAttachment(orgId: string, attachmentId: string, now: number, retainUntil: number): Promise<void> {
    const r = this.records.get(compositeKey(orgId, attachmentId));
    if (!r) return;
    r.referencedAt ??= now;
    r.retainUntil = Math.max(r.retainUntil ?? 0, retainUntil);
  }

  async attachmentBytes(orgId: string): Promise<number> {
    let total = 0;
    for (const r of this.records.values()) if (r.orgId === orgId) total += r.size;
    return total;
  }

  async expiredAttachments(input: { now: number; unreferencedBefore: number; limit: number }): Promise<AttachmentRecord[]> {
    const out: AttachmentRecord[] = [];
    for (const r of this.records.values()) {
      if (out.length >= input.limit) break;
      const due = r.referencedAt === undefined ? r.createdAt < input.unreferencedBefore : (r.retainUntil ?? 0) <= input.now;
      if (due) out.push({ ...r });
    }
    return out;
  }

  async deleteAttachment(orgId: string, attachmentId: string): Promise<void> {
    this.records.delete(compositeKey(orgId, attachmentId));
  }
}
