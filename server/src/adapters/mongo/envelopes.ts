/**
 * Envelopes (the `Storage` port's `EnvelopeStore`, and the envelope half of `TeamStore`): appends with
 * seq allocation and group commit, delivery cursors, resync reads and the sweep.
 *
 * Sequence numbers without transactions: an envelope's insert claims its seq through the unique
 * index (org, conversation, seq). The candidate is always one above a seq known to be stored (this
 * instance's last one, the conversation's `lastSeq`, or the highest stored one after a collision), so
 * the insert either lands at exactly max+1 or fails with a duplicate key and nothing is stored: no seq
 * is ever burned and N+1 is never stored before N. Appends to one conversation are queued within an
 * instance (`KeyedQueue`), so collisions happen only between hub nodes.
 *
 * lastSeq as seq marks (`SeqMarks`, seq-marks.ts): after its envelope is stored, each append marks its
 * seq (the marks of one envelope batch are one inserted document per organisation), and the append
 * resolves (the send is acked) only once its mark is stored. A conversation's `lastSeq` is its highest
 * mark: (1) once an append is acked, `lastSeq` >= its seq; (2) `lastSeq` = N means envelope N was
 * stored, and with it every seq below (allocation above). A node that dies between storing an envelope
 * and its mark leaves `lastSeq` low until the next append to that conversation (which collides on that
 * seq, moves past it and marks its own) or a retry of that send (which marks the stored seq).
 */
import { randomUUID } from 'node:crypto';
import mongoose from 'mongoose';
import type { Conversation } from '@curbside/shared';
import type { AppendResult, EnvelopeStore, NewEnvelope, StoredEnvelope, TeamStore } from '../../ports/storage.js';
import { SEQ_HINT_TRUST_MS, SWEEP_GRACE_MS } from '../../ports/storage-rules.js';
import type { Logger } from '../../logger.js';
import { ignoreDuplicateKey, isDuplicateKey, retryOnDuplicateKey } from './duplicate-key.js';
import { MAX_UPDATES_PER_COMMAND, docKey, toBytes, type ConversationDoc, type DeviceCursorDoc, type EnvelopeDoc, type StorageModels } from './models.js';
import { GroupCommit, type WriteLane } from './group-commit.js';
import type { KeyedQueue } from './keyed-queue.js';
import type { SeqMarks } from './seq-marks.js';
import { conversationKey } from './conversations.js';
import { packShares, unpackShares, type Share } from './shares.js';

/** Attempts to claim a seq before giving up; each failure means another node stored one meanwhile. */
const MAX_APPEND_ATTEMPTS = 50;
/** Conversations whose last seq this instance remembers (least recently appended to forgotten first). */
const MAX_SEQ_HINTS = 10_000;
/** How long after a seq collision this instance reads lastSeq before each append. */
const CONTENDED_MS = 60_000;
/** Envelopes written by one group command at most. */
const MAX_WRITE_BATCH = 256;

export interface MongoEnvelopesOptions {
  models: Pick<StorageModels, 'Conversation' | 'Envelope' | 'DeviceCursor'>;
  seqMarks: Pick<SeqMarks, 'lastSeq' | 'mark' | 'sweep'>;
  /** Shared with the conversations: appends to a conversation and its team changes take turns. */
  queue: KeyedQueue;
  /** The conversation, for an append whose caller did not read it (`NewEnvelope.lastSeqSeen`). */
  getConversation(orgId: string, conversationId: string): Promise<Conversation | undefined>;
  /** Shared with the seq marks: one write command of the send path in flight. */
  lane: WriteLane;
  /** Group commit's bounded wait (`MongoStorageOptions.groupCommitWaitMs`). */
  groupCommitWaitMs: number;
  logger?: Pick<Logger, 'debug'> | undefined;
}

export class MongoEnvelopes implements EnvelopeStore, Pick<TeamStore, 'statementBefore' | 'withdrawEnvelope'> {
  private readonly models: MongoEnvelopesOptions['models'];
  private readonly seqMarks: MongoEnvelopesOptions['seqMarks'];
  /** Highest seq this instance stored or saw stored per conversation (key: `conversationKey`). */
  private readonly seqHints = new Map<string, { seq: number; at: number }>();
  /**
   * Until when appends read the conversation's stored lastSeq before inserting, instead of guessing
   * from this instance's hint: set by a seq collision, i.e. another node appends to the same
   * conversations. With clients spread over nodes, sends to a conversation alternate between nodes
   * and a guess collided on about every other send (each a refused insert, two reads and a second
   * insert); a read first costs one point read. A lone node never collides and never reads.
   */
  private contendedUntil = 0;
  private readonly inserts: GroupCommit<EnvelopeDoc>;

  constructor(private readonly options: MongoEnvelopesOptions) {
    this.models = options.models;
    this.seqMarks = options.seqMarks;
    this.inserts = new GroupCommit<EnvelopeDoc>((docs) => this.insertEnvelopes(docs), { maxBatch: MAX_WRITE_BATCH, lane: options.lane, waitMs: options.groupCommitWaitMs });
  }

  async appendEnvelope(input: NewEnvelope): Promise<AppendResult> {
    return this.options.queue.run(conversationKey(input.orgId, input.conversationId), () => this.appendQueued(input));
  }

  private async appendQueued(input: NewEnvelope): Promise<AppendResult> {
    // The caller read the conversation just before (membership check): no second read for its lastSeq.
    let lastSeq = input.lastSeqSeen;
    if (lastSeq === undefined) {
      const conv = await this.options.getConversation(input.orgId, input.conversationId);
      if (!conv) throw new Error(`conversation ${input.conversationId} not found`);
      lastSeq = conv.lastSeq;
    }
    // No read for an earlier send of this client message id either: the envelope's `_id` is
    // (org, sender device, client message id), so a second insert is refused, and the duplicate-key
    // path below answers it with the stored envelope.

    const hk = conversationKey(input.orgId, input.conversationId);
    // The highest seq known to be stored: the candidate is one above it.
    // A fresh hint of this node's own is the base; otherwise the conversation's highest mark (one
    // read), since the envelopes above an old hint may have been swept (SEQ_HINT_TRUST_MS).
    const hint = this.seqHints.get(hk);
    let known = hint && input.now - hint.at < SEQ_HINT_TRUST_MS ? Math.max(hint.seq, lastSeq) : Math.max(lastSeq, await this.seqMarks.lastSeq(input.orgId, input.conversationId));
    if (this.contendedUntil > Date.now()) known = Math.max(known, await this.seqMarks.lastSeq(input.orgId, input.conversationId));
    let candidate = known + 1;
    const key = envelopeKey(input.orgId, input.senderDeviceId, input.clientMessageId);
    // Copies: the caller may reuse its buffers.
    const body = input.body ? Buffer.from(input.body) : undefined;
    const recipients = input.recipients?.map((r) => ({ deviceId: r.deviceId, ciphertext: Buffer.from(r.ciphertext) }));
    // What the stored document and the answer both carry.
    const common = {
      messageId: randomUUID(),
      conversationId: input.conversationId,
      senderUserId: input.senderUserId,
      senderDeviceId: input.senderDeviceId,
      clientMessageId: input.clientMessageId,
      sentAt: input.now,
    };
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      try {
        await this.inserts.submit({
          _id: key,
          orgId: input.orgId,
          ...common,
          seq: candidate,
          ...(body ? { body } : {}),
          ...(recipients ? { shares: packShares(recipients) } : {}),
          ...(input.partial ? { partial: true } : {}),
          ...(input.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
          ...(input.membership ? { membership: { statement: input.membership.statement, signature: Buffer.from(input.membership.signature) } } : {}),
          ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
          ...(input.deliverTo ? { deliverTo: input.deliverTo } : {}),
          ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
        });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // Which unique key was hit (FerretDB does not say)? Two reads by `_id`, at once: an envelope
        // under this send's key means a retry of a stored send (through another node, or racing this
        // one); else the seq was taken, by another node. That seq is stored, so one above it keeps the
        // sequence gapless, and the conversation's lastSeq may already be further on.
        const [prior, stored] = await Promise.all([this.priorSend(input), this.seqMarks.lastSeq(input.orgId, input.conversationId)]);
        if (prior) return prior;
        this.contendedUntil = Date.now() + CONTENDED_MS;
        const next = Math.max(stored + 1, candidate + 1);
        this.options.logger?.debug({ conversationId: input.conversationId, tried: candidate, next, attempt }, 'seq taken by another node, retrying');
        candidate = next;
        continue;
      }
      await this.markSeq(input.orgId, input.conversationId, candidate, input.now);
      return {
        status: 'stored',
        envelope: {
          ...common,
          seq: candidate,
          ...(body ? { body: new Uint8Array(body) } : {}),
          ...(input.partial ? { partial: true } : {}),
          ...(input.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
          ...(input.membership ? { membership: { statement: input.membership.statement, signature: new Uint8Array(input.membership.signature) } } : {}),
          ...(input.epoch !== undefined ? { epoch: input.epoch } : {}),
          ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
          ...(recipients ? { recipients: recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: new Uint8Array(r.ciphertext) })) } : {}),
        },
      };
    }
    throw new Error(`could not assign a seq in conversation ${input.conversationId} after ${MAX_APPEND_ATTEMPTS} attempts`);
  }

  /**
   * Group commit (see `GroupCommit`): appends to different conversations that come while an insert is
   * in flight go to the database together in one unordered insertMany, under the connection's write
   * concern. Each append resolves only once its own document is stored, and fails alone (e.g. a
   * duplicate key) with its own write error; an error without per-document detail fails the group.
   */
  private async insertEnvelopes(docs: EnvelopeDoc[]): Promise<unknown[]> {
    const failed: unknown[] = [];
    try {
      // The driver's insertMany: the documents are already in their stored shape (mongoose's casting
      // would only copy them again).
      await this.models.Envelope.collection.insertMany(docs as unknown as Array<mongoose.mongo.OptionalId<mongoose.mongo.Document>>, { ordered: false });
    } catch (err) {
      const raw = (err as { writeErrors?: unknown }).writeErrors;
      const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ index?: number; code?: number; errmsg?: string }>;
      if (writeErrors.length === 0 || writeErrors.some((w) => typeof w.index !== 'number')) throw err;
      for (const w of writeErrors) failed[w.index!] = Object.assign(new Error(w.errmsg ?? 'envelope insert failed'), { code: w.code });
    }
    return docs.map((_, i) => failed[i]);
  }

  /** The answer for a send this device already made with the same client message id, if any. */
  private async priorSend(input: NewEnvelope): Promise<AppendResult | undefined> {
    const prior = await this.models.Envelope.findOne({ _id: envelopeKey(input.orgId, input.senderDeviceId, input.clientMessageId) })
      .lean<EnvelopeDoc>()
      .exec();
    if (!prior) return undefined;
    if (prior.conversationId !== input.conversationId) return { status: 'conflict' };
    // A retry often follows a crash between the insert and its mark: mark it (a duplicate if the first
    // attempt did), so that lastSeq covers the seq before the retry is acked.
    // Known stored since it was sent (not now): a seq above it may be as old.
    await this.markSeq(input.orgId, prior.conversationId, prior.seq, prior.sentAt);
    return { status: 'duplicate', envelope: toEnvelope(prior) };
  }

  /** Mark `seq` stored (its envelope is), then remember it as a base for the next candidate. */
  private async markSeq(orgId: string, conversationId: string, seq: number, at: number): Promise<void> {
    await this.seqMarks.mark(orgId, conversationId, seq);
    const hk = conversationKey(orgId, conversationId);
    // `at`: when `seq` was known stored; every seq above it was allocated later (see SEQ_HINT_TRUST_MS).
    const hint = this.seqHints.get(hk);
    if (!hint || seq > hint.seq) remember(this.seqHints, hk, { seq, at });
    else if (seq === hint.seq && at > hint.at) remember(this.seqHints, hk, { seq, at });
  }

  async statementBefore(orgId: string, teamId: string, seq: number): Promise<StoredEnvelope | undefined> {
    const doc = await this.models.Envelope.findOne({ orgId, conversationId: teamId, seq: mongoose.trusted({ $lt: seq }), membership: mongoose.trusted({ $exists: true }) })
      .sort({ seq: -1 })
      .lean<EnvelopeDoc>()
      .exec();
    return doc ? toEnvelope(doc) : undefined;
  }

  async withdrawEnvelope(orgId: string, senderDeviceId: string, clientMessageId: string): Promise<void> {
    const { Envelope: Env } = this.models;
    const _id = envelopeKey(orgId, senderDeviceId, clientMessageId);
    const doc = await Env.findOne({ _id }).lean<EnvelopeDoc>().exec();
    if (!doc) return;
    const { body: _body, shares: _shares, recipients: _recipients, epoch: _epoch, deliverTo: _deliverTo, partial: _partial, ...kept } = doc;
    const messageId = doc.messageId ?? doc._id;
    // Delete first: until the placeholder is in, the seq is free, and an append on another node that
    // takes it keeps the sequence gap-free just as well (the placeholder then loses on the seq index).
    await Env.deleteOne({ _id }).exec();
    await ignoreDuplicateKey(
      Env.collection.insertOne({ ...kept, _id: docKey(orgId, 'withdrawn', messageId), messageId, clientMessageId: `withdrawn-${messageId}` } as never),
    );
  }

  async ackDelivered(orgId: string, deviceId: string, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>): Promise<void> {
    if (cursors.length === 0) return;
    // One command for the device (its statements run one after another, not as rival writers), or a
    // few for a device in many conversations (MAX_UPDATES_PER_COMMAND).
    // Two nodes upserting one cursor at once: the loser's duplicate key is retried as an update.
    for (const part of chunks(cursors, MAX_UPDATES_PER_COMMAND)) {
      await retryOnDuplicateKey(() =>
        this.models.DeviceCursor.bulkWrite(
          part.map((c) => ({
            updateOne: {
              filter: { _id: docKey(orgId, deviceId, c.conversationId) },
              update: { $max: { seq: c.afterSeq }, $setOnInsert: { orgId, deviceId, conversationId: c.conversationId } },
              upsert: true,
            },
          })),
          { ordered: false },
        ),
      );
    }
  }

  async sweepEnvelopes(now: number): Promise<{ deleted: number }> {
    const { Conversation: Conv, Envelope: Env, DeviceCursor } = this.models;
    let deleted = 0;
    const conversations = await Conv.find({}).select({ conversationId: 1, orgId: 1 }).lean<Array<Pick<ConversationDoc, 'conversationId' | 'orgId'>>>().exec();
    for (const { orgId, conversationId } of conversations) {
      // The latest envelope stays: it anchors the next seq even if lastSeq lagged after a crash.
      const top = await Env.findOne({ orgId, conversationId }).sort({ seq: -1 }).select({ seq: 1 }).lean<Pick<EnvelopeDoc, 'seq'>>().exec();
      if (!top) continue;
      const below = mongoose.trusted({ $lt: top.seq });
      // Nothing younger than the grace: a node's trusted seq base may be just below it (SEQ_HINT_TRUST_MS).
      const old = mongoose.trusted({ $lte: now - SWEEP_GRACE_MS });
      const expired = await Env.deleteMany({ orgId, conversationId, seq: below, sentAt: old, membership: mongoose.trusted({ $exists: false }), expiresAt: mongoose.trusted({ $lte: now }) }).exec();
      deleted += expired.deletedCount;
      const acks = new Map((await DeviceCursor.find({ orgId, conversationId }).lean<DeviceCursorDoc[]>().exec()).map((d) => [d.deviceId, d.seq]));
      if (acks.size === 0) continue;
      const candidates = await Env.find({ orgId, conversationId, seq: below, sentAt: old, membership: mongoose.trusted({ $exists: false }) })
        .select({ _id: 1, seq: 1, deliverTo: 1 })
        .lean<Array<Pick<EnvelopeDoc, '_id' | 'seq' | 'deliverTo'>>>()
        .exec();
      const done = candidates
        .filter((e) => e.deliverTo && e.deliverTo.length > 0 && e.deliverTo.every((d) => (acks.get(d) ?? 0) >= e.seq))
        .map((e) => e._id);
      if (done.length) deleted += (await Env.deleteMany({ _id: mongoose.trusted({ $in: done }) }).exec()).deletedCount;
    }
    await this.seqMarks.sweep();
    return { deleted };
  }

  async findSent(orgId: string, senderDeviceId: string, clientMessageId: string): Promise<StoredEnvelope | undefined> {
    const doc = await this.models.Envelope.findOne({ _id: envelopeKey(orgId, senderDeviceId, clientMessageId) }).lean<EnvelopeDoc>().exec();
    return doc ? toEnvelope(doc) : undefined;
  }

  async envelopesAfter(orgId: string, conversationId: string, afterSeq: number, limit: number): Promise<StoredEnvelope[]> {
    if (limit <= 0) return []; // limit(0) would mean "no limit" to MongoDB
    const docs = await this.models.Envelope.find({ orgId, conversationId, seq: mongoose.trusted({ $gt: afterSeq }) })
      .sort({ seq: 1 })
      .limit(limit)
      .lean<EnvelopeDoc[]>()
      .exec();
    return docs.map(toEnvelope);
  }
}

/** An envelope's `_id`: what makes a send unique (ids contain no space, see `docKey`). */
function envelopeKey(orgId: string, senderDeviceId: string, clientMessageId: string): string {
  return docKey(orgId, senderDeviceId, clientMessageId);
}

/** `items` in runs of at most `size`. */
function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Set `key` in a map kept to MAX_SEQ_HINTS entries, least recently set forgotten first (Map order). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_SEQ_HINTS) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}

/**
 * An envelope's per-device ciphertexts: packed, or as the subdocuments of envelopes stored before.
 * Packed bytes that do not parse (edited in the database) give none: the devices get the body without
 * their share and report that one message as undecryptable; the rest of the conversation is unaffected.
 */
function storedShares(d: EnvelopeDoc): Pick<StoredEnvelope, 'recipients'> {
  if (d.shares !== undefined && d.shares !== null) {
    let shares: Share[] | undefined;
    try {
      shares = unpackShares(toBytes(d.shares));
    } catch {
      shares = undefined; // not binary at all
    }
    return shares ? { recipients: shares } : {};
  }
  return d.recipients ? { recipients: d.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: toBytes(r.ciphertext) })) } : {};
}

function toEnvelope(d: EnvelopeDoc): StoredEnvelope {
  return {
    messageId: d.messageId ?? d._id,
    conversationId: d.conversationId,
    seq: d.seq,
    senderUserId: d.senderUserId,
    senderDeviceId: d.senderDeviceId,
    clientMessageId: d.clientMessageId,
    sentAt: d.sentAt,
    ...(d.body ? { body: toBytes(d.body) } : {}),
    ...storedShares(d),
    ...(d.partial ? { partial: true } : {}),
    ...(d.kind === 'receipt' ? { kind: 'receipt' as const } : {}),
    ...(typeof d.expiresAt === 'number' ? { expiresAt: d.expiresAt } : {}),
    ...(d.membership ? { membership: { statement: d.membership.statement, signature: toBytes(d.membership.signature) } } : {}),
    ...(typeof d.epoch === 'string' ? { epoch: d.epoch } : {}),
  };
}
