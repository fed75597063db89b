import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { AttachmentRecord, AttachmentStore } from '../../ports/attachments.js';
import { collectionOptions, docKey } from './models.js';
import { ensureOnce } from './ensure.js';

interface AttachmentDoc extends AttachmentRecord {
  /** `docKey(orgId, attachmentId)`. */
  _id: string;
}

const attachmentSchema = new Schema<AttachmentDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    attachmentId: { type: String, required: true },
    conversationId: { type: String, required: true },
    uploaderUserId: { type: String, required: true },
    uploaderDeviceId: { type: String, required: true },
    size: { type: Number, required: true },
    partSize: { type: Number, required: true },
    createdAt: { type: Number, required: true },
    finishedAt: { type: Number, required: false },
    referencedAt: { type: Number, required: false },
    retainUntil: { type: Number, required: false },
  },
  collectionOptions('attachments'),
);
// Quota sums per organisation; the sweep looks for old unreferenced uploads and expired ones.
attachmentSchema.index({ orgId: 1 });
attachmentSchema.index({ createdAt: 1 });
attachmentSchema.index({ retainUntil: 1 });

function toRecord(d: AttachmentDoc): AttachmentRecord {
  const { _id: _, ...rest } = d;
  return {
    orgId: rest.orgId,
    attachmentId: rest.attachmentId,
    conversationId: rest.conversationId,
    uploaderUserId: rest.uploaderUserId,
    uploaderDeviceId: rest.uploaderDeviceId,
    size: rest.size,
    partSize: rest.partSize,
    createdAt: rest.createdAt,
    ...(rest.finishedAt != null ? { finishedAt: rest.finishedAt } : {}),
    ...(rest.referencedAt != null ? { referencedAt: rest.referencedAt } : {}),
    ...(rest.retainUntil != null ? { retainUntil: rest.retainUntil } : {}),
  };
}

/** `AttachmentStore` for `MongoStorage`, in its own `attachments` collection on the storage's connection. */
export class MongoAttachments implements AttachmentStore {
  private readonly Attachment: Model<AttachmentDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.Attachment = conn.models.Attachment ?? conn.model<AttachmentDoc>('Attachment', attachmentSchema);
    this.init = ensureOnce(this.Attachment);
  }

  async createAttachment(record: AttachmentRecord): Promise<void> {
    await this.init();
    await this.Attachment.create({ _id: docKey(record.orgId, record.attachmentId), ...record });
  }

  async getAttachment(orgId: string, attachmentId: string): Promise<AttachmentRecord | undefined> {
    await this.init();
    const d = await this.Attachment.findById(docKey(orgId, attachmentId)).lean<AttachmentDoc>().exec();
    return d ? toRecord(d) : undefined;
  }

  async finishAttachment(orgId: string, attachmentId: string, now: number): Promise<void> {
    await this.init();
    await this.Attachment.updateOne({ _id: docKey(orgId, attachmentId), finishedAt: mongoose.trusted({ $exists: false }) }, { $set: { finishedAt: now } }).exec();
  }

  async referenceAttachment(orgId: string, attachmentId: string, now: number, retainUntil: number): Promise<void> {
    await this.init();
    const _id = docKey(orgId, attachmentId);
    await this.Attachment.updateOne({ _id, referencedAt: mongoose.trusted({ $exists: false }) }, { $set: { referencedAt: now } }).exec();
    await this.Attachment.updateOne({ _id }, { $max: { retainUntil } }).exec();
  }

  async attachmentBytes(orgId: string): Promise<number> {
    await this.init();
    const [row] = await this.Attachment.aggregate<{ total: number }>([{ $match: { orgId } }, { $group: { _id: null, total: { $sum: '$size' } } }]).exec();
    return row?.total ?? 0;
  }

  async expiredAttachments(input: { now: number; unreferencedBefore: number; limit: number }): Promise<AttachmentRecord[]> {
    await this.init();
    const [unreferenced, expired] = await Promise.all([
      this.Attachment.find({ createdAt: mongoose.trusted({ $lt: input.unreferencedBefore }), referencedAt: mongoose.trusted({ $exists: false }) })
        .limit(input.limit)
        .lean<AttachmentDoc[]>()
        .exec(),
      this.Attachment.find({ retainUntil: mongoose.trusted({ $lte: input.now }) })
        .limit(input.limit)
        .lean<AttachmentDoc[]>()
        .exec(),
    ]);
    return [...unreferenced, ...expired].slice(0, input.limit).map(toRecord);
  }

  async deleteAttachment(orgId: string, attachmentId: string): Promise<void> {
    await this.init();
    await this.Attachment.deleteOne({ _id: docKey(orgId, attachmentId) }).exec();
  }
}
