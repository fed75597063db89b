/**
 * "On call": the organisation's on-call roles with who holds each now (verified by the SDK from the
 * roles' signed logs), a search by name, "Page" to write to whoever holds a role, and "Take" for a role
 * the user may hold ("I'm taking it").
 */
import type { OnCallRole } from '@curbside/client-sdk';
import { h, replaceChildren } from '../dom.js';
import type { ViewContext } from '../context.js';
import { plainError } from '../words.js';

const SEARCH_DELAY_MS = 250;

export class OnCallPanel {
  readonly element: HTMLElement;
  readonly toggle: HTMLButtonElement;
  private readonly search: HTMLInputElement;
  private readonly list: HTMLUListElement;
  private readonly status: HTMLParagraphElement;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;
  /** The roles last answered (rows are drawn again from them when names arrive from the directory). */
  private roles: OnCallRole[] = [];

  constructor(private readonly ctx: ViewContext) {
    const { uid } = ctx;
    this.toggle = h('button', { type: 'button', class: 'oncall-toggle', 'aria-expanded': 'false', 'aria-controls': `${uid}-oncall` }, 'On call');
    this.search = h('input', { type: 'search', name: 'role-search', autocomplete: 'off', 'aria-controls': `${uid}-roles` });
    this.list = h('ul', { class: 'roles', id: `${uid}-roles`, role: 'list', 'aria-label': 'On call now' });
    this.status = h('p', { class: 'found', role: 'status' });
    this.element = h(
      'section',
      { class: 'oncall', id: `${uid}-oncall`, hidden: true, 'aria-label': 'On call now' },
      h('h3', {}, 'On call now'),
      h('label', {}, 'Find a role', this.search),
      this.status,
      this.list,
    );
    this.toggle.addEventListener('click', () => this.show(Boolean(this.element.hidden)));
    this.search.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(), SEARCH_DELAY_MS);
    });
  }

  show(open: boolean): void {
    this.element.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      this.search.focus();
      void this.refresh();
    }
  }

  /** Ask for the roles again (on opening, on a search, and when a role changed hands). */
  async refresh(): Promise<void> {
    const client = this.ctx.client();
    if (!client || this.element.hidden) return;
    const seq = ++this.seq;
    let roles: OnCallRole[];
    try {
      roles = await client.roles.search(this.search.value.trim() || undefined);
    } catch (e) {
      if (seq === this.seq) this.status.textContent = `Roles unavailable: ${plainError(e)}`;
      return;
    }
    if (seq !== this.seq) return;
    for (const r of roles) this.ctx.state.roleNames.set(r.roleId, r.name);
    this.status.textContent = roles.length ? `${roles.length} role${roles.length === 1 ? '' : 's'}` : 'No on-call roles found.';
    this.roles = roles;
    this.render();
  }

  /** Draw the rows of the roles last answered (names as the directory knows them now). */
  render(): void {
    if (this.element.hidden) return;
    replaceChildren(this.list, ...this.roles.map((r) => this.row(r)));
  }

  private row(r: OnCallRole): HTMLLIElement {
    const { state, actions } = this.ctx;
    const me = state.me.sub ?? '';
    const holders = r.holders.length ? r.holders.map((u) => (u === me ? 'you' : state.people.name(u))).join(', ') : 'nobody';
    const page = h('button', { type: 'button', class: 'page', 'aria-label': `Page ${r.name}`, disabled: r.holders.length === 0 ? true : undefined }, 'Page');
    page.addEventListener('click', () => void actions.pageRole(r.roleId, r.name));
    const canTake = Object.hasOwn(r.members, me) && !r.holders.includes(me);
    const take = canTake ? h('button', { type: 'button', class: 'take', 'aria-label': `Take ${r.name}` }, 'Take') : false;
    if (take) {
      take.addEventListener('click', () => {
        take.disabled = true;
        actions.takeRole(r.roleId).then(
          () => void this.refresh(),
          (e: unknown) => {
            take.disabled = false;
            this.status.textContent = `Not taken: ${plainError(e)}`;
          },
        );
      });
    }
    return h('li', { role: 'listitem', class: 'role-row', 'data-role': r.roleId }, h('span', { class: 'name' }, r.name), ' ', h('span', { class: 'holders' }, `held by ${holders}`), ' ', page, take);
  }
}
