/**
 * Security settings from the environment: allowed browser origins and rate limits.
 * `loadSecurityConfig` is called by `loadConfig` and reports problems to the same sink.
 */
import type { EnvSetting } from '../env-setting.js';

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
    /** `envelope:send` per device (per user and per organisation: `budgetFactors`). */
    envelopeSend: RateLimitRule;
    /**
     * Socket handshakes per device, counted once the token is verified (per user: 4×). A garbage
     * handshake never spends a real clinician's budget, however many share their address.
     */
    handshake: RateLimitRule;
    /** Failed handshakes per client address (behind TRUST_PROXY, the forwarded one): only failures count. */
    handshakeFailures: RateLimitRule;
    /** `keys:claim` per user, one point per user named in the request: claiming drains one-time prekeys. */
    keysClaim: RateLimitRule;
    /** `keys:claim` per claiming user and user claimed: one colleague cannot drain another's one-time prekeys. */
    keysClaimTarget: RateLimitRule;
    /** Conversations and teams others may add one user to: nobody can be buried in groups by a colleague. */
    addedToConversations: RateLimitRule;
    /** Sealed (pseudonymous) pool posts per client address: they carry no account to charge. */
    sealedPosts: RateLimitRule;
  } & Record<EventClass, RateLimitRule>;
  /**
   * The budgets above a device's, as multiples of its rule: a user's across their devices and an
   * organisation's across its users (for `envelope:send` and every event class).
   * @default `{ user: USER_BUDGET_FACTOR, org: ORG_BUDGET_FACTOR }`
   */
  budgetFactors?: { user: number; org: number };
  /** A live socket re-checks revocation at most this often (ms); revocations are also pushed at once. */
  revocationRecheckMs: number;
}

/**
 * Every other client event belongs to one class with its own budget per device; each user has
 * `USER_BUDGET_FACTOR` times it (across their devices) and each organisation `ORG_BUDGET_FACTOR` times
 * it (across its users), so one device, one account or one tenant cannot take the hub for itself.
 */
export const EVENT_CLASSES = ['membership', 'typing', 'presence', 'sync', 'reads', 'unknown', 'attachments'] as const;
export type EventClass = (typeof EVENT_CLASSES)[number];
/** @default for `budgetFactors.user` (RATE_LIMIT_USER_FACTOR). */
export const USER_BUDGET_FACTOR = 2;
/** @default for `budgetFactors.org` (RATE_LIMIT_ORG_FACTOR). */
export const ORG_BUDGET_FACTOR = 200;

export const DEFAULT_RATE_LIMITS: SecurityConfig['rateLimits'] = {
  envelopeSend: { points: 100, durationSec: 10 },
  handshake: { points: 60, durationSec: 60 },
  handshakeFailures: { points: 600, durationSec: 60 },
  keysClaim: { points: 300, durationSec: 60 },
  keysClaimTarget: { points: 30, durationSec: 3600 },
  addedToConversations: { points: 60, durationSec: 3600 },
  sealedPosts: { points: 60, durationSec: 60 },
  /** conversation:create, team:create, team:change */
  membership: { points: 30, durationSec: 60 },
  typing: { points: 30, durationSec: 10 },
  /** presence:query */
  presence: { points: 60, durationSec: 60 },
  /** sync:fetch, sync:ack */
  sync: { points: 600, durationSec: 60 },
  /** conversation:list/get, devices:list/mine, keys:count, keys:publish, device:revoke */
  reads: { points: 300, durationSec: 60 },
  /** events the hub does not know (always refused; the limit bounds what answering them costs) */
  unknown: { points: 20, durationSec: 60 },
  /** attachment HTTP requests (create, status, each part, finish, download) */
  attachments: { points: 600, durationSec: 60 },
};

/** Every limit off: for tests and benchmarks that measure something else. */
export function rateLimitsOff(): SecurityConfig['rateLimits'] {
  const off = { points: 0, durationSec: 1 };
  return Object.fromEntries(Object.keys(DEFAULT_RATE_LIMITS).map((k) => [k, off])) as SecurityConfig['rateLimits'];
}

export function defaultSecurityConfig(mode: 'dev' | 'production'): SecurityConfig {
  return {
    corsOrigins: mode === 'dev' ? 'dev-localhost' : [],
    rateLimits: DEFAULT_RATE_LIMITS,
    budgetFactors: { user: USER_BUDGET_FACTOR, org: ORG_BUDGET_FACTOR },
    revocationRecheckMs: 5_000,
  };
}

/** The security variables, appended to the hub's ENV_DOC (and so to README's table). */
export const SECURITY_ENV_DOC: readonly EnvSetting[] = [
  {
    name: 'CORS_ORIGINS',
    default: 'dev mode: localhost origins; otherwise none',
    meaning: 'comma-separated browser origins (https://app.hospital.example) allowed for the socket handshake and REST; other Origin headers are refused',
  },
  { name: 'RATE_LIMIT_ENVELOPE_SEND', default: '100/10', meaning: '`envelope:send` per device (per user 2×, per organisation 200×): N/S is N per S seconds; 0 switches it off' },
  { name: 'RATE_LIMIT_HANDSHAKE', default: '60/60', meaning: 'socket handshakes per device, counted after the token is verified (per user: 4×)' },
  { name: 'RATE_LIMIT_HANDSHAKE_FAILURES', default: '600/60', meaning: 'failed handshakes per client address (the forwarded one behind TRUST_PROXY); valid tokens are never refused for their address' },
  { name: 'RATE_LIMIT_KEYS_CLAIM', default: '300/60', meaning: '`keys:claim` per user, one point per user named (N per S seconds): limits harvesting of one-time prekeys' },
  { name: 'RATE_LIMIT_KEYS_CLAIM_TARGET', default: '30/3600', meaning: '`keys:claim` per claiming user and user claimed: one colleague cannot drain another’s one-time prekeys' },
  { name: 'RATE_LIMIT_ADDED_TO_CONVERSATIONS', default: '60/3600', meaning: 'group conversations and care teams others may add one user to (per added user)' },
  { name: 'RATE_LIMIT_SEALED_POSTS', default: '60/60', meaning: 'sealed (pseudonymous) consult-pool posts per client address (the forwarded one behind TRUST_PROXY): they are sent without an account; each also spends a one-time token' },
  { name: 'RATE_LIMIT_MEMBERSHIP', default: '30/60', meaning: 'conversation:create, team:create and team:change per device (per user 2×, per organisation 200×)' },
  { name: 'RATE_LIMIT_TYPING', default: '30/10', meaning: '`typing` per device (per user 2×, per organisation 200×)' },
  { name: 'RATE_LIMIT_PRESENCE', default: '60/60', meaning: '`presence:query` per device (per user 2×, per organisation 200×)' },
  { name: 'RATE_LIMIT_SYNC', default: '600/60', meaning: '`sync:fetch` and `sync:ack` per device (per user 2×, per organisation 200×)' },
  { name: 'RATE_LIMIT_READS', default: '300/60', meaning: 'lists and key look-ups (conversation:list/get, devices:list/mine, keys:count/publish, device:revoke) per device (per user 2×, per organisation 200×)' },
  { name: 'RATE_LIMIT_UNKNOWN', default: '20/60', meaning: 'events the hub does not know, per device (per user 2×): refused either way, the limit bounds their cost' },
  { name: 'RATE_LIMIT_ATTACHMENTS', default: '600/60', meaning: 'attachment HTTP requests per device: create, status, each part (up to 16 MiB), finish, download (per user 2×, per organisation 200×)' },
  { name: 'RATE_LIMIT_USER_FACTOR', default: String(USER_BUDGET_FACTOR), meaning: 'a user’s budget across their devices, as a multiple of the device budget (sends and every event class)' },
  { name: 'RATE_LIMIT_ORG_FACTOR', default: String(ORG_BUDGET_FACTOR), meaning: 'an organisation’s budget across its users, as a multiple of the device budget (sends and every event class except unknown events); raise it for large organisations' },
];

const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9a-f:]+\](:\d{1,5})?$/i;

export function loadSecurityConfig(get: (name: string) => string | undefined, mode: 'dev' | 'production', problem: (setting: string, reason: string) => void): SecurityConfig {
  const config = defaultSecurityConfig(mode);
  const origins = get('CORS_ORIGINS');
  if (origins !== undefined) {
    const list = origins
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean);
    const bad = list.filter((o) => !ORIGIN.test(o));
    if (bad.length) {
      problem('CORS_ORIGINS', `must be a comma-separated list of origins like https://app.hospital.example (scheme, host, optional port; no path, no "*"); bad: ${bad.join(', ')}`);
    }
    config.corsOrigins = list.map((o) => o.toLowerCase());
  }
  const rule = (name: string, def: RateLimitRule): RateLimitRule => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (raw === '0') return { points: 0, durationSec: def.durationSec };
    const m = /^(\d{1,9})\/(\d{1,6})$/.exec(raw);
    if (!m || Number(m[2]) < 1) {
      problem(name, `must be N/S (N requests per S seconds, e.g. ${def.points}/${def.durationSec}) or 0 to switch it off (got "${raw}")`);
      return def;
    }
    return { points: Number(m[1]), durationSec: Number(m[2]) };
  };
  const envName = (name: string) => `RATE_LIMIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
  config.rateLimits = Object.fromEntries(
    (Object.keys(DEFAULT_RATE_LIMITS) as Array<keyof SecurityConfig['rateLimits']>).map((name) => [name, rule(envName(name), DEFAULT_RATE_LIMITS[name])]),
  ) as SecurityConfig['rateLimits'];
  const factor = (name: string, def: number): number => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) {
      problem(name, `must be a whole number of at least 1 (got "${raw}")`);
      return def;
    }
    return Number(raw);
  };
  config.budgetFactors = { user: factor('RATE_LIMIT_USER_FACTOR', USER_BUDGET_FACTOR), org: factor('RATE_LIMIT_ORG_FACTOR', ORG_BUDGET_FACTOR) };
  return config;
}
