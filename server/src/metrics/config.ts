/**
 * Metrics settings from the environment. `loadMetricsConfig` is called by `loadConfig` and reports
 * problems into the same list. Without METRICS_PORT or METRICS_TOKEN, /metrics is off.
 */
import type { MetricsConfig } from './metrics.js';
import type { EnvSetting } from '../env-setting.js';

export const METRICS_ENV_DOC: readonly EnvSetting[] = [
  { name: 'METRICS_PORT', default: '(unset)', meaning: 'serve Prometheus metrics at /metrics on a listener of their own on this port (not on PORT); with METRICS_TOKEN set too, that token is required there as well' },
  { name: 'METRICS_HOST', default: 'HOST', meaning: 'interface of the METRICS_PORT listener (e.g. an internal network address)' },
  {
    name: 'METRICS_TOKEN',
    default: '(unset)',
    meaning: 'bearer token (at least 32 characters) required to read /metrics; without METRICS_PORT, /metrics is served on the main port behind it. Neither set: metrics are off',
  },
];

export function loadMetricsConfig(get: (name: string) => string | undefined, mainPort: number, problem: (setting: string, reason: string) => void): MetricsConfig | undefined {
  const portRaw = get('METRICS_PORT');
  const host = get('METRICS_HOST');
  const token = get('METRICS_TOKEN');
  let port: number | undefined;
  if (portRaw !== undefined) {
    if (!/^\d{1,5}$/.test(portRaw) || Number(portRaw) > 65535) problem('METRICS_PORT', `must be a port number 0-65535 (got "${portRaw}")`);
    else if (Number(portRaw) !== 0 && Number(portRaw) === mainPort) problem('METRICS_PORT', `(${portRaw}) must differ from PORT; to serve /metrics on the main port, set only METRICS_TOKEN`);
    else port = Number(portRaw);
  }
  if (token !== undefined && token.length < 32) problem('METRICS_TOKEN', 'must be at least 32 characters (e.g. `openssl rand -hex 32`)');
  if (host !== undefined && portRaw === undefined) problem('METRICS_HOST', 'is set but METRICS_PORT is not: METRICS_HOST is the interface of the METRICS_PORT listener');
  if (port === undefined && token === undefined) return undefined;
  return { port, host, token };
}
