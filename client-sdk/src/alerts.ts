import { AlertContentSchema, AlertListResultSchema, AlertStateSchema, AlertUpdateSchema, type AlertAckRequest, type AlertContent, type AlertState, type AlertUpdate } from '@curbside/shared';
import type { HubApi } from './hub/api.js';
import type { EscalatedMessage } from './e2ee/escalation.js';

export type { AlertState, AlertUpdate, EscalatedMessage };

/**
 * Urgent and emergent messages (`client.alerts`). Send one with
 * `client.sendText(conversationId, text, { priority: 'urgent' })`: the hub keeps who must acknowledge
 * it and re-notifies their devices (an `alert` event with `reason: 'repeated'`) at the organisation's
 * interval until someone required acknowledges. The sender follows it per recipient: `sent`,
 * `delivered`, `read` (`messageStatus`) and acknowledged, by whom and when (here).
 *
 * The priority is also sealed inside the message (`ChatMessage.priority`); the hub sees only that a
 * message is urgent, never what it says.
 *
 * Escalation: `sendText(…, { priority, escalate: [{ afterMs, userIds }, …] })` names later tiers. Their
 * devices get the message's key, wrapped by the sender's device at send time and held by the hub until
 * the tier activates; then they hear `alert` (`reason: 'escalated'`) and `escalatedMessage` (the text,
 * decrypted here), and may acknowledge like anyone asked.
 */
export class Alerts {
  /** Last known state per alert (`conversationId` + seq). */
  private readonly known = new Map<string, AlertState>();
  /** Escalated messages opened here (or being opened). */
  private readonly opened = new Set<string>();
  /** messageId → users whose acknowledgement their own device sealed to this one. */
  private readonly sealed = new Map<string, Set<string>>();

  /** @internal */
  constructor(
    private readonly deps: {
      api: HubApi;
      self: () => { userId: string | undefined };
      emit: (update: AlertUpdate) => void;
      /** Seal the acknowledgement to the sender, end to end (false: this device did not receive the message in that conversation). */
      confirm: ((conversationId: string, messageId: string) => Promise<boolean>) | undefined;
      /** Seal it for an escalation tier's user, who is not in the conversation: it goes with the acknowledgement. */
      sealConfirmation: ((conversationId: string, senderUserId: string, messageId: string) => Promise<AlertAckRequest['confirmation']>) | undefined;
      /** Decrypt what an activated tier released to this device (undefined without end-to-end encryption). */
      open: ((content: AlertContent) => Promise<EscalatedMessage>) | undefined;
      escalated: (message: EscalatedMessage) => void;
      error: (e: unknown) => void;
    },
  ) {}

  /**
   * The message an escalation brought to this user, decrypted on this device. Only once a tier naming
   * this user is active.
   * @throws CurbsideError NOT_FOUND (no active tier names you), DECRYPTION_FAILED
   */
  async escalatedMessage(conversationId: string, seq: number): Promise<EscalatedMessage> {
    if (!this.deps.open) throw new Error('Escalated messages need end-to-end encryption on');
    const content = AlertContentSchema.parse(await this.deps.api.alertContent(conversationId, seq));
    return this.deps.open(content);
  }

  /**
   * Acknowledge the urgent message at `seq` of the conversation ("I'm on it"): distinct from read.
   * Stops its re-notifications (with the default policy, for everyone asked).
   * @throws CurbsideError NOT_FOUND (no alert for that message), FORBIDDEN (you were not asked to acknowledge it)
   */
  async acknowledge(conversationId: string, seq: number): Promise<AlertState> {
    // Asked by an escalation tier, from outside the conversation: the sealed proof goes with the acknowledgement.
    const known = this.known.get(key(conversationId, seq));
    const me = this.deps.self().userId;
    const fromTier = me !== undefined && known?.tiers?.some((t) => t.activatedAt !== undefined && t.userIds.includes(me)) === true;
    const confirmation = fromTier && known && this.deps.sealConfirmation ? await this.deps.sealConfirmation(conversationId, known.senderUserId, known.messageId).catch((e: unknown) => void this.deps.error(e)) : undefined;
    const state = AlertStateSchema.parse(await this.deps.api.acknowledgeAlert(conversationId, seq, confirmation ?? undefined));
    this.note(state);
    // The hub's record, then the proof: the sender's devices hear it from this device, sealed.
    if (!fromTier && this.deps.confirm) await this.deps.confirm(conversationId, state.messageId).catch((e: unknown) => this.deps.error(e));
    return state;
  }

  /** Open alerts this user must acknowledge or sent, newest first (asked of the hub). */
  async open(): Promise<AlertState[]> {
    const { alerts } = AlertListResultSchema.parse(await this.deps.api.openAlerts());
    for (const a of alerts) this.note(a);
    return alerts;
  }

  /** The alert of a message as last heard (an `alert` event or an answer), if any. */
  get(conversationId: string, seq: number): AlertState | undefined {
    return this.known.get(key(conversationId, seq));
  }

  /**
   * Whether `userId`'s acknowledgement of this alert reached this device sealed by their own device (an
   * `acknowledged` receipt), not only as the hub's record, which a hostile hub could invent. Escalation
   * tiers' users outside the conversation seal theirs too (it goes with their acknowledgement).
   */
  confirmedEndToEnd(alert: Pick<AlertState, 'messageId'>, userId: string): boolean {
    return this.sealed.get(alert.messageId)?.has(userId) ?? false;
  }

  /** @internal An `acknowledged` receipt arrived. */
  noteSealedAck(messageId: string, userId: string): void {
    const users = this.sealed.get(messageId) ?? new Set<string>();
    users.add(userId);
    this.sealed.set(messageId, users);
    if (this.sealed.size > 2_000) this.sealed.delete(this.sealed.keys().next().value as string);
  }

  /** Whether this user still has to acknowledge the alert. */
  awaitsMe(alert: AlertState): boolean {
    const me = this.deps.self().userId;
    return me !== undefined && alert.state === 'pending' && alert.ackFrom.includes(me) && !alert.acks.some((a) => a.userId === me);
  }

  /** @internal A push from the hub. */
  receive(raw: unknown): void {
    const parsed = AlertUpdateSchema.safeParse(raw);
    if (!parsed.success) return;
    this.note(parsed.data);
    this.deps.emit(parsed.data);
    this.openIfEscalatedToMe(parsed.data);
  }

  /** An alert whose active tier names this user: open its message once, and tell the app. */
  private openIfEscalatedToMe(alert: AlertState): void {
    const me = this.deps.self().userId;
    if (!me || !this.deps.open || !alert.tiers?.some((t) => t.activatedAt !== undefined && t.userIds.includes(me))) return;
    const k = key(alert.conversationId, alert.seq);
    if (this.opened.has(k)) return;
    this.opened.add(k);
    this.escalatedMessage(alert.conversationId, alert.seq).then(this.deps.escalated, (e: unknown) => {
      this.opened.delete(k);
      this.deps.error(e);
    });
  }

  /**
   * @internal After a (re)connect: alerts raised, repeated or settled while offline are told as
   * updates (`reason` is the alert's last event), each change once.
   */
  async resync(): Promise<void> {
    const before = new Map(this.known);
    for (const alert of await this.open()) {
      this.openIfEscalatedToMe(alert);
      const seen = before.get(key(alert.conversationId, alert.seq));
      if (seen && seen.timeline.length === alert.timeline.length) continue;
      this.deps.emit({ ...alert, reason: alert.timeline[alert.timeline.length - 1]?.type ?? 'raised' });
    }
  }

  private note(state: AlertState): void {
    const k = key(state.conversationId, state.seq);
    const prev = this.known.get(k);
    // Updates may cross: keep the one that has seen more.
    if (!prev || state.timeline.length >= prev.timeline.length) this.known.set(k, state);
    if (this.known.size > 2_000) this.known.delete(this.known.keys().next().value as string);
  }
}

const key = (conversationId: string, seq: number) => `${seq}\u0000${conversationId}`;
