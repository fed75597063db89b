/**
 * Variant S of the hub benchmark: the raw storage ceiling. The same envelope documents the hub
 * stores (same fields, sizes and indexes: the collections are created by `MongoStorage.init`), written
 * into the same database by the plain MongoDB driver (`mongoose.mongo`, the driver mongoose uses),
 * `concurrency` writers at once, each an unordered `insertMany` of `batch` documents at a time under
 * the hub's write concern, for `durationMs`. The hub cannot be faster than this, so the headline is
 * D / min(B, S). With `seqRaise` and `marks` (the hub's pattern), each batch's insert is followed by
 * the insert of one set of seq marks (one mark per conversation of the batch) into the hub's
 * `seq_mark_sets`, and sets whose every mark a later one superseded by one delete of them once 256
 * wait or a second after the last, as the hub's group commit and `SeqMarks` write. With `seqRaise` alone (the previous hub's pattern), by one `$max`
 * raise per conversation in `conversation_seqs` (one update command). In both, as in the hub, the
 * writers take turns (one command in flight): FerretDB v1 on PostgreSQL stopped answering altogether
 * under concurrent multi-document updates (every pooled PostgreSQL connection idle, every command
 * waiting), which is why the hub has a single write lane.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import mongoose from 'mongoose';
import * as hdr from 'hdr-histogram-js';
import { compositeKey } from '@curbside/shared';
import { MongoStorage } from '../../server/src/index.js';
import { packShares } from '../../server/src/adapters/mongo/shares.js';
import { HDR, type LoadShape } from './common.js';

export interface StorageCeilingOptions {
  mongoUri: string;
  dbName: string;
  concurrency: number;
  batch: number;
  durationMs: number;
  shape: LoadShape;
  /** Conversations the documents are spread over (the hub's load: its rooms and pairs). */
  conversations: number;
  seqRaise: boolean;
  /**
   * With `seqRaise`: raise by inserting one set of seq marks per batch into the hub's `seq_mark_sets`
   * (and deleting superseded sets as the hub does), as the hub does since issue #19's seq marks,
   * instead of the previous `$max` update of `conversation_seqs`.
   */
  marks?: boolean;
  writeConcern?: 'majority' | number;
}

export interface StorageCeilingResult {
  concurrency: number;
  batch: number;
  seqRaise: boolean;
  marks: boolean;
  docs: number;
  /** Batches written: each is one envelope insertMany (plus its raise or marks insert with `seqRaise`). */
  batches: number;
  /** Every database command, the marks' prune deletes included. */
  commands: number;
  /** Of `commands`, the deletes that prune superseded marks (not tied to one batch). */
  pruneCommands: number;
  wallMs: number;
  docsPerS: number;
  /** One batch's write (its insertMany, and its raise with `seqRaise`), ms. */
  batchMs: { p50: number | null; p99: number | null; max: number | null };
}

export async function storageCeiling(o: StorageCeilingOptions): Promise<StorageCeilingResult> {
  // The hub's collections and indexes, then out of the way.
  const store = new MongoStorage({ uri: o.mongoUri, dbName: o.dbName, writeConcern: o.writeConcern ?? 'majority' });
  await store.init();
  await store.close();
  const client = new mongoose.mongo.MongoClient(o.mongoUri, { writeConcern: { w: o.writeConcern ?? 'majority' } });
  await client.connect();
  try {
    const db = client.db(o.dbName);
    const envelopes = db.collection('envelopes');
    // The previous hub's seq collection, as that hub had it (`MongoStorage.init` no longer makes it).
    if ((await db.listCollections({ name: 'conversation_seqs' }, { nameOnly: true }).toArray()).length === 0) await db.createCollection('conversation_seqs');
    const seqs = db.collection('conversation_seqs');
    // Created with its index by `MongoStorage.init` above, as the hub has it.
    const marks = db.collection('seq_mark_sets');
    /** Per conversation, the set holding its newest mark; per set, how many of its marks are newest. */
    const lastMark = new Map<string, string>();
    const live = new Map<string, number>();
    const superseded: string[] = [];
    let prunedAt = performance.now();
    const org = 'bench-org';
    const convIds = Array.from({ length: o.conversations }, () => randomUUID());
    const nextSeq = new Map<string, number>();
    const ordinary = randomBytes(o.shape.bodyBytes + o.shape.headerBytes);
    const large = randomBytes(o.shape.largeBytes);
    // The load's per-device shares, packed as the hub stores them: a direct message carries one, a
    // room's sender-key distribution (rekeyShare of room messages) one per other member.
    const share = randomBytes(o.shape.shareBytes);
    const sharesOf = (n: number) => packShares(Array.from({ length: n }, (_, i) => ({ deviceId: `bench-s-device-${i}`, ciphertext: share })));
    const directShares = sharesOf(1);
    const rekeyShares = sharesOf(o.shape.roomSize - 1);
    const shares = (): Buffer | undefined => (Math.random() >= o.shape.roomShare ? directShares : Math.random() < o.shape.rekeyShare ? rekeyShares : undefined);
    const deliverTo = Array.from({ length: o.shape.roomSize - 1 }, (_, i) => `bench-u${i}-d`);
    let n = 0;
    const doc = () => {
      const conversationId = convIds[Math.floor(Math.random() * convIds.length)]!;
      const seq = (nextSeq.get(conversationId) ?? 0) + 1;
      nextSeq.set(conversationId, seq);
      const cmid = `s-${n++}`;
      const now = Date.now();
      const packed = shares();
      return {
        _id: compositeKey(org, 'bench-s-d', cmid),
        messageId: randomUUID(),
        orgId: org,
        conversationId,
        seq,
        senderUserId: 'bench-s',
        senderDeviceId: 'bench-s-d',
        clientMessageId: cmid,
        sentAt: now,
        body: Buffer.from(Math.random() < o.shape.largeShare ? large : ordinary),
        ...(packed ? { shares: Buffer.from(packed) } : {}),
        deliverTo,
        expiresAt: now + 30 * 24 * 3600_000,
      };
    };
    // The conversations' seq documents exist already, as in the hub's steady state (FerretDB's upserts
    // of one new document can collide).
    if (o.seqRaise) await seqs.insertMany(convIds.map((c) => ({ _id: compositeKey(org, c) as never, lastSeq: 0 })), { ordered: false });
    const h = hdr.build(HDR);
    let docs = 0;
    let batches = 0;
    let commands = 0;
    let pruneCommands = 0;
    let lane: Promise<unknown> = Promise.resolve();
    const inLane = <R>(fn: () => Promise<R>): Promise<R> => {
      const r = lane.then(fn);
      lane = r.catch(() => {});
      return r;
    };
    const t0 = performance.now();
    const end = t0 + o.durationMs;
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (performance.now() < end) {
          const batch = Array.from({ length: o.batch }, doc);
          const s = performance.now();
          if (!o.seqRaise) await envelopes.insertMany(batch as never[], { ordered: false });
          else {
            await inLane(() => envelopes.insertMany(batch as never[], { ordered: false }));
            const top = new Map<string, number>();
            for (const d of batch) top.set(d.conversationId, Math.max(top.get(d.conversationId) ?? 0, d.seq));
            if (o.marks) {
              const setId = compositeKey(org, randomUUID());
              await inLane(() => marks.insertMany([{ _id: setId as never, orgId: org, conversationIds: [...top.keys()], seqs: [...top.values()] }], { ordered: false }));
              live.set(setId, top.size);
              for (const [c] of top) {
                const before = lastMark.get(c);
                lastMark.set(c, setId);
                if (before === undefined) continue;
                const left = live.get(before)! - 1;
                if (left > 0) live.set(before, left);
                else {
                  live.delete(before);
                  superseded.push(before);
                }
              }
              // As the hub prunes: once 256 wait, or a second after the last delete.
              if (superseded.length >= 256 || (superseded.length > 0 && performance.now() - prunedAt >= 1000)) {
                prunedAt = performance.now();
                const ids = superseded.splice(0, 256);
                await inLane(() => marks.deleteMany({ _id: { $in: ids as never[] } }));
                commands++;
                pruneCommands++;
              }
            } else {
              // As the hub raises: by `_id`, no upsert (the documents exist).
              await inLane(() =>
                seqs.bulkWrite(
                  [...top].map(([c, seq]) => ({ updateOne: { filter: { _id: compositeKey(org, c) as never }, update: { $max: { lastSeq: seq } } } })),
                  { ordered: false },
                ),
              );
            }
            commands++;
          }
          commands++;
          h.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
          docs += batch.length;
          batches++;
        }
      }),
    );
    const wallMs = performance.now() - t0;
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      concurrency: o.concurrency,
      batch: o.batch,
      seqRaise: o.seqRaise,
      marks: o.marks === true,
      docs,
      batches,
      commands,
      pruneCommands,
      wallMs: Math.round(wallMs),
      docsPerS: Math.round((docs / wallMs) * 1000),
      batchMs: h.totalCount ? { p50: ms(h.getValueAtPercentile(50)), p99: ms(h.getValueAtPercentile(99)), max: ms(h.maxValue) } : { p50: null, p99: null, max: null },
    };
  } finally {
    await client.db(o.dbName).dropDatabase().catch(() => {});
    await client.close();
  }
}
