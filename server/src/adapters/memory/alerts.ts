import { compositeKey } from '@curbside/shared';
import {
  assembleAlert,
  type AckOutcome,
  type AlertAck,
  type AlertFiring,
  type AlertHandoff,
  type HandoffOutcome,
  type AlertRecord,
  type AlertSpecRecord,
  type AlertStore,
  type ClaimedAlert,
  type DuePlan,
  type HeldShares,
  type OrgAlertSettings,
} from '../../ports/alerts.js';

interface Timer {
  kind: 'repeat' | 'tier';
  n: number;
  dueAt: number;
}

interface Entry {
  spec: AlertSpecRecord;
  held: HeldShares[];
  acks: AlertAck[];
  firings: AlertFiring[];
  timers: Timer[];
  handoffs: AlertHandoff[];
}

/** `AlertStore` in memory (the embedded default and fast tests); timers live as long as the process. */
export class MemoryAlerts implements AlertStore {
  private readonly alerts = new Map<string, Entry>();
  private readonly settings = new Map<string, OrgAlertSettings>();

  async getAlertSettings(orgId: string): Promise<OrgAlertSettings | undefined> {
    const s = this.settings.get(orgId);
    return s && { ...s };
  }

  async setAlertSettings(orgId: string, settings: OrgAlertSettings): Promise<void> {
    this.settings.set(orgId, Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)));
  }

  private static key(orgId: string, conversationId: string, seq: number): string {
    return compositeKey(orgId, conversationId, String(seq));
  }

  private view(e: Entry): AlertRecord {
    return assembleAlert(e.spec, e.acks, e.firings, nextDue(e.timers), e.handoffs);
  }

  async raiseAlert(spec: AlertSpecRecord, held: readonly HeldShares[] = []): Promise<{ status: 'raised' | 'existing'; alert: AlertRecord }> {
    const key = MemoryAlerts.key(spec.orgId, spec.conversationId, spec.seq);
    const existing = this.alerts.get(key);
    if (existing) return { status: 'existing', alert: this.view(existing) };
    const timers: Timer[] = [{ kind: 'repeat', n: 1, dueAt: spec.firstDueAt }, ...(spec.tiers ?? []).map((t, i): Timer => ({ kind: 'tier', n: i + 1, dueAt: spec.createdAt + t.afterMs }))];
    const entry: Entry = { spec: structuredClone(spec), held: structuredClone([...held]), acks: [], firings: [], timers, handoffs: [] };
    this.alerts.set(key, entry);
    return { status: 'raised', alert: this.view(entry) };
  }

  async getAlert(orgId: string, conversationId: string, seq: number): Promise<AlertRecord | undefined> {
    const e = this.alerts.get(MemoryAlerts.key(orgId, conversationId, seq));
    return e && this.view(e);
  }

  async acknowledgeAlert(input: { orgId: string; conversationId: string; seq: number; userId: string; deviceId: string; now: number }): Promise<AckOutcome> {
    const e = this.alerts.get(MemoryAlerts.key(input.orgId, input.conversationId, input.seq));
    if (!e) return { status: 'not_found' };
    if (!this.view(e).ackFrom.includes(input.userId)) return { status: 'not_required', alert: this.view(e) };
    if (e.acks.some((a) => a.userId === input.userId)) return { status: 'already', alert: this.view(e) };
    e.acks.push({ userId: input.userId, deviceId: input.deviceId, at: input.now });
    if (this.view(e).state !== 'pending') e.timers = [];
    return { status: 'acknowledged', alert: this.view(e) };
  }

  async claimDueAlerts(input: { now: number; limit: number; plan: (alert: AlertRecord) => DuePlan | Promise<DuePlan> }): Promise<ClaimedAlert[]> {
    const due = [...this.alerts.values()]
      .flatMap((e) => e.timers.filter((t) => t.dueAt <= input.now).map((t) => ({ e, t })))
      .sort((a, b) => a.t.dueAt - b.t.dueAt)
      .slice(0, input.limit);
    const claimed: ClaimedAlert[] = [];
    for (const { e, t } of due) {
      // Another claim took it while this one waited for a plan.
      if (!e.timers.includes(t)) continue;
      e.timers = e.timers.filter((x) => x !== t);
      const before = this.view(e);
      if (before.state !== 'pending') {
        e.timers = [];
        continue;
      }
      let firing: AlertFiring;
      if (t.kind === 'tier') firing = { kind: 'tier', n: t.n, at: input.now, type: 'escalated' };
      else {
        const plan = await input.plan(before);
        firing = { kind: 'repeat', n: t.n, at: input.now, type: 'expire' in plan ? 'expired' : 'repeated' };
        if (!('expire' in plan)) e.timers.push({ kind: 'repeat', n: t.n + 1, dueAt: plan.nextDueAt });
      }
      e.firings.push(firing);
      claimed.push({ ...this.view(e), fired: firing.kind === 'tier' ? { type: 'escalated', at: firing.at, tier: firing.n } : { type: firing.type, at: firing.at } });
    }
    return claimed;
  }

  async handOffAlert(input: { orgId: string; conversationId: string; seq: number; userIds: readonly string[]; byUserId: string; now: number }): Promise<HandoffOutcome> {
    const e = this.alerts.get(MemoryAlerts.key(input.orgId, input.conversationId, input.seq));
    if (!e) return { status: 'not_found' };
    const before = this.view(e);
    if (before.state !== 'pending') return { status: 'settled', alert: before };
    const added = [...new Set(input.userIds)].filter((u) => !before.ackFrom.includes(u));
    for (const userId of input.userIds) if (!e.handoffs.some((h) => h.userId === userId)) e.handoffs.push({ userId, byUserId: input.byUserId, at: input.now });
    return { status: 'handed-off', alert: this.view(e), added };
  }

  async escalationContent(input: { orgId: string; conversationId: string; seq: number; userId: string; deviceId: string }) {
    const e = this.alerts.get(MemoryAlerts.key(input.orgId, input.conversationId, input.seq));
    if (!e?.spec.escalationBody) return undefined;
    const tier = this.view(e).tiers?.findIndex((t) => t.activatedAt !== undefined && t.userIds.includes(input.userId)) ?? -1;
    if (tier < 0) return undefined;
    const share = e.held.find((h) => h.tier === tier + 1)?.recipients.find((r) => r.deviceId === input.deviceId);
    return { spec: structuredClone(e.spec), body: new Uint8Array(e.spec.escalationBody), ...(share ? { ciphertext: new Uint8Array(share.ciphertext) } : {}) };
  }

  async listOpenAlerts(input: { orgId: string; userId: string; since: number; limit: number }): Promise<AlertRecord[]> {
    return [...this.alerts.values()]
      .filter((e) => e.spec.orgId === input.orgId && e.spec.createdAt >= input.since)
      .map((e) => this.view(e))
      .filter((a) => a.state === 'pending' && (a.ackFrom.includes(input.userId) || a.senderUserId === input.userId))
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, input.limit);
  }
}

/** The earliest pending timer's due time. */
function nextDue(timers: readonly Timer[]): number | undefined {
  return timers.length ? Math.min(...timers.map((t) => t.dueAt)) : undefined;
}
