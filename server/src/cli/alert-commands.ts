/**
 * `curbside-admin alerts show | set`: an organisation's re-notification intervals of urgent and emergent
 * messages (docs/alerts.md).
 */
import { AdminAlertSettingsSchema, AdminPath } from '@curbside/shared';
import type { CommandContext } from './command-context.js';

export async function alertCommand(action: 'show' | 'set', ctx: CommandContext): Promise<number> {
  const { hub, need, print } = ctx;
  /** A flag's whole number; `default` (null) resets it to the hub's default; absent leaves it as it is. */
  const int = (flag: 'urgent-ms' | 'emergent-ms' | 'max-repeats') => {
    const raw = ctx.value(flag);
    if (raw === undefined) return undefined;
    if (raw === 'default') return null;
    if (!/^\d{1,9}$/.test(raw)) ctx.usage(`--${flag} must be a whole number, or default`);
    return Number(raw);
  };
  const res =
    action === 'show'
      ? await hub.get(AdminPath.ALERT_SETTINGS, { orgId: need('org') }, AdminAlertSettingsSchema)
      : await hub.post(AdminPath.ALERT_SETTINGS, { orgId: need('org'), urgentMs: int('urgent-ms'), emergentMs: int('emergent-ms'), maxRepeats: int('max-repeats') }, AdminAlertSettingsSchema);
  const mark = (k: 'urgentMs' | 'emergentMs' | 'maxRepeats') => (res.set.includes(k) ? '' : ' (default)');
  print(res, () => `${res.orgId}: urgent every ${res.urgentMs / 1000} s${mark('urgentMs')}, emergent every ${res.emergentMs / 1000} s${mark('emergentMs')}, at most ${res.maxRepeats} times${mark('maxRepeats')}`);
  return 0;
}
