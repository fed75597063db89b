import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { collectionOptions } from '../adapters/mongo/models.js';
import type { Logger } from '../logger.js';
import { ChainedAuditLog, type AuditBackend } from './chain.js';
import type { AuditEntry } from './port.js';
import { ensureCollection } from '../adapters/mongo/ensure.js';

/** An entry as a block holds it: its chain is the block's. */
type BlockEntry = Omit<AuditEntry, 'chain'>;

/**
 * A stored audit document: a block of consecutive entries of one chain (`index` the first's, `lastIndex`
 * and `lastHash` the last's), or, written by releases before blocks, one entry with its fields at the top.
 * A block's `entries` are one JSON text (an array of entries); the first release with blocks stored them
 * as an array of subdocuments, read as well.
 */
interface AuditDoc extends Partial<Omit<AuditEntry, 'id'>> {
  _id: string;
  chain: string;
  index: number;
  lastIndex?: number;
  lastHash?: string;
  entries?: string | BlockEntry[];
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
    lastIndex: Number,
    lastHash: String,
    entries: Schema.Types.Mixed,
    // A single entry (before blocks):
    prevHash: String,
    hash: String,
    at: Number,
    action: String,
    outcome: String,
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
/**
 * One document per starting position: every writer appends a block that starts right after the tail it
 * knows, so a node appending on a stale tail meets the block that already starts there (11000) and retries.
 */
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
 * Audit chains in MongoDB (FerretDB in tests): collection `audit_log`, one document per appended batch
 * (a block of consecutive entries, each hashed and chained as before) with a unique index on (chain,
 * first index), and `audit_heads` with the highest index appended per chain, so cutting entries off the
 * end of a chain is detected too. Works without transactions. One document per batch, not per entry,
 * and the batch's entries as one JSON text, not as subdocuments: FerretDB converts every field of a
 * stored document, so 50 entries as subdocuments cost its PostgreSQL backend about 120 µs each and as one
 * text about 45 µs (docs/benchmarks.md, `scripts/bench/field-cost.ts`). The entries are only ever read back whole, by chain and index,
 * so nothing queries inside them. Documents of one entry each and blocks with an array of entries,
 * written by earlier releases, are read as well.
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
    const out: AuditEntry[] = [];
    const take = (doc: AuditDoc) => {
      for (const e of unpack(doc)) if (e.index > afterIndex) out.push(e);
    };
    // The block that holds afterIndex + 1 may start at or before afterIndex.
    const holding = await this.Entry.findOne({ chain, index: mongoose.trusted({ $lte: afterIndex }) }).sort({ index: -1 }).lean<AuditDoc>().exec();
    if (holding) take(holding);
    const cursor = this.Entry.find({ chain, index: mongoose.trusted({ $gt: afterIndex }) }).sort({ index: 1 }).lean<AuditDoc>().cursor({ batchSize: 32 });
    try {
      for await (const doc of cursor) {
        take(doc as AuditDoc);
        if (out.length >= limit) break;
      }
    } finally {
      await cursor.close();
    }
    // Ascending, so a reader paging by the last index always moves on (even through edited indexes).
    return out.sort((a, b) => a.index - b.index).slice(0, limit);
  }

  async recordedHead(chain: string): Promise<number | undefined> {
    const doc = await this.Head.findOne({ _id: chain }).lean<AuditHeadDoc>().exec();
    return doc?.index;
  }

  async tail(chain: string) {
    const doc = await this.Entry.findOne({ chain })
      .sort({ index: -1 })
      .select({ index: 1, hash: 1, lastIndex: 1, lastHash: 1 })
      .lean<Pick<AuditDoc, 'index' | 'hash' | 'lastIndex' | 'lastHash'>>()
      .exec();
    if (!doc) return undefined;
    return doc.lastIndex !== undefined && doc.lastHash !== undefined ? { index: doc.lastIndex, hash: doc.lastHash } : { index: doc.index, hash: doc.hash ?? '' };
  }

  async insert(chain: string, entries: AuditEntry[]): Promise<{ inserted: number; conflict: boolean }> {
    if (entries.length === 0) return { inserted: 0, conflict: false };
    try {
      // The driver's insertOne: the block is already in its stored shape (mongoose would hydrate and
      // validate it only to copy it again). One document: all of the batch is stored, or none.
      await this.Entry.collection.insertOne(toBlock(chain, entries) as unknown as mongoose.mongo.OptionalId<mongoose.mongo.Document>);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return { inserted: 0, conflict: true };
    }
    await this.raiseHead(chain, entries[entries.length - 1]!.index);
    return { inserted: entries.length, conflict: false };
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

/** Absent fields stay absent (JSON leaves out undefined): the stored entry is the hashed one. */
function toBlock(chain: string, entries: AuditEntry[]): AuditDoc {
  const last = entries[entries.length - 1]!;
  const stored: BlockEntry[] = entries.map(({ chain: _chain, ...rest }) => rest);
  return { _id: entries[0]!.id, chain, index: entries[0]!.index, lastIndex: last.index, lastHash: last.hash, entries: JSON.stringify(stored) };
}

/**
 * The entries of a stored document: a block's, or the one entry of a document from before blocks. A
 * block whose text is not an array of entries (edited by hand) reads as no entries, and the verifier
 * reports them missing.
 */
function unpack(d: AuditDoc): AuditEntry[] {
  const block = typeof d.entries === 'string' ? parseEntries(d.entries) : d.entries;
  if (Array.isArray(block)) return block.map((e) => withoutNulls({ ...e, chain: d.chain }));
  const { _id, lastIndex: _l, lastHash: _h, entries: _e, ...rest } = d;
  return [withoutNulls({ ...rest, id: _id })];
}

function parseEntries(text: string): BlockEntry[] {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed.filter((e): e is BlockEntry => typeof e === 'object' && e !== null && !Array.isArray(e));
  } catch {
    // answered below
  }
  return [];
}

function withoutNulls(e: Record<string, unknown>): AuditEntry {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (v !== undefined && v !== null) out[k] = v;
  return out as unknown as AuditEntry;
}

function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: unknown; writeErrors?: Array<{ code?: unknown; err?: { code?: unknown } }> };
  if (e?.code === 11000) return true;
  return Array.isArray(e?.writeErrors) && e.writeErrors.some((w) => (w.code ?? w.err?.code) === 11000);
}
