/**
 * `<curbside-chat>`: conversations, 1:1 and care-team threads, composer, delivery and read status,
 * presence and typing, safety numbers and the identity-change warning, on top of the public
 * `@curbside/client-sdk` API only. The element owns the lifecycle (attributes, token, connection)
 * and composes the views (views/) over one state (state.ts), fed by the SDK session (session.ts).
 */
import { CurbsideClient, IndexedDbDeviceStore, isCurbsideError } from '@curbside/client-sdk';
import { browserDeviceId, claimsOf } from './claims.js';
import type { Actions, ViewContext } from './context.js';
import { h } from './dom.js';
import { HistoryDb, type HistoryItem } from './history.js';
import { loadSodiumFrom } from './lazy-sodium.js';
import { ChatSession, type SessionView } from './session.js';
import { ChatState } from './state.js';
import { CSS } from './styles.js';
import { plainError } from './words.js';
import { TypingSender } from './views/composer.js';
import { ConversationList } from './views/conversation-list.js';
import { Dialogs } from './views/dialogs.js';
import { Overlay } from './views/overlay.js';
import { PoolView } from './views/pool-view.js';
import { ThreadView } from './views/thread.js';
import { UrgentPanel } from './views/urgent.js';

/** Where this script was loaded from: the default hub is the server that served the widget. */
const SCRIPT_SRC = typeof document !== 'undefined' ? ((document.currentScript as HTMLScriptElement | null)?.src ?? '') : '';

const PRESENCE_EVERY_MS = 10_000;

let sheet: CSSStyleSheet | undefined;
function styles(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

let idCounter = 0;

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

  private readonly state = new ChatState(() => this.onNamesChanged());
  private readonly shadow: ShadowRoot;
  private session: ChatSession | undefined;
  private store: IndexedDbDeviceStore | undefined;
  private history: HistoryDb | undefined;
  private starting: Promise<void> | undefined;
  private presenceTimer: ReturnType<typeof setInterval> | undefined;
  private typingTimer: ReturnType<typeof setInterval> | undefined;

  private readonly root: HTMLDivElement;
  private readonly banner: HTMLDivElement;
  /** Polite announcements for screen readers that no redrawn node should repeat (a warning on a file being sent). */
  private readonly announcer: HTMLDivElement;
  private readonly list: ConversationList;
  private readonly thread: ThreadView;
  private readonly overlay: Overlay;
  private readonly dialogs: Dialogs;
  private readonly typing: TypingSender;
  private readonly urgent: UrgentPanel;
  private readonly pool: PoolView;

  constructor() {
    super();
    this.shadow = this.attachShadow({ mode: 'open' });
    this.shadow.adoptedStyleSheets = [styles()];
    const actions: Actions = {
      open: (id) => this.open(id),
      back: () => this.back(),
      send: (id, text, retryOf, priority) => void this.session?.send(id, text, retryOf, priority),
      acknowledge: (id, seq) => void this.session?.acknowledge(id, seq),
      createConversation: (ids, title) => (this.session ? this.session.createConversation(ids, title) : Promise.reject(new Error('Not connected yet'))),
      pageRole: (roleId, name) => (this.session ? this.session.pageRole(roleId, name) : Promise.reject(new Error('Not connected yet'))),
      sendFile: (conversationId, file, caption) => void this.session?.sendFile(conversationId, file, caption),
      openAttachment: (item) => void this.session?.openAttachment(item),
      takeRole: (roleId) => (this.session ? this.session.takeRole(roleId) : Promise.reject(new Error('Not connected yet'))),
      typing: (typing) => this.typing.set(typing),
      showSafetyNumber: (userId) => void this.dialogs.showSafetyNumber(userId),
      showMembers: (c) => this.dialogs.showMembers(c),
      openPool: (poolId) => this.openPool(poolId),
    };
    const ctx: ViewContext = {
      state: this.state,
      uid: `cc${++idCounter}`,
      shadow: this.shadow,
      actions,
      client: () => this.session?.client,
      consults: () => this.session?.consults,
      emit: (type, detail) => this.emitEvent(type, detail),
    };
    this.banner = h('div', { class: 'banner', role: 'status', 'aria-live': 'polite' });
    this.announcer = h('div', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
    this.urgent = new UrgentPanel(ctx);
    this.list = new ConversationList(ctx);
    this.thread = new ThreadView(ctx);
    this.typing = new TypingSender(ctx);
    this.pool = new PoolView(ctx);
    const panes = h('div', { class: 'panes' }, this.list.element, this.thread.element, this.pool.element);
    this.overlay = new Overlay(ctx, panes);
    this.dialogs = new Dialogs(ctx, this.overlay);
    this.root = h('div', { class: 'root', role: 'region', 'aria-label': 'Curbside chat', 'data-view': 'list' }, this.banner, this.announcer, this.urgent.announcer, this.urgent.element, panes, this.overlay.element);
    this.shadow.append(this.root);
    this.thread.render();
    this.list.render();
    this.addEventListener('keydown', (e) => this.overlay.onKeydown(e));
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
    return this.state.connection === 'online';
  }

  /** Messages not yet read, across conversations. */
  get unreadCount(): number {
    return this.state.unreadCount();
  }

  private async token(): Promise<string> {
    const source = this.getToken;
    const token = source ? await source() : this.getAttribute('token');
    if (!token) throw new Error('No token: set the token attribute or the getToken property');
    const claims = claimsOf(token);
    // The hub may map the user from another claim than sub (OIDC_USER_CLAIM): the host page says so.
    const sub = this.getAttribute('user-id') || claims.sub;
    const me = this.state.me;
    if (sub) this.state.me = { sub, dev: this.getAttribute('device-id') || claims.dev || (me.sub === sub ? me.dev : undefined) || browserDeviceId(sub) };
    return token;
  }

  private start(): Promise<void> {
    if (this.starting || !this.isConnected) return this.starting ?? Promise.resolve();
    if (!this.getToken && !this.getAttribute('token')) {
      this.setBanner('Waiting for sign-in…');
      return Promise.resolve();
    }
    this.starting = this.run().catch((e: unknown) => {
      this.state.connection = 'failed';
      this.setBanner(plainError(e));
      this.emitEvent('curbside-error', { code: isCurbsideError(e) ? e.code : 'WIDGET', message: plainError(e) });
    });
    return this.starting;
  }

  private async run(): Promise<void> {
    const { state } = this;
    state.connection = 'connecting';
    this.setBanner('Connecting…');
    let first: string | undefined = await this.token();
    const { sub, dev } = state.me;
    if (!sub) throw new Error('The token does not name a user (no sub claim; or set the user-id attribute)');
    this.list.renderMe();
    const hub = this.getAttribute('hub') || (SCRIPT_SRC ? new URL(SCRIPT_SRC).origin : location.origin);
    loadSodiumFrom(SCRIPT_SRC, hub); // while the stores open
    const storeName = this.getAttribute('store') || `${sub}/${dev}`;
    this.store = await IndexedDbDeviceStore.open(storeName);
    const history = await HistoryDb.open(storeName);
    this.history = history;
    for (const c of await history.conversations()) state.conversations.set(c.id, c);
    for (const item of await history.items()) {
      // A send that was in flight when the page went away: its outcome is unknown here.
      if (item.status === 'sending') {
        item.status = 'failed';
        item.reason = 'May not have been sent: the page closed while sending.';
      }
      state.items.set(item.key, item);
    }
    this.list.render();

    const client = new CurbsideClient({
      url: hub,
      store: this.store,
      userId: sub,
      ...(dev ? { deviceId: dev } : {}),
      token: () => {
        const t = first;
        first = undefined;
        return t ?? this.token();
      },
      reconnectDelayMs: 300,
      reconnectDelayMaxMs: 5000,
    });
    const session = new ChatSession(state, this.sessionView, client, history);
    this.session = session;
    state.people.use((ids) => client.directory.lookup(ids), (userId) => client.credentials.check(userId));
    this.presenceTimer = setInterval(() => state.current && void session.refreshPresence(state.current), PRESENCE_EVERY_MS);
    this.typingTimer = setInterval(() => session.expireTyping(), 1000);
    await client.connect();
  }

  private async stop(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    clearInterval(this.presenceTimer);
    clearInterval(this.typingTimer);
    await starting?.catch(() => {});
    const client = this.session?.client;
    this.session = undefined;
    this.state.people.use(undefined);
    await client?.close().catch(() => {});
    await this.store?.close().catch(() => {});
    this.history?.close();
    this.state.connection = 'idle';
  }

  private readonly onBrowserOffline = (): void => {
    // The browser knows the network is gone: say so now instead of waiting for a timeout.
    if (!this.session) return;
    this.state.connection = 'offline';
    this.setBanner('Offline. New messages will appear when the connection returns.');
  };

  private readonly onBrowserOnline = (): void => {
    const client = this.session?.client;
    if (!client) return;
    this.setBanner('Reconnecting…');
    client.connect().catch((e: unknown) => this.setBanner(plainError(e)));
  };

  /** How the session redraws the views. */
  private readonly sessionView: SessionView = {
    banner: (text) => this.setBanner(text),
    list: () => this.list.render(),
    roles: () => void this.list.onCall.refresh(),
    showImage: (url, name) => this.dialogs.showImage(url, name),
    announce: (text) => {
      this.announcer.textContent = text;
    },
    threadHead: () => this.thread.renderHead(),
    presence: () => this.thread.renderPresence(),
    typing: () => this.thread.renderTyping(),
    item: (item: HistoryItem) => {
      if (item.conversationId === this.state.current) this.thread.upsert(item);
      this.pool.onItem(item);
    },
    pools: (poolId) => {
      // Member counts and "Open" rows: ask the hub again (a pool's log changed).
      void this.list.consults.refresh();
      if (poolId === this.state.openPool) this.pool.render();
    },
    identityWarning: () => this.dialogs.showIdentityWarning(),
    linkRequest: (deviceId) => this.dialogs.showLinkRequest(deviceId),
    open: (id) => this.open(id),
    alerts: (announce) => this.urgent.render(announce),
    emit: (type, detail) => this.emitEvent(type, detail),
  };

  /** The directory answered: names replace user ids wherever they are shown. */
  private onNamesChanged(): void {
    this.list.renderMe();
    this.list.render();
    this.thread.renderHead();
    this.thread.renderTyping();
    this.thread.renderItems();
    this.urgent.render(false);
    this.list.consults.render();
    this.pool.render(true);
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
    this.state.current = conversationId;
    this.state.openPool = undefined;
    this.pool.element.hidden = true;
    this.thread.element.hidden = false;
    this.root.dataset.view = 'thread';
    this.thread.render();
    this.list.render();
    this.session?.markAllRead(conversationId);
    void this.session?.refreshPresence(conversationId);
    this.thread.focusComposer();
  }

  /** Show a consult pool's cases (from "Consults") where a conversation's thread would be. */
  openPool(poolId: string): void {
    this.state.current = undefined;
    this.state.openPool = poolId;
    this.thread.render();
    this.thread.element.hidden = true;
    this.pool.element.hidden = false;
    this.root.dataset.view = 'thread';
    this.list.render();
    this.session?.markAllRead(poolId);
    this.pool.open();
  }

  private back(): void {
    this.root.dataset.view = 'list';
    this.list.render();
    if (this.state.openPool) this.list.consults.toggle.focus();
    else this.list.focusRow(this.state.current);
  }
}
