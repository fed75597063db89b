/**
 * The widget's dialogs: the identity-change warning (focus on the safe choice, comparing the safety
 * number, never on "Accept"), the safety number with "Mark as verified", a care team's members, and
 * linking a new device of the user's own. People are shown by name, with their user id and role.
 */
import { imageViewer } from './attachment.js';
import { ErrorCode, isCurbsideError, type Conversation } from '@curbside/client-sdk';
import { append, h, replaceChildren } from '../dom.js';
import type { ViewContext } from '../context.js';
import { plainError } from '../words.js';
import type { Overlay } from './overlay.js';

export class Dialogs {
  private imageUrl: string | undefined;

  constructor(
    private readonly ctx: ViewContext,
    private readonly overlay: Overlay,
  ) {
    overlay.next = () => {
      if (ctx.state.pendingIdentity.length === 0) return false;
      this.showIdentityWarning();
      return true;
    };
  }

  private dialog(kind: 'dialog' | 'alertdialog', titleId: string, ...children: Node[]): HTMLDivElement {
    return h('div', { class: `dialog${kind === 'alertdialog' ? ' warning' : ''}`, role: kind, 'aria-modal': 'true', 'aria-labelledby': titleId, tabindex: '-1' }, ...children);
  }

  /** "dr-patel · Cardiology registrar · Cardiology": who exactly, under a name that may not be unique. */
  private whoLine(userId: string): HTMLParagraphElement {
    return h('p', { class: 'who' }, [userId, this.ctx.state.people.detail(userId)].filter((s) => s).join(' · '));
  }

  showIdentityWarning(): void {
    const { state, uid } = this.ctx;
    const userId = state.pendingIdentity[0];
    if (!userId || this.overlay.kind === 'identity') return;
    // The user is comparing this contact's new number already (computing it raises the change again):
    // the warning comes back when that dialog closes.
    if (this.overlay.kind === 'safety' && this.overlay.subject === userId) return;
    const name = state.people.name(userId);
    const titleId = `${uid}-identity-title`;
    const descId = `${uid}-identity-desc`;
    const accept = h('button', { type: 'button', class: 'danger' }, 'Accept the new safety number');
    const compare = h('button', { type: 'button', class: 'primary' }, 'Compare safety number');
    const status = h('p', { role: 'status' });
    accept.addEventListener('click', () => {
      accept.disabled = true;
      this.ctx.client()?.trust.acceptIdentity(userId).then(
        () => {
          state.dropPendingIdentity(userId);
          this.overlay.close();
          this.ctx.emit('curbside-identity-accepted', { userId });
        },
        (e: unknown) => {
          accept.disabled = false;
          status.textContent = plainError(e);
        },
      );
    });
    compare.addEventListener('click', () => {
      state.dropPendingIdentity(userId);
      this.overlay.clearKind();
      void this.showSafetyNumber(userId, { afterChange: true });
    });
    const dialog = this.dialog(
      'alertdialog',
      titleId,
      h('h2', { id: titleId }, `${name}’s safety number changed`),
      this.whoLine(userId),
      h(
        'div',
        { id: descId },
        h('p', {}, `${name} may have reinstalled the app or signed in on a new device. It can also mean someone is trying to intercept your messages.`),
        h('p', {}, `Nothing more is sent to ${name} until you accept. If this matters, compare the safety number with them in person or by phone first.`),
      ),
      status,
      h('div', { class: 'actions' }, compare, accept),
    );
    dialog.setAttribute('aria-describedby', descId);
    // The safe choice has focus: Enter pressed out of habit compares, it does not accept a key.
    this.overlay.open('identity', dialog, compare);
  }

  /** Another device of this user waits to be linked: ask for the code it shows. */
  showLinkRequest(deviceId: string): void {
    const client = this.ctx.client();
    if (!client || this.overlay.kind === 'identity') return;
    const titleId = `${this.ctx.uid}-link-title`;
    const input = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', 'aria-label': 'Code shown on the new device' });
    const status = h('p', { role: 'status' });
    const link = h('button', { type: 'submit', class: 'primary' }, 'Link device');
    const cancel = h('button', { type: 'button' }, 'Not now');
    cancel.addEventListener('click', () => this.overlay.close());
    const form = h(
      'form',
      {},
      h('p', {}, `A new device (${deviceId}) signed in to your account. If it is yours, enter the code it shows. If it is not, do not link it and tell your administrator.`),
      input,
      status,
      h('div', { class: 'actions' }, cancel, link),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      link.disabled = true;
      client.devices.link({ deviceId, code: input.value }).then(
        () => {
          this.overlay.close();
          this.ctx.emit('curbside-device-linked', { deviceId });
        },
        (e: unknown) => {
          link.disabled = false;
          status.textContent = plainError(e);
        },
      );
    });
    this.overlay.open('link', this.dialog('dialog', titleId, h('h2', { id: titleId }, 'Link a new device?'), form), input);
  }

  /** An image at full size (the previous one's object URL is released: one decrypted image in memory at a time). */
  showImage(url: string, name: string): void {
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
    this.imageUrl = url;
    const close = h('button', { type: 'button' }, 'Close');
    close.addEventListener('click', () => this.overlay.close());
    this.overlay.open('image', imageViewer(url, name, `${this.ctx.uid}-image-title`, close), close);
  }

  async showSafetyNumber(userId: string, options: { afterChange?: boolean } = {}): Promise<void> {
    const { state, uid } = this.ctx;
    const client = this.ctx.client();
    if (!client || !userId) return;
    const name = state.people.name(userId);
    const titleId = `${uid}-safety-title`;
    const body = h('div', {}, h('p', { role: 'status' }, 'Computing the safety number…'));
    const close = h('button', { type: 'button' }, 'Close');
    close.addEventListener('click', () => this.overlay.close());
    const actions = h('div', { class: 'actions' }, close);
    this.overlay.open('safety', this.dialog('dialog', titleId, h('h2', { id: titleId }, `Safety number with ${name}`), this.whoLine(userId), body, actions), close, userId);
    try {
      const fp = await client.trust.safetyNumber(userId);
      const groups = fp.displayString.match(/\d{5}/g) ?? [fp.displayString];
      replaceChildren(
        body,
        ...(fp.state === 'changed'
          ? [h('p', { class: 'form-error', role: 'alert' }, `${name}’s safety key changed. This is the new number: compare it before you accept the new key.`)]
          : fp.state === 'devices-changed'
            ? [h('p', { class: 'form-error', role: 'alert' }, `${name}’s devices changed since you verified them. This is the new number: compare it again.`)]
            : []),
        h('p', {}, `Compare these numbers with ${name}, in person or by phone. If they match on both screens, your messages are end-to-end encrypted between your devices.`),
        h('p', { class: 'digits', role: 'group', 'aria-label': `Safety number: ${groups.join(' ')}` }, ...groups.map((g) => h('span', {}, g))),
      );
      if (fp.state === 'changed') {
        // Verifying needs the new key accepted first: the warning offers that when this closes.
        state.addPendingIdentity(userId);
        return;
      }
      const verify = h('button', { type: 'button', class: 'primary' }, 'Mark as verified');
      verify.addEventListener('click', () => {
        verify.disabled = true;
        client.trust.markVerified(userId).then(
          () => {
            replaceChildren(actions, h('p', { class: 'verified', role: 'status' }, `✓ ${name} verified`), close);
            close.focus();
          },
          (e: unknown) => {
            verify.disabled = false;
            append(body, h('p', { class: 'form-error', role: 'alert' }, plainError(e)));
          },
        );
      });
      actions.prepend(verify);
    } catch (e) {
      if (isCurbsideError(e) && e.code === ErrorCode.UNTRUSTED_IDENTITY) {
        // The key changed: the user must decide before anything else.
        state.addPendingIdentity(userId);
        if (options.afterChange || this.overlay.kind === 'safety') {
          this.overlay.clearKind();
          this.showIdentityWarning();
        }
        return;
      }
      replaceChildren(body, h('p', { class: 'form-error', role: 'alert' }, plainError(e)));
    }
  }

  showMembers(c: Conversation): void {
    const { state, uid } = this.ctx;
    const titleId = `${uid}-members-title`;
    const close = h('button', { type: 'button' }, 'Close');
    close.addEventListener('click', () => this.overlay.close());
    const online = state.online.get(c.id);
    const rows = state.others(c).map((u) => {
      const name = state.people.name(u);
      const b = h('button', { type: 'button', 'aria-label': `Safety number with ${name}` }, 'Safety number');
      b.addEventListener('click', () => void this.showSafetyNumber(u));
      const teamRole = c.roles?.[u];
      const detail = [state.people.detail(u), teamRole && teamRole !== 'member' ? `team ${teamRole}` : '', state.connection === 'online' ? (online?.has(u) ? 'online' : 'offline') : ''].filter((s) => s).join(' · ');
      return h('li', { role: 'listitem' }, h('span', { class: 'member' }, h('span', { class: 'name' }, name), h('span', { class: 'detail' }, detail ? `${u} · ${detail}` : u)), b);
    });
    const dialog = this.dialog(
      'dialog',
      titleId,
      h('h2', { id: titleId }, `${state.titleOf(c)}: members`),
      h('ul', { class: 'members', role: 'list' }, ...rows),
      h('div', { class: 'actions' }, close),
    );
    this.overlay.open('members', dialog, close);
  }
}
