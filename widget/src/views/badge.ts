/**
 * "Verified" next to a name: shown only for a credential the SDK verified (the organisation's
 * credentialing office signed it for a key the user's signed device list gives). The credential
 * (specialty, licence, institution, expiry) shows on hover and on focus, and is the badge's
 * accessible description.
 */
import { h } from '../dom.js';
import type { ViewContext } from '../context.js';

export function verifiedBadge(ctx: ViewContext, userId: string): HTMLElement | false {
  const c = ctx.state.people.verified(userId);
  if (!c) return false;
  const until = new Date(c.expiresAt).toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
  const detail = `${c.specialty}, licence ${c.licence}, ${c.institution}; attested until ${until}`;
  return h('span', { class: 'verified', tabindex: '0', role: 'note', 'aria-label': `Verified ${detail}`, title: detail, 'data-detail': detail }, `✓ Verified ${c.specialty}`);
}
