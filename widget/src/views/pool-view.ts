/**
 * A consult pool's cases (issue #23), shown instead of a conversation when a pool is opened from
 * "Consults": its topic and members, "Post a case", and the cases as cards, newest first, threaded
 * with `consultThreads` from the pool's messages this browser keeps. Cases a moderator hid are not
 * shown (the pool's verified log lists them; a `hide` statement redraws the view).
 */
import { consultThreads, type ChatMessage, type ConsultCase, type ConsultPool, type PseudonymInfo } from '@curbside/client-sdk';
import { h, replaceChildren } from '../dom.js';
import type { ViewContext } from '../context.js';
import type { HistoryItem } from '../history.js';
import { plainError, pseudonymName } from '../words.js';
import { CaseCard } from './case-card.js';
import { CaseForm } from './case-form.js';

/** A kept pool message as the SDK handed it over (what `consultThreads` groups). */
function messageOf(i: HistoryItem): ChatMessage | undefined {
  if (i.kind !== 'message' || !i.consult || i.messageId === undefined || i.seq === undefined) return undefined;
  return {
    conversationId: i.conversationId,
    messageId: i.messageId,
    seq: i.seq,
    senderUserId: i.senderUserId,
    senderDeviceId: '',
    sentAt: i.at,
    text: i.text,
    priority: i.priority ?? 'routine',
    outgoing: i.outgoing,
    consult: i.consult,
    ...(i.attachment ? { attachment: i.attachment } : {}),
    ...(i.pseudonym ? { pseudonym: i.pseudonym } : {}),
  };
}

export class PoolView {
  readonly element: HTMLElement;
  private readonly title: HTMLHeadingElement;
  private readonly detail: HTMLParagraphElement;
  private readonly postToggle: HTMLButtonElement;
  private readonly form: CaseForm;
  private readonly status: HTMLParagraphElement;
  private readonly error: HTMLParagraphElement;
  private readonly cases: HTMLOListElement;
  private readonly empty: HTMLParagraphElement;
  private cards = new Map<string, CaseCard>();
  /** The pool whose cards `cards` holds. */
  private shown: string | undefined;
  /** Replies (and cases) already shown, by message id: what is new since is announced to screen readers. */
  private seen: Set<string> | undefined;

  constructor(private readonly ctx: ViewContext) {
    const { uid, actions } = ctx;
    const back = h('button', { type: 'button', class: 'back', 'aria-label': 'Back to conversations' }, '←');
    back.addEventListener('click', () => actions.back());
    this.title = h('h2', { id: `${uid}-pool-title` });
    this.detail = h('p', { class: 'detail' });
    this.postToggle = h('button', { type: 'button', class: 'primary post-case-toggle', 'aria-expanded': 'false', 'aria-controls': `${uid}-case-form` }, 'Post a case');
    this.form = new CaseForm(ctx, () => this.ctx.state.openPool, (posted) => {
      this.showForm(false);
      this.postToggle.focus();
      if (!posted) return;
      const removed = posted.attachment?.removedMetadata;
      const as = posted.pseudonymous !== undefined ? ` as “${pseudonymName({ specialty: posted.pseudonymous, mine: false }, false)}”` : '';
      this.status.textContent = `Case posted${as}.${removed?.length ? ` Metadata removed from the image before sending: ${removed.join(', ')}.` : ''}`;
    });
    this.status = h('p', { class: 'pool-status', role: 'status' });
    this.error = h('p', { class: 'form-error', role: 'alert' });
    this.cases = h('ol', { class: 'cases', role: 'list', 'aria-label': 'Cases, newest first' });
    this.empty = h('p', { class: 'empty' }, 'No cases on this device yet. Cases posted from now on appear here.');
    this.element = h(
      'section',
      { class: 'pool-view', hidden: true, 'aria-labelledby': `${uid}-pool-title` },
      h('header', { class: 'thread-head pool-head' }, back, h('div', { class: 'title' }, this.title, this.detail), this.postToggle),
      h('div', { class: 'pool-scroll' }, this.form.element, this.status, this.error, this.empty, this.cases),
    );
    this.postToggle.addEventListener('click', () => this.showForm(Boolean(this.form.element.hidden)));
  }

  /** Show the open pool (`state.openPool`) and verify its log again. */
  open(): void {
    const poolId = this.ctx.state.openPool;
    if (!poolId) return;
    if (poolId !== this.shown) {
      this.shown = poolId;
      this.cards = new Map();
      this.seen = undefined;
      replaceChildren(this.cases);
      this.form.reset();
      this.showForm(false);
      this.status.textContent = '';
      this.error.textContent = '';
    }
    this.render();
    this.title.focus();
    void this.ctx
      .consults()
      ?.pool(poolId)
      .catch((e: unknown) => (this.error.textContent = `This pool could not be verified: ${plainError(e)}`));
  }

  /** Draw the head and the cards (`force`: names or badges changed, draw every card again). */
  render(force = false): void {
    const { state } = this.ctx;
    const poolId = state.openPool;
    if (!poolId || this.element.hidden) return;
    const pool: ConsultPool | undefined = state.pools.get(poolId);
    const me = state.me.sub ?? '';
    this.title.textContent = pool?.topic ?? state.teamTitles.get(poolId) ?? 'Consult pool';
    this.title.tabIndex = -1;
    const members = pool ? Object.keys(pool.members).length : undefined;
    const role = pool?.members[me];
    this.detail.textContent = [members === undefined ? 'Verifying the pool…' : `${members} member${members === 1 ? '' : 's'}`, role === 'owner' || role === 'admin' ? 'you moderate this pool' : ''].filter(Boolean).join(' · ');
    this.postToggle.hidden = pool !== undefined && !pool.member;
    this.renderCases(pool, force);
  }

  private renderCases(pool: ConsultPool | undefined, force: boolean): void {
    const poolId = this.shown;
    if (!poolId) return;
    const messages = this.ctx.state.threadItems(poolId).flatMap((i) => messageOf(i) ?? []);
    const threads = consultThreads(messages, pool?.hidden ?? []).sort((a, b) => b.sentAt - a.sentAt);
    this.announce(threads);
    const next = new Map<string, CaseCard>();
    for (const c of threads) {
      const card = this.cards.get(c.caseId) ?? new CaseCard(this.ctx, poolId, c.caseId, (text) => (this.error.textContent = text));
      card.update(c, pool, force);
      next.set(c.caseId, card);
    }
    // Cards gone (a moderator hid the case) leave; the others keep their nodes, in order, newest first.
    for (const [id, card] of this.cards) {
      if (next.has(id)) continue;
      const hadFocus = card.element.contains(this.ctx.shadow.activeElement);
      card.element.remove();
      if (hadFocus) this.title.focus();
    }
    this.cards = next;
    let at: ChildNode | null = this.cases.firstChild;
    for (const card of next.values()) {
      if (card.element === at) at = at.nextSibling;
      else this.cases.insertBefore(card.element, at);
    }
    this.empty.hidden = next.size > 0;
  }

  /** Say (politely) what others posted since the pool was drawn: a new case, a new reply. */
  private announce(threads: ConsultCase[]): void {
    const { state } = this.ctx;
    const me = state.me.sub;
    const first = this.seen === undefined;
    const seen = (this.seen ??= new Set());
    const news: string[] = [];
    // Who said it ("a verified Dermatology" for a pseudonymous post), or undefined for this device's own.
    const from = (userId: string, p: PseudonymInfo | undefined) => (p ? (p.mine ? undefined : pseudonymName(p, false)) : userId === me ? undefined : state.people.name(userId));
    for (const c of threads) {
      const asker = from(c.askerUserId, c.pseudonym);
      if (!seen.has(c.caseId) && !first && asker) news.push(`New case from ${asker}: ${c.question}`);
      seen.add(c.caseId);
      for (const r of c.replies) {
        const who = from(r.senderUserId, r.pseudonym);
        if (!seen.has(r.messageId) && !first && who) news.push(`New reply from ${who}: ${r.text}`);
        seen.add(r.messageId);
      }
    }
    if (news.length) this.status.textContent = news.length > 3 ? `${news.length} new cases and replies in this pool.` : news.join(' ');
  }

  /** A kept item changed: redraw if it is in the open pool. */
  onItem(item: HistoryItem): void {
    if (item.conversationId === this.ctx.state.openPool) this.render();
  }

  private showForm(open: boolean): void {
    this.form.element.hidden = !open;
    this.postToggle.setAttribute('aria-expanded', String(open));
    if (open) {
      this.status.textContent = '';
      this.form.focus();
      void this.form.opened();
    } else if (this.element.contains(this.ctx.shadow.activeElement)) this.postToggle.focus();
  }
}
