/**
 * Alerts, as the hub runs them (issue #20): raised with an urgent or emergent send, acknowledged by
 * recipients, re-notified on durable timers until settled. The hub sees the priority, who must answer
 * and when; the message stays end-to-end encrypted.
 *
 * Every node sweeps for due timers every `sweepMs`; a due firing is claimed in storage (an insert
 * under a unique id), so it fires on exactly one node, and a timer outlives the node that set it.
 */
import { Limits, Rooms, ServerEvent, ErrorCode, type AlertAckRequest, type AlertContent, type AlertSpec, type AlertState, type AlertUpdate } from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Storage, StoredEnvelope } from '../ports/storage.js';
import type { AlertRecord, DuePlan } from '../ports/alerts.js';
import type { DeviceDirectory } from '../domain/device-directory.js';
import type { HubServer } from '../realtime/sockets.js';
import type { AuditEvent } from '../audit/port.js';
import type { AlertsConfig } from './config.js';

/** How long a node uses an organisation's alert settings before reading them again (ms). */
export const ALERT_SETTINGS_CACHE_MS = 10_000;
/** Timers claimed per sweep at most (the rest wait for the next sweep). */
const SWEEP_BATCH = 200;
/** Open alerts one `alert:list` answers at most. */
const LIST_LIMIT = 100;

interface Caller {
  orgId: string;
  userId: string;
  deviceId: string;
}

export interface AlertsDeps {
  storage: Storage;
  /** Devices of users (published keys, signed lists): whom an escalation tier's wrapped keys may be for. */
  directory: DeviceDirectory;
  io: HubServer;
  logger: Logger;
  config: AlertsConfig;
  /** Writes an audit entry (the hub's security layer). */
  record: (event: Omit<AuditEvent, 'at'> & { at?: number }) => void;
  now?: () => number;
}

export class Alerts {
  private timer: NodeJS.Timeout | undefined;
  /** Each organisation's settings as last read, and when. */
  private readonly settings = new Map<string, { at: number; value: { repeatMs: AlertsConfig['repeatMs']; maxRepeats: number } }>();
  private sweeping: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: AlertsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Start sweeping for due timers. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.deps.config.sweepMs);
    this.timer.unref();
  }

  /** Stop sweeping; waits for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  /**
   * Before anything is stored: an escalation's later tiers must name users of the organisation who
   * are not in the conversation (they are asked only when it escalates), and wrap keys only for their
   * listed devices with published keys.
   */
  async checkEscalation(caller: Caller, conversationId: string, spec: AlertSpec): Promise<void> {
    if (!spec.escalation) return;
    const conversation = await this.deps.directory.conversation(caller.orgId, conversationId);
    const members = new Set(conversation?.memberUserIds ?? []);
    for (const [i, tier] of spec.escalation.tiers.entries()) {
      const inConversation = tier.userIds.filter((u) => members.has(u) || u === caller.userId);
      if (inConversation.length) throw new HubError(ErrorCode.INVALID_PAYLOAD, `Escalation tier ${i + 1} names members of the conversation, who are asked from the start`, { userIds: inConversation });
      const devices = new Set((await this.deps.directory.identities(caller.orgId, tier.userIds)).map((d) => d.deviceId));
      const extra = tier.recipients.map((r) => r.deviceId).filter((d) => !devices.has(d));
      if (extra.length) throw new HubError(ErrorCode.DEVICE_LIST_STALE, `Escalation tier ${i + 1} wraps keys for devices that are not its users' listed devices`, { missing: [], extra });
      if (new Set(tier.recipients.map((r) => r.deviceId)).size !== tier.recipients.length) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'each device may appear once in a tier', { tier: i + 1 });
    }
  }

  /**
   * The alert a stored message raises; the send is acked only after it is stored. A retried send
   * finds the stored alert. Everyone concerned hears of it (`alert`, reason `raised`).
   */
  async raise(caller: Caller, envelope: StoredEnvelope, spec: AlertSpec, askUserIds: readonly string[]): Promise<AlertState | undefined> {
    const now = this.now();
    const ackFrom = askUserIds.filter((u) => u !== caller.userId);
    // Nobody else in the conversation: the message is stored as sent, with no one to alert.
    if (ackFrom.length === 0) return undefined;
    const { status, alert } = await this.deps.storage.raiseAlert({
      orgId: caller.orgId,
      conversationId: envelope.conversationId,
      seq: envelope.seq,
      messageId: envelope.messageId,
      senderUserId: caller.userId,
      senderDeviceId: caller.deviceId,
      clientMessageId: envelope.clientMessageId,
      sentAt: envelope.sentAt,
      priority: spec.priority,
      ackPolicy: spec.ackPolicy ?? 'any',
      ackFrom,
      createdAt: now,
      firstDueAt: now + (await this.settingsOf(caller.orgId)).repeatMs[spec.priority],
      ...(spec.escalation ? { tiers: spec.escalation.tiers.map((t) => ({ afterMs: t.afterMs, userIds: t.userIds })), escalationBody: toUint8(spec.escalation.body) } : {}),
    }, spec.escalation?.tiers.map((t, i) => ({ tier: i + 1, recipients: t.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: toUint8(r.ciphertext) })) })));
    if (status === 'raised') this.deps.record({ action: 'alert:raised', outcome: 'ok', orgId: caller.orgId, userId: caller.userId, deviceId: caller.deviceId, conversationId: alert.conversationId, seq: alert.seq, messageId: alert.messageId, note: alert.priority });
    await this.tell(alert, 'raised').catch((err: unknown) => this.deps.logger.warn({ err }, 'alert update not pushed'));
    return publicState(alert);
  }

  /**
   * Before an acknowledgement with a sealed confirmation is recorded: only someone asked from outside
   * the conversation sends one this way (members send theirs in the conversation), and it may name
   * only the sender's devices. Answers the sender. Anything else is refused with nothing recorded.
   */
  async checkConfirmation(caller: Caller, req: AlertAckRequest & { confirmation: NonNullable<AlertAckRequest['confirmation']> }): Promise<string> {
    const conversation = await this.deps.directory.conversation(caller.orgId, req.conversationId);
    if (conversation?.memberUserIds.includes(caller.userId)) {
      throw new HubError(ErrorCode.INVALID_PAYLOAD, 'A member confirms an acknowledgement in the conversation itself, not with alert:ack', { conversationId: req.conversationId });
    }
    const alert = await this.deps.storage.getAlert(caller.orgId, req.conversationId, req.seq);
    if (!alert) throw new HubError(ErrorCode.NOT_FOUND, 'No such alert', { conversationId: req.conversationId, seq: req.seq });
    const devices = new Set((await this.deps.directory.identities(caller.orgId, [alert.senderUserId])).map((d) => d.deviceId));
    const extra = req.confirmation.recipients.map((r) => r.deviceId).filter((d) => !devices.has(d));
    if (extra.length) throw new HubError(ErrorCode.DEVICE_LIST_STALE, 'A confirmation names devices that are not the sender’s', { missing: [], extra });
    return alert.senderUserId;
  }

  /** Record the caller's acknowledgement; everyone concerned hears of it. */
  async acknowledge(caller: Caller, req: AlertAckRequest): Promise<AlertState> {
    // Someone who left the conversation since is no longer asked (an escalation tier's users are, from
    // outside it): only a caller who is not a member now costs reading the alert first.
    const member = (await this.deps.directory.conversation(caller.orgId, req.conversationId))?.memberUserIds.includes(caller.userId) ?? false;
    const before = member ? undefined : await this.deps.storage.getAlert(caller.orgId, req.conversationId, req.seq);
    if (before && before.ackFrom.includes(caller.userId) && !(await this.stillAsked(before)).has(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, 'You left this conversation: you are no longer asked to acknowledge its alerts', { conversationId: req.conversationId, seq: req.seq });
    }
    const outcome = await this.deps.storage.acknowledgeAlert({ orgId: caller.orgId, conversationId: req.conversationId, seq: req.seq, userId: caller.userId, deviceId: caller.deviceId, now: this.now() });
    // Another organisation's alert and a missing one look the same.
    if (outcome.status === 'not_found') throw new HubError(ErrorCode.NOT_FOUND, 'No such alert', { conversationId: req.conversationId, seq: req.seq });
    if (outcome.status === 'not_required') throw new HubError(ErrorCode.FORBIDDEN, 'You are not among those asked to acknowledge this alert', { conversationId: req.conversationId, seq: req.seq });
    if (outcome.status === 'acknowledged') await this.tell(outcome.alert, 'acknowledged').catch((err: unknown) => this.deps.logger.warn({ err }, 'alert update not pushed'));
    return publicState(outcome.alert);
  }

  /**
   * Before a hand-off envelope is stored (an on-call role's holder passing pending urgent messages to
   * the role's new holders): the conversation must be a role thread, every seq a pending alert there
   * that asks the caller, and the named devices those of the role's members other than the caller.
   * Answers whom it hands them to. Anything else is refused with nothing stored.
   */
  async checkHandoff(caller: Caller, req: { conversationId: string; recipients?: Array<{ deviceId: string }> | undefined; handoff: { seqs: number[] } }): Promise<string[]> {
    const conversation = await this.deps.directory.conversation(caller.orgId, req.conversationId);
    if (!conversation?.roleId || !conversation.memberUserIds.includes(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, 'Only a thread with an on-call role has hand-offs, among its role’s members', { conversationId: req.conversationId });
    }
    const owners = new Map((await this.deps.directory.identities(caller.orgId, conversation.memberUserIds)).map((d) => [d.deviceId, d.userId]));
    const to = [...new Set((req.recipients ?? []).map((r) => owners.get(r.deviceId)))];
    if (to.some((u) => u === undefined || u === caller.userId || u === conversation.createdBy)) {
      throw new HubError(ErrorCode.INVALID_PAYLOAD, 'A hand-off names devices of the role’s other members only', { conversationId: req.conversationId });
    }
    for (const seq of new Set(req.handoff.seqs)) {
      const alert = await this.deps.storage.getAlert(caller.orgId, req.conversationId, seq);
      if (!alert || alert.state !== 'pending' || !alert.ackFrom.includes(caller.userId)) {
        throw new HubError(ErrorCode.NOT_FOUND, 'No pending alert there that asks you', { conversationId: req.conversationId, seq });
      }
    }
    return to as string[];
  }

  /** After the hand-off envelope is stored: its users are asked from now on, and told (`handed-off`). */
  async handOff(caller: Caller, conversationId: string, seqs: readonly number[], toUserIds: readonly string[]): Promise<void> {
    for (const seq of new Set(seqs)) {
      const outcome = await this.deps.storage.handOffAlert({ orgId: caller.orgId, conversationId, seq, userIds: toUserIds, byUserId: caller.userId, now: this.now() });
      if (outcome.status !== 'handed-off' || outcome.added.length === 0) continue;
      this.deps.record({ action: 'alert:handed-off', outcome: 'ok', orgId: caller.orgId, userId: caller.userId, deviceId: caller.deviceId, conversationId, seq, messageId: outcome.alert.messageId, note: outcome.added.join(' ') });
      await this.tell(outcome.alert, 'handed-off').catch((err: unknown) => this.deps.logger.warn({ err }, 'alert update not pushed'));
    }
  }

  /**
   * For a device of a user an activated tier asked: the escalation's sealed content and its own
   * wrapped key. Anyone else (a member reads the message in the conversation) gets NOT_FOUND, as for
   * a missing alert.
   */
  async content(caller: Caller, req: AlertAckRequest): Promise<AlertContent> {
    const found = await this.deps.storage.escalationContent({ orgId: caller.orgId, conversationId: req.conversationId, seq: req.seq, userId: caller.userId, deviceId: caller.deviceId });
    if (!found) throw new HubError(ErrorCode.NOT_FOUND, 'No escalated alert for you there', { conversationId: req.conversationId, seq: req.seq });
    const { spec } = found;
    return {
      conversationId: spec.conversationId,
      seq: spec.seq,
      messageId: spec.messageId,
      senderUserId: spec.senderUserId,
      senderDeviceId: spec.senderDeviceId,
      clientMessageId: spec.clientMessageId,
      sentAt: spec.sentAt,
      body: found.body,
      ...(found.ciphertext ? { ciphertext: found.ciphertext } : {}),
    };
  }

  /** The organisation's intervals and repeat limit: its own settings over the deployment's (cached per node). */
  async settingsOf(orgId: string): Promise<{ repeatMs: AlertsConfig['repeatMs']; maxRepeats: number }> {
    const cached = this.settings.get(orgId);
    const now = this.now();
    if (cached && now - cached.at < ALERT_SETTINGS_CACHE_MS) return cached.value;
    const own = await this.deps.storage.getAlertSettings(orgId);
    const { repeatMs, maxRepeats } = this.deps.config;
    const value = { repeatMs: { urgent: own?.urgentMs ?? repeatMs.urgent, emergent: own?.emergentMs ?? repeatMs.emergent }, maxRepeats: own?.maxRepeats ?? maxRepeats };
    if (this.settings.size > 10_000) this.settings.clear();
    this.settings.set(orgId, { at: now, value });
    return value;
  }

  /** An operator changed the organisation's settings: this node uses them at once (others within the cache time). */
  forgetSettings(orgId: string): void {
    this.settings.delete(orgId);
  }

  /** The caller's open alerts (to acknowledge, or sent), newest first. */
  async listOpen(caller: Caller): Promise<{ alerts: AlertState[] }> {
    const { repeatMs, maxRepeats } = await this.settingsOf(caller.orgId);
    // An alert is open at most for its re-notifications (extended while an escalation tier is pending); older ones expired.
    const since = this.now() - Math.max(repeatMs.urgent, repeatMs.emergent) * (maxRepeats + 2) - Limits.MAX_ESCALATION_MS;
    const alerts = await this.deps.storage.listOpenAlerts({ orgId: caller.orgId, userId: caller.userId, since, limit: LIST_LIMIT });
    return { alerts: alerts.map(publicState) };
  }

  /** Claim what is due and re-notify (or expire). One sweep at a time per node. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const now = this.now();
    let claimed: Array<AlertRecord & { fired: AlertUpdate['timeline'][number] }>;
    try {
      claimed = await this.deps.storage.claimDueAlerts({ now, limit: SWEEP_BATCH, plan: (a) => this.plan(a, now) });
    } catch (err) {
      this.deps.logger.warn({ err }, 'alert sweep failed; due timers wait for the next one');
      return;
    }
    for (const alert of claimed) {
      const reason = alert.fired.type;
      const note = reason === 'escalated' ? `${alert.priority} tier ${alert.fired.tier}` : `${alert.priority} ${alert.repeats}`;
      this.deps.record({ action: `alert:${reason}`, outcome: 'ok', orgId: alert.orgId, conversationId: alert.conversationId, seq: alert.seq, messageId: alert.messageId, note });
      await this.tell(alert, reason).catch((err: unknown) => this.deps.logger.warn({ err }, 'alert update not pushed'));
    }
  }

  private async plan(alert: AlertRecord, now: number): Promise<DuePlan> {
    const { repeatMs, maxRepeats } = await this.settingsOf(alert.orgId);
    // Re-notifications go on while a later tier may still be asked.
    const tiersPending = alert.tiers?.some((t) => t.activatedAt === undefined) ?? false;
    if (alert.repeats >= maxRepeats && !tiersPending) return { expire: true };
    return { nextDueAt: now + repeatMs[alert.priority] };
  }

  /**
   * Who of those the alert asks is still asked: the conversation's members now (someone who left is
   * not re-alerted, nor may acknowledge), and the users of activated escalation tiers.
   */
  private async stillAsked(alert: AlertRecord): Promise<Set<string>> {
    const members = (await this.deps.directory.conversation(alert.orgId, alert.conversationId))?.memberUserIds ?? [];
    const tiers = (alert.tiers ?? []).filter((t) => t.activatedAt !== undefined).flatMap((t) => t.userIds);
    return new Set([...members, ...tiers].filter((u) => alert.ackFrom.includes(u)));
  }

  /** Push the alert's state to the sender's and every still-asked user's devices, on every node. */
  private async tell(alert: AlertRecord, reason: AlertUpdate['reason']): Promise<void> {
    const users = [...new Set([alert.senderUserId, ...(await this.stillAsked(alert))])];
    const update: AlertUpdate = { ...publicState(alert), reason };
    this.deps.io.to(users.map((u) => Rooms.user(alert.orgId, u))).emit(ServerEvent.ALERT, update);
  }
}

/** Bytes as socket.io delivers them (a Buffer in Node, or an ArrayBuffer). */
function toUint8(b: Uint8Array | ArrayBuffer): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

/** What clients see of an alert record. */
function publicState(a: AlertRecord): AlertState {
  const { orgId: _org, senderDeviceId: _device, ...state } = a;
  return state;
}
