/**
 * The open conversation: its header (name or care-team title in full, role, presence, safety
 * numbers), the messages as a log, who is typing, and the composer.
 */
import { verifiedBadge } from './badge.js';
import { attachmentBlock } from './attachment.js';
import { append, h, replaceChildren } from '../dom.js';
import type { HistoryItem } from '../history.js';
import { compareItems } from '../state.js';
import type { ViewContext } from '../context.js';
import { alertTimeline, consultLabel, pseudonymName, statusText } from '../words.js';
import { composer } from './composer.js';

export class ThreadView {
  readonly element: HTMLElement;
  private messageList: HTMLOListElement | undefined;
  /** The scrolling log around the list (a live region; the list inside keeps its list semantics). */
  private scroller: HTMLDivElement | undefined;
  private typingLine: HTMLDivElement | undefined;
  private presenceLine: HTMLSpanElement | undefined;
  private textarea: HTMLTextAreaElement | undefined;
  /** Sends files with the open thread's composer (its text is their caption); undefined with no thread open. */
  private sendFiles: ((files: readonly File[]) => void) | undefined;

  constructor(private readonly ctx: ViewContext) {
    this.element = h('section', { class: 'thread', 'aria-label': 'Conversation' });
    // Files dropped anywhere on the open thread are sent like attached ones.
    const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes('Files');
    this.element.addEventListener('dragover', (e) => {
      if (!hasFiles(e) || !this.sendFiles) return;
      e.preventDefault();
      this.element.classList.add('dropping');
    });
    this.element.addEventListener('dragleave', () => this.element.classList.remove('dropping'));
    this.element.addEventListener('drop', (e) => {
      this.element.classList.remove('dropping');
      if (!hasFiles(e) || !this.sendFiles) return;
      e.preventDefault();
      this.sendFiles([...(e.dataTransfer?.files ?? [])]);
    });
  }

  focusComposer(): void {
    this.textarea?.focus();
  }

  render(): void {
    const c = this.ctx.state.currentConversation;
    if (!c) {
      this.messageList = undefined;
      this.scroller = undefined;
      this.textarea = undefined;
      this.sendFiles = undefined;
      this.typingLine = undefined;
      this.presenceLine = undefined;
      replaceChildren(this.element, h('p', { class: 'placeholder' }, 'Choose a conversation, or start a new one.'));
      return;
    }
    this.element.removeAttribute('aria-label');
    this.element.setAttribute('aria-labelledby', `${this.ctx.uid}-thread-title`);
    this.messageList = h('ol', { class: 'messages' });
    this.scroller = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages', tabindex: '0' }, this.messageList);
    this.typingLine = h('div', { class: 'typing', role: 'status', 'aria-live': 'polite' });
    const { form, textarea, sendFiles } = composer(this.ctx);
    this.sendFiles = sendFiles;
    this.textarea = textarea;
    replaceChildren(this.element, h('header', { class: 'thread-head' }), this.scroller, this.typingLine, form);
    this.renderHead();
    for (const item of this.ctx.state.threadItems(c.id)) this.upsert(item);
    this.renderTyping();
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  renderHead(): void {
    const { state, uid, actions } = this.ctx;
    const c = state.currentConversation;
    const head = this.element.querySelector('.thread-head');
    if (!c || !head) return;
    const back = h('button', { type: 'button', class: 'back', 'aria-label': 'Back to conversations' }, '←');
    back.addEventListener('click', () => actions.back());
    this.presenceLine = h('span', { class: 'presence' });
    const safety = h('button', { type: 'button', class: 'safety' }, c.kind === 'group' ? 'Members & safety numbers' : 'Safety number');
    safety.addEventListener('click', () => (c.kind === 'group' ? actions.showMembers(c) : actions.showSafetyNumber(state.peerOf(c))));
    const subtitle = c.kind === 'direct' ? state.subtitleOf(c) : '';
    replaceChildren(
      head,
      back,
      h(
        'div',
        { class: 'title' },
        h('h2', { id: `${uid}-thread-title` }, state.titleOf(c)),
        c.kind === 'direct' ? verifiedBadge(this.ctx, state.peerOf(c)) : false,
        subtitle ? h('p', { class: 'detail' }, subtitle) : false,
        this.presenceLine,
      ),
      safety,
    );
    this.renderPresence();
  }

  renderPresence(): void {
    const { state } = this.ctx;
    const c = state.currentConversation;
    if (!c || !this.presenceLine) return;
    if (state.connection !== 'online') {
      // What the hub said before the connection dropped may no longer be true: say we do not know.
      replaceChildren(this.presenceLine, h('span', { class: 'dot unknown', 'aria-hidden': 'true' }), 'Presence unknown while offline');
      return;
    }
    const online = state.online.get(c.id) ?? new Set<string>();
    const text = c.kind === 'group' ? `${online.size} of ${state.others(c).length} online` : online.size ? 'Online' : 'Offline';
    replaceChildren(this.presenceLine, h('span', { class: `dot${online.size ? ' online' : ''}`, 'aria-hidden': 'true' }), text);
    if (c.kind === 'group') this.presenceLine.title = [...online].map((u) => state.people.name(u)).join(', ');
  }

  renderTyping(): void {
    const { state } = this.ctx;
    if (!this.typingLine || !state.current) return;
    const who = [...(state.typing.get(state.current)?.keys() ?? [])].map((u) => state.people.name(u));
    this.typingLine.textContent = who.length === 0 ? '' : who.length === 1 ? `${who[0]} is typing…` : `${who.join(', ')} are typing…`;
  }

  /** Show an item of the open conversation, in thread order, or replace its earlier node. */
  upsert(item: HistoryItem): void {
    const list = this.messageList;
    const scroller = this.scroller;
    if (!list || !scroller) return;
    const { state } = this.ctx;
    const existing = [...list.children].find((el) => (el as HTMLElement).dataset.key === item.key) as HTMLElement | undefined;
    // Consecutive "not available" markers read as one.
    if (!existing && item.kind === 'unavailable') {
      const prev = state.threadItems(item.conversationId).filter((i) => compareItems(i, item) < 0).pop();
      if (prev?.kind === 'unavailable' && prev.reason === item.reason) return;
    }
    const node = this.messageNode(item);
    if (existing) {
      existing.replaceWith(node);
      return;
    }
    const stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    const later = [...list.children].find((el) => {
      const other = state.items.get((el as HTMLElement).dataset.key ?? '');
      return other !== undefined && compareItems(item, other) < 0;
    });
    list.insertBefore(node, later ?? null);
    if (stickToBottom || item.outgoing) scroller.scrollTop = scroller.scrollHeight;
  }

  /** Names changed (the directory answered): redraw the messages' senders. */
  renderItems(): void {
    for (const el of [...(this.messageList?.children ?? [])]) {
      const item = this.ctx.state.items.get((el as HTMLElement).dataset.key ?? '');
      if (item && !item.outgoing) el.replaceWith(this.messageNode(item));
    }
  }

  private messageNode(item: HistoryItem): HTMLLIElement {
    const { state, actions } = this.ctx;
    if (item.kind === 'unavailable') return h('li', { class: 'notice', 'data-key': item.key, role: 'listitem' }, item.text);
    // A pseudonymous consult post names no one: "A verified Dermatology" ("(you)" on the asking device).
    const sender = item.pseudonym ? pseudonymName(item.pseudonym) : state.people.name(item.senderUserId);
    if (item.kind === 'problem') {
      return h('li', { class: 'notice problem', 'data-key': item.key, role: 'listitem' }, `Message from ${sender} could not be shown. ${item.text}`);
    }
    const time = new Date(item.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const c = state.conversations.get(item.conversationId);
    const meta = h('div', { class: 'meta' }, item.outgoing && !item.pseudonym ? `You · ${time}` : `${sender} · ${time}`);
    if (item.outgoing) {
      const total = c ? state.others(c).length : 0;
      append(meta, ' · ', h('span', { class: `status ${item.status ?? ''}`, 'data-status': item.status ?? '' }, statusText(item, total)));
      if (item.status === 'failed') {
        const retry = h('button', { type: 'button', class: 'retry' }, 'Retry');
        retry.addEventListener('click', () => actions.send(item.conversationId, item.text, item));
        append(meta, ' ', retry);
      }
    }
    const alert = state.alertOf(item);
    const urgency = item.priority ? h('span', { class: 'badge urgent-badge' }, item.priority === 'emergent' ? 'Emergent' : 'Urgent') : false;
    let answer: HTMLElement | false = false;
    if (alert && !item.outgoing && state.me.sub && alert.state === 'pending' && alert.ackFrom.includes(state.me.sub) && !alert.acks.some((a) => a.userId === state.me.sub)) {
      answer = h('button', { type: 'button', class: 'danger ack' }, 'Acknowledge');
      answer.addEventListener('click', () => actions.acknowledge(item.conversationId, item.seq!));
    }
    return h(
      'li',
      { class: `msg${item.outgoing ? ' out' : ''}${item.priority ? ' urgent' : ''}`, 'data-key': item.key, role: 'listitem', 'aria-label': `${item.priority ? `${item.priority === 'emergent' ? 'Emergent' : 'Urgent'}: ` : ''}${item.outgoing && !item.pseudonym ? 'You said' : `${sender} said`}` },
      urgency,
      // In a consult pool (or a case moved to a 1:1): what the message is; the Consults tab threads them.
      item.consult ? h('p', { class: 'consult-tag' }, consultLabel(item.consult)) : false,
      item.attachment || item.pendingFile ? attachmentBlock(this.ctx, item) : false,
      item.text ? h('div', { class: 'bubble' }, item.text) : false,
      meta,
      alert
        ? h(
            'div',
            { class: 'timeline', title: '✓: confirmed end to end by the acknowledging device' },
            alertTimeline(alert, (u) => state.people.name(u), (u) => this.ctx.client()?.alerts.confirmedEndToEnd(alert, u) ?? false),
          )
        : false,
      answer,
    );
  }
}
