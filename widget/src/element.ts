/**
 * Long file: the web component holds one shadow root and one state (conversations, threads,
 * dialogs); its views are methods of it. Splitting the views into modules is the next widget step
 * of issue #17.
 *
 * `<curbside-chat>`: conversations, 1:1 and care-team threads, composer, delivery and read status,
 * presence and typing, safety numbers and the identity-change warning, on top of the public
 * `@curbside/client-sdk` API only.
 */
import {
  CurbsideClient,
  IndexedDbDeviceStore,
  isCurbsideError,
  ErrorCode,
  type ChatMessage,
  type Conversation,
  type CurbsideError,
  type DecryptionError,
  type Receipt,
  type TypingNotice,
  type UnavailableMessage,
} from '@curbside/client-sdk';
import { append, h, replaceChildren } from './dom.js';
import { HistoryDb, type HistoryItem } from './history.js';
import { CSS } from './styles.js';
import { TEAM_TITLE_PENDING, TEAM_TITLE_LABEL, plainError, statusText, unavailableText } from './words.js';

/** Where this script was loaded from: the default hub is the server that served the widget. */
const SCRIPT_SRC = typeof document !== 'undefined' ? ((document.currentScript as HTMLScriptElement | null)?.src ?? '') : '';

const TYPING_SEND_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 6000;
const PRESENCE_EVERY_MS = 10_000;

let sheet: CSSStyleSheet | undefined;
function styles(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

interface Claims {
  sub?: string;
  dev?: string;
}

function claimsOf(token: string): Claims {
  try {
    const part = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    return { ...(typeof json.sub === 'string' ? { sub: json.sub } : {}), ...(typeof json.dev === 'string' ? { dev: json.dev } : {}) };
  } catch {
    return {};
  }
}

function order(item: HistoryItem): number {
  return item.seq ?? Number.MAX_SAFE_INTEGER;
}
function compareItems(a: HistoryItem, b: HistoryItem): number {
  return order(a) - order(b) || a.at - b.at;
}

let idCounter = 0;

/**
 * This browser's device id for `user` when tokens name no device (an OpenID Connect provider's):
 * made up once and kept in localStorage, so the device (and its IndexedDB keys) stays the same.
 */
function browserDeviceId(user: string): string {
  const key = `curbside-device-id:${user}`;
  try {
    const kept = localStorage.getItem(key);
    if (kept) return kept;
    const made = `web-${crypto.randomUUID()}`;
    localStorage.setItem(key, made);
    return made;
  } catch {
    // No storage (a sandboxed frame): a device of this page's lifetime.
    return `web-${crypto.randomUUID()}`;
  }
}

/**
 * The `<curbside-chat>` element. Attributes: `hub`, `token`, `store`, `label`, `user-id`, `device-id`.
 * Property: `getToken`. See widget/README.md.
 */
export class CurbsideChatElement extends HTMLElement {
  static readonly observedAttributes = ['token', 'hub', 'store', 'label', 'user-id', 'device-id'];

  private tokenProvider: (() => string | Promise<string>) | undefined;

  /**
   * The host page's token source, called before every connection attempt (so also after expiry).
   * Setting it starts the widget if it was waiting for a token.
   */
  get getToken(): (() => string | Promise<string>) | undefined {
    return this.tokenProvider;
  }
  set getToken(provider: (() => string | Promise<string>) | undefined) {
    this.tokenProvider = provider;
    if (provider && this.isConnected) void this.start();
  }

  private readonly uid = `cc${++idCounter}`;
  private readonly shadow: ShadowRoot;
  private client: CurbsideClient | undefined;
  private store: IndexedDbDeviceStore | undefined;
  private history: HistoryDb | undefined;
  private starting: Promise<void> | undefined;
  private me: Claims = {};
  private readonly conversations = new Map<string, Conversation>();
  /** Care-team titles as this device decrypted them (the hub holds them sealed). */
  private readonly teamTitles = new Map<string, string>();
  private readonly items = new Map<string, HistoryItem>();
  private current: string | undefined;
  private readonly typing = new Map<string, Map<string, number>>();
  private readonly online = new Map<string, Set<string>>();
  private lastTypingSent = 0;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;
  private presenceTimer: ReturnType<typeof setInterval> | undefined;
  private typingTimer: ReturnType<typeof setInterval> | undefined;
  private pendingIdentity: string[] = [];
  /** A lasting problem shown in the banner even while connected. */
  private problem = '';
  private connection: 'idle' | 'connecting' | 'online' | 'offline' | 'failed' = 'idle';

  // Long-lived parts of the view.
  private readonly root: HTMLDivElement;
  private readonly banner: HTMLDivElement;
  private readonly list: HTMLUListElement;
  private readonly meLine: HTMLParagraphElement;
  private readonly newForm: HTMLFormElement;
  private readonly threadPane: HTMLElement;
  private readonly overlay: HTMLDivElement;
  private readonly panes: HTMLDivElement;
  private messageList: HTMLOListElement | undefined;
  private typingLine: HTMLDivElement | undefined;
  private presenceLine: HTMLSpanElement | undefined;
  private composer: HTMLTextAreaElement | undefined;
  private returnFocus: HTMLElement | undefined;

  constructor() {
    super();
    this.shadow = this.attachShadow({ mode: 'open' });
    this.shadow.adoptedStyleSheets = [styles()];
    this.banner = h('div', { class: 'banner', role: 'status', 'aria-live': 'polite' });
    this.meLine = h('p', { class: 'me' });
    this.list = h('ul', { class: 'conversations', role: 'list', 'aria-label': 'Conversations' });
    this.newForm = this.buildNewForm();
    const newButton = h('button', { type: 'button', class: 'new-toggle', 'aria-label': 'New conversation', 'aria-expanded': 'false', 'aria-controls': `${this.uid}-new` }, '+ New');
    newButton.addEventListener('click', () => {
      const open = this.newForm.hidden;
      this.newForm.hidden = !open;
      newButton.setAttribute('aria-expanded', String(open));
      if (open) this.newForm.querySelector('input')?.focus();
    });
    const sidebar = h(
      'nav',
      { class: 'sidebar', 'aria-label': 'Conversations' },
      h('div', { class: 'sidebar-head' }, h('h2', {}, 'Conversations'), newButton),
      this.meLine,
      this.newForm,
      this.list,
    );
    this.threadPane = h('section', { class: 'thread', 'aria-label': 'Conversation' });
    this.overlay = h('div', { class: 'overlay', hidden: true });
    this.panes = h('div', { class: 'panes' }, sidebar, this.threadPane);
    this.root = h('div', { class: 'root', role: 'region', 'aria-label': 'Curbside chat', 'data-view': 'list' }, this.banner, this.panes, this.overlay);
    this.shadow.append(this.root);
    this.renderThread();
    this.renderList();
    this.addEventListener('keydown', (e) => this.onKeydown(e));
  }

  // --- lifecycle -------------------------------------------------------------------------

  connectedCallback(): void {
    // A host page may set `getToken` before this script upgraded the element: take that value over.
    if (Object.prototype.hasOwnProperty.call(this, 'getToken')) {
      const own = (this as { getToken?: () => string | Promise<string> }).getToken;
      delete (this as { getToken?: unknown }).getToken;
      this.getToken = own;
    }
    window.addEventListener('offline', this.onBrowserOffline);
    window.addEventListener('online', this.onBrowserOnline);
    queueMicrotask(() => void this.start());
  }

  disconnectedCallback(): void {
    window.removeEventListener('offline', this.onBrowserOffline);
    window.removeEventListener('online', this.onBrowserOnline);
    void this.stop();
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    if (name === 'token' && newValue && !oldValue && this.isConnected) void this.start();
    if (name === 'label') this.root.setAttribute('aria-label', newValue ?? 'Curbside chat');
  }

  /** Whether the widget is connected to the hub and synced. */
  get connected(): boolean {
    return this.connection === 'online';
  }

  /** Messages not yet read, across conversations. */
  get unreadCount(): number {
    let n = 0;
    for (const item of this.items.values()) if (item.kind === 'message' && !item.outgoing && !item.read) n += 1;
    return n;
  }

  private async token(): Promise<string> {
    const source = this.getToken;
    const token = source ? await source() : this.getAttribute('token');
    if (!token) throw new Error('No token: set the token attribute or the getToken property');
    const claims = claimsOf(token);
    // The hub may map the user from another claim than sub (OIDC_USER_CLAIM): the host page says so.
    const sub = this.getAttribute('user-id') || claims.sub;
    if (sub) this.me = { sub, dev: this.getAttribute('device-id') || claims.dev || (this.me.sub === sub ? this.me.dev : undefined) || browserDeviceId(sub) };
    return token;
  }

  private start(): Promise<void> {
    if (this.starting || !this.isConnected) return this.starting ?? Promise.resolve();
    if (!this.getToken && !this.getAttribute('token')) {
      this.setBanner('Waiting for sign-in…');
      return Promise.resolve();
    }
    this.starting = this.run().catch((e: unknown) => {
      this.connection = 'failed';
      this.setBanner(plainError(e));
      this.emitEvent('curbside-error', { code: isCurbsideError(e) ? e.code : 'WIDGET', message: plainError(e) });
    });
    return this.starting;
  }

  private async run(): Promise<void> {
    this.connection = 'connecting';
    this.setBanner('Connecting…');
    let first: string | undefined = await this.token();
    if (!this.me.sub) throw new Error('The token does not name a user (no sub claim; or set the user-id attribute)');
    this.meLine.textContent = `Signed in as ${this.me.sub}`;
    const storeName = this.getAttribute('store') || `${this.me.sub}/${this.me.dev}`;
    this.store = await IndexedDbDeviceStore.open(storeName);
    this.history = await HistoryDb.open(storeName);
    for (const c of await this.history.conversations()) this.conversations.set(c.id, c);
    for (const item of await this.history.items()) {
      // A send that was in flight when the page went away: its outcome is unknown here.
      if (item.status === 'sending') {
        item.status = 'failed';
        item.reason = 'May not have been sent: the page closed while sending.';
      }
      this.items.set(item.key, item);
    }
    this.renderList();

    const hub = this.getAttribute('hub') || (SCRIPT_SRC ? new URL(SCRIPT_SRC).origin : location.origin);
    const client = new CurbsideClient({
      url: hub,
      store: this.store,
      userId: this.me.sub,
      ...(this.me.dev ? { deviceId: this.me.dev } : {}),
      token: () => {
        const t = first;
        first = undefined;
        return t ?? this.token();
      },
      reconnectDelayMs: 300,
      reconnectDelayMaxMs: 5000,
    });
    this.client = client;
    client.on('connected', () => {
      this.setBanner('Syncing…');
    });
    client.on('synced', () => {
      this.connection = 'online';
      this.setBanner(this.problem);
      void this.refreshConversations();
      if (this.current) void this.refreshPresence(this.current);
      this.emitEvent('curbside-ready', { userId: this.me.sub });
    });
    client.on('disconnected', ({ reason, willReconnect }) => {
      if (this.connection === 'failed') return;
      this.connection = 'offline';
      this.online.clear();
      this.renderPresence();
      this.renderList();
      if (reason === 'revoked') this.setBanner('This device was signed out by an administrator. Messages can no longer be sent or received here.');
      else if (!willReconnect && reason !== 'client') this.setBanner('Disconnected. Reload the page to sign in again.');
      else this.setBanner('Offline. New messages will appear when the connection returns.');
    });
    client.on('message', (m) => this.onMessage(m));
    client.on('unavailable', (u) => this.onUnavailable(u));
    client.on('decryptionError', (e) => this.onDecryptionError(e));
    client.on('identityChanged', ({ userId }) => this.onIdentityChanged(userId));
    client.on('receipt', (r) => this.onReceipt(r));
    client.on('typing', (t) => this.onTyping(t));
    client.on('conversation', (c) => this.addConversations([c]));
    client.on('teamChanged', () => void this.refreshConversations());
    client.on('teamDetails', ({ teamId, title }) => this.setTeamTitle(teamId, title));
    client.on('membershipMismatch', ({ teamId }) => {
      const c = this.conversations.get(teamId);
      this.setBanner(`Security warning: the hub's member list for "${c ? this.titleOf(c) : 'a care team'}" does not match the signed list. Members it added on its own get no messages.`);
    });
    client.on('deviceListChanged', (c) => this.onDeviceListChanged(c));
    client.on('deviceListRejected', ({ userId }) => {
      this.setBanner(`Security warning: the hub presented a device or key for ${userId} that ${userId}’s own devices did not sign. Messages go only to the devices they signed.`);
      this.emitEvent('curbside-security-warning', { userId });
    });
    client.on('linkRequired', ({ code }) =>
      this.setBanner(`This device is not linked to your account yet, so it cannot send or receive. On a device where you already use Curbside, enter this code when asked: ${code}`),
    );
    client.on('deviceLinked', () => this.setBanner(''));
    client.on('linkRequest', ({ deviceId }) => this.showLinkRequest(deviceId));
    client.on('error', (e) => this.onClientError(e));
    this.presenceTimer = setInterval(() => this.current && void this.refreshPresence(this.current), PRESENCE_EVERY_MS);
    this.typingTimer = setInterval(() => this.expireTyping(), 1000);
    await client.connect();
  }

  private async stop(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    clearInterval(this.presenceTimer);
    clearInterval(this.typingTimer);
    await starting?.catch(() => {});
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => {});
    await this.store?.close().catch(() => {});
    this.history?.close();
    this.connection = 'idle';
  }

  private readonly onBrowserOffline = (): void => {
    // The browser knows the network is gone: say so now instead of waiting for a timeout.
    if (!this.client) return;
    this.connection = 'offline';
    this.setBanner('Offline. New messages will appear when the connection returns.');
  };

  private readonly onBrowserOnline = (): void => {
    if (!this.client) return;
    this.setBanner('Reconnecting…');
    this.client.connect().catch((e: unknown) => this.setBanner(plainError(e)));
  };

  private onClientError(e: CurbsideError): void {
    const fatal = e.code === ErrorCode.AUTH_INVALID || e.code === ErrorCode.AUTH_REQUIRED || e.code === ErrorCode.AUTH_EXPIRED || e.code === ErrorCode.AUTH_REVOKED || e.code === ErrorCode.USER_DISABLED;
    if (fatal) {
      this.connection = 'failed';
      this.setBanner(plainError(e));
    } else if (e.code === ErrorCode.IDENTITY_MISMATCH) {
      // Connected, but nobody can encrypt to this device: say so instead of looking healthy.
      this.problem = plainError(e);
      this.setBanner(this.problem);
    }
    this.emitEvent('curbside-error', { code: e.code, message: plainError(e) });
  }

  // --- SDK events --------------------------------------------------------------------------

  private onMessage(m: ChatMessage): void {
    const viewing = this.isViewing(m.conversationId);
    this.putItem({
      key: `${m.conversationId}\n${m.messageId}`,
      conversationId: m.conversationId,
      localId: m.messageId,
      kind: 'message',
      messageId: m.messageId,
      seq: m.seq,
      senderUserId: m.senderUserId,
      text: m.text,
      outgoing: m.outgoing,
      at: m.sentAt,
      read: m.outgoing || viewing,
      ...(m.outgoing ? { status: 'sent' as const } : {}),
    });
    this.clearTyping(m.conversationId, m.senderUserId);
    if (!this.conversations.has(m.conversationId)) void this.refreshConversations();
    if (viewing && !m.outgoing) void this.client?.markRead(m.conversationId, [m.messageId]).catch(() => {});
    if (!m.outgoing) this.emitEvent('curbside-message', { conversationId: m.conversationId, messageId: m.messageId, senderUserId: m.senderUserId, unread: this.unreadCount });
  }

  private onUnavailable(u: UnavailableMessage): void {
    this.putItem({
      key: `${u.conversationId}\n${u.messageId}`,
      conversationId: u.conversationId,
      localId: u.messageId,
      kind: 'unavailable',
      messageId: u.messageId,
      seq: u.seq,
      senderUserId: u.senderUserId,
      text: unavailableText(u.reason),
      outgoing: false,
      at: Date.now(),
      read: true,
      reason: u.reason,
    });
  }

  private onDecryptionError(e: DecryptionError): void {
    this.putItem({
      key: `${e.conversationId}\n${e.messageId}`,
      conversationId: e.conversationId,
      localId: e.messageId,
      kind: 'problem',
      messageId: e.messageId,
      seq: e.seq,
      senderUserId: e.senderUserId,
      text: e.message,
      outgoing: false,
      at: Date.now(),
      read: true,
      reason: e.reason,
    });
  }

  private onReceipt(r: Receipt): void {
    for (const item of this.items.values()) {
      if (item.messageId !== r.messageId || !item.outgoing) continue;
      const statuses = this.client?.messageStatus(r.messageId);
      item.recipients = statuses ?? { ...item.recipients, [r.userId]: r.status };
      const values = Object.values(item.recipients);
      item.status = values.length && values.every((s) => s === 'read') ? 'read' : values.length && values.every((s) => s !== 'sent') ? 'delivered' : 'sent';
      this.putItem(item);
    }
  }

  private onTyping(t: TypingNotice): void {
    if (t.userId === this.me.sub) return;
    const byUser = this.typing.get(t.conversationId) ?? new Map<string, number>();
    if (t.typing) byUser.set(t.userId, Date.now() + TYPING_SHOWN_MS);
    else byUser.delete(t.userId);
    this.typing.set(t.conversationId, byUser);
    this.renderTyping();
  }

  private clearTyping(conversationId: string, userId: string): void {
    if (this.typing.get(conversationId)?.delete(userId)) this.renderTyping();
  }

  private expireTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const byUser of this.typing.values()) {
      for (const [u, until] of byUser) {
        if (until < now) {
          byUser.delete(u);
          changed = true;
        }
      }
    }
    if (changed) this.renderTyping();
  }

  /** A contact's signed device list changed: say so, as for a safety-number change (it is one). */
  private onDeviceListChanged(change: { userId: string; added: string[]; removed: string[] }): void {
    if (change.userId === this.me?.sub) return;
    const what = change.added.length && change.removed.length ? 'changed devices' : change.added.length ? 'added a device' : 'removed a device';
    this.setBanner(`${change.userId} ${what}, so your safety number with them changed. If it matters, compare it again.`);
    this.emitEvent('curbside-devices-changed', change);
  }

  private onIdentityChanged(userId: string): void {
    if (!this.pendingIdentity.includes(userId)) this.pendingIdentity.push(userId);
    this.emitEvent('curbside-identity-changed', { userId });
    this.showIdentityWarning();
  }

  // --- state ---------------------------------------------------------------------------------

  private putItem(item: HistoryItem): void {
    this.items.set(item.key, item);
    void this.history?.putItems([item]).catch(() => {});
    if (item.conversationId === this.current) this.upsertMessageNode(item);
    this.renderList();
  }

  private addConversations(list: Conversation[]): void {
    for (const c of list) this.conversations.set(c.id, c);
    void this.history?.putConversations(list).catch(() => {});
    this.renderList();
    if (this.current && list.some((c) => c.id === this.current)) this.renderThreadHead();
    for (const c of list) if (c.signed && !this.teamTitles.has(c.id)) void this.loadTeamTitle(c.id);
  }

  /** A care team's title, if this device holds its key; otherwise a `teamDetails` event brings it later. */
  private async loadTeamTitle(teamId: string): Promise<void> {
    try {
      const details = await this.client?.teams.details(teamId);
      if (details) this.setTeamTitle(teamId, details.title);
    } catch {
      // The placeholder stays until the key arrives.
    }
  }

  private setTeamTitle(teamId: string, title: string): void {
    if (this.teamTitles.get(teamId) === title) return;
    this.teamTitles.set(teamId, title);
    this.renderList();
    if (this.current === teamId) this.renderThreadHead();
  }

  private async refreshConversations(): Promise<void> {
    if (!this.client) return;
    try {
      this.addConversations(await this.client.listConversations());
    } catch {
      // Offline: the list refreshes after the next sync.
    }
  }

  private async refreshPresence(conversationId: string): Promise<void> {
    if (!this.client || this.connection !== 'online') return;
    try {
      const online = await this.client.presence(conversationId);
      this.online.set(conversationId, new Set(online.map((o) => o.userId).filter((u) => u !== this.me.sub)));
      if (conversationId === this.current) this.renderPresence();
      this.renderList();
    } catch {
      // Presence is best effort.
    }
  }

  private isViewing(conversationId: string): boolean {
    return this.current === conversationId && document.visibilityState === 'visible';
  }

  private threadItems(conversationId: string): HistoryItem[] {
    return [...this.items.values()].filter((i) => i.conversationId === conversationId).sort(compareItems);
  }

  private titleOf(c: Conversation): string {
    // A care team's title is sealed: the decrypted one, else a placeholder (or the plain title of a group
    // that is not a care team, or of a team stored before titles were sealed).
    if (c.kind === 'group') return this.teamTitles.get(c.id) ?? c.title ?? TEAM_TITLE_PENDING;
    return c.memberUserIds.find((u) => u !== this.me.sub) ?? c.memberUserIds[0] ?? 'Conversation';
  }

  private others(c: Conversation): string[] {
    return c.memberUserIds.filter((u) => u !== this.me.sub);
  }

  private emitEvent(type: string, detail: Record<string, unknown>): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  private setBanner(text: string): void {
    this.banner.textContent = text;
  }

  // --- actions -------------------------------------------------------------------------------

  /** Open a conversation's thread (by id). */
  open(conversationId: string): void {
    this.current = conversationId;
    this.root.dataset.view = 'thread';
    this.renderThread();
    this.renderList();
    this.markAllRead(conversationId);
    void this.refreshPresence(conversationId);
    this.composer?.focus();
  }

  private back(): void {
    const id = this.current;
    this.root.dataset.view = 'list';
    this.renderList();
    const button = [...this.list.querySelectorAll<HTMLButtonElement>('button.conv')].find((b) => b.dataset.id === id);
    button?.focus();
  }

  private markAllRead(conversationId: string): void {
    const unread = this.threadItems(conversationId).filter((i) => i.kind === 'message' && !i.outgoing && !i.read);
    if (unread.length === 0) return;
    for (const i of unread) i.read = true;
    void this.history?.putItems(unread).catch(() => {});
    this.renderList();
    const ids = unread.map((i) => i.messageId).filter((x): x is string => !!x);
    void this.client?.markRead(conversationId, ids).catch(() => {});
  }

  private async send(conversationId: string, text: string, retryOf?: HistoryItem): Promise<void> {
    const client = this.client;
    if (!client) return;
    const localId = retryOf?.localId ?? `local-${crypto.randomUUID()}`;
    const item: HistoryItem = retryOf ?? {
      key: `${conversationId}\n${localId}`,
      conversationId,
      localId,
      kind: 'message',
      senderUserId: this.me.sub ?? '',
      text,
      outgoing: true,
      at: Date.now(),
      read: true,
    };
    item.status = 'sending';
    delete item.reason;
    this.putItem(item);
    try {
      const ack = await client.sendText(conversationId, text);
      item.messageId = ack.messageId;
      item.seq = ack.seq;
      const recipients = client.messageStatus(ack.messageId);
      if (recipients) item.recipients = recipients;
      // A receipt may have arrived before the ack did.
      const values = Object.values(item.recipients ?? {});
      item.status = values.length && values.every((s) => s === 'read') ? 'read' : values.length && values.every((s) => s !== 'sent') ? 'delivered' : 'sent';
      this.putItem(item);
    } catch (e) {
      item.status = 'failed';
      item.reason = plainError(e);
      this.putItem(item);
      if (isCurbsideError(e) && e.code === ErrorCode.UNTRUSTED_IDENTITY) {
        const userId = (e.details as { userId?: unknown } | undefined)?.userId;
        if (typeof userId === 'string') this.onIdentityChanged(userId);
      }
    }
  }

  private async createConversation(userIds: string[], title: string): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('Not connected yet');
    if (userIds.length === 1 && !title) {
      const c = await client.createConversation({ kind: 'direct', peerUserId: userIds[0]! });
      this.addConversations([c]);
      this.open(c.id);
      return;
    }
    const { teamId } = await client.teams.create(title || userIds.join(', '), userIds.map((userId) => ({ userId })));
    await this.refreshConversations();
    this.open(teamId);
  }

  private onKeydown(e: KeyboardEvent): void {
    if (this.overlay.hidden) return;
    if (e.key === 'Escape' && this.overlay.dataset.kind !== 'identity') {
      e.preventDefault();
      this.closeOverlay();
      return;
    }
    if (e.key === 'Tab') {
      // Keep focus inside the open dialog.
      const focusable = [...this.overlay.querySelectorAll<HTMLElement>('button, [href], input, textarea, [tabindex]:not([tabindex="-1"])')].filter((el) => !el.hasAttribute('disabled'));
      if (focusable.length === 0) return;
      const first = focusable[0]!;
      const last = focusable[focusable.length - 1]!;
      const active = this.shadow.activeElement;
      if (e.shiftKey && active === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        first.focus();
      }
    }
  }

  // --- views -----------------------------------------------------------------------------------

  private buildNewForm(): HTMLFormElement {
    const people = h('input', { name: 'people', type: 'text', required: true, autocomplete: 'off', 'aria-describedby': `${this.uid}-people-help` });
    const title = h('input', { name: 'title', type: 'text', autocomplete: 'off', maxlength: '120' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'new', id: `${this.uid}-new`, hidden: true, 'aria-label': 'New conversation' },
      h('label', {}, 'People (user IDs, comma-separated)', people),
      h('span', { class: 'sr-only', id: `${this.uid}-people-help` }, 'One person starts a 1:1 conversation; several, or a name, start a care team.'),
      h('label', {}, TEAM_TITLE_LABEL, title),
      error,
      h('button', { type: 'submit', class: 'primary' }, 'Start'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const ids = people.value
        .split(/[\s,]+/)
        .map((s) => s.trim())
        .filter((s) => s && s !== this.me.sub);
      if (ids.length === 0) {
        error.textContent = 'Enter at least one other person’s user ID.';
        return;
      }
      error.textContent = '';
      const submit = form.querySelector('button[type="submit"]') as HTMLButtonElement;
      submit.disabled = true;
      this.createConversation([...new Set(ids)], title.value.trim()).then(
        () => {
          form.reset();
          form.hidden = true;
          submit.disabled = false;
          this.shadow.querySelector('.sidebar-head button')?.setAttribute('aria-expanded', 'false');
        },
        (err: unknown) => {
          submit.disabled = false;
          error.textContent = plainError(err);
        },
      );
    });
    return form;
  }

  private renderList(): void {
    const convs = [...this.conversations.values()];
    const last = new Map<string, HistoryItem>();
    const unread = new Map<string, number>();
    for (const item of this.items.values()) {
      const prev = last.get(item.conversationId);
      if (item.kind === 'message' && (!prev || compareItems(prev, item) < 0)) last.set(item.conversationId, item);
      if (item.kind === 'message' && !item.outgoing && !item.read) unread.set(item.conversationId, (unread.get(item.conversationId) ?? 0) + 1);
    }
    convs.sort((a, b) => (last.get(b.id)?.at ?? b.createdAt) - (last.get(a.id)?.at ?? a.createdAt));
    const focusedId = (this.shadow.activeElement as HTMLElement | null)?.dataset?.id;
    const rows = convs.map((c) => {
      const n = unread.get(c.id) ?? 0;
      const preview = last.get(c.id);
      const online = this.online.get(c.id);
      const name = this.titleOf(c);
      const label = `${name}${c.kind === 'group' ? ', care team' : ''}${n ? `, ${n} unread` : ''}`;
      const button = h(
        'button',
        { type: 'button', class: 'conv', 'data-id': c.id, 'aria-label': label, 'aria-current': c.id === this.current ? 'true' : undefined },
        c.kind === 'direct' ? h('span', { class: `dot${this.connection !== 'online' ? ' unknown' : online?.size ? ' online' : ''}`, 'aria-hidden': 'true' }) : h('span', { class: 'team-tag', 'aria-hidden': 'true' }, 'Team'),
        h('span', { class: 'name' }, name),
        n ? h('span', { class: 'badge', 'aria-hidden': 'true' }, String(n)) : h('span'),
        h('span', { class: 'preview' }, preview ? `${preview.outgoing ? 'You: ' : ''}${preview.text}` : c.kind === 'group' ? `${c.memberUserIds.length} members` : 'No messages yet'),
      );
      button.addEventListener('click', () => this.open(c.id));
      return h('li', { role: 'listitem' }, button);
    });
    replaceChildren(this.list, ...(rows.length ? rows : [h('li', { class: 'empty', role: 'listitem' }, 'No conversations yet.')]));
    if (focusedId) [...this.list.querySelectorAll<HTMLButtonElement>('button.conv')].find((b) => b.dataset.id === focusedId)?.focus();
    this.emitEvent('curbside-unread', { unread: this.unreadCount });
  }

  private renderThread(): void {
    const c = this.current ? this.conversations.get(this.current) : undefined;
    if (!c) {
      this.messageList = undefined;
      this.composer = undefined;
      this.typingLine = undefined;
      this.presenceLine = undefined;
      replaceChildren(this.threadPane, h('p', { class: 'placeholder' }, 'Choose a conversation, or start a new one.'));
      return;
    }
    const headingId = `${this.uid}-thread-title`;
    this.threadPane.setAttribute('aria-labelledby', headingId);
    this.messageList = h('ol', { class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages', tabindex: '0' });
    this.typingLine = h('div', { class: 'typing', role: 'status', 'aria-live': 'polite' });
    const textarea = h('textarea', { rows: '1', 'aria-label': 'Message', placeholder: 'Write a message', 'aria-describedby': `${this.uid}-composer-help` });
    this.composer = textarea;
    const form = h(
      'form',
      { class: 'composer', 'aria-label': 'Send a message' },
      textarea,
      h('span', { class: 'sr-only', id: `${this.uid}-composer-help` }, 'Enter sends; Shift+Enter adds a new line.'),
      h('button', { type: 'submit', class: 'primary' }, 'Send'),
    );
    const submit = (): void => {
      const text = textarea.value.trim();
      if (!text || !this.current) return;
      textarea.value = '';
      this.sendTyping(false);
      void this.send(this.current, text);
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    textarea.addEventListener('input', () => this.sendTyping(textarea.value.length > 0));
    textarea.addEventListener('blur', () => this.sendTyping(false));
    replaceChildren(this.threadPane, h('header', { class: 'thread-head' }), this.messageList, this.typingLine, form);
    this.renderThreadHead();
    for (const item of this.threadItems(c.id)) this.upsertMessageNode(item);
    this.renderTyping();
    this.messageList.scrollTop = this.messageList.scrollHeight;
  }

  private renderThreadHead(): void {
    const c = this.current ? this.conversations.get(this.current) : undefined;
    const head = this.threadPane.querySelector('.thread-head');
    if (!c || !head) return;
    const back = h('button', { type: 'button', class: 'back', 'aria-label': 'Back to conversations' }, '←');
    back.addEventListener('click', () => this.back());
    this.presenceLine = h('span', { class: 'presence' });
    const safety = h('button', { type: 'button' }, c.kind === 'group' ? 'Members & safety numbers' : 'Safety number');
    safety.addEventListener('click', () => (c.kind === 'group' ? this.showMembers(c) : void this.showSafetyNumber(this.others(c)[0] ?? '')));
    replaceChildren(head, back, h('h2', { id: `${this.uid}-thread-title` }, this.titleOf(c)), this.presenceLine, safety);
    this.renderPresence();
  }

  private renderPresence(): void {
    const c = this.current ? this.conversations.get(this.current) : undefined;
    if (!c || !this.presenceLine) return;
    if (this.connection !== 'online') {
      // What the hub said before the connection dropped may no longer be true: say we do not know.
      replaceChildren(this.presenceLine, h('span', { class: 'dot unknown', 'aria-hidden': 'true' }), 'Presence unknown while offline');
      return;
    }
    const online = this.online.get(c.id) ?? new Set<string>();
    const text = c.kind === 'group' ? `${online.size} of ${this.others(c).length} online` : online.size ? 'Online' : 'Offline';
    replaceChildren(this.presenceLine, h('span', { class: `dot${online.size ? ' online' : ''}`, 'aria-hidden': 'true' }), text);
  }

  private renderTyping(): void {
    if (!this.typingLine || !this.current) return;
    const who = [...(this.typing.get(this.current)?.keys() ?? [])];
    this.typingLine.textContent = who.length === 0 ? '' : who.length === 1 ? `${who[0]} is typing…` : `${who.join(', ')} are typing…`;
  }

  private sendTyping(typing: boolean): void {
    const client = this.client;
    const id = this.current;
    if (!client || !id || this.connection !== 'online') return;
    clearTimeout(this.typingIdle);
    const now = Date.now();
    if (typing) {
      this.typingIdle = setTimeout(() => this.sendTyping(false), TYPING_IDLE_MS);
      if (now - this.lastTypingSent < TYPING_SEND_EVERY_MS) return;
      this.lastTypingSent = now;
    } else {
      if (this.lastTypingSent === 0) return;
      this.lastTypingSent = 0;
    }
    void client.setTyping(id, typing).catch(() => {});
  }

  private upsertMessageNode(item: HistoryItem): void {
    const list = this.messageList;
    if (!list) return;
    const existing = [...list.children].find((el) => (el as HTMLElement).dataset.key === item.key) as HTMLElement | undefined;
    // Consecutive "not available" markers read as one.
    if (!existing && item.kind === 'unavailable') {
      const prev = this.threadItems(item.conversationId).filter((i) => compareItems(i, item) < 0).pop();
      if (prev?.kind === 'unavailable' && prev.reason === item.reason) return;
    }
    const node = this.messageNode(item);
    if (existing) {
      existing.replaceWith(node);
      return;
    }
    const stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const later = [...list.children].find((el) => {
      const other = this.items.get((el as HTMLElement).dataset.key ?? '');
      return other !== undefined && compareItems(item, other) < 0;
    });
    list.insertBefore(node, later ?? null);
    if (stickToBottom || item.outgoing) list.scrollTop = list.scrollHeight;
  }

  private messageNode(item: HistoryItem): HTMLLIElement {
    if (item.kind === 'unavailable') return h('li', { class: 'notice', 'data-key': item.key, role: 'listitem' }, item.text);
    if (item.kind === 'problem') {
      return h('li', { class: 'notice problem', 'data-key': item.key, role: 'listitem' }, `Message from ${item.senderUserId} could not be shown. ${item.text}`);
    }
    const time = new Date(item.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const c = this.conversations.get(item.conversationId);
    const meta = h('div', { class: 'meta' }, item.outgoing ? `You · ${time}` : `${item.senderUserId} · ${time}`);
    if (item.outgoing) {
      const total = c ? this.others(c).length : 0;
      append(meta, ' · ', h('span', { class: `status ${item.status ?? ''}`, 'data-status': item.status ?? '' }, statusText(item, total)));
      if (item.status === 'failed') {
        const retry = h('button', { type: 'button', class: 'retry' }, 'Retry');
        retry.addEventListener('click', () => void this.send(item.conversationId, item.text, item));
        append(meta, ' ', retry);
      }
    }
    return h(
      'li',
      { class: `msg${item.outgoing ? ' out' : ''}`, 'data-key': item.key, role: 'listitem', 'aria-label': item.outgoing ? 'You said' : `${item.senderUserId} said` },
      h('div', { class: 'bubble' }, item.text),
      meta,
    );
  }

  // --- dialogs ---------------------------------------------------------------------------------

  private openOverlay(kind: string, dialog: HTMLElement, focus: HTMLElement | undefined): void {
    if (this.overlay.hidden) this.returnFocus = (this.shadow.activeElement as HTMLElement | null) ?? undefined;
    this.overlay.dataset.kind = kind;
    replaceChildren(this.overlay, dialog);
    this.overlay.hidden = false;
    this.panes.inert = true; // modal: the rest of the widget cannot be reached while a dialog is open
    (focus ?? dialog).focus();
  }

  private closeOverlay(): void {
    this.overlay.hidden = true;
    this.overlay.replaceChildren();
    this.panes.inert = false;
    delete this.overlay.dataset.kind;
    if (this.pendingIdentity.length) {
      this.showIdentityWarning();
      return;
    }
    this.returnFocus?.focus();
    this.returnFocus = undefined;
  }

  private showIdentityWarning(): void {
    const userId = this.pendingIdentity[0];
    if (!userId || this.overlay.dataset.kind === 'identity') return;
    const titleId = `${this.uid}-identity-title`;
    const descId = `${this.uid}-identity-desc`;
    const accept = h('button', { type: 'button', class: 'danger' }, 'Accept the new safety number');
    const view = h('button', { type: 'button' }, 'Compare safety number');
    const status = h('p', { role: 'status' });
    accept.addEventListener('click', () => {
      accept.disabled = true;
      this.client?.trust.acceptIdentity(userId).then(
        () => {
          this.pendingIdentity = this.pendingIdentity.filter((u) => u !== userId);
          this.closeOverlay();
          this.emitEvent('curbside-identity-accepted', { userId });
        },
        (e: unknown) => {
          accept.disabled = false;
          status.textContent = plainError(e);
        },
      );
    });
    view.addEventListener('click', () => {
      this.pendingIdentity = this.pendingIdentity.filter((u) => u !== userId);
      delete this.overlay.dataset.kind;
      void this.showSafetyNumber(userId, { afterChange: true });
    });
    const dialog = h(
      'div',
      { class: 'dialog warning', role: 'alertdialog', 'aria-modal': 'true', 'aria-labelledby': titleId, 'aria-describedby': descId, tabindex: '-1' },
      h('h2', { id: titleId }, `${userId}’s safety number changed`),
      h(
        'div',
        { id: descId },
        h('p', {}, `${userId} may have reinstalled the app or signed in on a new device. It can also mean someone is trying to intercept your messages.`),
        h('p', {}, `Nothing more is sent to ${userId} until you accept. If this matters, compare the safety number with them in person or by phone first.`),
      ),
      status,
      h('div', { class: 'actions' }, view, accept),
    );
    this.openOverlay('identity', dialog, accept);
  }

  /** Another device of this user waits to be linked: ask for the code it shows. */
  private showLinkRequest(deviceId: string): void {
    const client = this.client;
    if (!client || this.overlay.dataset.kind === 'identity') return;
    const titleId = `${this.uid}-link-title`;
    const input = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', 'aria-label': 'Code shown on the new device' });
    const status = h('p', { role: 'status' });
    const link = h('button', { type: 'submit', class: 'primary' }, 'Link device');
    const cancel = h('button', { type: 'button' }, 'Not now');
    cancel.addEventListener('click', () => this.closeOverlay());
    const form = h('form', {}, h('p', {}, `A new device (${deviceId}) signed in to your account. If it is yours, enter the code it shows. If it is not, do not link it and tell your administrator.`), input, status, h('div', { class: 'actions' }, cancel, link));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      link.disabled = true;
      client.devices.link({ deviceId, code: input.value }).then(
        () => {
          this.closeOverlay();
          this.emitEvent('curbside-device-linked', { deviceId });
        },
        (e: unknown) => {
          link.disabled = false;
          status.textContent = plainError(e);
        },
      );
    });
    const dialog = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, tabindex: '-1' }, h('h2', { id: titleId }, 'Link a new device?'), form);
    this.openOverlay('link', dialog, input);
  }

  private async showSafetyNumber(userId: string, options: { afterChange?: boolean } = {}): Promise<void> {
    const client = this.client;
    if (!client || !userId) return;
    const titleId = `${this.uid}-safety-title`;
    const body = h('div', {}, h('p', { role: 'status' }, 'Computing the safety number…'));
    const close = h('button', { type: 'button' }, 'Close');
    close.addEventListener('click', () => this.closeOverlay());
    const actions = h('div', { class: 'actions' }, close);
    const dialog = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, tabindex: '-1' }, h('h2', { id: titleId }, `Safety number with ${userId}`), body, actions);
    this.openOverlay('safety', dialog, close);
    try {
      const fp = await client.trust.safetyNumber(userId);
      const groups = fp.displayString.match(/\d{5}/g) ?? [fp.displayString];
      replaceChildren(
        body,
        ...(fp.state === 'changed'
          ? [h('p', { class: 'form-error', role: 'alert' }, `${userId}’s safety key changed. This is the new number: compare it before you accept the new key.`)]
          : fp.state === 'devices-changed'
            ? [h('p', { class: 'form-error', role: 'alert' }, `${userId}’s devices changed since you verified them. This is the new number: compare it again.`)]
            : []),
        h('p', {}, `Compare these numbers with ${userId}, in person or by phone. If they match on both screens, your messages are end-to-end encrypted between your devices.`),
        h('p', { class: 'digits', 'aria-label': `Safety number: ${groups.join(' ')}` }, ...groups.map((g) => h('span', {}, g))),
      );
      if (fp.state === 'changed') {
        // Verifying needs the new key accepted first: the warning offers that.
        if (!this.pendingIdentity.includes(userId)) this.pendingIdentity.push(userId);
        return;
      }
      const verify = h('button', { type: 'button', class: 'primary' }, 'Mark as verified');
      verify.addEventListener('click', () => {
        verify.disabled = true;
        client.trust.markVerified(userId).then(
          () => {
            replaceChildren(actions, h('p', { class: 'verified', role: 'status' }, `✓ ${userId} verified`), close);
            close.focus();
          },
          (e: unknown) => {
            verify.disabled = false;
            append(body, h('p', { class: 'form-error', role: 'alert' }, plainError(e)));
          },
        );
      });
      actions.prepend(verify);
    } catch (e) {
      if (isCurbsideError(e) && e.code === ErrorCode.UNTRUSTED_IDENTITY) {
        // The key changed: the user must decide before anything else.
        if (!this.pendingIdentity.includes(userId)) this.pendingIdentity.push(userId);
        if (options.afterChange || this.overlay.dataset.kind === 'safety') {
          delete this.overlay.dataset.kind;
          this.showIdentityWarning();
        }
        return;
      }
      replaceChildren(body, h('p', { class: 'form-error', role: 'alert' }, plainError(e)));
    }
  }

  private showMembers(c: Conversation): void {
    const titleId = `${this.uid}-members-title`;
    const close = h('button', { type: 'button' }, 'Close');
    close.addEventListener('click', () => this.closeOverlay());
    const rows = this.others(c).map((u) => {
      const b = h('button', { type: 'button', 'aria-label': `Safety number with ${u}` }, 'Safety number');
      b.addEventListener('click', () => void this.showSafetyNumber(u));
      const role = c.roles?.[u];
      return h('li', { role: 'listitem' }, h('span', {}, role && role !== 'member' ? `${u} (${role})` : u), b);
    });
    const dialog = h(
      'div',
      { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, tabindex: '-1' },
      h('h2', { id: titleId }, `${this.titleOf(c)}: members`),
      h('ul', { class: 'members', role: 'list' }, ...rows),
      h('div', { class: 'actions' }, close),
    );
    this.openOverlay('members', dialog, close);
  }
}
