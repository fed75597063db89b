/**
 * Security settings from the environment: allowed browser origins and rate limits.
 * `loadSecurityConfig` is called by `loadConfig` and reports problems into the same list.
 */

/** A limit: at most `points` within `durationSec`, per key (device, IP or user). `points: 0` switches it off. */
export interface RateLimitRule {
  points: number;
  durationSec: number;
}

export interface SecurityConfig {
  /**
   * Browser origins (scheme://host[:port]) allowed to open a socket or call the REST API.
   * `'dev-localhost'`: any http(s) origin on localhost, 127.0.0.1 or [::1] (dev mode default).
   * Requests without an Origin header (native apps, servers, the Node SDK) are not browser
   * requests and are allowed; authentication still applies.
   */
  corsOrigins: readonly string[] | 'dev-localhost';
  rateLimits: {
    /** `envelope:send` per device. */
    envelopeSend: RateLimitRule;
    /** Socket handshakes per client IP (counted before the token is checked). */
    handshake: RateLimitRule;
    /** `keys:claim` per user, one point per user named in the request: claiming drains one-time prekeys. */
    keysClaim: RateLimitRule;
  };
  /** A live socket re-checks revocation at most this often (ms); revocations are also pushed at once. */
  revocationRecheckMs: number;
}

export const DEFAULT_RATE_LIMITS: SecurityConfig['rateLimits'] = {
  envelopeSend: { points: 100, durationSec: 10 },
  handshake: { points: 600, durationSec: 60 },
  keysClaim: { points: 300, durationSec: 60 },
};

export function defaultSecurityConfig(mode: 'dev' | 'production'): SecurityConfig {
  return { corsOrigins: mode === 'dev' ? 'dev-localhost' : [], rateLimits: DEFAULT_RATE_LIMITS, revocationRecheckMs: 5_000 };
}

/** The security variables, appended to the hub's ENV_DOC (and so to README's table). */
export const SECURITY_ENV_DOC: ReadonlyArray<{ name: string; default: string; meaning: string }> = [
  {
    name: 'CORS_ORIGINS',
    default: 'dev mode: localhost origins; otherwise none',
    meaning: 'comma-separated browser origins (https://app.hospital.example) allowed for the socket handshake and REST; other Origin headers are refused',
  },
  { name: 'RATE_LIMIT_ENVELOPE_SEND', default: '100/10', meaning: '`envelope:send` per device: N/S is N per S seconds; 0 switches it off' },
  { name: 'RATE_LIMIT_HANDSHAKE', default: '600/60', meaning: 'socket handshakes per client IP (N per S seconds); a hospital NAT puts many devices behind one address' },
  { name: 'RATE_LIMIT_KEYS_CLAIM', default: '300/60', meaning: '`keys:claim` per user, one point per user named (N per S seconds): limits harvesting of one-time prekeys' },
];

const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9a-f:]+\](:\d{1,5})?$/i;

export function loadSecurityConfig(get: (name: string) => string | undefined, mode: 'dev' | 'production', problems: string[]): SecurityConfig {
  const config = defaultSecurityConfig(mode);
  const origins = get('CORS_ORIGINS');
  if (origins !== undefined) {
    const list = origins
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean);
    const bad = list.filter((o) => !ORIGIN.test(o));
    if (bad.length) {
      problems.push(`CORS_ORIGINS must be a comma-separated list of origins like https://app.hospital.example (scheme, host, optional port; no path, no "*"); bad: ${bad.join(', ')}`);
    }
    config.corsOrigins = list.map((o) => o.toLowerCase());
  }
  const rule = (name: string, def: RateLimitRule): RateLimitRule => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (raw === '0') return { points: 0, durationSec: def.durationSec };
    const m = /^(\d{1,9})\/(\d{1,6})$/.exec(raw);
    if (!m || Number(m[2]) < 1) {
      problems.push(`${name} must be N/S (N requests per S seconds, e.g. ${def.points}/${def.durationSec}) or 0 to switch it off (got "${raw}")`);
      return def;
    }
    return { points: Number(m[1]), durationSec: Number(m[2]) };
  };
  config.rateLimits = {
    envelopeSend: rule('RATE_LIMIT_ENVELOPE_SEND', DEFAULT_RATE_LIMITS.envelopeSend),
    handshake: rule('RATE_LIMIT_HANDSHAKE', DEFAULT_RATE_LIMITS.handshake),
    keysClaim: rule('RATE_LIMIT_KEYS_CLAIM', DEFAULT_RATE_LIMITS.keysClaim),
  };
  return config;
}
