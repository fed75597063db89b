import { compositeKey } from '@curbside/shared';
import { assembleAlert, type AckOutcome, type AlertAck, type AlertFiring, type AlertRecord, type AlertSpecRecord, type AlertStore, type DuePlan } from '../../ports/alerts.js';

interface Entry {
  spec: AlertSpecRecord;
  acks: AlertAck[];
  firings: AlertFiring[];
  /** The pending timer: which firing, due when. */
  timer: { n: number; dueAt: number } | undefined;
}

/** `AlertStore` in memory (the embedded default and fast tests); timers live as long as the process. */
export class MemoryAlerts implements AlertStore {
  private readonly alerts = new Map<string, Entry>();

  private static key(orgId: string, conversationId: string, seq: number): string {
    return compositeKey(orgId, conversationId, String(seq));
  }

  private view(e: Entry): AlertRecord {
    return assembleAlert(e.spec, e.acks, e.firings, e.timer?.dueAt);
  }

  async raiseAlert(spec: AlertSpecRecord): Promise<{ status: 'raised' | 'existing'; alert: AlertRecord }> {
    const key = MemoryAlerts.key(spec.orgId, spec.conversationId, spec.seq);
    const existing = this.alerts.get(key);
    if (existing) return { status: 'existing', alert: this.view(existing) };
    const entry: Entry = { spec: structuredClone(spec), acks: [], firings: [], timer: { n: 1, dueAt: spec.firstDueAt } };
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
    if (!e.spec.ackFrom.includes(input.userId)) return { status: 'not_required', alert: this.view(e) };
    if (e.acks.some((a) => a.userId === input.userId)) return { status: 'already', alert: this.view(e) };
    e.acks.push({ userId: input.userId, deviceId: input.deviceId, at: input.now });
    const alert = this.view(e);
    if (alert.state !== 'pending') e.timer = undefined;
    return { status: 'acknowledged', alert: this.view(e) };
  }

  async claimDueAlerts(input: { now: number; limit: number; plan: (alert: AlertRecord) => DuePlan }): Promise<AlertRecord[]> {
    const due = [...this.alerts.values()]
      .filter((e) => e.timer !== undefined && e.timer.dueAt <= input.now)
      .sort((a, b) => a.timer!.dueAt - b.timer!.dueAt)
      .slice(0, input.limit);
    const claimed: AlertRecord[] = [];
    for (const e of due) {
      const before = this.view(e);
      const timer = e.timer!;
      if (before.state !== 'pending') {
        e.timer = undefined;
        continue;
      }
      const plan = input.plan(before);
      if ('expire' in plan) {
        e.firings.push({ n: timer.n, at: input.now, type: 'expired' });
        e.timer = undefined;
      } else {
        e.firings.push({ n: timer.n, at: input.now, type: 'repeated' });
        e.timer = { n: timer.n + 1, dueAt: plan.nextDueAt };
      }
      claimed.push(this.view(e));
    }
    return claimed;
  }

  async listOpenAlerts(input: { orgId: string; userId: string; since: number; limit: number }): Promise<AlertRecord[]> {
    return [...this.alerts.values()]
      .filter((e) => e.spec.orgId === input.orgId && e.spec.createdAt >= input.since && (e.spec.ackFrom.includes(input.userId) || e.spec.senderUserId === input.userId))
      .map((e) => this.view(e))
      .filter((a) => a.state === 'pending')
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, input.limit);
  }
}
