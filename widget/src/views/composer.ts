/**
 * The composer: Enter sends, Shift+Enter adds a new line; typing notices go out at most every few
 * seconds and stop after a pause. Files come in through "Attach", a paste, or a drop on the thread
 * (`sendFiles`); what is typed goes with a file as its caption.
 */
import { h } from '../dom.js';
import type { ViewContext } from '../context.js';

const TYPING_SEND_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;

/** Typing notices for the open conversation, throttled. */
export class TypingSender {
  private lastSent = 0;
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ctx: ViewContext) {}

  set(typing: boolean): void {
    const client = this.ctx.client();
    const id = this.ctx.state.current;
    if (!client || !id || this.ctx.state.connection !== 'online') return;
    clearTimeout(this.idle);
    const now = Date.now();
    if (typing) {
      this.idle = setTimeout(() => this.set(false), TYPING_IDLE_MS);
      if (now - this.lastSent < TYPING_SEND_EVERY_MS) return;
      this.lastSent = now;
    } else {
      if (this.lastSent === 0) return;
      this.lastSent = 0;
    }
    void client.setTyping(id, typing).catch(() => {});
  }
}

/** A composer form for the open conversation; `textarea` takes focus when a thread opens. */
export function composer(ctx: ViewContext): { form: HTMLFormElement; textarea: HTMLTextAreaElement; sendFiles(files: readonly File[]): void } {
  const helpId = `${ctx.uid}-composer-help`;
  const textarea = h('textarea', { rows: '1', 'aria-label': 'Message', placeholder: 'Write a message', 'aria-describedby': helpId });
  // Urgent: the recipients are re-alerted until one of them acknowledges (the hub keeps asking).
  const urgent = h('button', { type: 'button', class: 'urgent-toggle', 'aria-pressed': 'false', title: 'Urgent: re-alerts until acknowledged' }, 'Urgent');
  const setUrgent = (on: boolean) => {
    urgent.setAttribute('aria-pressed', String(on));
    form.classList.toggle('is-urgent', on);
    textarea.placeholder = on ? 'Urgent message: re-alerts until acknowledged' : 'Write a message';
  };
  urgent.addEventListener('click', () => setUrgent(urgent.getAttribute('aria-pressed') !== 'true'));
  const fileInput = h('input', { type: 'file', multiple: true, class: 'file-input', tabindex: '-1', 'aria-hidden': 'true' });
  const attach = h('button', { type: 'button', class: 'attach', 'aria-label': 'Attach a file', title: 'Attach a file (images are stripped of their metadata first)' }, 'Attach');
  attach.addEventListener('click', () => fileInput.click());
  const sendFiles = (files: readonly File[]): void => {
    const id = ctx.state.current;
    if (!id || files.length === 0) return;
    const caption = textarea.value.trim();
    textarea.value = '';
    files.forEach((f, i) => ctx.actions.sendFile(id, f, i === 0 ? caption : ''));
  };
  fileInput.addEventListener('change', () => {
    sendFiles([...(fileInput.files ?? [])]);
    fileInput.value = '';
  });
  textarea.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length === 0) return;
    e.preventDefault();
    sendFiles(files);
  });
  const form = h(
    'form',
    { class: 'composer', 'aria-label': 'Send a message' },
    textarea,
    h('span', { class: 'sr-only', id: helpId }, 'Enter sends; Shift+Enter adds a new line. Paste or drop a file to send it.'),
    attach,
    fileInput,
    urgent,
    h('button', { type: 'submit', class: 'primary' }, 'Send'),
  );
  const submit = (): void => {
    const text = textarea.value.trim();
    const id = ctx.state.current;
    if (!text || !id) return;
    textarea.value = '';
    ctx.actions.typing(false);
    ctx.actions.send(id, text, undefined, urgent.getAttribute('aria-pressed') === 'true' ? 'urgent' : undefined);
    setUrgent(false);
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  textarea.addEventListener('input', () => ctx.actions.typing(textarea.value.length > 0));
  textarea.addEventListener('blur', () => ctx.actions.typing(false));
  return { form, textarea, sendFiles };
}
