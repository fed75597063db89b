import { randomUUID } from 'node:crypto';
import mongoose, { type Model } from 'mongoose';
import type { Logger } from '../../logger.js';
import { isDuplicateKey } from './duplicate-key.js';
import { GroupCommit, type WriteLane } from './group-commit.js';
import { docKey, type SeqMarkSetDoc } from './models.js';

/** Marks written by one set at most (a group-commit batch holds at most this many envelopes). */
const MAX_SET = 256;
/** Marks in one set the sweep writes when it gathers the live marks of mostly dead sets. */
const MAX_COMPACTED_SET = 1000;
/**
 * Sets this node no longer needs are deleted by one command once this many wait, or once any wait and the
 * last such delete is `pruneEveryMs` old. FerretDB v1 cannot push a filter on `_id $in` down, so each
 * delete reads every set: deleting a few at a time cost D on FerretDB-PostgreSQL about 0.03 commands per
 * message (docs/benchmarks.md); the time bound keeps the sets few at low rates.
 */
const PRUNE_BATCH = 256;
export const MARK_PRUNE_EVERY_MS = 1000;
/** Conversations (and sets) whose newest own mark this node remembers; the sweep deletes what it forgets. */
const MAX_REMEMBERED = 10_000;

interface PendingMark {
  orgId: string;
  conversationId: string;
  seq: number;
  /** The set that stored it, once it is stored. */
  setId?: string;
}

export interface SeqMarksOptions {
  /** The send path's write lane: mark sets go between envelope batches, never beside them. */
  lane: WriteLane;
  /** @default MARK_PRUNE_EVERY_MS */
  pruneEveryMs?: number | undefined;
  logger?: Pick<Logger, 'warn'> | undefined;
}

/**
 * A conversation's `lastSeq` as seq marks (docs/delivery.md, "Sequence numbers and `lastSeq`").
 *
 * After its envelope is stored, each append marks its seq, and is acked only once the mark is stored.
 * The marks of one group-commit batch are one document per organisation (`SeqMarkSetDoc`), inserted
 * once, never updated. A conversation's `lastSeq` is the highest seq any set gives it. Inserts are atomic
 * on every backend and a set can only add a higher maximum, so there is no order to keep between nodes
 * and no read-modify-write that could put an older value back (FerretDB v1 applies `$max` that way).
 *
 * Sets are deleted only when each mark they hold is below (or, for the sweep's own rewrites, equal to)
 * a mark in a set that is stored: so the highest mark of a conversation is never deleted, and `lastSeq`
 * never goes down.
 * - This node remembers its newest mark per conversation and how many of each set's marks are still
 *   its newest. A set whose every mark a newer one of this node superseded is queued and deleted by
 *   `_id`, up to PRUNE_BATCH at a time, about once a second at most, through the write lane.
 * - The sweep (`sweep`) deletes every set whose marks are all below their conversation's highest, and
 *   rewrites sets that are mostly dead (a quiet conversation's newest mark keeps its batch's set alive):
 *   their live marks go into a new set first, then they go. What a stopped node left goes there too.
 */
export class SeqMarks {
  private readonly sets: GroupCommit<PendingMark>;
  private readonly lane: WriteLane;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  private readonly pruneEveryMs: number;
  /** This node's newest mark per conversation (`docKey(org, conversation)`), and the set holding it. */
  private readonly newest = new Map<string, { seq: number; setId: string }>();
  /** Per set this node wrote: how many of its marks are still this node's newest. */
  private readonly live = new Map<string, number>();
  /** Sets this node wrote that hold nothing it needs, to delete. */
  private dead: string[] = [];
  private pruning: Promise<void> | undefined;
  private prunedAt = performance.now();

  constructor(
    private readonly model: Model<SeqMarkSetDoc>,
    options: SeqMarksOptions,
  ) {
    this.lane = options.lane;
    this.logger = options.logger;
    this.pruneEveryMs = options.pruneEveryMs ?? MARK_PRUNE_EVERY_MS;
    // The marks of one envelope batch are submitted in the same turn: no wait of their own.
    this.sets = new GroupCommit<PendingMark>((marks) => this.insertSets(marks), { maxBatch: MAX_SET, lane: this.lane });
  }

  /** Mark `seq` of a conversation stored (its envelope is). Resolves once a stored set holds the mark. */
  async mark(orgId: string, conversationId: string, seq: number): Promise<void> {
    const pending: PendingMark = { orgId, conversationId, seq };
    await this.sets.submit(pending);
    const setId = pending.setId!;
    const key = docKey(orgId, conversationId);
    const before = this.newest.get(key);
    // A retry marking a seq at or below this node's newest mark: stored, and needed by nobody.
    if (before && before.seq >= seq) return this.release(setId);
    this.newest.delete(key);
    this.newest.set(key, { seq, setId });
    if (this.newest.size > MAX_REMEMBERED) this.newest.delete(this.newest.keys().next().value!);
    if (before) this.release(before.setId);
  }

  /** A conversation's highest mark; 0 before the first. */
  async lastSeq(orgId: string, conversationId: string): Promise<number> {
    return (await this.lastSeqs(orgId, [conversationId])).get(conversationId) ?? 0;
  }

  /** The highest mark of each of these conversations (absent before the first), in one read. */
  async lastSeqs(orgId: string, conversationIds: readonly string[]): Promise<Map<string, number>> {
    const tops = new Map<string, number>();
    if (conversationIds.length === 0) return tops;
    const wanted = new Set(conversationIds);
    const filter = conversationIds.length === 1 ? { orgId, conversationIds: conversationIds[0] } : { orgId, conversationIds: mongoose.trusted({ $in: [...wanted] }) };
    const found = await this.model.find(filter).select({ _id: 0, conversationIds: 1, seqs: 1 }).lean<Array<Pick<SeqMarkSetDoc, 'conversationIds' | 'seqs'>>>().exec();
    for (const set of found) {
      set.conversationIds.forEach((c, i) => {
        if (wanted.has(c)) tops.set(c, Math.max(tops.get(c) ?? 0, set.seqs[i] ?? 0));
      });
    }
    return tops;
  }

  /**
   * Delete the sets whose marks are all below their conversation's highest, and rewrite the mostly
   * dead ones: their live marks go into a new set, stored before they are deleted. One read of every
   * set, then at most a few inserts and one delete per PRUNE_BATCH sets.
   */
  async sweep(): Promise<void> {
    const all = await this.model.find({}).lean<SeqMarkSetDoc[]>().exec();
    const tops = new Map<string, number>();
    for (const set of all) set.conversationIds.forEach((c, i) => tops.set(docKey(set.orgId, c), Math.max(tops.get(docKey(set.orgId, c)) ?? 0, set.seqs[i] ?? 0)));
    const doomed: string[] = [];
    /** Per organisation: the live marks of the sets to rewrite. */
    const keep = new Map<string, Map<string, number>>();
    for (const set of all) {
      const liveMarks = set.conversationIds.map((c, i) => [c, set.seqs[i] ?? 0] as const).filter(([c, seq]) => seq >= tops.get(docKey(set.orgId, c))!);
      if (liveMarks.length * 2 > set.conversationIds.length) continue;
      doomed.push(set._id);
      let marks = keep.get(set.orgId);
      if (!marks) keep.set(set.orgId, (marks = new Map()));
      for (const [c, seq] of liveMarks) marks.set(c, seq);
    }
    for (const [orgId, marks] of keep) {
      const entries = [...marks];
      for (let i = 0; i < entries.length; i += MAX_COMPACTED_SET) {
        const chunk = entries.slice(i, i + MAX_COMPACTED_SET);
        const set: SeqMarkSetDoc = { _id: docKey(orgId, randomUUID()), orgId, conversationIds: chunk.map(([c]) => c), seqs: chunk.map(([, s]) => s) };
        await this.model.collection.insertOne(set as never);
      }
    }
    for (let i = 0; i < doomed.length; i += PRUNE_BATCH) {
      await this.model.deleteMany({ _id: mongoose.trusted({ $in: doomed.slice(i, i + PRUNE_BATCH) }) }).exec();
    }
  }

  /** Wait for a delete in flight. */
  async close(): Promise<void> {
    await this.pruning?.catch(() => {});
  }

  /**
   * One unordered `insertMany` of one set per organisation. A set already there (a write the driver
   * retried) is a duplicate key, which is success: the set exists.
   */
  private async insertSets(marks: PendingMark[]): Promise<unknown[]> {
    const byOrg = new Map<string, number[]>();
    marks.forEach((m, i) => {
      const of = byOrg.get(m.orgId);
      if (of) of.push(i);
      else byOrg.set(m.orgId, [i]);
    });
    const sets = [...byOrg].map(([orgId, indexes]) => ({
      doc: { _id: docKey(orgId, randomUUID()), orgId, conversationIds: indexes.map((i) => marks[i]!.conversationId), seqs: indexes.map((i) => marks[i]!.seq) } satisfies SeqMarkSetDoc,
      indexes,
    }));
    const failedSets: unknown[] = [];
    try {
      await this.model.collection.insertMany(sets.map((s) => s.doc) as never[], { ordered: false });
    } catch (err) {
      const raw = (err as { writeErrors?: unknown }).writeErrors;
      const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ index?: number; code?: number; errmsg?: string }>;
      if (writeErrors.length === 0 || writeErrors.some((w) => typeof w.index !== 'number')) throw err;
      for (const w of writeErrors) {
        if (!isDuplicateKey(w)) failedSets[w.index!] = Object.assign(new Error(w.errmsg ?? 'seq mark insert failed'), { code: w.code });
      }
    }
    const failed: unknown[] = [];
    sets.forEach((s, k) => {
      if (failedSets[k] !== undefined) {
        for (const i of s.indexes) failed[i] = failedSets[k];
        return;
      }
      this.live.set(s.doc._id, s.indexes.length);
      if (this.live.size > MAX_REMEMBERED) this.live.delete(this.live.keys().next().value!);
      for (const i of s.indexes) marks[i]!.setId = s.doc._id;
    });
    return marks.map((_, i) => failed[i]);
  }

  /** One mark of this set is no longer needed; the set goes once none is. */
  private release(setId: string): void {
    const left = this.live.get(setId);
    if (left === undefined) return; // forgotten: the sweep deletes it
    if (left > 1) {
      this.live.set(setId, left - 1);
      return;
    }
    this.live.delete(setId);
    this.dead.push(setId);
    // While deletes fail (the database is away), forget the oldest: the sweep deletes what is left.
    if (this.dead.length > MAX_REMEMBERED) this.dead.splice(0, this.dead.length - MAX_REMEMBERED);
    if (this.pruning) return;
    if (this.dead.length >= PRUNE_BATCH || performance.now() - this.prunedAt >= this.pruneEveryMs) {
      this.prunedAt = performance.now();
      const ids = this.dead.splice(0, PRUNE_BATCH);
      this.pruning = this.lane
        .run(() => this.model.deleteMany({ _id: mongoose.trusted({ $in: ids }) }).exec())
        .then(
          () => undefined,
          (err: unknown) => this.logger?.warn({ err: (err as Error).message, sets: ids.length }, 'deleting superseded seq mark sets failed; the sweep deletes them'),
        )
        .finally(() => (this.pruning = undefined));
    }
  }
}
