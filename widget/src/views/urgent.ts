/**
 * The urgent panel: every urgent or emergent message this user still has to acknowledge, at the top of
 * the widget whatever is open, each with Acknowledge (and Open, for the user's own conversations).
 * Unmistakable on purpose: a paged clinician who does not answer is a patient-safety event. It is an
 * assertive live region, so screen readers announce a new or repeated alert at once.
 */
import { append, h, replaceChildren } from '../dom.js';
import type { ViewContext } from '../context.js';

export class UrgentPanel {
  readonly element: HTMLElement;
  private readonly live: HTMLDivElement;
  /** What was last announced per alert (its repeats and whether its text was known): a change is said again. */
  private readonly spoken = new Map<string, string>();

  constructor(private readonly ctx: ViewContext) {
    this.live = h('div', { class: 'sr-only', role: 'alert' });
    this.element = h('section', { class: 'urgent', 'aria-label': 'Urgent messages waiting for you', hidden: '' });
  }

  /** The live region (kept outside the panel so that redrawing the panel does not silence it). */
  get announcer(): HTMLElement {
    return this.live;
  }

  /** Redraw; an alert that is new, repeated, or whose text just became readable is announced (when `announce`, or its text is new). */
  render(announce: boolean): void {
    const { state, actions } = this.ctx;
    const waiting = state.awaitingMe();
    this.element.hidden = waiting.length === 0;
    replaceChildren(
      this.element,
      ...waiting.map(({ alert, text, escalated }) => {
        const from = state.people.name(alert.senderUserId);
        const label = alert.priority === 'emergent' ? 'EMERGENT' : 'URGENT';
        const time = new Date(alert.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        const ack = h('button', { type: 'button', class: 'danger ack' }, 'Acknowledge');
        ack.addEventListener('click', () => actions.acknowledge(alert.conversationId, alert.seq));
        const row = h(
          'div',
          { class: 'urgent-item', 'data-conversation': alert.conversationId, 'data-seq': String(alert.seq) },
          h('p', { class: 'urgent-head' }, h('strong', {}, label), ` ${escalated ? 'escalated to you, ' : ''}from ${from} · ${time}${alert.repeats ? ` · repeated ${alert.repeats}×` : ''}`),
          h('p', { class: 'urgent-text' }, text ?? 'Opening the message…'),
          ack,
        );
        if (state.conversations.has(alert.conversationId)) {
          const open = h('button', { type: 'button' }, 'Open');
          open.addEventListener('click', () => actions.open(alert.conversationId));
          append(row, ' ', open);
        }
        return row;
      }),
    );
    const changed = waiting.filter(({ alert, text }) => {
      const key = `${alert.conversationId}\n${alert.seq}`;
      const said = `${alert.repeats}|${text !== undefined}`;
      const before = this.spoken.get(key);
      this.spoken.set(key, said);
      return before !== said && (announce || before === undefined || !before.endsWith('|true'));
    });
    const latest = changed[changed.length - 1];
    if (latest) {
      const { alert, text } = latest;
      this.live.textContent = `${alert.priority === 'emergent' ? 'Emergent' : 'Urgent'} message from ${state.people.name(alert.senderUserId)}${text ? `: ${text}` : ''}. Acknowledge it when you have it.`;
    } else if (!waiting.length) this.live.textContent = '';
  }
}
