/**
 * Modal dialogs' shared mechanics: one dialog at a time over the widget, the rest of the widget
 * `inert`, focus moved in, kept inside (Tab and Shift+Tab wrap), and given back when the last dialog
 * closes; Escape closes any dialog except the identity warning, which needs an answer.
 */
import { replaceChildren } from '../dom.js';
import { activeElement, type ViewContext } from '../context.js';

export type DialogKind = 'identity' | 'link' | 'safety' | 'members' | 'image';

const FOCUSABLE = 'button, [href], input, textarea, select, [tabindex]:not([tabindex="-1"])';

export class Overlay {
  readonly element: HTMLDivElement;
  private returnFocus: HTMLElement | undefined;
  /** Called after a dialog closes: true when it opened another one (a pending identity warning). */
  next: () => boolean = () => false;

  constructor(
    private readonly ctx: ViewContext,
    private readonly behind: HTMLElement,
  ) {
    this.element = document.createElement('div');
    this.element.className = 'overlay';
    this.element.hidden = true;
  }

  get kind(): DialogKind | undefined {
    return this.element.hidden ? undefined : (this.element.dataset.kind as DialogKind | undefined);
  }

  /** Whom the open dialog is about (the safety number's contact), if anyone. */
  get subject(): string | undefined {
    return this.element.hidden ? undefined : this.element.dataset.subject;
  }

  /** Forget which dialog is shown (so that another may replace it). */
  clearKind(): void {
    delete this.element.dataset.kind;
    delete this.element.dataset.subject;
  }

  open(kind: DialogKind, dialog: HTMLElement, focus: HTMLElement | undefined, subject?: string): void {
    if (this.element.hidden) this.returnFocus = activeElement(this.ctx);
    this.element.dataset.kind = kind;
    if (subject) this.element.dataset.subject = subject;
    else delete this.element.dataset.subject;
    replaceChildren(this.element, dialog);
    this.element.hidden = false;
    this.behind.inert = true; // modal: the rest of the widget cannot be reached while a dialog is open
    (focus ?? dialog).focus();
  }

  close(): void {
    this.element.hidden = true;
    this.element.replaceChildren();
    this.behind.inert = false;
    this.clearKind();
    if (this.next()) return;
    const back = this.returnFocus;
    this.returnFocus = undefined;
    const target = back?.isConnected ? back : ((back && this.sameAs(back)) ?? this.fallbackFocus());
    target?.focus();
  }

  /** Where focus goes when what had it is gone: the composer of the open thread, else the first conversation. */
  private fallbackFocus(): HTMLElement | undefined {
    return this.behind.querySelector<HTMLElement>('form.composer textarea') ?? this.behind.querySelector<HTMLElement>('button.conv') ?? undefined;
  }

  /** The element that replaced `gone` while the dialog was open (views re-render their buttons). */
  private sameAs(gone: HTMLElement): HTMLElement | undefined {
    const candidates = [...this.behind.querySelectorAll<HTMLElement>(gone.tagName)];
    return candidates.find((el) => el.className === gone.className && el.textContent === gone.textContent && el.dataset.id === gone.dataset.id);
  }

  /** Keyboard handling while a dialog is open (the element forwards its keydown events). */
  onKeydown(e: KeyboardEvent): void {
    if (this.element.hidden) return;
    if (e.key === 'Escape' && this.kind !== 'identity') {
      e.preventDefault();
      this.close();
      return;
    }
    if (e.key !== 'Tab') return;
    const focusable = [...this.element.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => !el.hasAttribute('disabled'));
    if (focusable.length === 0) {
      e.preventDefault();
      return;
    }
    const first = focusable[0]!;
    const last = focusable[focusable.length - 1]!;
    const active = activeElement(this.ctx);
    const inside = active !== undefined && focusable.includes(active);
    if (e.shiftKey && (active === first || !inside)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !inside)) {
      e.preventDefault();
      first.focus();
    }
  }
}
