/**
 * On-call roles on this device (shared/src/roles.ts). Who holds a role comes from its signed log,
 * verified here like a care team's (each statement's signature under its device's listed key, the
 * shared rules), never from the hub's word: a member replays its own team record, anyone else the log
 * the hub hands out (`role:log`).
 *
 * A message in a thread with a role is sealed for the devices of whoever holds the role at send time
 * (and the requester's), as a partial send: the role's other members get the envelope without a key.
 *
 * Hand-off: a holder's device keeps the key package of each urgent or emergent message it received in
 * a role thread. When the role passes to someone else (a `hold` or `schedule` statement), that device
 * hands the still-pending ones to the new holders' devices over 1:1 sessions; the hub then asks them to
 * acknowledge too. The new holder opens each original body with its key package, so what they read is
 * bound to its original sender, not retold by the previous holder.
 */
import { ErrorCode, Limits, holdersAt, nextShiftChangeAt, type Envelope, type TeamState } from '@curbside/shared';
import { CurbsideError } from '../errors.js';
import { base64ToBytes, bytesToBase64 } from '../stores/codec.js';
import { deleteOp, putOp } from '../stores/index.js';
import { MAX_HANDOFF_ITEMS, openMessage, type HandoffItem, type MessageContent } from './message-crypto.js';
import { replayLog } from './team-log-book.js';
import type { TeamMessenger } from './team-messenger.js';
import { chatMessageOf, type TeamContext } from './types.js';

/** Messages kept for a hand-off, per device, at most (the oldest go first), and for how long. */
const MAX_HELD = 200;
const HELD_FOR_MS = 48 * 3600 * 1000;
/** Key prefix of held messages in the `meta` namespace. */
const HELD_PREFIX = 'roleHeld ';
/** Bytes of bodies one hand-off envelope carries at most (its sealed body must stay under MAX_CIPHERTEXT_BYTES). */
const MAX_HANDOFF_BODY_BYTES = 36 * 1024;

interface Held {
  roleId: string;
  conversationId: string;
  at: number;
  item: HandoffItem;
}

/** What a thread send goes to: the users whose devices get the key. */
export interface ThreadTargets {
  roleId: string;
  toUserIds: string[];
}

export class RoleThreads {
  /** Verified states of roles this device is not a member of, from `role:log`. */
  private readonly replayed = new Map<string, TeamState>();
  /** Per role this user may hold: a timer for the next shift start or end. */
  private readonly shiftTimers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly core: TeamContext,
    private readonly teams: TeamMessenger,
    /** Pending alerts that ask this user (conversation id and seq), asked of the hub. */
    private readonly pendingAsked: () => Promise<Array<{ conversationId: string; seq: number }>>,
  ) {}

  /**
   * The role as this device verified it now: its own team record (if a member) or the log replayed,
   * brought up to date with what the hub's log has beyond it.
   * @throws CurbsideError NOT_FOUND (no such role), BAD_SIGNATURE / INVALID_STATEMENT (the log does not verify)
   */
  async verifiedState(roleId: string): Promise<TeamState> {
    const own = await this.teams.state(roleId);
    const base = own && (!this.replayed.has(roleId) || own.index >= this.replayed.get(roleId)!.index) ? own : this.replayed.get(roleId);
    const state = await replayLog(this.core, roleId, base, await this.core.hub.roleLog(roleId, base ? base.index + 1 : 0));
    if (!state?.oncall) throw new CurbsideError(ErrorCode.NOT_FOUND, 'No such on-call role', { roleId });
    if (!own || state.index > own.index) this.replayed.set(roleId, state);
    return state;
  }

  /** Who holds the role now, by its verified log. */
  async holders(roleId: string, at = Date.now()): Promise<string[]> {
    return holdersAt(await this.verifiedState(roleId), at);
  }

  /**
   * For a thread with a role: the users a message goes to (whoever holds the role now and the
   * requester, less this user). Undefined for any other conversation.
   * @throws CurbsideError NOT_FOUND when the requester writes and nobody holds the role now
   */
  async targets(conversationId: string): Promise<ThreadTargets | undefined> {
    const thread = await this.core.hub.roleThread(conversationId);
    if (!thread) return undefined;
    const me = this.core.self().userId;
    const holders = await this.holders(thread.roleId);
    if (holders.length === 0 && me === thread.requesterUserId) {
      throw new CurbsideError(ErrorCode.NOT_FOUND, 'Nobody holds this on-call role now: nothing was sent', { roleId: thread.roleId, conversationId });
    }
    return { roleId: thread.roleId, toUserIds: [...new Set([thread.requesterUserId, ...holders])].filter((u) => u !== me) };
  }

  /**
   * The escalation tiers the verified policy of a care team, or of the role a thread is with, gives a
   * send in that conversation now: its users, and whoever holds its roles now, less this user, the
   * conversation's members (they are asked from the start) and anyone an earlier tier names. Empty
   * without a policy.
   */
  async policyTiers(conversationId: string): Promise<Array<{ afterMs: number; userIds: string[] }>> {
    const thread = await this.core.hub.roleThread(conversationId);
    const policy = thread ? (await this.verifiedState(thread.roleId)).escalation : (await this.teams.state(conversationId))?.escalation;
    if (!policy) return [];
    const taken = new Set([this.core.self().userId, ...(await this.core.hub.conversationMembers(conversationId))]);
    const tiers: Array<{ afterMs: number; userIds: string[] }> = [];
    for (const t of policy.tiers) {
      const users = [...t.userIds];
      for (const roleId of t.roleIds) users.push(...(await this.holders(roleId)));
      const candidates = [...new Set(users)].filter((u) => !taken.has(u));
      // Someone without a device to wrap the key for cannot be escalated to: left out, not a failed send.
      const reachable = new Set((await this.core.listDevices(candidates)).map((d) => d.userId));
      const fresh = candidates.filter((u) => reachable.has(u)).slice(0, Limits.MAX_ESCALATION_TIER_USERS);
      for (const u of fresh) taken.add(u);
      if (fresh.length) tiers.push({ afterMs: t.afterMs, userIds: fresh });
    }
    return tiers;
  }

  /** A message read in a role thread: keep an urgent one's key package, to hand it over if the role changes hands. */
  async noteReceived(envelope: Envelope, content: MessageContent, keyPackage: Uint8Array): Promise<void> {
    if (content.kind !== 'text' || content.priority === undefined || !envelope.body) return;
    const thread = await this.core.hub.roleThread(envelope.conversationId);
    if (!thread || envelope.senderUserId !== thread.requesterUserId) return;
    await this.hold(thread.roleId, envelope.conversationId, {
      seq: envelope.seq,
      messageId: envelope.messageId,
      senderUserId: envelope.senderUserId,
      senderDeviceId: envelope.senderDeviceId,
      clientMessageId: envelope.clientMessageId,
      sentAt: envelope.sentAt,
      body: bytesToBase64(envelope.body),
      keyPackage: bytesToBase64(keyPackage),
    });
  }

  private async hold(roleId: string, conversationId: string, item: HandoffItem): Promise<void> {
    const now = Date.now();
    const all = await this.held();
    const stale = all.filter(([, h], i) => now - h.at > HELD_FOR_MS || i < all.length - (MAX_HELD - 1)).map(([k]) => deleteOp('meta', k));
    const entry: Held = { roleId, conversationId, at: now, item };
    await this.core.store.transaction([...stale, putOp('meta', `${HELD_PREFIX}${conversationId} ${item.seq}`, entry as never)]);
  }

  /** Held messages, oldest first. */
  private async held(): Promise<Array<[string, Held]>> {
    return (await this.core.store.list<Held>('meta')).filter(([k]) => k.startsWith(HELD_PREFIX)).sort(([, a], [, b]) => a.at - b.at);
  }

  /**
   * Hand this device's pending urgent messages of the role's threads to whoever holds it now (not
   * this user). Answers how many were handed over. Messages already acknowledged or expired stay here.
   */
  async handOver(roleId: string): Promise<number> {
    const me = this.core.self().userId;
    const to = (await this.holders(roleId)).filter((u) => u !== me);
    if (to.length === 0) return 0;
    const pending = new Set((await this.pendingAsked()).map((a) => `${a.conversationId} ${a.seq}`));
    const byThread = new Map<string, HandoffItem[]>();
    for (const [, h] of await this.held()) {
      if (h.roleId !== roleId || !pending.has(`${h.conversationId} ${h.item.seq}`)) continue;
      byThread.set(h.conversationId, [...(byThread.get(h.conversationId) ?? []), h.item]);
    }
    let handed = 0;
    for (const [conversationId, items] of byThread) {
      for (const batch of batches(items)) {
        await this.core.sendHandoff(conversationId, { kind: 'handoff', items: batch }, to, batch.map((i) => i.seq));
        handed += batch.length;
      }
    }
    if (handed) this.core.logger.debug({ roleId, handed, to }, 'handed pending urgent messages to the new holders');
    return handed;
  }

  /**
   * The role changed hands by a statement this device verified: if this user held it just before and
   * no longer does, hand the pending urgent messages over. Either way, watch its next shift change.
   */
  async roleChanged(roleId: string, before: TeamState | undefined, after: TeamState, at: number): Promise<void> {
    const me = this.core.self().userId;
    if (!after.oncall) return;
    this.watch(after);
    if (!before?.oncall) return;
    if (!holdersAt(before, at - 1).includes(me) || holdersAt(after, Date.now()).includes(me)) return;
    await this.handOver(roleId);
  }

  /**
   * Watch every role this user may hold (after connecting): when a shift starts or ends and the role
   * leaves this user by the clock alone, hand over what is pending, as for a signed hand-off.
   */
  async watchAll(): Promise<void> {
    const me = this.core.self().userId;
    for (const [, record] of await this.core.store.list<{ state: TeamState }>('teams')) {
      if (record.state.oncall && Object.hasOwn(record.state.members, me)) this.watch(record.state);
    }
  }

  /** Stop watching shift changes (the client went offline). */
  stopWatching(): void {
    for (const t of this.shiftTimers.values()) clearTimeout(t);
    this.shiftTimers.clear();
  }

  private watch(state: TeamState): void {
    clearTimeout(this.shiftTimers.get(state.teamId));
    this.shiftTimers.delete(state.teamId);
    const now = Date.now();
    const next = nextShiftChangeAt(state, now);
    if (next === undefined) return;
    const timer = setTimeout(
      () => {
        this.shiftTimers.delete(state.teamId);
        void this.shiftChanged(state.teamId, next).catch((err: unknown) => this.core.logger.warn({ roleId: state.teamId, err: String(err) }, 'hand-off at a shift change failed'));
      },
      // Past the boundary (setTimeout fires early by a millisecond at times), and within setTimeout's range.
      Math.min(next - now + 50, 2 ** 31 - 1),
    );
    (timer as { unref?: () => void }).unref?.();
    this.shiftTimers.set(state.teamId, timer);
  }

  private async shiftChanged(roleId: string, at: number): Promise<void> {
    const record = await this.core.store.get<{ state: TeamState }>('teams', roleId);
    if (!record?.state.oncall) return;
    const me = this.core.self().userId;
    this.watch(record.state);
    if (holdersAt(record.state, at - 1).includes(me) && !holdersAt(record.state, Date.now()).includes(me)) await this.handOver(roleId);
  }

  /** A hand-off from a previous holder's device: open each original message and show it. */
  async receiveHandoff(envelope: Envelope, content: Extract<MessageContent, { kind: 'handoff' }>): Promise<void> {
    const thread = await this.core.hub.roleThread(envelope.conversationId);
    if (!thread) return;
    const me = this.core.self().userId;
    for (const item of content.items) {
      // The original must come from the thread's requester, from a device their signed list names.
      if (item.senderUserId !== thread.requesterUserId || !(await this.core.deviceLists.isListed(item.senderUserId, item.senderDeviceId))) {
        this.core.logger.warn({ conversationId: envelope.conversationId, seq: item.seq }, 'a handed-over message does not come from the requester’s listed device');
        continue;
      }
      const keyPackage = base64ToBytes(item.keyPackage);
      const body = base64ToBytes(item.body);
      let opened: MessageContent;
      try {
        opened = openMessage(body, keyPackage, { conversationId: envelope.conversationId, senderUserId: item.senderUserId, senderDeviceId: item.senderDeviceId, clientMessageId: item.clientMessageId });
      } catch (e) {
        this.core.logger.warn({ conversationId: envelope.conversationId, seq: item.seq, err: String(e) }, 'a handed-over message does not open');
        continue;
      }
      if (opened.kind !== 'text') continue;
      await this.hold(thread.roleId, envelope.conversationId, item);
      const original: Envelope = { ...item, conversationId: envelope.conversationId, body };
      this.core.events.message({ ...chatMessageOf(original, opened.text, me, opened.priority, opened), handedOffBy: envelope.senderUserId });
    }
  }
}

/** Items in envelopes of at most MAX_HANDOFF_ITEMS messages and MAX_HANDOFF_BODY_BYTES of bodies. */
function batches(items: HandoffItem[]): HandoffItem[][] {
  const out: HandoffItem[][] = [];
  let current: HandoffItem[] = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length >= Math.min(MAX_HANDOFF_ITEMS, Limits.MAX_HANDOFF_MESSAGES) || bytes + item.body.length > MAX_HANDOFF_BODY_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.body.length;
  }
  if (current.length) out.push(current);
  return out;
}
