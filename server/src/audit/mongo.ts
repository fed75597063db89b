import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { collectionOptions } from '../adapters/mongo/models.js';
import type { Logger } from '../logger.js';
import { ChainedAuditLog, type AuditBackend } from './chain.js';
import type { AuditEntry } from './port.js';
import { ensureCollection } from '../adapters/mongo/ensure.js';

interface AuditDoc extends Omit<AuditEntry, 'id'> {
  _id: string;
}

interface AuditHeadDoc {
  /** The chain. */
  _id: string;
  /** Highest index ever appended. */
  index: number;
}

const auditSchema = new Schema<AuditDoc>(
  {
    _id: { type: String, required: true },
    chain: { type: String, required: true },
    index: { type: Number, required: true },
    prevHash: { type: String, required: true },
    hash: { type: String, required: true },
    at: { type: Number, required: true },
    action: { type: String, required: true },
    outcome: { type: String, required: true },
    orgId: String,
    userId: String,
    deviceId: String,
    ip: String,
    conversationId: String,
    messageId: String,
    seq: Number,
    clientMessageId: String,
    targetDeviceId: String,
    targetUserIds: { type: [String], default: undefined },
    messageIds: { type: [String], default: undefined },
    note: String,
    count: Number,
  },
  collectionOptions('audit_log'),
);
/** One entry per position: a node appending on a stale tail fails here (11000) and retries. */
auditSchema.index({ chain: 1, index: 1 }, { unique: true, name: 'chain_index_unique' });

const headSchema = new Schema<AuditHeadDoc>(
  { _id: { type: String, required: true }, index: { type: Number, required: true } },
  collectionOptions('audit_heads'),
);

export interface MongoAuditOptions {
  /** Share an existing connection (the hub's storage). Closing the log leaves it open. */
  connection?: Connection | undefined;
  /** Or open one of its own. */
  uri?: string | undefined;
  dbName?: string | undefined;
  logger?: Pick<Logger, 'error' | 'warn'> | undefined;
  /** See `ChainedAuditLogOptions.lingerMs`. @default 50 */
  lingerMs?: number | undefined;
  /** See `ChainedAuditLogOptions.writer`: the hub passes its node id. */
  writer?: string | undefined;
}

/**
 * Audit chains in MongoDB (FerretDB in tests): collection `audit_log` with a unique index on
 * (chain, index), and `audit_heads` with the highest index appended per chain, so cutting entries
 * off the end of a chain is detected too. Works without transactions.
 */
export class MongoAuditBackend implements AuditBackend {
  private readonly conn: Connection;
  private readonly owned: boolean;
  private readonly Entry: Model<AuditDoc>;
  private readonly Head: Model<AuditHeadDoc>;

  constructor(options: MongoAuditOptions) {
    if (options.connection) {
      this.conn = options.connection;
      this.owned = false;
    } else {
      if (!options.uri) throw new Error('MongoAuditBackend needs a connection or a uri');
      this.conn = mongoose.createConnection(options.uri, {
        ...(options.dbName !== undefined ? { dbName: options.dbName } : {}),
        autoIndex: false,
        autoCreate: true,
        sanitizeFilter: true,
      });
      this.conn.on('error', (err: unknown) => options.logger?.warn({ err }, 'audit mongodb connection error'));
      this.owned = true;
    }
    this.Entry = (this.conn.models.AuditEntry as Model<AuditDoc> | undefined) ?? this.conn.model<AuditDoc>('AuditEntry', auditSchema);
    this.Head = (this.conn.models.AuditHead as Model<AuditHeadDoc> | undefined) ?? this.conn.model<AuditHeadDoc>('AuditHead', headSchema);
  }

  async init(): Promise<void> {
    await this.conn.asPromise();
    await ensureCollection(this.Entry);
    await ensureCollection(this.Head);
  }

  async close(): Promise<void> {
    if (this.owned) await this.conn.close();
  }

  async chains(): Promise<string[]> {
    const [fromEntries, fromHeads] = await Promise.all([this.Entry.distinct('chain').exec(), this.Head.distinct('_id').exec()]);
    return [...new Set([...fromEntries, ...fromHeads].map(String))].sort();
  }

  async entries(chain: string, afterIndex: number, limit: number): Promise<AuditEntry[]> {
    if (limit <= 0) return [];
    const docs = await this.Entry.find({ chain, index: mongoose.trusted({ $gt: afterIndex }) })
      .sort({ index: 1 })
      .limit(limit)
      .lean<AuditDoc[]>()
      .exec();
    return docs.map(fromDoc);
  }

  async recordedHead(chain: string): Promise<number | undefined> {
    const doc = await this.Head.findOne({ _id: chain }).lean<AuditHeadDoc>().exec();
    return doc?.index;
  }

  async tail(chain: string) {
    const doc = await this.Entry.findOne({ chain }).sort({ index: -1 }).select({ index: 1, hash: 1 }).lean<Pick<AuditDoc, 'index' | 'hash'>>().exec();
    return doc ? { index: doc.index, hash: doc.hash } : undefined;
  }

  async insert(chain: string, entries: AuditEntry[]): Promise<{ inserted: number; conflict: boolean }> {
    if (entries.length === 0) return { inserted: 0, conflict: false };
    let inserted = entries.length;
    let conflict = false;
    try {
      // The driver's insertMany: entries are already in their stored shape (mongoose would hydrate
      // and validate a document per entry only to copy it again).
      await this.Entry.collection.insertMany(entries.map(toDoc) as unknown as Array<mongoose.mongo.OptionalId<mongoose.mongo.Document>>, { ordered: true });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      conflict = true;
      // Which of ours made it? With ordered inserts a prefix; anything past a gap would hang off a
      // missing predecessor, so it is removed (it is ours and was never acknowledged to anyone).
      const ids = entries.map((e) => e.id);
      const found = new Set(
        (await this.Entry.find({ _id: mongoose.trusted({ $in: ids }) }).select({ _id: 1 }).lean<Array<{ _id: string }>>().exec()).map((d) => d._id),
      );
      inserted = 0;
      while (inserted < entries.length && found.has(entries[inserted]!.id)) inserted++;
      const stray = ids.slice(inserted).filter((id) => found.has(id));
      if (stray.length) await this.Entry.deleteMany({ _id: mongoose.trusted({ $in: stray }) }).exec();
    }
    if (inserted > 0) await this.raiseHead(chain, entries[inserted - 1]!.index);
    return { inserted, conflict };
  }

  private async raiseHead(chain: string, index: number): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.Head.updateOne({ _id: chain }, { $max: { index } }, { upsert: true }).exec();
        return;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err; // two first upserts raced: the retry updates
      }
    }
  }
}

export class MongoAuditLog extends ChainedAuditLog {
  constructor(options: MongoAuditOptions) {
    // Writes are batched for up to 50 ms: under load, two database writes per batch instead of per request.
    super(new MongoAuditBackend(options), { logger: options.logger, lingerMs: options.lingerMs ?? 50, writer: options.writer });
  }
}

/** Absent fields stay absent (not null): the stored entry is the hashed one. */
function toDoc(e: AuditEntry): AuditDoc {
  const { id, ...rest } = e;
  const doc: Record<string, unknown> = { _id: id };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) doc[k] = v;
  return doc as unknown as AuditDoc;
}

function fromDoc(d: AuditDoc): AuditEntry {
  const { _id, ...rest } = d;
  const out: Record<string, unknown> = { id: _id };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && v !== null) out[k] = v;
  return out as unknown as AuditEntry;
}

function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: unknown; writeErrors?: Array<{ code?: unknown; err?: { code?: unknown } }> };
  if (e?.code === 11000) return true;
  return Array.isArray(e?.writeErrors) && e.writeErrors.some((w) => (w.code ?? w.err?.code) === 11000);
}
