/**
 * "+ New": one person starts a 1:1 conversation, several (or a name) a care team. People are user
 * ids, typed or added from a directory search by name, role or department.
 */
import { verifiedBadge } from './badge.js';
import type { DirectoryProfile } from '@curbside/client-sdk';
import { h, replaceChildren } from '../dom.js';
import type { ViewContext } from '../context.js';
import { TEAM_TITLE_LABEL, plainError } from '../words.js';

const SEARCH_DELAY_MS = 250;
const SEARCH_LIMIT = 8;

export class NewConversationForm {
  readonly element: HTMLFormElement;
  private readonly people: HTMLInputElement;
  private readonly search: HTMLInputElement;
  private readonly results: HTMLUListElement;
  private readonly found: HTMLParagraphElement;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private searchSeq = 0;

  constructor(
    private readonly ctx: ViewContext,
    private readonly done: () => void,
  ) {
    const { uid } = ctx;
    this.people = h('input', { name: 'people', type: 'text', required: true, autocomplete: 'off', 'aria-describedby': `${uid}-people-help` });
    this.search = h('input', { name: 'search', type: 'search', autocomplete: 'off', 'aria-controls': `${uid}-directory-results` });
    this.results = h('ul', { class: 'directory-results', id: `${uid}-directory-results`, role: 'list', 'aria-label': 'Directory results' });
    this.found = h('p', { class: 'found', role: 'status' });
    const title = h('input', { name: 'title', type: 'text', autocomplete: 'off', maxlength: '120' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Start');
    this.element = h(
      'form',
      { class: 'new', id: `${uid}-new`, hidden: true, 'aria-label': 'New conversation' },
      h('label', {}, 'People (user IDs, comma-separated)', this.people),
      h('span', { class: 'sr-only', id: `${uid}-people-help` }, 'One person starts a 1:1 conversation; several, or a name, start a care team.'),
      h('label', {}, 'Search the directory (name, role, department or verified specialty)', this.search),
      this.found,
      this.results,
      h('label', {}, TEAM_TITLE_LABEL, title),
      error,
      submit,
    );
    this.search.addEventListener('input', () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => void this.runSearch(), SEARCH_DELAY_MS);
    });
    // Enter in the search field searches now rather than submitting the form.
    this.search.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      e.preventDefault();
      clearTimeout(this.searchTimer);
      void this.runSearch();
    });
    this.element.addEventListener('submit', (e) => {
      e.preventDefault();
      const ids = this.selected().filter((s) => s !== ctx.state.me.sub);
      if (ids.length === 0) {
        error.textContent = 'Enter at least one other person’s user ID.';
        return;
      }
      error.textContent = '';
      submit.disabled = true;
      ctx.actions.createConversation([...new Set(ids)], title.value.trim()).then(
        () => {
          this.element.reset();
          this.clearResults();
          submit.disabled = false;
          done();
        },
        (err: unknown) => {
          submit.disabled = false;
          error.textContent = plainError(err);
        },
      );
    });
  }

  focus(): void {
    this.people.focus();
  }

  private selected(): string[] {
    return this.people.value
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter((s) => s);
  }

  private clearResults(): void {
    this.results.replaceChildren();
    this.found.textContent = '';
  }

  private async runSearch(): Promise<void> {
    const query = this.search.value.trim();
    const seq = ++this.searchSeq;
    const client = this.ctx.client();
    if (query.length < 2 || !client) {
      this.clearResults();
      return;
    }
    let profiles: DirectoryProfile[];
    try {
      // The directory by name, role or department, and verified clinicians by attested specialty.
      const [byProfile, bySpecialty] = await Promise.all([client.directory.search(query, { limit: SEARCH_LIMIT }), client.credentials.search(query).catch(() => [])]);
      const extra = bySpecialty.filter((c) => !byProfile.some((p) => p.userId === c.userId)).map((c) => c.userId);
      profiles = [...byProfile, ...(extra.length ? await client.directory.lookup(extra) : [])].filter((p) => p.userId !== this.ctx.state.me.sub);
    } catch (e) {
      if (seq !== this.searchSeq) return;
      this.results.replaceChildren();
      this.found.textContent = plainError(e);
      return;
    }
    if (seq !== this.searchSeq) return; // a later search overtook this one
    this.ctx.state.people.remember(profiles);
    this.found.textContent = profiles.length === 0 ? 'Nobody found.' : profiles.length === 1 ? '1 person found.' : `${profiles.length} people found.`;
    replaceChildren(this.results, ...profiles.map((p) => this.resultRow(p)));
  }

  private resultRow(p: DirectoryProfile): HTMLLIElement {
    const people = this.ctx.state.people;
    const detail = people.detail(p.userId);
    const add = h(
      'button',
      { type: 'button', class: 'person', 'aria-label': `Add ${[people.name(p.userId), detail, p.userId].filter((s) => s).join(', ')}` },
      h('span', { class: 'name' }, people.name(p.userId)),
      ' ',
      h('span', { class: 'detail' }, [detail, p.userId].filter((s) => s).join(' · ')),
    );
    const badge = verifiedBadge(this.ctx, p.userId);
    add.addEventListener('click', () => {
      const ids = this.selected();
      if (!ids.includes(p.userId)) this.people.value = [...ids, p.userId].join(', ');
      this.found.textContent = `Added ${people.name(p.userId)}.`;
    });
    return h('li', { role: 'listitem' }, add, badge);
  }
}
