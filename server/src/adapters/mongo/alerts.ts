import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { assembleAlert, type AckOutcome, type AlertAck, type AlertFiring, type HandoffOutcome, type AlertRecord, type AlertSpecRecord, type AlertStore, type ClaimedAlert, type DuePlan, type HeldShares, type OrgAlertSettings } from '../../ports/alerts.js';
import { collectionOptions, docKey, toBytes } from './models.js';
import { ensureOnce } from './ensure.js';
import { insertManyLosers, isDuplicateKey } from './duplicate-key.js';

/**
 * `AlertStore` for `MongoStorage`: four collections, each document inserted once (an insert under a
 * unique `_id` and a delete by `_id` are atomic on MongoDB and on FerretDB alike; updates are not on
 * FerretDB, so none is used):
 * - `alerts`: the spec, as the send raised it;
 * - `alert_acks`: one per acknowledging user, and one per user an on-call role's holder handed it to;
 * - `alert_firings`: one per re-notification or expiry; inserting it is what claims the timer;
 * - `alert_timers`: pending timers (the next re-notification, and each later tier's activation), by due time;
 * - `alert_held`: each later tier's wrapped message keys, until it activates.
 */
interface SpecDoc extends AlertSpecRecord {
  _id: string;
}
/** An acknowledgement, or (`kind: 'handoff'`) a hand-off to a new holder of an on-call role: one query reads both. */
interface AckDoc extends AlertAck {
  _id: string;
  alertId: string;
  kind?: 'handoff';
  byUserId?: string;
}
interface FiringDoc extends AlertFiring {
  _id: string;
  alertId: string;
}
interface TimerDoc {
  _id: string;
  alertId: string;
  kind: 'repeat' | 'tier';
  n: number;
  dueAt: number;
}
interface HeldDoc {
  _id: string;
  alertId: string;
  tier: number;
  recipients: Array<{ deviceId: string; ciphertext: Buffer }>;
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
    clientMessageId: { type: String, required: true },
    sentAt: { type: Number, required: true },
    tiers: { type: [new Schema({ afterMs: { type: Number, required: true }, userIds: { type: [String], required: true } }, { _id: false })], default: undefined },
    escalationBody: { type: Buffer },
  },
  collectionOptions('alerts'),
);
specSchema.index({ orgId: 1, createdAt: -1 });

/** An organisation's alert settings (`_id` is the organisation). */
interface SettingsDoc {
  _id: string;
  urgentMs?: number;
  emergentMs?: number;
  maxRepeats?: number;
  updatedAt: number;
}
const settingsSchema = new Schema<SettingsDoc>(
  { _id: { type: String, required: true }, urgentMs: Number, emergentMs: Number, maxRepeats: Number, updatedAt: { type: Number, required: true } },
  collectionOptions('org_alert_settings'),
);

const heldSchema = new Schema<HeldDoc>(
  {
    _id: { type: String, required: true },
    alertId: { type: String, required: true },
    tier: { type: Number, required: true },
    recipients: { type: [new Schema({ deviceId: { type: String, required: true }, ciphertext: { type: Buffer, required: true } }, { _id: false })], required: true },
  },
  collectionOptions('alert_held'),
);
heldSchema.index({ alertId: 1 });

const ackSchema = new Schema<AckDoc>(
  {
    _id: { type: String, required: true },
    alertId: { type: String, required: true },
    userId: { type: String, required: true },
    deviceId: { type: String, required: true },
    at: { type: Number, required: true },
    kind: { type: String },
    byUserId: { type: String },
  },
  collectionOptions('alert_acks'),
);
ackSchema.index({ alertId: 1 });
ackSchema.index({ userId: 1, kind: 1 });

const firingSchema = new Schema<FiringDoc>(
  {
    _id: { type: String, required: true },
    alertId: { type: String, required: true },
    kind: { type: String, required: true },
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
    kind: { type: String, required: true },
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
  private readonly Held: Model<HeldDoc>;
  private readonly Settings: Model<SettingsDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.Spec = conn.models.Alert ?? conn.model<SpecDoc>('Alert', specSchema);
    this.Ack = conn.models.AlertAck ?? conn.model<AckDoc>('AlertAck', ackSchema);
    this.Firing = conn.models.AlertFiring ?? conn.model<FiringDoc>('AlertFiring', firingSchema);
    this.Timer = conn.models.AlertTimer ?? conn.model<TimerDoc>('AlertTimer', timerSchema);
    this.Held = conn.models.AlertHeld ?? conn.model<HeldDoc>('AlertHeld', heldSchema);
    this.Settings = conn.models.OrgAlertSettings ?? conn.model<SettingsDoc>('OrgAlertSettings', settingsSchema);
    this.init = ensureOnce(this.Spec, this.Ack, this.Firing, this.Timer, this.Held, this.Settings);
  }

  async getAlertSettings(orgId: string): Promise<OrgAlertSettings | undefined> {
    await this.init();
    const doc = await this.Settings.findOne({ _id: orgId }).lean<SettingsDoc>().exec();
    return doc ? { ...(doc.urgentMs !== undefined ? { urgentMs: doc.urgentMs } : {}), ...(doc.emergentMs !== undefined ? { emergentMs: doc.emergentMs } : {}), ...(doc.maxRepeats !== undefined ? { maxRepeats: doc.maxRepeats } : {}) } : undefined;
  }

  async setAlertSettings(orgId: string, settings: OrgAlertSettings, now: number): Promise<void> {
    await this.init();
    // One writer (an operator); a whole-document replace, so FerretDB's read-modify-write loses nothing.
    const doc = { _id: orgId, updatedAt: now, ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)) };
    await this.Settings.collection.replaceOne({ _id: orgId as never }, doc, { upsert: true });
  }

  private static alertId(orgId: string, conversationId: string, seq: number): string {
    return docKey(orgId, conversationId, String(seq));
  }

  private async parts(alertId: string): Promise<Parts | undefined> {
    return (await this.partsOf([alertId])).get(alertId);
  }


  /** The alert from its parts; timers whose firing exists (claimed, not yet dropped) do not count. */
  private static view(p: Parts): AlertRecord {
    const claimed = new Set(p.firings.map((f) => `${f.kind}:${f.n}`));
    const pending = p.timers.filter((t) => !claimed.has(`${t.kind}:${t.n}`)).map((t) => t.dueAt);
    const acks = p.acks.filter((a) => a.kind !== 'handoff').map(ackOf);
    const handoffs = p.acks.filter((a) => a.kind === 'handoff').map((a) => ({ userId: a.userId, byUserId: a.byUserId ?? '', at: a.at }));
    return assembleAlert(specOf(p.spec), acks, p.firings.map(firingOf), pending.length ? Math.min(...pending) : undefined, handoffs);
  }

  async raiseAlert(spec: AlertSpecRecord, held: readonly HeldShares[] = []): Promise<{ status: 'raised' | 'existing'; alert: AlertRecord }> {
    await this.init();
    const alertId = MongoAlerts.alertId(spec.orgId, spec.conversationId, spec.seq);
    // The held keys first: an alert whose spec is stored has all of them.
    if (held.length) {
      const docs = held.map((h) => ({ _id: docKey(alertId, String(h.tier)), alertId, tier: h.tier, recipients: h.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: Buffer.from(r.ciphertext) })) }));
      await insertManyLosers(this.Held.collection.insertMany(docs as never[], { ordered: false }));
    }
    const timers: Array<Omit<TimerDoc, '_id' | 'alertId'>> = [{ kind: 'repeat', n: 1, dueAt: spec.firstDueAt }, ...(spec.tiers ?? []).map((t, i) => ({ kind: 'tier' as const, n: i + 1, dueAt: spec.createdAt + t.afterMs }))];
    const insertTimers = (list: typeof timers) =>
      list.length ? insertManyLosers(this.Timer.collection.insertMany(list.map((t) => ({ _id: timerId(alertId, t.kind, t.n), alertId, ...t })) as never[], { ordered: false })) : undefined;
    try {
      const { escalationBody, tiers, ...rest } = spec;
      await this.Spec.collection.insertOne({ ...rest, ...(tiers ? { tiers } : {}), ...(escalationBody ? { escalationBody: Buffer.from(escalationBody) } : {}), _id: alertId } as never);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      // A retried send: its first attempt stored the spec; add the timers it may not have stored, unless they fired already.
      const existing = await this.parts(alertId);
      if (!existing) throw new Error('alert vanished after it was stored');
      const fired = new Set(existing.firings.map((f) => `${f.kind}:${f.n}`));
      if (MongoAlerts.view(existing).state === 'pending') {
        await insertTimers(timers.filter((t) => !fired.has(`${t.kind}:${t.n}`) && !(t.kind === 'repeat' && existing.firings.some((f) => f.kind === 'repeat'))));
      }
      return { status: 'existing', alert: MongoAlerts.view((await this.parts(alertId)) ?? existing) };
    }
    await insertTimers(timers);
    // Just stored, nothing else can have happened to it yet: no need to read it back.
    return { status: 'raised', alert: assembleAlert(spec, [], [], Math.min(...timers.map((t) => t.dueAt))) };
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
    if (!MongoAlerts.view(before).ackFrom.includes(input.userId)) return { status: 'not_required', alert: MongoAlerts.view(before) };
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

  /**
   * One batch: the due timers, then every part of their alerts in one query per collection, then the
   * next re-notification timers (one insertMany), the claims (one insertMany of firing records: the
   * documents that are stored are this node's), and the claimed timers dropped (one deleteMany).
   */
  async claimDueAlerts(input: { now: number; limit: number; plan: (alert: AlertRecord) => DuePlan | Promise<DuePlan> }): Promise<ClaimedAlert[]> {
    await this.init();
    const due = await this.Timer.find({ dueAt: mongoose.trusted({ $lte: input.now }) })
      .sort({ dueAt: 1 })
      .limit(input.limit)
      .lean<TimerDoc[]>()
      .exec();
    if (due.length === 0) return [];
    const parts = await this.partsOf([...new Set(due.map((t) => t.alertId))]);
    const stale: string[] = [];
    const candidates: Array<{ timer: TimerDoc; p: Parts; firing: AlertFiring; next?: TimerDoc }> = [];
    for (const timer of due) {
      const p = parts.get(timer.alertId);
      const before = p && MongoAlerts.view({ ...p, timers: p.timers.filter((t) => t._id !== timer._id) });
      if (!p || !before || before.state !== 'pending') {
        stale.push(timer._id);
        continue;
      }
      // Claimed by another node that has not dropped the timer yet.
      if (p.firings.some((f) => f.kind === timer.kind && f.n === timer.n)) continue;
      if (timer.kind === 'tier') {
        candidates.push({ timer, p, firing: { kind: 'tier', n: timer.n, at: input.now, type: 'escalated' } });
        continue;
      }
      const plan = await input.plan(before);
      const firing: AlertFiring = { kind: 'repeat', n: timer.n, at: input.now, type: 'expire' in plan ? 'expired' : 'repeated' };
      const next = 'expire' in plan ? undefined : { _id: timerId(timer.alertId, 'repeat', timer.n + 1), alertId: timer.alertId, kind: 'repeat' as const, n: timer.n + 1, dueAt: plan.nextDueAt };
      candidates.push({ timer, p, firing, ...(next ? { next } : {}) });
    }
    if (stale.length) await this.Timer.deleteMany({ _id: mongoose.trusted({ $in: stale }) }).exec();
    if (candidates.length === 0) return [];
    // The next timers first: a node that dies after claiming leaves each alert with its next timer.
    const nexts = candidates.flatMap((c) => (c.next ? [c.next] : []));
    if (nexts.length) await insertManyLosers(this.Timer.collection.insertMany(nexts as never[], { ordered: false }));
    const firingDocs = candidates.map((c) => ({ _id: timerId(c.timer.alertId, c.firing.kind, c.firing.n), alertId: c.timer.alertId, ...c.firing }));
    const lost = await insertManyLosers(this.Firing.collection.insertMany(firingDocs as never[], { ordered: false }));
    const won = candidates.filter((_, i) => !lost.has(i));
    if (won.length) await this.Timer.deleteMany({ _id: mongoose.trusted({ $in: won.map((c) => c.timer._id) }) }).exec();
    return won.map((c) => {
      const p: Parts = { ...c.p, firings: [...c.p.firings, { ...c.firing, _id: '', alertId: c.timer.alertId }], timers: [...c.p.timers.filter((t) => t._id !== c.timer._id), ...(c.next ? [c.next] : [])] };
      return { ...MongoAlerts.view(p), fired: c.firing.kind === 'tier' ? { type: 'escalated' as const, at: c.firing.at, tier: c.firing.n } : { type: c.firing.type, at: c.firing.at } };
    });
  }

  async handOffAlert(input: { orgId: string; conversationId: string; seq: number; userIds: readonly string[]; byUserId: string; now: number }): Promise<HandoffOutcome> {
    await this.init();
    const alertId = MongoAlerts.alertId(input.orgId, input.conversationId, input.seq);
    const before = await this.parts(alertId);
    if (!before) return { status: 'not_found' };
    const view = MongoAlerts.view(before);
    if (view.state !== 'pending') return { status: 'settled', alert: view };
    const users = [...new Set(input.userIds)];
    const docs = users.map((userId) => ({ _id: docKey(alertId, 'handoff', userId), alertId, userId, deviceId: '-', at: input.now, kind: 'handoff', byUserId: input.byUserId }));
    if (docs.length) await insertManyLosers(this.Ack.collection.insertMany(docs as never[], { ordered: false }));
    const after = (await this.parts(alertId)) ?? before;
    return { status: 'handed-off', alert: MongoAlerts.view(after), added: users.filter((u) => !view.ackFrom.includes(u)) };
  }

  /** The parts of several alerts: one query per collection. */
  private async partsOf(alertIds: string[]): Promise<Map<string, Parts>> {
    const inIds = mongoose.trusted({ $in: alertIds });
    const [specs, acks, firings, timers] = await Promise.all([
      this.Spec.find({ _id: inIds }).lean<SpecDoc[]>().exec(),
      this.Ack.find({ alertId: inIds }).lean<AckDoc[]>().exec(),
      this.Firing.find({ alertId: inIds }).lean<FiringDoc[]>().exec(),
      this.Timer.find({ alertId: inIds }).lean<TimerDoc[]>().exec(),
    ]);
    const group = <T extends { alertId: string }>(docs: T[], id: string) => docs.filter((d) => d.alertId === id);
    return new Map(specs.map((spec) => [spec._id, { spec, acks: group(acks, spec._id), firings: group(firings, spec._id), timers: group(timers, spec._id) }]));
  }

  async escalationContent(input: { orgId: string; conversationId: string; seq: number; userId: string; deviceId: string }) {
    await this.init();
    const alertId = MongoAlerts.alertId(input.orgId, input.conversationId, input.seq);
    const p = await this.parts(alertId);
    if (!p?.spec.escalationBody) return undefined;
    const tier = MongoAlerts.view(p).tiers?.findIndex((t) => t.activatedAt !== undefined && t.userIds.includes(input.userId)) ?? -1;
    if (tier < 0) return undefined;
    const held = await this.Held.findOne({ _id: docKey(alertId, String(tier + 1)) }).lean<HeldDoc>().exec();
    const share = held?.recipients.find((r) => r.deviceId === input.deviceId);
    return { spec: specOf(p.spec), body: toBytes(p.spec.escalationBody), ...(share ? { ciphertext: toBytes(share.ciphertext) } : {}) };
  }

  async listOpenAlerts(input: { orgId: string; userId: string; since: number; limit: number }): Promise<AlertRecord[]> {
    await this.init();
    const handedOff = await this.Ack.find({ userId: input.userId, kind: 'handoff', at: mongoose.trusted({ $gte: input.since }) }).limit(LIST_SCAN).lean<AckDoc[]>().exec();
    const specs = await this.Spec.find(
      mongoose.trusted({
        orgId: input.orgId,
        createdAt: mongoose.trusted({ $gte: input.since }),
        $or: [{ ackFrom: input.userId }, { senderUserId: input.userId }, { 'tiers.userIds': input.userId }, ...(handedOff.length ? [{ _id: mongoose.trusted({ $in: handedOff.map((h) => h.alertId) }) }] : [])],
      }),
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
      if (alert?.state === 'pending' && (alert.ackFrom.includes(input.userId) || alert.senderUserId === input.userId)) out.push(alert);
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
    clientMessageId: d.clientMessageId,
    sentAt: d.sentAt,
    ...(d.tiers ? { tiers: d.tiers.map((t) => ({ afterMs: t.afterMs, userIds: [...t.userIds] })) } : {}),
  };
}

/** A timer's (and its firing's) id: per alert, kind and number. */
function timerId(alertId: string, kind: 'repeat' | 'tier', n: number): string {
  return docKey(alertId, kind, String(n));
}
const ackOf = (d: AckDoc): AlertAck => ({ userId: d.userId, deviceId: d.deviceId, at: d.at });
const firingOf = (d: FiringDoc): AlertFiring => ({ kind: d.kind, n: d.n, at: d.at, type: d.type });
