import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { PseudonymAnswer, SignedCredential } from '@curbside/shared';
import type { PseudonymStore, StoredPseudonymRequest } from '../../ports/pseudonyms.js';
import { collectionOptions, docKey } from './models.js';
import { ensureOnce } from './ensure.js';
import { isDuplicateKey } from './duplicate-key.js';

/**
 * `PseudonymStore` for `MongoStorage`. Every race is settled by an insert under a unique `_id` (atomic on
 * MongoDB and on FerretDB; a conditional update is not atomic on FerretDB, the contract test showed two
 * racing `updateOne({ answered: false })` both matching):
 * - `pseudonym_keys`, `pseudonym_key_revocations`: the office's signed documents (`_id` (org, epoch, specialty));
 * - `pseudonym_requests`: the devices' signed requests (blinded messages) (`_id` (org, request));
 * - `pseudonym_answers`: the office's blind signatures, one document per request (`_id` (org, request));
 * - `pseudonym_slots`: one document per token asked for, `_id` (org, user, epoch, specialty, i) with
 *   `i < cap`, so racing requests can never hold more than `cap` of them between them;
 * - `pseudonym_spent`: spent nullifiers (`_id` (org, scope, nullifier)).
 */
interface SignedDoc {
  _id: string;
  orgId: string;
  epoch: string;
  specialty: string;
  document: SignedCredential;
}
interface RequestDoc extends StoredPseudonymRequest {
  _id: string;
  orgId: string;
  /** Set after the answer is inserted (`pseudonym_answers` decides). */
  answered: boolean;
}
interface SlotDoc {
  _id: string;
  orgId: string;
  userId: string;
  epoch: string;
  specialty: string;
  i: number;
  requestId: string;
}
interface AnswerDoc {
  _id: string;
  orgId: string;
  requestId: string;
  userId: string;
  deviceId: string;
  epoch: string;
  specialty: string;
  createdAt: number;
  blindSignatures: string[];
  answeredAt: number;
}
interface SpentDoc {
  _id: string;
  orgId: string;
  scope: string;
  nullifier: string;
  spentAt: number;
}

const documentSchema = new Schema({ signed: { type: String, required: true }, signature: { type: String, required: true } }, { _id: false });
const signedSchema = (collection: string) =>
  new Schema<SignedDoc>(
    { _id: { type: String, required: true }, orgId: { type: String, required: true }, epoch: { type: String, required: true }, specialty: { type: String, required: true }, document: { type: documentSchema, required: true } },
    collectionOptions(collection),
  ).index({ orgId: 1 });
/** The fields a request and its answer share: whose request it is, for which epoch and specialty, and when it was made. */
const requestFields = {
  _id: { type: String, required: true },
  orgId: { type: String, required: true },
  requestId: { type: String, required: true },
  userId: { type: String, required: true },
  deviceId: { type: String, required: true },
  epoch: { type: String, required: true },
  specialty: { type: String, required: true },
  createdAt: { type: Number, required: true },
} as const;
const requestSchema = new Schema<RequestDoc>(
  {
    ...requestFields,
    count: { type: Number, required: true },
    request: { type: new Schema({ request: { type: String, required: true }, signature: { type: String, required: true } }, { _id: false }), required: true },
    answered: { type: Boolean, required: true },
  },
  collectionOptions('pseudonym_requests'),
);
requestSchema.index({ orgId: 1, answered: 1, createdAt: 1 });
const slotSchema = new Schema<SlotDoc>(
  { _id: { type: String, required: true }, orgId: { type: String, required: true }, userId: { type: String, required: true }, epoch: { type: String, required: true }, specialty: { type: String, required: true }, i: { type: Number, required: true }, requestId: { type: String, required: true } },
  collectionOptions('pseudonym_slots'),
);
slotSchema.index({ orgId: 1, userId: 1, epoch: 1, specialty: 1 });
const answerSchema = new Schema<AnswerDoc>(
  {
    ...requestFields,
    blindSignatures: { type: [String], required: true },
    answeredAt: { type: Number, required: true },
  },
  collectionOptions('pseudonym_answers'),
);
const spentSchema = new Schema<SpentDoc>(
  { _id: { type: String, required: true }, orgId: { type: String, required: true }, scope: { type: String, required: true }, nullifier: { type: String, required: true }, spentAt: { type: Number, required: true } },
  collectionOptions('pseudonym_spent'),
);

const request = (d: RequestDoc): StoredPseudonymRequest => ({
  requestId: d.requestId,
  userId: d.userId,
  deviceId: d.deviceId,
  epoch: d.epoch,
  specialty: d.specialty,
  count: d.count,
  createdAt: d.createdAt,
  request: { request: d.request.request, signature: d.request.signature },
});

/** Tries of a request whose slots other racing requests took, while enough are free. */
const MAX_CLAIM_ATTEMPTS = 8;

export class MongoPseudonyms implements PseudonymStore {
  private readonly Key: Model<SignedDoc>;
  private readonly Revocation: Model<SignedDoc>;
  private readonly Request: Model<RequestDoc>;
  private readonly Slot: Model<SlotDoc>;
  private readonly Answer: Model<AnswerDoc>;
  private readonly Spent: Model<SpentDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.Key = conn.models.PseudonymKey ?? conn.model<SignedDoc>('PseudonymKey', signedSchema('pseudonym_keys'));
    this.Revocation = conn.models.PseudonymKeyRevocation ?? conn.model<SignedDoc>('PseudonymKeyRevocation', signedSchema('pseudonym_key_revocations'));
    this.Request = conn.models.PseudonymRequest ?? conn.model<RequestDoc>('PseudonymRequest', requestSchema);
    this.Slot = conn.models.PseudonymSlot ?? conn.model<SlotDoc>('PseudonymSlot', slotSchema);
    this.Answer = conn.models.PseudonymAnswer ?? conn.model<AnswerDoc>('PseudonymAnswer', answerSchema);
    this.Spent = conn.models.PseudonymSpent ?? conn.model<SpentDoc>('PseudonymSpent', spentSchema);
    this.init = ensureOnce(this.Key, this.Revocation, this.Request, this.Slot, this.Answer, this.Spent);
  }

  async putPseudonymKey(orgId: string, epoch: string, specialty: string, document: SignedCredential): Promise<'stored' | 'same' | 'conflict'> {
    await this.init();
    const _id = docKey(orgId, epoch, specialty);
    try {
      await this.Key.collection.insertOne({ _id, orgId, epoch, specialty, document: { signed: document.signed, signature: document.signature } } as never);
      return 'stored';
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const current = await this.Key.findOne({ _id }).lean<SignedDoc>().exec();
      return current?.document.signed === document.signed && current.document.signature === document.signature ? 'same' : 'conflict';
    }
  }

  async putPseudonymKeyRevocation(orgId: string, epoch: string, specialty: string, document: SignedCredential): Promise<void> {
    await this.init();
    try {
      await this.Revocation.collection.insertOne({ _id: docKey(orgId, epoch, specialty), orgId, epoch, specialty, document: { signed: document.signed, signature: document.signature } } as never);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async pseudonymKeys(orgId: string) {
    await this.init();
    const [keys, revocations] = await Promise.all([this.Key.find({ orgId }).sort({ _id: 1 }).lean<SignedDoc[]>().exec(), this.Revocation.find({ orgId }).sort({ _id: 1 }).lean<SignedDoc[]>().exec()]);
    const doc = (d: SignedDoc) => ({ signed: d.document.signed, signature: d.document.signature });
    return { keys: keys.map(doc), revocations: revocations.map(doc) };
  }

  async putPseudonymRequest(orgId: string, r: StoredPseudonymRequest, cap: number): Promise<'stored' | 'exists' | 'over-cap'> {
    await this.init();
    const _id = docKey(orgId, r.requestId);
    if ((await this.Request.countDocuments({ _id }).exec()) > 0) return 'exists';
    if (r.count > cap) return 'over-cap';
    const owner = { orgId, userId: r.userId, epoch: r.epoch, specialty: r.specialty };
    let mine: string[] = [];
    // Requests of one clinician racing on several nodes can each take some slots, fall short and give
    // them back: one that fell short tries again (after a random pause) while enough slots are free.
    for (let attempt = 0; ; attempt++) {
      mine = await this.claimSlots(owner, r, cap);
      if (mine.length === r.count) break;
      await this.release(mine);
      const free = cap - (await this.Slot.countDocuments(owner).exec());
      // Slots still held by racers may be given back too: a shortfall is final only after a few tries.
      if (attempt >= MAX_CLAIM_ATTEMPTS || (free < r.count && attempt >= 2)) return 'over-cap';
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * (attempt + 1)));
    }
    try {
      await this.Request.collection.insertOne({ _id, orgId, ...r, request: { request: r.request.request, signature: r.request.signature }, answered: false } as never);
      return 'stored';
    } catch (err) {
      await this.release(mine);
      if (isDuplicateKey(err)) return 'exists';
      throw err;
    }
  }

  /** Take up to `r.count` free slots below the cap; a slot another node took first is skipped. */
  private async claimSlots(owner: { orgId: string; userId: string; epoch: string; specialty: string }, r: StoredPseudonymRequest, cap: number): Promise<string[]> {
    const taken = new Set((await this.Slot.find(owner, { i: 1 }).lean<Array<{ i: number }>>().exec()).map((d) => d.i));
    const mine: string[] = [];
    for (let i = 0; i < cap && mine.length < r.count; i++) {
      if (taken.has(i)) continue;
      const slot = docKey(owner.orgId, r.userId, r.epoch, r.specialty, String(i));
      try {
        await this.Slot.collection.insertOne({ _id: slot, ...owner, i, requestId: r.requestId } as never);
        mine.push(slot);
      } catch (err) {
        if (!isDuplicateKey(err)) {
          await this.release(mine);
          throw err;
        }
      }
    }
    return mine;
  }

  private async release(slots: string[]): Promise<void> {
    if (slots.length) await this.Slot.collection.deleteMany({ _id: { $in: slots } } as never);
  }

  async pseudonymRequested(orgId: string, userId: string, epoch: string, specialty: string): Promise<number> {
    await this.init();
    return this.Slot.countDocuments({ orgId, userId, epoch, specialty }).exec();
  }

  async pendingPseudonymRequests(orgId: string, limit: number): Promise<StoredPseudonymRequest[]> {
    await this.init();
    const docs = await this.Request.find({ orgId, answered: false }).sort({ createdAt: 1, _id: 1 }).limit(limit).lean<RequestDoc[]>().exec();
    // `answered` is set after the answer's insert: a request whose flag lags is still answered.
    const answered = docs.length ? new Set((await this.Answer.find({ _id: mongoose.trusted({ $in: docs.map((d) => d._id) }) }, { _id: 1 }).lean<Array<{ _id: string }>>().exec()).map((d) => d._id)) : new Set<string>();
    return docs.filter((d) => !answered.has(d._id)).map(request);
  }

  async pseudonymRequest(orgId: string, requestId: string): Promise<StoredPseudonymRequest | undefined> {
    await this.init();
    const d = await this.Request.findOne({ _id: docKey(orgId, requestId) }).lean<RequestDoc>().exec();
    return d ? request(d) : undefined;
  }

  async answerPseudonymRequest(orgId: string, requestId: string, blindSignatures: readonly string[], now: number): Promise<'answered' | 'already' | 'not-found'> {
    await this.init();
    const _id = docKey(orgId, requestId);
    const r = await this.Request.findOne({ _id }).lean<RequestDoc>().exec();
    if (!r) return 'not-found';
    try {
      await this.Answer.collection.insertOne({ _id, orgId, requestId, userId: r.userId, deviceId: r.deviceId, epoch: r.epoch, specialty: r.specialty, createdAt: r.createdAt, blindSignatures: [...blindSignatures], answeredAt: now } as never);
    } catch (err) {
      if (isDuplicateKey(err)) return 'already';
      throw err;
    }
    await this.Request.collection.updateOne({ _id } as never, { $set: { answered: true } });
    return 'answered';
  }

  async pseudonymAnswers(orgId: string, userId: string, deviceId: string, requestIds: readonly string[]): Promise<PseudonymAnswer[]> {
    await this.init();
    if (requestIds.length === 0) return [];
    const ids = [...new Set(requestIds)].map((id) => docKey(orgId, id));
    const docs = await this.Answer.find({ _id: mongoose.trusted({ $in: ids }), userId, deviceId }).sort({ createdAt: 1, _id: 1 }).lean<AnswerDoc[]>().exec();
    return docs.map((d) => ({ requestId: d.requestId, epoch: d.epoch, specialty: d.specialty, blindSignatures: [...d.blindSignatures] }));
  }

  async spendPseudonym(orgId: string, scope: string, nullifier: string, now: number): Promise<'ok' | 'spent'> {
    await this.init();
    try {
      await this.Spent.collection.insertOne({ _id: docKey(orgId, scope, nullifier), orgId, scope, nullifier, spentAt: now } as never);
      return 'ok';
    } catch (err) {
      if (isDuplicateKey(err)) return 'spent';
      throw err;
    }
  }
}

