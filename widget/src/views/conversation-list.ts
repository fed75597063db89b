/**
 * The sidebar: who is signed in, "+ New" with its form, and the conversations (unread counts, last
 * message, presence dot; names and roles from the directory, care-team titles in full).
 */
import { h, replaceChildren } from '../dom.js';
import { activeElement, type ViewContext } from '../context.js';
import { NewConversationForm } from './new-conversation.js';
import { OnCallPanel } from './on-call.js';
import { ConsultsPanel } from './consults.js';
import { consultLabel } from '../words.js';

export class ConversationList {
  readonly element: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly meLine: HTMLParagraphElement;
  private readonly newForm: NewConversationForm;
  private readonly newButton: HTMLButtonElement;
  /** "On call": roles, who holds each now, Page and Take. */
  readonly onCall: OnCallPanel;
  /** "Consults": consult pools, Join, Open, New pool. */
  readonly consults: ConsultsPanel;

  constructor(private readonly ctx: ViewContext) {
    this.meLine = h('p', { class: 'me' });
    this.list = h('ul', { class: 'conversations', role: 'list', 'aria-label': 'Conversations' });
    this.newButton = h('button', { type: 'button', class: 'new-toggle', 'aria-label': 'New conversation', 'aria-expanded': 'false', 'aria-controls': `${ctx.uid}-new` }, '+ New');
    this.newForm = new NewConversationForm(ctx, () => this.toggleNew(false));
    this.newButton.addEventListener('click', () => this.toggleNew(Boolean(this.newForm.element.hidden)));
    this.onCall = new OnCallPanel(ctx);
    this.consults = new ConsultsPanel(ctx);
    this.element = h(
      'nav',
      { class: 'sidebar', 'aria-label': 'Conversations' },
      h('div', { class: 'sidebar-head' }, h('h2', {}, 'Conversations'), this.onCall.toggle, this.consults.toggle, this.newButton),
      this.meLine,
      this.newForm.element,
      this.onCall.element,
      this.consults.element,
      this.list,
    );
  }

  private toggleNew(open: boolean): void {
    this.newForm.element.hidden = !open;
    this.newButton.setAttribute('aria-expanded', String(open));
    if (open) this.newForm.focus();
  }

  /** "Signed in as …": the user's name and role once the directory answers. */
  renderMe(): void {
    const me = this.ctx.state.me.sub;
    this.meLine.textContent = me ? `Signed in as ${this.ctx.state.people.nameWithRole(me)}` : '';
  }

  /** Focus the row of a conversation (after "Back"). */
  focusRow(conversationId: string | undefined): void {
    [...this.list.querySelectorAll<HTMLButtonElement>('button.conv')].find((b) => b.dataset.id === conversationId)?.focus();
  }

  render(): void {
    const { state } = this.ctx;
    const convs = [...state.conversations.values()];
    const { last, unread } = state.summaries();
    convs.sort((a, b) => (last.get(b.id)?.at ?? b.createdAt) - (last.get(a.id)?.at ?? a.createdAt));
    const focusedId = activeElement(this.ctx)?.dataset?.id;
    const rows = convs.map((c) => {
      const n = unread.get(c.id) ?? 0;
      const preview = last.get(c.id);
      const online = state.online.get(c.id);
      const name = state.titleOf(c);
      const detail = c.kind === 'direct' ? state.subtitleOf(c) : '';
      // The accessible name holds the row's visible words in order (WCAG 2.5.3), and says what the eye sees.
      const tag = c.roleId !== undefined ? 'On call' : c.kind === 'group' ? 'Care team' : '';
      const label = `${name}${tag ? `, ${tag.toLowerCase()}` : ''}${detail ? `, ${detail}` : ''}${n ? `, ${n} unread` : ''}`;
      const presence = state.connection !== 'online' ? ' unknown' : online?.size ? ' online' : '';
      const previewId = `${this.ctx.uid}-preview-${c.id}`;
      const button = h(
        'button',
        { type: 'button', class: 'conv', 'data-id': c.id, 'aria-label': label, 'aria-describedby': previewId, 'aria-current': c.id === state.current ? 'true' : undefined },
        c.kind === 'direct' ? h('span', { class: `dot${presence}`, 'aria-hidden': 'true' }) : false,
        // Spaces between the parts: their text reads as words, not "PatelCardiology" (grid drops them visually).
        h('span', { class: 'name' }, name),
        ' ',
        tag ? h('span', { class: 'team-tag' }, tag) : false,
        ' ',
        detail ? h('span', { class: 'detail' }, detail) : false,
        ' ',
        n ? h('span', { class: 'badge' }, String(n)) : false,
      );
      // The last message, outside the button (its name stays short); a click on it still opens the row.
      const previewText = preview ? `${preview.outgoing ? 'You: ' : ''}${preview.text || (preview.consult ? consultLabel(preview.consult) : '')}` : c.kind === 'group' ? `${c.memberUserIds.length} members` : 'No messages yet';
      const previewLine = h('div', { class: 'preview', id: previewId }, previewText);
      button.addEventListener('click', () => this.ctx.actions.open(c.id));
      return h('li', { role: 'listitem', class: 'conv-row' }, button, previewLine);
    });
    replaceChildren(this.list, ...(rows.length ? rows : [h('li', { class: 'empty', role: 'listitem' }, 'No conversations yet.')]));
    if (focusedId) this.focusRow(focusedId);
    this.onCall.render();
    this.ctx.emit('curbside-unread', { unread: state.unreadCount() });
  }
}
