/**
 * Alerts (urgent and emergent messages, issue #20): who must acknowledge, who did, and when the next
 * re-notification is due. Part of `Storage` (every adapter implements it), covered by
 * `test/contract/alerts.contract.test.ts` over memory and MongoDB (FerretDB on SQLite and PostgreSQL).
 *
 * Built only from what is atomic on every backend (docs/delivery.md: FerretDB applies updates as a
 * read-modify-write, so two racing updates of one document can lose one; inserts under a unique
 * index and deletes by id are atomic everywhere). An alert's spec is written once and never updated;
 * each acknowledgement, each firing and each pending timer is a document of its own, inserted once.
 * So timers are durable (a restart or a lost node leaves the due time in the database), and a due
 * firing is claimed by inserting its firing record: across every node, each fires once.
 */
import type { AlertEvent, AlertState } from '@curbside/shared';

/** What the sender's message raised: written once. */
export interface AlertSpecRecord {
  orgId: string;
  conversationId: string;
  seq: number;
  messageId: string;
  /** The message's client id and time: what the escalation body's associated data binds. */
  clientMessageId: string;
  sentAt: number;
  senderUserId: string;
  senderDeviceId: string;
  priority: AlertState['priority'];
  ackPolicy: AlertState['ackPolicy'];
  ackFrom: string[];
  createdAt: number;
  /** When the first re-notification is due. */
  firstDueAt: number;
  /** Escalation: later tiers (activated `afterMs` after `createdAt`), and the content sealed for them. */
  tiers?: Array<{ afterMs: number; userIds: string[] }> | undefined;
  escalationBody?: Uint8Array | undefined;
}

/** One tier's wrapped message keys, held until it activates. */
export interface HeldShares {
  /** From 1. */
  tier: number;
  recipients: Array<{ deviceId: string; ciphertext: Uint8Array }>;
}

export interface AlertAck {
  userId: string;
  deviceId: string;
  at: number;
}

/** A pending alert handed to a new holder of an on-call role: asked from then on. */
export interface AlertHandoff {
  userId: string;
  byUserId: string;
  at: number;
}

export type HandoffOutcome =
  /** The users are asked now (`added`: those who were not before). */
  | { status: 'handed-off'; alert: AlertRecord; added: string[] }
  /** Settled or expired already: nothing to hand over. */
  | { status: 'settled'; alert: AlertRecord }
  | { status: 'not_found' };

/** A claimed timer: the `n`th re-notification (from 1) or the alert's expiry (kind `repeat`), or tier `n`'s activation (kind `tier`). */
export interface AlertFiring {
  kind: 'repeat' | 'tier';
  n: number;
  at: number;
  type: 'repeated' | 'expired' | 'escalated';
}

export interface AlertRecord extends AlertState {
  orgId: string;
  senderDeviceId: string;
}

/** A claimed timer's alert, as updated, and what fired. */
export interface ClaimedAlert extends AlertRecord {
  fired: AlertEvent;
}

export type AckOutcome =
  /** Recorded (also after the alert was settled by someone else, or expired: a late answer counts too). */
  | { status: 'acknowledged'; alert: AlertRecord }
  /** This user had acknowledged before. */
  | { status: 'already'; alert: AlertRecord }
  /** The user is not among those who must acknowledge (the sender, or someone added later). */
  | { status: 'not_required'; alert: AlertRecord }
  | { status: 'not_found' };

/** What the next firing of a claimed re-notification timer is: a repeat due at a time, or the alert's expiry. */
export type DuePlan = { nextDueAt: number } | { expire: true };

export interface AlertStore {
  /**
   * Store a new alert and its first timer. When one exists for the same organisation, conversation
   * and seq (a retried send), it is answered unchanged.
   */
  raiseAlert(spec: AlertSpecRecord, held?: readonly HeldShares[]): Promise<{ status: 'raised' | 'existing'; alert: AlertRecord }>;
  getAlert(orgId: string, conversationId: string, seq: number): Promise<AlertRecord | undefined>;
  /** Record `userId`'s acknowledgement, from `deviceId`, once. A settled alert's timers are dropped. */
  acknowledgeAlert(input: { orgId: string; conversationId: string; seq: number; userId: string; deviceId: string; now: number }): Promise<AckOutcome>;
  /**
   * Claim up to `limit` timers due at `now`, earliest first, of pending alerts. Each goes to exactly
   * one caller however many claim at once: its alert gets a `repeated` event and the next timer at
   * what `plan` says for the alert as it stood, or, when `plan` says so, an `expired` event and no
   * further timer. Timers of settled alerts are dropped. Answers the claimed alerts as updated.
   */
  claimDueAlerts(input: { now: number; limit: number; plan: (alert: AlertRecord) => DuePlan | Promise<DuePlan> }): Promise<ClaimedAlert[]>;
  /**
   * What a device of a user an activated tier asked may read: the escalation body and the spec's
   * binding, with this device's wrapped key if the sender made one. Undefined when the alert has no
   * escalation or the user is in no activated tier.
   */
  escalationContent(input: { orgId: string; conversationId: string; seq: number; userId: string; deviceId: string }): Promise<{ spec: AlertSpecRecord; body: Uint8Array; ciphertext?: Uint8Array | undefined } | undefined>;
  /**
   * Ask these users too (the new holders of an on-call role, `byUserId` handing the alert over), each
   * once: a hand-off record per user, inserted once. Only a pending alert is handed over.
   */
  handOffAlert(input: { orgId: string; conversationId: string; seq: number; userIds: readonly string[]; byUserId: string; now: number }): Promise<HandoffOutcome>;
  /** Alerts the user must acknowledge or sent, still pending, newest first, at most `limit`, of those raised since `since`. */
  listOpenAlerts(input: { orgId: string; userId: string; since: number; limit: number }): Promise<AlertRecord[]>;
}

/** An alert as clients see it, from its parts (every adapter assembles it this way). */
export function assembleAlert(spec: AlertSpecRecord, acks: readonly AlertAck[], firings: readonly AlertFiring[], nextDueAt: number | undefined, handoffs: readonly AlertHandoff[] = []): AlertRecord {
  const sortedAcks = [...acks].sort((a, b) => a.at - b.at || (a.userId < b.userId ? -1 : 1));
  const sortedFirings = [...firings].sort((a, b) => a.at - b.at || a.n - b.n);
  const activated = new Map(sortedFirings.filter((f) => f.kind === 'tier').map((f) => [f.n, f.at]));
  const tiers = spec.tiers?.map((t, i) => ({ afterMs: t.afterMs, userIds: [...t.userIds], ...(activated.has(i + 1) ? { activatedAt: activated.get(i + 1)! } : {}) }));
  const sortedHandoffs = [...handoffs].sort((a, b) => a.at - b.at || (a.userId < b.userId ? -1 : 1));
  const ackFrom = [...new Set([...spec.ackFrom, ...(tiers ?? []).filter((t) => t.activatedAt !== undefined).flatMap((t) => t.userIds), ...sortedHandoffs.map((h) => h.userId)])];
  const acked = new Set(sortedAcks.map((a) => a.userId));
  const settled = spec.ackPolicy === 'any' ? ackFrom.some((u) => acked.has(u)) : ackFrom.every((u) => acked.has(u));
  const expired = sortedFirings.some((f) => f.type === 'expired');
  const timeline: AlertEvent[] = [
    { type: 'raised' as const, at: spec.createdAt },
    ...sortedFirings.map((f): AlertEvent => (f.kind === 'tier' ? { type: 'escalated', at: f.at, tier: f.n } : { type: f.type, at: f.at })),
    ...sortedHandoffs.map((h): AlertEvent => ({ type: 'handed-off', at: h.at, userId: h.userId, byUserId: h.byUserId })),
    ...sortedAcks.map((a): AlertEvent => ({ type: 'acknowledged', at: a.at, userId: a.userId, deviceId: a.deviceId })),
  ].sort((a, b) => a.at - b.at);
  const state = settled ? 'acknowledged' : expired ? 'expired' : 'pending';
  return {
    orgId: spec.orgId,
    conversationId: spec.conversationId,
    seq: spec.seq,
    messageId: spec.messageId,
    senderUserId: spec.senderUserId,
    senderDeviceId: spec.senderDeviceId,
    priority: spec.priority,
    ackPolicy: spec.ackPolicy,
    ackFrom,
    ...(tiers ? { tiers } : {}),
    acks: sortedAcks.map((a) => ({ ...a })),
    state,
    repeats: sortedFirings.filter((f) => f.type === 'repeated').length,
    ...(state === 'pending' && nextDueAt !== undefined ? { nextDueAt } : {}),
    createdAt: spec.createdAt,
    timeline,
  };
}

/** An organisation's own alert settings (its admins set them); absent fields use the deployment's defaults. */
export interface OrgAlertSettings {
  urgentMs?: number | undefined;
  emergentMs?: number | undefined;
  maxRepeats?: number | undefined;
}

/** Per-organisation alert settings. Part of `Storage`; written by operators only, read by every node (cached). */
export interface AlertSettingsStore {
  getAlertSettings(orgId: string): Promise<OrgAlertSettings | undefined>;
  /** Replace the organisation's settings (undefined fields fall back to the defaults). */
  setAlertSettings(orgId: string, settings: OrgAlertSettings, now: number): Promise<void>;
}
