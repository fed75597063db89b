/**
 * "On call": the organisation's on-call roles with who holds each now (verified by the SDK from the
 * roles' signed logs), a search by name, "Page" to write to whoever holds a role, and "Take" for a role
 * the user may hold ("I'm taking it").
 */
import type { OnCallRole } from '@curbside/client-sdk';
import { h } from '../dom.js';
import type { ViewContext } from '../context.js';
import { plainError } from '../words.js';
import { SearchablePanel } from './searchable-panel.js';

export class OnCallPanel extends SearchablePanel<OnCallRole> {
  constructor(private readonly ctx: ViewContext) {
    super({
      uid: ctx.uid,
      name: 'oncall',
      toggleText: 'On call',
      title: 'On call now',
      search: { name: 'role-search', label: 'Find a role' },
      list: { class: 'roles', label: 'On call now' },
      noun: 'role',
      none: 'No on-call roles found.',
      unavailable: 'Roles unavailable',
    });
  }

  protected override searcher(): ((query: string) => Promise<OnCallRole[]>) | undefined {
    const client = this.ctx.client();
    return client && ((query) => client.roles.search(query.trim() || undefined));
  }

  /** Learn the roles' names, then draw them (names as the directory knows them now; drawn again when names arrive). */
  protected override answered(roles: OnCallRole[]): void {
    for (const r of roles) this.ctx.state.roleNames.set(r.roleId, r.name);
    super.answered(roles);
  }

  protected override row(r: OnCallRole): HTMLLIElement {
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
