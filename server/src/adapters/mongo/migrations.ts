import type { Connection, mongo } from 'mongoose';
import { decodeCompositeKey } from '@curbside/shared';
import type { Logger } from '../../logger.js';
import { directKey, groupKey } from '../../ports/storage-rules.js';
import { ignoreDuplicateKey, retryOnDuplicateKey } from './duplicate-key.js';
import { docKey, type ConversationDoc, type SeqMarkSetDoc, type StorageModels } from './models.js';

/**
 * Data migrations, run by `MongoStorage.init()` on every start, each until it has completed once.
 *
 * FerretDB v1 has no transactions, so each migration is written to be safe to interrupt and to run on
 * several hub nodes at once: it copies a document to its new shape first (a duplicate key means a copy
 * exists already) and deletes the old one last; a crash in between leaves the old document behind for
 * the next start to finish. Completion is recorded in `schema_migrations`.
 */
interface Migration {
  id: string;
  run(models: StorageModels & LegacyCollections, logger: Pick<Logger, 'warn'> | undefined): Promise<void>;
}

const MIGRATIONS: readonly Migration[] = [
  {
    /**
     * Conversation and team ids were global: `team:create` with another organisation's id answered
     * CONFLICT, which told the caller the team existed. Conversation documents (and their
     * `conversation_seqs`) are now keyed `docKey(orgId, conversationId)` and carry `conversationId`;
     * their `directKey` moved from NUL-joined ids and `group:<id>` to `compositeKey`.
     */
    id: '2026-12-conversation-keys-per-org',
    async run({ Conversation, conversationSeqs }, logger) {
      // The raw driver: legacy documents do not match today's schema (no `conversationId`).
      const legacy = await Conversation.collection
        .find({ conversationId: { $exists: false } })
        .toArray() as unknown as Array<Omit<ConversationDoc, 'conversationId'>>;
      for (const old of legacy) {
        const conversationId = old._id;
        const _id = docKey(old.orgId, conversationId);
        const seq = await conversationSeqs.findOne({ _id: conversationId });
        // $max: idempotent, and a node running the same step at once makes the other's upsert retry as an update.
        if (seq) await retryOnDuplicateKey(() => conversationSeqs.updateOne({ _id }, { $max: { lastSeq: seq.lastSeq } }, { upsert: true }));
        const moved: ConversationDoc = {
          ...old,
          _id,
          conversationId,
          directKey: old.kind === 'direct' && old.memberUserIds.length === 2 ? directKey(old.memberUserIds) : groupKey(conversationId),
        };
        await ignoreDuplicateKey(Conversation.collection.insertOne(moved as never));
        await Conversation.collection.deleteOne({ _id: conversationId as never });
        if (seq) await conversationSeqs.deleteOne({ _id: conversationId });
      }
      if (legacy.length > 0) logger?.warn({ conversations: legacy.length }, 'migrated conversations to per-organisation keys');
    },
  },
  {
    /**
     * No stored text holds a control character: PostgreSQL's `jsonb` (FerretDB's PostgreSQL backend)
     * refuses NUL, so a database with one cannot move there, and the contract now refuses them in
     * titles (`storedTextSchema`). Keys never held one after the migration above (`compositeKey`); group
     * titles, and the plaintext titles of teams stored before titles were sealed (kept, never read), could.
     * Each control character becomes a space (a title left empty is removed).
     */
    id: '2026-12-no-control-characters-in-text',
    async run({ Conversation }, logger) {
      const control = { $regex: CONTROL_CHARACTER_SOURCE };
      const found = (await Conversation.collection
        .find({ $or: [{ title: control }, { 'team.title': control }] })
        .project({ _id: 1, title: 1, 'team.title': 1 })
        .toArray()) as unknown as Array<{ _id: string; title?: unknown; team?: { title?: unknown } }>;
      for (const doc of found) {
        const set: Record<string, string> = {};
        const unset: Record<string, ''> = {};
        for (const [path, value] of [['title', doc.title], ['team.title', doc.team?.title]] as const) {
          if (typeof value !== 'string' || !CONTROL_CHARACTER.test(value)) continue;
          const clean = withoutControlCharacters(value);
          if (clean) set[path] = clean;
          else unset[path] = '';
        }
        // Only the fields changed (on MongoDB a membership change at the same time keeps its members;
        // FerretDB rewrites the whole document, so there a change in that instant on a node still on the
        // previous release could be undone: the same window as any update there, once per such title).
        await Conversation.collection.updateOne({ _id: doc._id as never }, { ...(Object.keys(set).length ? { $set: set } : {}), ...(Object.keys(unset).length ? { $unset: unset } : {}) });
      }
      if (found.length > 0) logger?.warn({ conversations: found.length }, 'replaced control characters in stored titles');
    },
  },
  {
    /**
     * A conversation's `lastSeq` moved from one `conversation_seqs` document raised with `$max` (a
     * read-modify-write on FerretDB v1, ten times the cost of an insert there) to seq marks, inserted.
     * Each seq document becomes a set of one mark, its seq (`SeqMarkSetDoc`; this migration wrote one
     * `ConversationSeqMarkDoc` each when it was new, which the next one moves), then goes. A crash in
     * between leaves the document for the next start: its set is then a duplicate key, and it is deleted.
     */
    id: '2026-12-seq-marks',
    async run({ conversationSeqs, SeqMarkSet }, logger) {
      const seqs = await conversationSeqs.find({}).toArray();
      let moved = 0;
      for (const doc of seqs) {
        let orgId: string | undefined;
        let conversationId: string | undefined;
        try {
          const parts = decodeCompositeKey(doc._id);
          if (parts.length === 2) [orgId, conversationId] = parts;
        } catch {
          // Not a key this hub wrote: left alone (and never read).
        }
        if (orgId === undefined || conversationId === undefined || !Number.isInteger(doc.lastSeq)) {
          logger?.warn({ id: doc._id }, 'conversation_seqs document not migrated to a seq mark: unexpected shape');
          continue;
        }
        if (doc.lastSeq > 0) {
          const set: SeqMarkSetDoc = { _id: docKey(orgId, 'migrated-seq', conversationId), orgId, conversationIds: [conversationId], seqs: [doc.lastSeq] };
          await ignoreDuplicateKey(SeqMarkSet.collection.insertOne(set as never));
        }
        await conversationSeqs.deleteOne({ _id: doc._id });
        moved++;
      }
      if (moved > 0) logger?.warn({ conversations: moved }, 'moved conversation lastSeq values to seq marks');
    },
  },
  {
    /**
     * Seq marks moved from one document per mark (`conversation_seq_marks`) to one set of marks per
     * group-commit batch (`seq_mark_sets`, `SeqMarkSetDoc`). Each conversation's highest mark goes into
     * a set (per organisation, up to MIGRATED_SET marks, the set's `_id` derived from its first
     * conversation, so a node running this step at once writes the same sets: a duplicate key), and
     * only once every set is stored do the old marks go. A crash in between leaves them for the next
     * start, which writes the same sets again.
     */
    id: '2026-12-seq-mark-sets',
    async run({ conversationSeqMarks, SeqMarkSet }, logger) {
      const marks = await conversationSeqMarks.find({}).toArray();
      const tops = new Map<string, Map<string, number>>();
      for (const m of marks) {
        let org = tops.get(m.orgId);
        if (!org) tops.set(m.orgId, (org = new Map()));
        org.set(m.conversationId, Math.max(org.get(m.conversationId) ?? 0, m.seq));
      }
      for (const [orgId, org] of tops) {
        const entries = [...org].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        for (let i = 0; i < entries.length; i += MIGRATED_SET) {
          const chunk = entries.slice(i, i + MIGRATED_SET);
          const set: SeqMarkSetDoc = { _id: docKey(orgId, 'migrated', chunk[0]![0]), orgId, conversationIds: chunk.map(([c]) => c), seqs: chunk.map(([, seq]) => seq) };
          await ignoreDuplicateKey(SeqMarkSet.collection.insertOne(set as never));
        }
      }
      const ids = marks.map((m) => m._id);
      for (let i = 0; i < ids.length; i += MIGRATED_SET) await conversationSeqMarks.deleteMany({ _id: { $in: ids.slice(i, i + MIGRATED_SET) } });
      if (marks.length > 0) logger?.warn({ marks: marks.length, conversations: [...tops.values()].reduce((n, o) => n + o.size, 0) }, 'moved seq marks into seq mark sets');
    },
  },
];

/** Marks per set the migration to seq mark sets writes, at most. */
const MIGRATED_SET = 1000;

const CONTROL_CHARACTER_SOURCE = '[\\x00-\\x1f\\x7f]';
const CONTROL_CHARACTER = new RegExp(CONTROL_CHARACTER_SOURCE);

/** `text` with each control character as a space, trimmed. */
function withoutControlCharacters(text: string): string {
  return text.replace(new RegExp(CONTROL_CHARACTER_SOURCE, 'g'), ' ').trim();
}

export async function runMigrations(conn: Connection, models: StorageModels, logger?: Pick<Logger, 'warn'>): Promise<void> {
  const legacy = legacyCollections(conn);
  const applied = conn.db!.collection<{ _id: string; appliedAt: number }>('schema_migrations');
  for (const migration of MIGRATIONS) {
    if (await applied.findOne({ _id: migration.id })) continue;
    await migration.run({ ...models, ...legacy }, logger);
    // Two nodes finishing at once: the loser's upsert is a duplicate key, and the marker is there.
    await ignoreDuplicateKey(applied.updateOne({ _id: migration.id }, { $setOnInsert: { appliedAt: Date.now() } }, { upsert: true }));
  }
  await warnOfLegacyDocuments(conn, legacy, logger);
}

/**
 * Documents in a legacy collection after its migration ran were written by a node of an earlier
 * release that was still running (docs/operations.md says to stop those first): say so, naming the
 * collection. They stay, since they are that release's only copy. The emptied collections are not
 * dropped here: another node of this release may still be running the migration that reads them.
 */
async function warnOfLegacyDocuments(conn: Connection, legacy: LegacyCollections, logger?: Pick<Logger, 'warn'>): Promise<void> {
  if (!logger) return;
  const names = new Set(Object.values(legacy).map((collection) => collection.collectionName));
  const present = await conn.db!.listCollections({}, { nameOnly: true }).toArray();
  for (const { name } of present) {
    if (names.has(name) && (await conn.db!.collection(name).countDocuments({}, { limit: 1 })) > 0) {
      logger.warn({ collection: name }, 'legacy collection holds documents after its migration: written by a node of an earlier release; not migrated');
    }
  }
}

/**
 * A conversation's `lastSeq` as the previous release kept it: one document per conversation, raised
 * with `$max` after each append. FerretDB v1 applies that update as a read-modify-write (about ten times
 * the cost of an inserted document on PostgreSQL, and racing raises could lose the higher one), so the
 * seq now lives in seq marks (`SeqMarkSetDoc`); the migration `2026-12-seq-marks` turns each of these into
 * a mark and deletes it. Read by that migration (and the one before it) only (`LegacyCollections`).
 */
export interface ConversationSeqDoc {
  /** The conversation document's `_id`: `docKey(orgId, conversationId)`. */
  _id: string;
  lastSeq: number;
}

/**
 * A seq mark as the release before seq mark sets kept it, one document per mark ("the envelope at
 * `seq` of this conversation is stored"); the migration `2026-12-seq-mark-sets` moves them into
 * `SeqMarkSetDoc`s, and reads them only (`LegacyCollections`).
 */
export interface ConversationSeqMarkDoc {
  /** `docKey(orgId, conversationId, String(seq))`. */
  _id: string;
  orgId: string;
  conversationId: string;
  seq: number;
}

/**
 * Collections only earlier releases wrote, for the migrations that empty them: plain driver
 * collections, not models, so that nothing creates them on a database that never had them. They are
 * not dropped once emptied (another node may still be migrating from them); docs/delivery.md says when
 * an operator can drop them.
 */
export interface LegacyCollections {
  conversationSeqs: mongo.Collection<ConversationSeqDoc>;
  conversationSeqMarks: mongo.Collection<ConversationSeqMarkDoc>;
}

export function legacyCollections(conn: Connection): LegacyCollections {
  return {
    conversationSeqs: conn.db!.collection<ConversationSeqDoc>('conversation_seqs'),
    conversationSeqMarks: conn.db!.collection<ConversationSeqMarkDoc>('conversation_seq_marks'),
  };
}
