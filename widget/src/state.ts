/**
 * What the widget knows, apart from any view: conversations, the thread items it keeps, care-team
 * titles it decrypted, who is typing and online, the connection, and safety keys waiting for an answer.
 * Views read it; the session (SDK events) and the element's actions change it.
 */
import type { AlertState, ConsultPool, Conversation, EscalatedMessage } from '@curbside/client-sdk';
import type { HistoryItem } from './history.js';
import type { Claims } from './claims.js';
import { People } from './people.js';
import { TEAM_TITLE_PENDING } from './words.js';

export type Connection = 'idle' | 'connecting' | 'online' | 'offline' | 'failed';

function order(item: HistoryItem): number {
  return item.seq ?? Number.MAX_SAFE_INTEGER;
}

/** Thread order: the hub's sequence, then (for sends not acknowledged yet) local time. */
export function compareItems(a: HistoryItem, b: HistoryItem): number {
  return order(a) - order(b) || a.at - b.at;
}

export class ChatState {
  me: Claims = {};
  readonly conversations = new Map<string, Conversation>();
  /** Care-team titles as this device decrypted them (the hub holds them sealed). */
  readonly teamTitles = new Map<string, string>();
  /** On-call roles' names, by role id (from the SDK's verified role list). */
  readonly roleNames = new Map<string, string>();
  readonly items = new Map<string, HistoryItem>();
  /** The open conversation. */
  current: string | undefined;
  /** The consult pool whose cases are shown (the "Consults" pool view), instead of a conversation. */
  openPool: string | undefined;
  /** Consult pools as this device last verified them, by pool id. */
  readonly pools = new Map<string, ConsultPool>();
  /** conversation -> user -> shown until (ms). */
  readonly typing = new Map<string, Map<string, number>>();
  /** conversation -> other members online. */
  readonly online = new Map<string, Set<string>>();
  /** Contacts whose safety key changed and who wait for the user's answer, oldest first. */
  pendingIdentity: string[] = [];
  /** A lasting problem shown in the banner even while connected. */
  problem = '';
  connection: Connection = 'idle';
  readonly people: People;
  /** Alerts (urgent messages) as last heard, by `alertKey`. */
  readonly alerts = new Map<string, AlertState>();
  /** Messages an escalation brought to this user (not in their conversations), by `alertKey`. */
  readonly escalated = new Map<string, EscalatedMessage>();

  constructor(onPeopleChanged: () => void) {
    this.people = new People(onPeopleChanged);
  }

  get currentConversation(): Conversation | undefined {
    return this.current ? this.conversations.get(this.current) : undefined;
  }

  /** Messages not yet read, across conversations. */
  unreadCount(): number {
    let n = 0;
    for (const item of this.items.values()) if (item.kind === 'message' && !item.outgoing && !item.read) n += 1;
    return n;
  }

  threadItems(conversationId: string): HistoryItem[] {
    return [...this.items.values()].filter((i) => i.conversationId === conversationId).sort(compareItems);
  }

  /** The other members. */
  others(c: Conversation): string[] {
    return c.memberUserIds.filter((u) => u !== this.me.sub);
  }

  /** The one other member of a 1:1 conversation. */
  peerOf(c: Conversation): string {
    return c.memberUserIds.find((u) => u !== this.me.sub) ?? c.memberUserIds[0] ?? '';
  }

  titleOf(c: Conversation): string {
    // A care team's title is sealed: the decrypted one, else a placeholder (or the plain title of a group
    // that is not a care team, or of a team stored before titles were sealed).
    if (c.roleId !== undefined) {
      // A thread with an on-call role: the role, and (for its holders) who wrote to it.
      const role = this.roleNames.get(c.roleId) ?? this.teamTitles.get(c.roleId) ?? 'On-call role';
      return c.createdBy === this.me.sub ? role : `${role}: ${this.people.name(c.createdBy)}`;
    }
    if (c.kind === 'group') return this.teamTitles.get(c.id) ?? c.title ?? TEAM_TITLE_PENDING;
    const peer = this.peerOf(c);
    return peer ? this.people.name(peer) : 'Conversation';
  }

  /** Secondary text under a conversation's title: the peer's role and department, or the team's size. */
  subtitleOf(c: Conversation): string {
    if (c.roleId !== undefined) return 'On-call role';
    if (c.kind === 'group') return `${c.memberUserIds.length} members`;
    return this.people.detail(this.peerOf(c));
  }

  /** Each conversation's latest message and unread count. */
  summaries(): { last: Map<string, HistoryItem>; unread: Map<string, number> } {
    const last = new Map<string, HistoryItem>();
    const unread = new Map<string, number>();
    for (const item of this.items.values()) {
      const prev = last.get(item.conversationId);
      if (item.kind === 'message' && (!prev || compareItems(prev, item) < 0)) last.set(item.conversationId, item);
      if (item.kind === 'message' && !item.outgoing && !item.read) unread.set(item.conversationId, (unread.get(item.conversationId) ?? 0) + 1);
    }
    return { last, unread };
  }

  /** The alert of a thread item, if it raised one. */
  alertOf(item: HistoryItem): AlertState | undefined {
    return item.seq === undefined ? undefined : this.alerts.get(alertKey(item.conversationId, item.seq));
  }

  /** Alerts this user still has to acknowledge, oldest first, with the text where this device has it. */
  awaitingMe(): Array<{ alert: AlertState; text: string | undefined; escalated: boolean }> {
    const me = this.me.sub;
    if (!me) return [];
    const out: Array<{ alert: AlertState; text: string | undefined; escalated: boolean }> = [];
    for (const [key, alert] of this.alerts) {
      if (alert.state !== 'pending' || !alert.ackFrom.includes(me) || alert.acks.some((a) => a.userId === me)) continue;
      const item = [...this.items.values()].find((i) => i.conversationId === alert.conversationId && i.seq === alert.seq);
      const escalated = this.escalated.get(key);
      out.push({ alert, text: item?.text ?? escalated?.text, escalated: !item && !this.conversations.has(alert.conversationId) });
    }
    return out.sort((a, b) => a.alert.createdAt - b.alert.createdAt);
  }

  addPendingIdentity(userId: string): void {
    if (!this.pendingIdentity.includes(userId)) this.pendingIdentity.push(userId);
  }

  dropPendingIdentity(userId: string): void {
    this.pendingIdentity = this.pendingIdentity.filter((u) => u !== userId);
  }
}

/** An alert's key: its conversation and the seq of the message that raised it. */
export function alertKey(conversationId: string, seq: number): string {
  return `${conversationId}\n${seq}`;
}
