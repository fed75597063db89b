/**
 * The widget's side of the SDK: turns a `CurbsideClient`'s events into state and tells the views
 * what to redraw; sends, marks messages read. Keeps the widget's message history (the SDK hands each
 * message over once). The conversation list (titles, presence, typing, creating conversations) is
 * the `ConversationList`'s, files are `FileTransfers`', consult pools the `ConsultSession`'s.
 */
import {
  ErrorCode,
  isCurbsideError,
  type AlertUpdate,
  type ChatMessage,
  type CurbsideClient,
  type CurbsideError,
  type DecryptionError,
  type Receipt,
  type UnavailableMessage,
} from '@curbside/client-sdk';
import type { HistoryDb, HistoryItem } from './history.js';
import { alertKey, type ChatState } from './state.js';
import { plainError, unavailableText } from './words.js';
import { FileTransfers } from './file-transfers.js';
import { ConsultSession } from './consult-session.js';
import { ConversationList } from './conversation-list.js';

/** What the session asks of the views (the element implements it). */
export interface SessionView {
  banner(text: string): void;
  list(): void;
  threadHead(): void;
  presence(): void;
  typing(): void;
  /** An item changed: show it if its conversation is open. */
  item(item: HistoryItem): void;
  identityWarning(): void;
  linkRequest(deviceId: string): void;
  open(conversationId: string): void;
  /** Alerts changed: redraw the urgent panel (and re-announce it when `announce`). */
  alerts(announce: boolean): void;
  /** An on-call role changed hands or shifts: ask for the roles again. */
  roles(): void;
  /** Show a decrypted image at full size. */
  showImage(url: string, name: string): void;
  /** A consult pool changed (members, hidden cases): redraw the consult views that show it. */
  pools(poolId: string): void;
  /** Say `text` once to screen readers (a polite live region). */
  announce(text: string): void;
  emit(type: string, detail: Record<string, unknown>): void;
}

function statusOf(recipients: HistoryItem['recipients']): 'read' | 'delivered' | 'sent' {
  const values = Object.values(recipients ?? {});
  return values.length && values.every((s) => s === 'read') ? 'read' : values.length && values.every((s) => s !== 'sent') ? 'delivered' : 'sent';
}

export class ChatSession {
  /** Uploads and downloads of files. */
  private readonly files: FileTransfers;
  /** Consult pools: cases, replies, moderation. */
  readonly consults: ConsultSession;
  /** Conversations, care-team titles, who is online and typing. */
  private readonly conversationList: ConversationList;

  constructor(
    private readonly state: ChatState,
    private readonly view: SessionView,
    readonly client: CurbsideClient,
    private readonly history: HistoryDb,
  ) {
    this.conversationList = new ConversationList({ client, state, history, view });
    this.files = new FileTransfers({ client, me: () => state.me.sub ?? '', putItem: (item) => this.putItem(item), view });
    this.consults = new ConsultSession({
      client,
      state,
      putItem: (item) => this.putItem(item),
      openConversation: async (id) => {
        await this.conversationList.refresh();
        view.open(id);
      },
      poolChanged: (poolId) => view.pools(poolId),
    });
    const { state: s, view: v } = this;
    client.on('connected', () => v.banner('Syncing…'));
    client.on('synced', () => {
      s.connection = 'online';
      v.banner(s.problem);
      s.people.refresh();
      void this.conversationList.refresh();
      if (s.current) void this.conversationList.refreshPresence(s.current);
      v.emit('curbside-ready', { userId: s.me.sub });
    });
    client.on('disconnected', ({ reason, willReconnect }) => {
      if (s.connection === 'failed') return;
      s.connection = 'offline';
      s.online.clear();
      v.presence();
      v.list();
      if (reason === 'revoked') v.banner('This device was signed out by an administrator. Messages can no longer be sent or received here.');
      else if (!willReconnect && reason !== 'client') v.banner('Disconnected. Reload the page to sign in again.');
      else v.banner('Offline. New messages will appear when the connection returns.');
    });
    client.on('message', (m) => this.onMessage(m));
    client.on('unavailable', (u) => this.onUnavailable(u));
    client.on('decryptionError', (e) => this.onDecryptionError(e));
    client.on('identityChanged', ({ userId }) => this.onIdentityChanged(userId));
    client.on('receipt', (r) => this.onReceipt(r));
    client.on('typing', (t) => this.conversationList.typing(t));
    client.on('conversation', (c) => this.conversationList.add([c]));
    client.on('teamChanged', (c) => {
      void this.conversationList.refresh();
      if (c.op === 'hold' || c.op === 'schedule') this.view.roles();
      // A pool's members or hidden cases changed: verify its log again, then redraw.
      if (s.pools.has(c.teamId)) void this.consults.pool(c.teamId).catch(() => {});
    });
    client.on('teamDetails', ({ teamId, title }) => this.conversationList.setTeamTitle(teamId, title));
    client.on('membershipMismatch', ({ teamId }) => {
      const c = s.conversations.get(teamId);
      v.banner(`Security warning: the hub's member list for "${c ? s.titleOf(c) : 'a care team'}" does not match the signed list. Members it added on its own get no messages.`);
    });
    client.on('deviceListChanged', (c) => this.onDeviceListChanged(c));
    client.on('deviceListRejected', ({ userId }) => {
      const who = s.people.name(userId);
      v.banner(`Security warning: the hub presented a device or key for ${who} that ${who}’s own devices did not sign. Messages go only to the devices they signed.`);
      v.emit('curbside-security-warning', { userId });
    });
    client.on('linkRequired', ({ code }) =>
      v.banner(`This device is not linked to your account yet, so it cannot send or receive. On a device where you already use Curbside, enter this code when asked: ${code}`),
    );
    client.on('deviceLinked', () => v.banner(''));
    client.on('linkRequest', ({ deviceId }) => v.linkRequest(deviceId));
    client.on('error', (e) => this.onClientError(e));
    client.on('alert', (u) => this.onAlert(u));
    client.on('escalatedMessage', (m) => {
      s.escalated.set(alertKey(m.conversationId, m.seq), m);
      v.alerts(true);
    });
  }

  /** An urgent message's alert changed: keep it, redraw its message and the urgent panel; re-alert the user when asked to answer. */
  private onAlert(update: AlertUpdate): void {
    const { reason, ...alert } = update;
    this.state.alerts.set(alertKey(alert.conversationId, alert.seq), alert);
    for (const item of this.state.items.values()) if (item.conversationId === alert.conversationId && item.seq === alert.seq) this.view.item(item);
    const mine = this.client.alerts.awaitsMe(alert);
    this.view.alerts(mine && (reason === 'raised' || reason === 'repeated' || reason === 'escalated' || reason === 'handed-off'));
    if (mine && reason !== 'acknowledged') {
      this.view.emit('curbside-urgent', { conversationId: alert.conversationId, seq: alert.seq, priority: alert.priority, senderUserId: alert.senderUserId, repeats: alert.repeats, reason });
    }
  }

  /** Acknowledge an urgent message: the hub stops re-notifying, and the sender sees who answered. */
  async acknowledge(conversationId: string, seq: number): Promise<void> {
    try {
      const alert = await this.client.alerts.acknowledge(conversationId, seq);
      this.state.alerts.set(alertKey(conversationId, seq), alert);
      for (const item of this.state.items.values()) if (item.conversationId === conversationId && item.seq === seq) this.view.item(item);
      this.view.alerts(false);
    } catch (e) {
      this.view.banner(`Not acknowledged: ${plainError(e)}`);
    }
  }

  private onClientError(e: CurbsideError): void {
    const fatal = e.code === ErrorCode.AUTH_INVALID || e.code === ErrorCode.AUTH_REQUIRED || e.code === ErrorCode.AUTH_EXPIRED || e.code === ErrorCode.AUTH_REVOKED || e.code === ErrorCode.USER_DISABLED;
    if (fatal) {
      this.state.connection = 'failed';
      this.view.banner(plainError(e));
    } else if (e.code === ErrorCode.IDENTITY_MISMATCH) {
      // Connected, but nobody can encrypt to this device: say so instead of looking healthy.
      this.state.problem = plainError(e);
      this.view.banner(this.state.problem);
    }
    this.view.emit('curbside-error', { code: e.code, message: plainError(e) });
  }

  private onMessage(m: ChatMessage): void {
    const viewing = this.isViewing(m.conversationId);
    const item: HistoryItem = {
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
      ...(m.priority !== 'routine' ? { priority: m.priority } : {}),
      ...(m.attachment ? { attachment: m.attachment } : {}),
      ...(m.consult ? { consult: m.consult } : {}),
      ...(m.pseudonym ? { pseudonym: m.pseudonym } : {}),
    };
    const kept = this.consults.ownEcho(item);
    this.putItem(kept);
    if (m.priority !== 'routine') this.view.alerts(false);
    if (this.state.typing.get(m.conversationId)?.delete(m.senderUserId)) this.view.typing();
    if (!this.state.conversations.has(m.conversationId)) void this.conversationList.refresh();
    if (viewing && !kept.outgoing) void this.client.markRead(m.conversationId, [m.messageId]).catch(() => {});
    if (!kept.outgoing) this.view.emit('curbside-message', { conversationId: m.conversationId, messageId: m.messageId, senderUserId: m.senderUserId, unread: this.state.unreadCount() });
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
    for (const item of this.state.items.values()) {
      if (item.messageId !== r.messageId || !item.outgoing) continue;
      // An acknowledgement (of an urgent message) implies it was read; its own mark is in the timeline.
      item.recipients = this.client.messageStatus(r.messageId) ?? { ...item.recipients, [r.userId]: r.status === 'acknowledged' ? 'read' : r.status };
      item.status = statusOf(item.recipients);
      this.putItem(item);
    }
  }

  /** Drop typing notices that were not renewed (called every second; see `ConversationList`). */
  expireTyping(): void {
    this.conversationList.expireTyping();
  }

  /** A contact's signed device list changed: say so, as for a safety-number change (it is one). */
  private onDeviceListChanged(change: { userId: string; added: string[]; removed: string[] }): void {
    if (change.userId === this.state.me.sub) return;
    const what = change.added.length && change.removed.length ? 'changed devices' : change.added.length ? 'added a device' : 'removed a device';
    this.view.banner(`${this.state.people.name(change.userId)} ${what}, so your safety number with them changed. If it matters, compare it again.`);
    this.view.emit('curbside-devices-changed', change);
  }

  private onIdentityChanged(userId: string): void {
    this.state.addPendingIdentity(userId);
    this.view.emit('curbside-identity-changed', { userId });
    this.view.identityWarning();
  }

  private putItem(item: HistoryItem): void {
    this.state.items.set(item.key, item);
    void this.history.putItems([item]).catch(() => {});
    this.view.item(item);
    this.view.list();
  }

  private isViewing(conversationId: string): boolean {
    const { state } = this;
    return (state.current === conversationId || state.openPool === conversationId) && document.visibilityState === 'visible';
  }

  markAllRead(conversationId: string): void {
    const unread = this.state.threadItems(conversationId).filter((i) => i.kind === 'message' && !i.outgoing && !i.read);
    if (unread.length === 0) return;
    for (const i of unread) i.read = true;
    void this.history.putItems(unread).catch(() => {});
    this.view.list();
    const ids = unread.map((i) => i.messageId).filter((x): x is string => !!x);
    void this.client.markRead(conversationId, ids).catch(() => {});
  }

  async send(conversationId: string, text: string, retryOf?: HistoryItem, priority?: 'urgent'): Promise<void> {
    const localId = retryOf?.localId ?? `local-${crypto.randomUUID()}`;
    const item: HistoryItem = retryOf ?? {
      key: `${conversationId}\n${localId}`,
      conversationId,
      localId,
      kind: 'message',
      senderUserId: this.state.me.sub ?? '',
      text,
      outgoing: true,
      at: Date.now(),
      read: true,
      ...(priority ? { priority } : {}),
    };
    item.status = 'sending';
    delete item.reason;
    this.putItem(item);
    try {
      const ack = await this.client.sendText(conversationId, text, item.priority ? { priority: item.priority } : {});
      item.messageId = ack.messageId;
      item.seq = ack.seq;
      const recipients = this.client.messageStatus(ack.messageId);
      if (recipients) item.recipients = recipients;
      // A receipt may have arrived before the ack did.
      item.status = statusOf(item.recipients);
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

  /** Encrypt and send a file (see `FileTransfers`). */
  sendFile(conversationId: string, file: File, caption: string): Promise<void> {
    return this.files.send(conversationId, file, caption);
  }

  /** Download, decrypt and check a message's file (see `FileTransfers`). */
  openAttachment(item: HistoryItem): Promise<void> {
    return this.files.open(item);
  }

  /** Open this user's thread with an on-call role and show it (see `ConversationList`). */
  pageRole(roleId: string, name: string): Promise<void> {
    return this.conversationList.pageRole(roleId, name);
  }

  /** Take an on-call role now; the previous holder's device hands over what is pending. */
  async takeRole(roleId: string): Promise<void> {
    await this.client.roles.take(roleId);
  }

  /** A direct conversation or a care team, then open it (see `ConversationList`). */
  createConversation(userIds: string[], title: string): Promise<void> {
    return this.conversationList.create(userIds, title);
  }

  /** Who is online in a conversation (see `ConversationList`). */
  refreshPresence(conversationId: string): Promise<void> {
    return this.conversationList.refreshPresence(conversationId);
  }
}
