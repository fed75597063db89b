/**
 * The widget's conversation list: conversations as the hub lists them (kept in the history database
 * too), care-team titles (sealed: loaded once this device holds the team's key), who is online and
 * who is typing in a conversation, and opening a new conversation, care team or thread with an
 * on-call role.
 */
import type { Conversation, CurbsideClient, TypingNotice } from '@curbside/client-sdk';
import type { HistoryDb } from './history.js';
import type { ChatState } from './state.js';

const TYPING_SHOWN_MS = 6000;

export interface ConversationListDeps {
  client: CurbsideClient;
  state: ChatState;
  history: HistoryDb;
  view: {
    list(): void;
    threadHead(): void;
    presence(): void;
    typing(): void;
    open(conversationId: string): void;
  };
}

export class ConversationList {
  constructor(private readonly deps: ConversationListDeps) {}

  /** Keep these conversations and redraw the list (and the open thread's head, if it is one of them). */
  add(list: Conversation[]): void {
    const { state, view } = this.deps;
    for (const c of list) state.conversations.set(c.id, c);
    void this.deps.history.putConversations(list).catch(() => {});
    view.list();
    if (state.current && list.some((c) => c.id === state.current)) view.threadHead();
    for (const c of list) if (c.signed && !state.teamTitles.has(c.id)) void this.loadTeamTitle(c.id);
  }

  /** A care team's title, if this device holds its key; otherwise a `teamDetails` event brings it later. */
  private async loadTeamTitle(teamId: string): Promise<void> {
    try {
      const details = await this.deps.client.teams.details(teamId);
      if (details) this.setTeamTitle(teamId, details.title);
    } catch {
      // The placeholder stays until the key arrives.
    }
  }

  setTeamTitle(teamId: string, title: string): void {
    const { state, view } = this.deps;
    if (state.teamTitles.get(teamId) === title) return;
    state.teamTitles.set(teamId, title);
    view.list();
    if (state.current === teamId) view.threadHead();
  }

  async refresh(): Promise<void> {
    try {
      this.add(await this.deps.client.listConversations());
    } catch {
      // Offline: the list refreshes after the next sync.
    }
  }

  async refreshPresence(conversationId: string): Promise<void> {
    const { state, view } = this.deps;
    if (state.connection !== 'online') return;
    try {
      const online = await this.deps.client.presence(conversationId);
      state.online.set(conversationId, new Set(online.map((o) => o.userId).filter((u) => u !== state.me.sub)));
      if (conversationId === state.current) view.presence();
      view.list();
    } catch {
      // Presence is best effort.
    }
  }

  /** Someone started or stopped typing: shown for a while unless renewed. */
  typing(t: TypingNotice): void {
    const { state, view } = this.deps;
    if (t.userId === state.me.sub) return;
    const byUser = state.typing.get(t.conversationId) ?? new Map<string, number>();
    if (t.typing) byUser.set(t.userId, Date.now() + TYPING_SHOWN_MS);
    else byUser.delete(t.userId);
    state.typing.set(t.conversationId, byUser);
    view.typing();
  }

  /** Drop typing notices that were not renewed (called every second). */
  expireTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const byUser of this.deps.state.typing.values()) {
      for (const [u, until] of byUser) {
        if (until < now) {
          byUser.delete(u);
          changed = true;
        }
      }
    }
    if (changed) this.deps.view.typing();
  }

  /** Open this user's thread with an on-call role and show it. */
  async pageRole(roleId: string, name: string): Promise<void> {
    const c = await this.deps.client.roles.open(roleId);
    this.deps.state.roleNames.set(roleId, name);
    this.add([c]);
    this.deps.view.open(c.id);
  }

  /** A direct conversation with one user and no title; otherwise a care team (titled, or named after its members). */
  async create(userIds: string[], title: string): Promise<void> {
    const { client, view } = this.deps;
    if (userIds.length === 1 && !title) {
      const c = await client.createConversation({ kind: 'direct', peerUserId: userIds[0]! });
      this.add([c]);
      view.open(c.id);
      return;
    }
    const { teamId } = await client.teams.create(title || userIds.join(', '), userIds.map((userId) => ({ userId })));
    await this.refresh();
    view.open(teamId);
  }
}
