/**
 * "Consults" (issue #23): the organisation's consult pools ("Dermatology curbside"), found by topic,
 * each with its member count and "Join" (or "Open" for a member); the hub's plain refusal when joining
 * takes a credential this device does not have; "New pool" for a clinician whose credential verifies.
 * Opening a pool shows its cases (pool-view.ts).
 */
import type { PoolSummary } from '@curbside/client-sdk';
import { h, setBusy } from '../dom.js';
import type { ViewContext } from '../context.js';
import { plainError } from '../words.js';
import { SearchablePanel } from './searchable-panel.js';

export class ConsultsPanel extends SearchablePanel<PoolSummary> {
  private readonly error: HTMLParagraphElement;
  private readonly newToggle: HTMLButtonElement;
  private readonly newForm: HTMLFormElement;
  private readonly newNote: HTMLParagraphElement;
  private readonly topic: HTMLInputElement;

  constructor(private readonly ctx: ViewContext) {
    super({
      uid: ctx.uid,
      name: 'consults',
      toggleText: 'Consults',
      title: 'Consult pools',
      labelledByTitle: true,
      search: { name: 'pool-search', label: 'Find a pool by topic' },
      list: { class: 'pools', label: 'Consult pools' },
      noun: 'pool',
      none: 'No consult pools found.',
      unavailable: 'Pools unavailable',
    });
    const { uid } = ctx;
    this.error = h('p', { class: 'form-error', role: 'alert' });
    this.topic = h('input', { type: 'text', name: 'pool-topic', required: true, autocomplete: 'off', maxlength: '100' });
    const create = h('button', { type: 'submit', class: 'primary' }, 'Open pool');
    this.newForm = h('form', { class: 'new-pool', id: `${uid}-new-pool`, hidden: true, 'aria-label': 'New consult pool' }, h('label', {}, 'Topic (visible to the hub, so colleagues find it)', this.topic), create);
    this.newToggle = h('button', { type: 'button', class: 'new-pool-toggle', hidden: true, 'aria-expanded': 'false', 'aria-controls': `${uid}-new-pool` }, 'New pool');
    this.newNote = h('p', { class: 'pool-note' }, 'Joining or opening a pool takes a verified credential from your credentialing office.');
    // The panel's own parts: the error line between the status and the list, "New pool" after the list.
    this.list.before(this.error);
    this.element.append(this.newNote, this.newToggle, this.newForm);
    this.newToggle.addEventListener('click', () => this.showNew(Boolean(this.newForm.hidden)));
    this.newForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.createPool(create);
    });
  }

  override show(open: boolean): void {
    super.show(open);
    if (open) this.render();
  }

  protected override searcher(): ((query: string) => Promise<PoolSummary[]>) | undefined {
    const consults = this.ctx.consults();
    return consults && ((query) => consults.search(query));
  }

  /** Draw the rows of the pools last answered, and "New pool" for a verified clinician. */
  override render(): void {
    if (this.element.hidden) return;
    const me = this.ctx.state.me.sub;
    const credentialed = me ? this.ctx.state.people.verified(me) !== undefined : false;
    this.newToggle.hidden = !credentialed;
    this.newNote.hidden = credentialed;
    if (!credentialed) this.showNew(false);
    const focused = (this.ctx.shadow.activeElement as HTMLElement | null)?.dataset?.pool;
    super.render();
    if (focused) this.list.querySelector<HTMLButtonElement>(`button[data-pool="${CSS.escape(focused)}"]`)?.focus();
  }

  protected override row(p: PoolSummary): HTMLLIElement {
    const member = p.member || this.ctx.state.pools.get(p.poolId)?.member === true;
    const label = `${member ? 'Open' : 'Join'} ${p.topic}`;
    const button = h('button', { type: 'button', class: member ? 'open-pool' : 'join-pool', 'data-pool': p.poolId, 'aria-label': label }, member ? 'Open' : 'Join');
    button.addEventListener('click', () => (member ? this.ctx.actions.openPool(p.poolId) : void this.join(p, button)));
    const count = `${p.memberCount} member${p.memberCount === 1 ? '' : 's'}`;
    return h('li', { role: 'listitem', class: 'pool-row', 'data-pool-id': p.poolId }, h('span', { class: 'name' }, p.topic), ' ', h('span', { class: 'count' }, count), ' ', button);
  }

  private async join(p: PoolSummary, button: HTMLButtonElement): Promise<void> {
    const consults = this.ctx.consults();
    if (!consults || !setBusy(button, true)) return;
    this.error.textContent = '';
    try {
      await consults.join(p.poolId);
    } catch (e) {
      setBusy(button, false);
      // The hub's own words when a credential is what is missing ("Joining a consult pool takes a verified credential…").
      this.error.textContent = `Not joined: ${plainError(e)}`;
      return;
    }
    this.status.textContent = `You joined ${p.topic}.`;
    void this.refresh();
    this.ctx.actions.openPool(p.poolId);
  }

  private showNew(open: boolean): void {
    this.newForm.hidden = !open;
    this.newToggle.setAttribute('aria-expanded', String(open));
    if (open) this.topic.focus();
  }

  private async createPool(button: HTMLButtonElement): Promise<void> {
    const consults = this.ctx.consults();
    const topic = this.topic.value.trim();
    if (!consults || !topic || !setBusy(button, true)) return;
    this.error.textContent = '';
    try {
      const poolId = await consults.create(topic);
      this.topic.value = '';
      this.showNew(false);
      this.status.textContent = `You opened ${topic}.`;
      void this.refresh();
      this.ctx.actions.openPool(poolId);
    } catch (e) {
      this.error.textContent = `Not opened: ${plainError(e)}`;
    } finally {
      setBusy(button, false);
    }
  }
}
