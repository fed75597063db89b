/**
 * The scaffolding the "On call" and "Consults" panels share: a toggle that shows and hides a section, a
 * search box that asks again a moment after the user stops typing, a status line that says how many were
 * found (or why nothing could be asked), and a list with one row per item, drawn by the panel. An answer
 * that arrives after a newer search was asked is dropped.
 */
import { h, replaceChildren } from '../dom.js';
import { plainError } from '../words.js';

const SEARCH_DELAY_MS = 250;

export interface SearchablePanelParts {
  uid: string;
  /** The section's class and id (`${uid}-${name}`); the toggle's class is `${name}-toggle`. */
  name: string;
  toggleText: string;
  /** The heading. The section is named by it: with `aria-labelledby` when `labelledByTitle`, else with `aria-label`. */
  title: string;
  labelledByTitle?: boolean;
  search: { name: string; label: string };
  /** The list's class and id (`${uid}-${class}`) and its accessible name. */
  list: { class: string; label: string };
  /** What the status line says: "3 roles" (`noun`), `none` for no answers, `unavailable: why` when the search failed. */
  noun: string;
  none: string;
  unavailable: string;
}

export abstract class SearchablePanel<T> {
  readonly element: HTMLElement;
  readonly toggle: HTMLButtonElement;
  protected readonly search: HTMLInputElement;
  protected readonly list: HTMLUListElement;
  protected readonly status: HTMLParagraphElement;
  /** The items last answered (rows are drawn again from them). */
  protected items: T[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;

  constructor(private readonly parts: SearchablePanelParts) {
    const { uid, name, title } = parts;
    const titleId = parts.labelledByTitle ? `${uid}-${name}-title` : undefined;
    this.toggle = h('button', { type: 'button', class: `${name}-toggle`, 'aria-expanded': 'false', 'aria-controls': `${uid}-${name}` }, parts.toggleText);
    this.search = h('input', { type: 'search', name: parts.search.name, autocomplete: 'off', 'aria-controls': `${uid}-${parts.list.class}` });
    this.list = h('ul', { class: parts.list.class, id: `${uid}-${parts.list.class}`, role: 'list', 'aria-label': parts.list.label });
    this.status = h('p', { class: 'found', role: 'status' });
    this.element = h(
      'section',
      { class: name, id: `${uid}-${name}`, hidden: true, ...(titleId ? { 'aria-labelledby': titleId } : { 'aria-label': title }) },
      h('h3', { id: titleId }, title),
      h('label', {}, parts.search.label, this.search),
      this.status,
      this.list,
    );
    this.toggle.addEventListener('click', () => this.show(Boolean(this.element.hidden)));
    this.search.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(), SEARCH_DELAY_MS);
    });
  }

  /** How to search now (given the search box's text as typed), or undefined when there is no one to ask. */
  protected abstract searcher(): ((query: string) => Promise<T[]>) | undefined;

  /** One item's row. */
  protected abstract row(item: T): HTMLLIElement;

  show(open: boolean): void {
    this.element.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      this.search.focus();
      void this.refresh();
    }
  }

  /** Ask again (on opening, on a search, and when the panel's owner says something changed). */
  async refresh(): Promise<void> {
    const search = this.searcher();
    if (!search || this.element.hidden) return;
    const seq = ++this.seq;
    let items: T[];
    try {
      items = await search(this.search.value);
    } catch (e) {
      if (seq === this.seq) this.status.textContent = `${this.parts.unavailable}: ${plainError(e)}`;
      return;
    }
    if (seq !== this.seq) return;
    this.status.textContent = items.length ? `${items.length} ${this.parts.noun}${items.length === 1 ? '' : 's'}` : this.parts.none;
    this.answered(items);
  }

  /** Keep the latest answer and draw it. */
  protected answered(items: T[]): void {
    this.items = items;
    this.render();
  }

  /** Draw the rows of the items last answered. */
  render(): void {
    if (this.element.hidden) return;
    replaceChildren(this.list, ...this.items.map((item) => this.row(item)));
  }
}
