/**
 * Alert settings from the environment (issue #20): how often an unacknowledged urgent or emergent
 * message is re-notified, how many times, and how often each node looks for due timers.
 * `loadAlertsConfig` is called by `loadConfig` and reports problems into the same list.
 */
import type { AlertPriority } from '@curbside/shared';
import type { EnvSetting } from '../env-setting.js';

export interface AlertsConfig {
  /** Re-notification interval per priority (ms). */
  repeatMs: Record<AlertPriority, number>;
  /** Re-notifications before the alert expires (it can still be acknowledged after). */
  maxRepeats: number;
  /** How often each node claims due timers (ms); the precision of every timer. */
  sweepMs: number;
}

export const DEFAULT_ALERTS: AlertsConfig = { repeatMs: { urgent: 120_000, emergent: 30_000 }, maxRepeats: 30, sweepMs: 500 };

export const ALERTS_ENV_DOC: readonly EnvSetting[] = [
  { name: 'ALERT_REPEAT_URGENT_MS', default: '120000', meaning: 'an unacknowledged urgent message is re-notified to its recipients this often' },
  { name: 'ALERT_REPEAT_EMERGENT_MS', default: '30000', meaning: 'an unacknowledged emergent message is re-notified this often' },
  { name: 'ALERT_MAX_REPEATS', default: '30', meaning: 're-notifications before an unacknowledged alert expires (it can still be acknowledged)' },
  { name: 'ALERT_SWEEP_MS', default: '500', meaning: 'how often each node claims due alert timers (each fires once across nodes); the timers\' precision' },
];

export function loadAlertsConfig(num: (name: string, def: number, min: number, max: number) => number, problem: (setting: string, reason: string) => void): AlertsConfig {
  const config: AlertsConfig = {
    repeatMs: { urgent: num('ALERT_REPEAT_URGENT_MS', 120_000, 1_000, 86_400_000), emergent: num('ALERT_REPEAT_EMERGENT_MS', 30_000, 1_000, 86_400_000) },
    maxRepeats: num('ALERT_MAX_REPEATS', 30, 1, 1_000),
    sweepMs: num('ALERT_SWEEP_MS', 500, 50, 60_000),
  };
  if (config.repeatMs.emergent > config.repeatMs.urgent) problem('ALERT_REPEAT_EMERGENT_MS', `must not be longer than ALERT_REPEAT_URGENT_MS (${config.repeatMs.urgent}): an emergent message is re-notified at least as often as an urgent one`);
  return config;
}
