/**
 * One case in a consult pool, as a card: the question, age band and sex, the image (its sealed
 * preview, Open for full size, the "metadata removed" note), who asked (with the verified badge), the
 * replies threaded under it (badges, "Helpful" marks), and what the asker closed it with or where it
 * moved. The asker marks replies helpful, moves a case to a 1:1 with a responder and closes it with a
 * summary; a moderator hides it for every member; any member replies while it is open.
 *
 * A pseudonymous case, and its asker's follow-ups, show "A verified <specialty>" (with "(you)" on the
 * asking device) instead of a name, and no badge: the SDK verified the token, and nothing says who. The
 * asking device has the asker's controls, but no "Move to private chat" (that would say who asked).
 *
 * The reply and summary boxes are made once per case and stay in place while the rest of the card is
 * drawn again (a reply arriving does not take away what is being typed, nor the focus).
 */
import type { ConsultCase, ConsultPool } from '@curbside/client-sdk';
import { h, replaceChildren, setBusy } from '../dom.js';
import { activeElement, type ViewContext } from '../context.js';
import { ageBandText, plainError, pseudonymName, sexText } from '../words.js';
import { attachmentBlock } from './attachment.js';
import { verifiedBadge } from './badge.js';

/** The first words of a question, for buttons' accessible names. */
function gist(text: string): string {
  return text.length > 48 ? `${text.slice(0, 47)}…` : text;
}

function when(at: number): string {
  return new Date(at).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export class CaseCard {
  readonly element: HTMLLIElement;
  private readonly body: HTMLDivElement;
  private readonly replyForm: HTMLFormElement;
  private readonly replyText: HTMLTextAreaElement;
  private readonly replyGist: HTMLSpanElement;
  private readonly closeForm: HTMLFormElement;
  private readonly summaryText: HTMLTextAreaElement;
  private readonly closeToggleId: string;
  private drawn = '';
  private c: ConsultCase | undefined;

  constructor(
    private readonly ctx: ViewContext,
    private readonly poolId: string,
    readonly caseId: string,
    /** Say an action's failure in the pool view's alert line. */
    private readonly fail: (text: string) => void,
  ) {
    const id = `${ctx.uid}-case-${caseId}`;
    this.closeToggleId = `${id}-close-toggle`;
    this.body = h('div', { class: 'case-body' });
    this.replyGist = h('span', { class: 'sr-only' });
    this.replyText = h('textarea', { name: 'reply', rows: '2', required: true });
    const replyButton = h('button', { type: 'submit' }, 'Reply');
    this.replyForm = h('form', { class: 'reply-form' }, h('label', {}, h('span', {}, 'Your reply'), this.replyGist, this.replyText), replyButton);
    this.summaryText = h('textarea', { name: 'summary', rows: '2', required: true, maxlength: '2000' });
    const closeButton = h('button', { type: 'submit', class: 'primary' }, 'Close case');
    const cancel = h('button', { type: 'button' }, 'Cancel');
    this.closeForm = h('form', { class: 'close-form', id: `${id}-close`, hidden: true }, h('label', {}, 'Summary for the pool (what it turned out to be)', this.summaryText), h('div', { class: 'actions' }, closeButton, cancel));
    this.element = h('li', { role: 'listitem', class: 'case-card', 'data-case': caseId, 'aria-labelledby': `${id}-q` }, this.body, this.closeForm, this.replyForm);
    this.replyForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.replyText.value.trim();
      if (text) void this.run(replyButton, (a) => a.reply(this.poolId, this.caseId, text), () => (this.replyText.value = ''));
    });
    this.closeForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const summary = this.summaryText.value.trim();
      // Closed: the summary box goes away, so the focus goes to the case (its summary now shows).
      if (summary) void this.run(closeButton, (a) => a.close(this.poolId, this.caseId, summary), () => this.body.querySelector<HTMLElement>('h3.question')?.focus());
    });
    cancel.addEventListener('click', () => this.showClose(false));
  }

  /** Draw the card for the case as threaded now (again only when something shown changed, or `force`). */
  update(c: ConsultCase, pool: ConsultPool | undefined, force = false): void {
    const me = this.ctx.state.me.sub ?? '';
    const moderator = pool?.members[me] === 'owner' || pool?.members[me] === 'admin';
    const item = this.ctx.state.items.get(`${this.poolId}\n${c.caseId}`);
    const drawn = JSON.stringify([c, moderator, item?.transfer]);
    this.c = c;
    if (drawn === this.drawn && !force) return;
    this.drawn = drawn;
    const focusKey = activeElement(this.ctx)?.dataset?.focus;
    const hadFocus = this.body.contains(activeElement(this.ctx) ?? null);
    const { state } = this.ctx;
    const asker = c.pseudonym ? c.pseudonym.mine : c.askerUserId === me;
    const qId = `${this.ctx.uid}-case-${c.caseId}-q`;
    const replies = c.replies.map((r) => {
      const mine = r.pseudonym ? r.pseudonym.mine : r.senderUserId === me;
      const who = r.pseudonym ? pseudonymName(r.pseudonym) : mine ? 'You' : state.people.name(r.senderUserId);
      let helpful: HTMLElement | false = false;
      let move: HTMLElement | false = false;
      if (asker && !r.helpful && !c.closed) {
        helpful = h('button', { type: 'button', class: 'mark-helpful', 'data-focus': `helpful:${r.messageId}`, 'aria-label': `Mark helpful: ${who}’s reply` }, 'Mark helpful');
        helpful.addEventListener('click', (e) => void this.run(e.currentTarget as HTMLButtonElement, (a) => a.markHelpful(this.poolId, c.caseId, r.messageId)));
      }
      if (asker && !mine && !c.closed && !c.pseudonym) {
        move = h('button', { type: 'button', class: 'move-private', 'data-focus': `move:${r.messageId}`, 'aria-label': `Move to private chat with ${who}` }, 'Move to private chat');
        move.addEventListener('click', (e) => void this.run(e.currentTarget as HTMLButtonElement, (a) => a.moveToPrivate(this.poolId, { caseId: c.caseId, question: c.question }, r.senderUserId)));
      }
      return h(
        'li',
        { role: 'listitem', class: `reply${r.helpful ? ' is-helpful' : ''}`, 'data-reply': r.messageId },
        h('p', { class: 'reply-meta' }, h('span', { class: 'name' }, who), ' ', mine || r.pseudonym ? false : verifiedBadge(this.ctx, r.senderUserId), ' ', h('span', { class: 'when' }, when(r.sentAt)), ' ', r.helpful ? h('span', { class: 'helpful' }, '✓ Helpful (marked by the asker)') : false),
        h('p', { class: 'reply-text' }, r.text),
        helpful || move ? h('div', { class: 'actions' }, helpful, move) : false,
      );
    });
    let closeToggle: HTMLElement | false = false;
    if (asker && !c.closed) {
      closeToggle = h('button', { type: 'button', id: this.closeToggleId, class: 'close-case', 'data-focus': 'close', 'aria-expanded': String(!this.closeForm.hidden), 'aria-controls': this.closeForm.id }, 'Close with summary');
      closeToggle.addEventListener('click', () => this.showClose(Boolean(this.closeForm.hidden)));
    }
    let hide: HTMLElement | false = false;
    if (moderator) {
      hide = h('button', { type: 'button', class: 'hide-case danger', 'data-focus': 'hide', 'aria-label': `Hide for everyone: ${gist(c.question)}` }, 'Hide for everyone');
      hide.addEventListener('click', (e) => void this.run(e.currentTarget as HTMLButtonElement, (a) => a.hide(this.poolId, c.caseId)));
    }
    const askedBy = c.pseudonym ? pseudonymName(c.pseudonym) : asker ? 'You' : state.people.name(c.askerUserId);
    replaceChildren(
      this.body,
      h('h3', { class: 'question', id: qId, tabindex: '-1' }, c.question),
      h('p', { class: 'case-meta' }, `Age band: ${ageBandText(c.ageBand)} · Sex: ${sexText(c.sex)}`),
      h('p', { class: 'asker' }, 'Asked by ', h('span', { class: 'name' }, askedBy), ' ', asker || c.pseudonym ? false : verifiedBadge(this.ctx, c.askerUserId), ' ', h('span', { class: 'when' }, when(c.sentAt))),
      c.attachment && item ? attachmentBlock(this.ctx, item) : false,
      c.closed ? h('div', { class: 'case-summary' }, h('p', { class: 'closed-label' }, `Closed ${when(c.closed.at)}. Summary:`), h('p', { class: 'summary-text' }, c.closed.summary)) : false,
      c.movedTo ? h('p', { class: 'moved' }, `Continued in a private chat with ${c.movedTo.userId === me ? 'you' : state.people.name(c.movedTo.userId)}.`) : false,
      h('p', { class: 'replies-count' }, c.replies.length ? `${c.replies.length} ${c.replies.length === 1 ? 'reply' : 'replies'}` : 'No replies yet'),
      replies.length ? h('ol', { class: 'replies', role: 'list', 'aria-label': `Replies to: ${gist(c.question)}` }, ...replies) : false,
      closeToggle || hide ? h('div', { class: 'actions case-actions' }, closeToggle, hide) : false,
    );
    this.replyGist.textContent = ` to: ${gist(c.question)}`;
    this.replyForm.hidden = Boolean(c.closed);
    if (c.closed || !asker) this.closeForm.hidden = true;
    if (hadFocus) {
      const again = focusKey ? this.body.querySelector<HTMLElement>(`[data-focus="${CSS.escape(focusKey)}"]`) : null;
      (again ?? this.body.querySelector<HTMLElement>('h3.question'))?.focus();
    }
  }

  private showClose(open: boolean): void {
    this.closeForm.hidden = !open;
    const toggle = this.body.querySelector<HTMLButtonElement>('button.close-case');
    toggle?.setAttribute('aria-expanded', String(open));
    if (open) this.summaryText.focus();
    else toggle?.focus();
  }

  /** Run an action from a button, busy while it runs (the focus stays), its failure said in plain words. */
  private async run(button: HTMLButtonElement, action: (a: NonNullable<ReturnType<ViewContext['consults']>>) => Promise<void>, then?: () => void): Promise<void> {
    const consults = this.ctx.consults();
    if (!consults || !this.c || !setBusy(button, true)) return;
    try {
      await action(consults);
      then?.();
    } catch (e) {
      this.fail(`Not done: ${plainError(e)}`);
    } finally {
      setBusy(button, false);
    }
  }
}
