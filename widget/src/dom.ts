/**
 * A tiny DOM builder. Text only ever goes in through `textContent` (never innerHTML): message
 * text, names and titles come from other people and must not become markup.
 */
type Attrs = Record<string, string | boolean | undefined>;
type Child = Node | string | false | null | undefined;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === false || c === null || c === undefined) continue;
    parent.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/**
 * Mark a button busy while its action runs: `aria-disabled`, not `disabled`, which would take the
 * focus away from a keyboard user. Answers false (and does nothing) when it is busy already.
 */
export function setBusy(button: HTMLButtonElement, busy: boolean): boolean {
  if (busy && button.getAttribute('aria-disabled') === 'true') return false;
  if (busy) button.setAttribute('aria-disabled', 'true');
  else button.removeAttribute('aria-disabled');
  return true;
}

/** Replace every child of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}
