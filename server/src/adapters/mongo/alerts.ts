import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { assembleAlert, type AckOutcome, type AlertAck, type AlertFiring, type AlertRecord, type AlertSpecRecord, type AlertStore, type DuePlan } from '../../ports/alerts.js';
import { collectionOptions, docKey } from './models.js';
import { ensureOnce } from './ensure.js';
import { ignoreDuplicateKey, isDuplicateKey } from './duplicate-key.js';

/**
 * `AlertStore` for `MongoStorage`: four collections, each document inserted once (an insert under a
 * unique `_id` and a delete by `_id` are atomic on MongoDB and on FerretDB alike; updates are not on
 * FerretDB, so none is used):
 * - `alerts`: the spec, as the send raised it;
 * - `alert_acks`: one per acknowledging user;
 * - `alert_firings`: one per re-notification or expiry; inserting it is what claims the timer;
 * - `alert_timers`: the pending timer (normally one per pending alert), by due time.
 */
interface SpecDoc extends AlertSpecRecord {
  _id: string;
}
interface AckDoc extends AlertAck {
  _id: string;
  alertId: string;
}
interface FiringDoc extends AlertFiring {
  _id: string;
  alertId: string;
}
interface TimerDoc {
  _id: string;
  alertId: string;
  n: number;
  dueAt: number;
}

const specSchema = new Schema<SpecDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    conversationId: { type: String, required: true },
    seq: { type: Number, required: true },
    messageId: { type: String, required: true },
    senderUserId: { type: String, required: true },
    senderDeviceId: { type: String, required: true },
    priority: { type: String, required: true },
    ackPolicy: { type: String, required: true },
    ackFrom: { type: [String], required: true },
    createdAt: { type: Number, required: true },
    firstDueAt: { type: Number, required: true },
  },
  collectionOptions('alerts'),
);
specSchema.index({ orgId: 1, createdAt: -1 });

const ackSchema = new Schema<AckDoc>(
  {
    _id: { type: String, required: true },
    alertId: { type: String, required: true },
    userId: { type: String, required: true },
    deviceId: { type: String, required: true },
    at: { type: Number, required: true },
  },
  collectionOptions('alert_acks'),
);
ackSchema.index({ alertId: 1 });

const firingSchema = new Schema<FiringDoc>(
  {
    _id: { type: String, required: true },
    alertId: { type: String, required: true },
    n: { type: Number, required: true },
    at: { type: Number, required: true },
    type: { type: String, required: true },
  },
  collectionOptions('alert_firings'),
);
firingSchema.index({ alertId: 1 });

const timerSchema = new Schema<TimerDoc>(
  {
    _id: { type: String, required: true },
    alertId: { type: String, required: true },
    n: { type: Number, required: true },
    dueAt: { type: Number, required: true },
  },
  collectionOptions('alert_timers'),
);
timerSchema.index({ dueAt: 1 });
timerSchema.index({ alertId: 1 });

/** Candidates a listing reads before the state filter. */
const LIST_SCAN = 200;

interface Parts {
  spec: SpecDoc;
  acks: AckDoc[];
  firings: FiringDoc[];
  timers: TimerDoc[];
}

export class MongoAlerts implements AlertStore {
  private readonly Spec: Model<SpecDoc>;
  private readonly Ack: Model<AckDoc>;
  private readonly Firing: Model<FiringDoc>;
  private readonly Timer: Model<TimerDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.Spec = conn.models.Alert ?? conn.model<SpecDoc>('Alert', specSchema);
    this.Ack = conn.models.AlertAck ?? conn.model<AckDoc>('AlertAck', ackSchema);
    this.Firing = conn.models.AlertFiring ?? conn.model<FiringDoc>('AlertFiring', firingSchema);
    this.Timer = conn.models.AlertTimer ?? conn.model<TimerDoc>('AlertTimer', timerSchema);
    this.init = ensureOnce(this.Spec, this.Ack, this.Firing, this.Timer);
  }

  private static alertId(orgId: string, conversationId: string, seq: number): string {
    return docKey(orgId, conversationId, String(seq));
  }

  private async parts(alertId: string): Promise<Parts | undefined> {
    const [spec, acks, firings, timers] = await Promise.all([
      this.Spec.findOne({ _id: alertId }).lean<SpecDoc>().exec(),
      this.Ack.find({ alertId }).lean<AckDoc[]>().exec(),
      this.Firing.find({ alertId }).lean<FiringDoc[]>().exec(),
      this.Timer.find({ alertId }).lean<TimerDoc[]>().exec(),
    ]);
    return spec ? { spec, acks, firings, timers } : undefined;
  }

  private static view(p: Parts, extra: { firing?: AlertFiring; nextDueAt?: number | undefined } = {}): AlertRecord {
    const firings = extra.firing ? [...p.firings, { ...extra.firing, _id: '', alertId: '' }] : p.firings;
    const claimed = new Set(firings.map((f) => f.n));
    const nextDueAt = 'nextDueAt' in extra ? extra.nextDueAt : p.timers.filter((t) => !claimed.has(t.n)).sort((a, b) => a.n - b.n)[0]?.dueAt;
    return assembleAlert(specOf(p.spec), p.acks.map(ackOf), firings.map(firingOf), nextDueAt);
  }

  async raiseAlert(spec: AlertSpecRecord): Promise<{ status: 'raised' | 'existing'; alert: AlertRecord }> {
    await this.init();
    const alertId = MongoAlerts.alertId(spec.orgId, spec.conversationId, spec.seq);
    let status: 'raised' | 'existing' = 'raised';
    try {
      await this.Spec.collection.insertOne({ ...spec, _id: alertId } as never);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      status = 'existing';
    }
    const existing = status === 'existing' ? await this.parts(alertId) : undefined;
    // The first timer, unless it already fired (a retried send whose first attempt stored it all).
    if (!existing || existing.firings.length === 0) {
      await ignoreDuplicateKey(this.Timer.collection.insertOne({ _id: docKey(alertId, '1'), alertId, n: 1, dueAt: spec.firstDueAt } as never));
    }
    const p = existing ?? (await this.parts(alertId));
    if (!p) throw new Error('alert vanished after it was stored');
    return { status, alert: MongoAlerts.view(p) };
  }

  async getAlert(orgId: string, conversationId: string, seq: number): Promise<AlertRecord | undefined> {
    await this.init();
    const p = await this.parts(MongoAlerts.alertId(orgId, conversationId, seq));
    return p && MongoAlerts.view(p);
  }

  async acknowledgeAlert(input: { orgId: string; conversationId: string; seq: number; userId: string; deviceId: string; now: number }): Promise<AckOutcome> {
    await this.init();
    const alertId = MongoAlerts.alertId(input.orgId, input.conversationId, input.seq);
    const before = await this.parts(alertId);
    if (!before) return { status: 'not_found' };
    if (!before.spec.ackFrom.includes(input.userId)) return { status: 'not_required', alert: MongoAlerts.view(before) };
    try {
      await this.Ack.collection.insertOne({ _id: docKey(alertId, input.userId), alertId, userId: input.userId, deviceId: input.deviceId, at: input.now } as never);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return { status: 'already', alert: MongoAlerts.view((await this.parts(alertId)) ?? before) };
    }
    const after = (await this.parts(alertId)) ?? before;
    const alert = MongoAlerts.view(after);
    if (alert.state !== 'pending') await this.Timer.deleteMany({ alertId }).exec();
    return { status: 'acknowledged', alert: alert.state === 'pending' ? alert : MongoAlerts.view({ ...after, timers: [] }) };
  }

  async claimDueAlerts(input: { now: number; limit: number; plan: (alert: AlertRecord) => DuePlan }): Promise<AlertRecord[]> {
    await this.init();
    const due = await this.Timer.find({ dueAt: mongoose.trusted({ $lte: input.now }) })
      .sort({ dueAt: 1 })
      .limit(input.limit)
      .lean<TimerDoc[]>()
      .exec();
    const claimed: AlertRecord[] = [];
    for (const timer of due) {
      const p = await this.parts(timer.alertId);
      const before = p && MongoAlerts.view({ ...p, timers: p.timers.filter((t) => t.n >= timer.n) });
      if (!p || !before || before.state !== 'pending' || p.firings.some((f) => f.n === timer.n)) {
        // Settled, gone, or claimed by another node that has not dropped the timer yet.
        if (!before || before.state !== 'pending') await this.Timer.deleteOne({ _id: timer._id }).exec();
        continue;
      }
      const plan = input.plan(before);
      const expire = 'expire' in plan;
      // The next timer first: a node that dies after claiming leaves the alert with its next timer.
      if (!expire) await ignoreDuplicateKey(this.Timer.collection.insertOne({ _id: docKey(timer.alertId, String(timer.n + 1)), alertId: timer.alertId, n: timer.n + 1, dueAt: plan.nextDueAt } as never));
      const firing: AlertFiring = { n: timer.n, at: input.now, type: expire ? 'expired' : 'repeated' };
      try {
        await this.Firing.collection.insertOne({ _id: docKey(timer.alertId, String(timer.n)), alertId: timer.alertId, ...firing } as never);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        continue; // another node claimed this firing
      }
      await this.Timer.deleteOne({ _id: timer._id }).exec();
      claimed.push(MongoAlerts.view(p, { firing, nextDueAt: expire ? undefined : plan.nextDueAt }));
    }
    return claimed;
  }

  async listOpenAlerts(input: { orgId: string; userId: string; since: number; limit: number }): Promise<AlertRecord[]> {
    await this.init();
    const specs = await this.Spec.find(
      mongoose.trusted({ orgId: input.orgId, createdAt: mongoose.trusted({ $gte: input.since }), $or: [{ ackFrom: input.userId }, { senderUserId: input.userId }] }),
    )
      .sort({ createdAt: -1 })
      .limit(LIST_SCAN)
      .lean<SpecDoc[]>()
      .exec();
    const out: AlertRecord[] = [];
    for (const spec of specs) {
      if (out.length >= input.limit) break;
      const p = await this.parts(spec._id);
      const alert = p && MongoAlerts.view(p);
      if (alert?.state === 'pending') out.push(alert);
    }
    return out;
  }
}

function specOf(d: SpecDoc): AlertSpecRecord {
  return {
    orgId: d.orgId,
    conversationId: d.conversationId,
    seq: d.seq,
    messageId: d.messageId,
    senderUserId: d.senderUserId,
    senderDeviceId: d.senderDeviceId,
    priority: d.priority,
    ackPolicy: d.ackPolicy,
    ackFrom: d.ackFrom,
    createdAt: d.createdAt,
    firstDueAt: d.firstDueAt,
  };
}
const ackOf = (d: AckDoc): AlertAck => ({ userId: d.userId, deviceId: d.deviceId, at: d.at });
const firingOf = (d: FiringDoc | (AlertFiring & { _id: string })): AlertFiring => ({ n: d.n, at: d.at, type: d.type });
