import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { Limits } from '@curbside/shared';
import { SECURITY_ENV_DOC, loadSecurityConfig, type SecurityConfig } from './security/config.js';
import { OIDC_ENV_DOC, loadOidcConfig, type OidcConfig } from './auth/config.js';
import { METRICS_ENV_DOC, loadMetricsConfig } from './metrics/config.js';
import { ALERTS_ENV_DOC, loadAlertsConfig, type AlertsConfig } from './alerts/config.js';
import { ATTACHMENTS_ENV_DOC, loadAttachmentsConfig, type AttachmentsConfig } from './attachments/config.js';
import type { MetricsConfig } from './metrics/metrics.js';
import { JWT_ALGORITHMS, parseVerificationKeys, type JwtAlgorithm } from './auth/keys.js';
import type { EnvSetting } from './env-setting.js';
import { DEFAULT_MAX_IN_FLIGHT } from './realtime/admission.js';

export { JWT_ALGORITHMS, type JwtAlgorithm } from './auth/keys.js';

export interface HubConfig {
  /** `dev`: memory adapters, nothing kept, dev tokens on. `production`: MongoDB + Redis. */
  mode: 'dev' | 'production';
  port: number;
  host: string;
  nodeId: string;
  logLevel: string;
  mongo: { uri: string; dbName: string | undefined; writeConcern: 'majority' | number; groupCommitWaitMs: number } | undefined;
  redis: { url: string; keyPrefix: string } | undefined;
  /** Undefined in dev mode when the hub generates its own signing key at start. */
  jwt:
    | {
        /** One PEM public key, or several one after the other while the identity provider rotates its signing key. */
        publicKey: string;
        /** Where `publicKey` was read from (JWT_PUBLIC_KEY_FILE): re-read on `POST /admin/keys/reload`. */
        keyFile?: string | undefined;
        algorithm: JwtAlgorithm;
        issuer: string;
        audience: string;
        clockToleranceSec: number;
      }
    | undefined;
  /** The hospital's OpenID Connect provider (OIDC_ISSUER): keys by discovery and JWKS, claims mapped. Exclusive with `jwt`. */
  oidc?: OidcConfig | undefined;
  presence: { ttlMs: number; heartbeatMs: number };
  maxFrameBytes: number;
  /** A socket whose unsent data passes this is dropped (SLOW_CONSUMER) and resyncs on reconnect. @default 8 MiB */
  slowConsumerMaxBytes?: number;
  /** How long a shutting-down node waits for in-flight requests (durable writes) to finish. @default 10 s */
  shutdownGraceMs?: number;
  /** Requests one node handles at once; past it, new ones are refused UNAVAILABLE with a retry hint (load shedding). @default 2000 */
  maxInFlight?: number;
  /** A node whose storage stays unreachable this long gives up (exits) so its supervisor restarts it; 0: never. */
  storageWatchdogMs?: number;
  /** How long an envelope some device never acked is kept. @default 30 days */
  retentionMs?: number;
  /** Urgent and emergent messages: re-notification intervals and timer sweeps. @default DEFAULT_ALERTS */
  alerts?: AlertsConfig | undefined;
  /** Attachments: largest size, per-organisation quota, unreferenced upload age. @default DEFAULT_ATTACHMENTS */
  attachments?: AttachmentsConfig | undefined;
  /** How often the sweeper deletes acked and expired envelopes (0: never). @default 10 min */
  sweepIntervalMs?: number;
  /** How often devices' delivery acks are written (merged per device and conversation); 0: at once. @default 30 s */
  ackFlushMs?: number;
  /** The built `<curbside-chat>` bundle to serve at /widget/curbside-chat.js. @default widget/dist/curbside-chat.js in this repository */
  widgetBundlePath?: string | undefined;
  /** Origins and rate limits; absent: the defaults for the mode (see security/config.ts). */
  security?: SecurityConfig | undefined;
  /** How client addresses go into the audit log: as seen, as an HMAC under `key`, or not at all. @default keep */
  auditClientIp?: { mode: 'keep' } | { mode: 'hash'; key: string } | { mode: 'omit' };
  /** How recent a sign-in revoking another of one's devices needs (seconds). @default 600 */
  recentAuthSec?: number;
  /** Sockets one device may hold on one node at once. @default 5 */
  maxSocketsPerDevice?: number;
  /** The longest access-token lifetime accepted (seconds). @default 86400 */
  maxTokenLifetimeSec?: number;
  /** Bearer token for operator endpoints (today: the details of /readyz). Unset: they show no details. */
  adminToken?: string | undefined;
  /** How long start-up waits for MongoDB and Redis to answer before it gives up with a config error naming the host. @default 5000 */
  connectTimeoutMs?: number;
  /** Express `trust proxy`: which hops may set X-Forwarded-For/-Proto (HSTS is sent only behind TLS). Unset: none. */
  trustProxy?: string | number | undefined;
  /** Prometheus /metrics: on a port of its own and/or behind a bearer token. Unset: off. */
  metrics?: MetricsConfig | undefined;
}

/** One misconfiguration: the setting (environment variable) at fault and what is wrong with it. */
export interface ConfigIssue {
  setting: string;
  reason: string;
}

/**
 * Thrown with every problem found, each naming its setting and saying what is wrong and how to fix
 * it. `main.ts` prints one line per problem (`config error: SETTING: reason`) and exits 78 (EX_CONFIG).
 */
export class ConfigError extends Error {
  /** `SETTING: reason`, one per problem. */
  readonly problems: string[];
  constructor(readonly issues: ConfigIssue[]) {
    const problems = issues.map((i) => `${i.setting}: ${i.reason}`);
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** What `main.ts` prints: one line per problem, newlines inside a reason flattened. */
  lines(): string[] {
    return this.issues.map((i) => `config error: ${i.setting}: ${i.reason.replace(/\s*\n\s*/g, ' ')}`);
  }
}

/** Collects config issues for `loadConfig` and `loadSecurityConfig`. */
export type ProblemSink = (setting: string, reason: string) => void;

const intFrom = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

/** The loudly named switch that lets dev mode (where anyone can mint a token) listen beyond loopback. */
export const DANGEROUS_DEV_EXPOSURE = 'DANGEROUSLY_EXPOSE_DEV_MODE_TO_NETWORK';

/** Loopback names and addresses: what dev mode may listen on. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The environment variables the hub reads. README's config table lists the same ones. */
export const ENV_DOC: readonly EnvSetting[] = [
  { name: 'PORT', default: '3000', meaning: 'HTTP and socket.io port' },
  { name: 'HOST', default: '127.0.0.1 in dev mode, 0.0.0.0 otherwise', meaning: 'interface to listen on' },
  { name: 'MONGODB_URI', default: '(unset: dev mode)', meaning: 'MongoDB connection string (a replica set in production)' },
  { name: 'MONGODB_DB', default: 'database in the URI, else `curbside`', meaning: 'database name' },
  { name: 'MONGODB_WRITE_CONCERN', default: 'majority', meaning: '`majority` or a number of nodes; the hub acks a message only after this write concern' },
  {
    name: 'MONGODB_GROUP_COMMIT_MS',
    default: '2',
    meaning: 'group commit: how long (0-1000 ms) an envelope insert waits for concurrent sends to share its insertMany; each is acked once its batch is stored',
  },
  { name: 'REDIS_URL', default: '(unset: dev mode)', meaning: 'Redis for presence and cross-node fan-out' },
  { name: 'REDIS_KEY_PREFIX', default: 'curbside:', meaning: 'prefix for every Redis key and channel (lets hubs share a Redis)' },
  { name: 'JWT_PUBLIC_KEY / JWT_PUBLIC_KEY_FILE', default: '(required outside dev mode)', meaning: 'PEM public key of the identity provider that signs access tokens; during a signing-key rotation the old and the new key one after the other (at most 4)' },
  { name: 'JWT_ALGORITHM', default: 'RS256', meaning: `the one accepted algorithm: ${JWT_ALGORITHMS.join(', ')}` },
  { name: 'JWT_ISSUER', default: '(required outside dev mode)', meaning: 'expected `iss` claim' },
  { name: 'JWT_AUDIENCE', default: '(required outside dev mode)', meaning: 'expected `aud` claim' },
  { name: 'JWT_CLOCK_TOLERANCE_SEC', default: '5', meaning: 'allowed clock skew when checking `exp`' },
  { name: 'JWT_MAX_LIFETIME_SEC', default: '86400', meaning: 'longest access-token lifetime accepted (`exp` − `iat`); longer-lived tokens are refused' },
  { name: 'LOG_LEVEL', default: 'info', meaning: 'pino level: fatal, error, warn, info, debug, trace, silent' },
  { name: 'NODE_ID', default: 'hostname-pid', meaning: 'name of this hub node in logs, health output and its audit chains (keep it stable per node)' },
  { name: 'PRESENCE_TTL_MS', default: '30000', meaning: 'a device without heartbeat for this long is offline (covers crashed nodes)' },
  { name: 'SLOW_CONSUMER_MAX_BYTES', default: '8388608', meaning: 'unsent bytes a socket may pile up before it is dropped with SLOW_CONSUMER (it resyncs on reconnect)' },
  { name: 'RETENTION_DAYS', default: '30', meaning: 'how long the hub keeps an envelope that some recipient device never acked' },
  { name: 'SWEEP_INTERVAL_MS', default: '600000', meaning: 'how often acked and expired envelopes are deleted (0: never)' },
  { name: 'ACK_FLUSH_MS', default: '30000', meaning: "how often devices' delivery acks are written, merged per device and conversation (0: at once)" },
  { name: 'SHUTDOWN_GRACE_MS', default: '10000', meaning: 'on SIGTERM, how long to wait for in-flight requests before closing' },
  { name: 'MAX_IN_FLIGHT', default: '2000', meaning: 'requests one node handles at once (each waiting on the database or Redis); past it, new requests are refused UNAVAILABLE with a retry hint, so an overloaded node stays responsive instead of queueing without bound' },
  { name: 'STORAGE_WATCHDOG_MS', default: '60000', meaning: 'a node whose database stays unreachable this long closes its connections and exits (code 69) for its supervisor to restart it (0: never)' },
  { name: 'WIDGET_BUNDLE', default: 'widget/dist/curbside-chat.js (built by `npm run build`)', meaning: 'path of the chat widget bundle served at /widget/curbside-chat.js; libsodium (curbside-sodium.js, loaded by the widget) is served from the same directory' },
  { name: 'PRESENCE_HEARTBEAT_MS', default: '10000', meaning: 'how often a node refreshes its connections; must be under PRESENCE_TTL_MS' },
  { name: 'AUDIT_CLIENT_IP', default: 'keep', meaning: 'client addresses in the audit log: `keep` as seen, `hash` (HMAC-SHA-256 under AUDIT_IP_HASH_KEY: correlatable, not readable) or `omit`' },
  { name: 'AUDIT_IP_HASH_KEY', default: '(required with AUDIT_CLIENT_IP=hash)', meaning: 'secret key (at least 32 characters, the same on every node) for hashed client addresses' },
  { name: 'RECENT_AUTH_SEC', default: '600', meaning: 'revoking another of one\'s own devices, and linking or unlinking one in the signed device list, needs a sign-in (the token\'s `auth_time`) at most this many seconds old' },
  { name: 'MAX_SOCKETS_PER_DEVICE', default: '5', meaning: 'sockets one device may hold on one hub node at once (a reconnect briefly holds two); more are refused with RATE_LIMITED' },
  { name: 'ADMIN_TOKEN', default: '(unset: no operator endpoints)', meaning: 'bearer token (at least 32 characters) for the admin API and curbside-admin, and the details of /readyz' },
  { name: 'CONNECT_TIMEOUT_MS', default: '5000', meaning: 'at start, how long to wait for MongoDB and Redis to answer before exiting (code 78) with a line naming the host tried (500 to 9000)' },
  { name: 'TRUST_PROXY', default: '(unset: trust no proxy)', meaning: 'reverse proxies allowed to set X-Forwarded-For/-Proto: a hop count, or comma-separated addresses/CIDRs or loopback, linklocal, uniquelocal' },
  {
    name: DANGEROUS_DEV_EXPOSURE,
    default: '(unset)',
    meaning: 'dev mode listens on loopback only, since its /dev/token mints a token for anyone; set to `yes` to let a non-loopback HOST through anyway',
  },
  ...OIDC_ENV_DOC,
  ...METRICS_ENV_DOC,
  ...ALERTS_ENV_DOC,
  ...ATTACHMENTS_ENV_DOC,
  ...SECURITY_ENV_DOC,
];

/**
 * Read and validate the hub's configuration. Collects every problem before failing so an operator
 * fixes them in one go.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const issues: ConfigIssue[] = [];
  const problem: ProblemSink = (setting, reason) => void issues.push({ setting, reason });
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const num = (name: string, def: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return def;
    const r = intFrom(name, min, max).safeParse(raw);
    if (!r.success) {
      problem(name, `${r.error.issues[0]?.message ?? 'is invalid'} (got "${raw}")`);
      return def;
    }
    return r.data;
  };

  const mongoUri = get('MONGODB_URI');
  const redisUrl = get('REDIS_URL');
  const mode: HubConfig['mode'] = !mongoUri && !redisUrl ? 'dev' : 'production';
  if (mode === 'production' && (!mongoUri || !redisUrl)) {
    problem(
      mongoUri ? 'REDIS_URL' : 'MONGODB_URI',
      `is not set. Set both MONGODB_URI and REDIS_URL to run with real storage, or neither for dev mode (memory only, keeps nothing).`,
    );
  }
  if (mongoUri && !/^mongodb(\+srv)?:\/\//.test(mongoUri)) {
    problem('MONGODB_URI', 'must start with mongodb:// or mongodb+srv:// (e.g. mongodb://db1,db2,db3/curbside?replicaSet=rs0)');
  }
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) {
    problem('REDIS_URL', 'must start with redis:// or rediss:// (e.g. redis://127.0.0.1:6379)');
  }
  let writeConcern: 'majority' | number = 'majority';
  const wc = get('MONGODB_WRITE_CONCERN');
  if (wc !== undefined) {
    if (wc === 'majority') writeConcern = 'majority';
    else if (/^\d+$/.test(wc) && Number(wc) >= 1) writeConcern = Number(wc);
    else problem('MONGODB_WRITE_CONCERN', `must be "majority" or a number of nodes >= 1 (got "${wc}"); 0 would ack messages that were never stored`);
  }

  let groupCommitWaitMs = 2;
  const gc = get('MONGODB_GROUP_COMMIT_MS');
  if (gc !== undefined) {
    if (/^\d+(\.\d+)?$/.test(gc) && Number(gc) <= 1000) groupCommitWaitMs = Number(gc);
    else problem('MONGODB_GROUP_COMMIT_MS', `must be a number of milliseconds from 0 to 1000 (got "${gc}")`);
  }

  let jwt: HubConfig['jwt'];
  const keyInline = get('JWT_PUBLIC_KEY');
  const keyFile = get('JWT_PUBLIC_KEY_FILE');
  let publicKey: string | undefined;
  if (keyInline && keyFile) problem('JWT_PUBLIC_KEY_FILE', 'set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE, not both');
  if (keyInline) publicKey = keyInline.replace(/\\n/g, '\n');
  if (keyFile) {
    try {
      publicKey = readFileSync(keyFile, 'utf8');
    } catch (e) {
      problem('JWT_PUBLIC_KEY_FILE', `${keyFile} cannot be read: ${(e as Error).message}`);
    }
  }
  const algorithm = get('JWT_ALGORITHM') ?? 'RS256';
  const algorithmOk = (JWT_ALGORITHMS as readonly string[]).includes(algorithm);
  if (!algorithmOk) {
    problem('JWT_ALGORITHM', `must be one of ${JWT_ALGORITHMS.join(', ')} (got "${algorithm}"); HS* and "none" are refused on purpose`);
  }
  if (publicKey !== undefined && algorithmOk) {
    // Imported and checked against the algorithm now: a key that cannot verify these tokens would start "ready" and refuse them all.
    const parsed = parseVerificationKeys(publicKey, algorithm as JwtAlgorithm);
    if (!parsed.ok) problem(keyFile ? 'JWT_PUBLIC_KEY_FILE' : 'JWT_PUBLIC_KEY', parsed.reason);
  }
  const issuer = get('JWT_ISSUER');
  const audience = get('JWT_AUDIENCE');
  const clockToleranceSec = num('JWT_CLOCK_TOLERANCE_SEC', 5, 0, 300);
  const oidc = loadOidcConfig(get, num, problem);
  if (oidc) oidc.clockToleranceSec = clockToleranceSec;
  if (oidc && (keyInline || keyFile || issuer || audience)) {
    problem('OIDC_ISSUER', 'set OIDC_ISSUER (keys from your OpenID Connect provider) or JWT_PUBLIC_KEY/JWT_ISSUER/JWT_AUDIENCE (one static key), not both');
  }
  if (mode === 'production' && !oidc) {
    if (!publicKey && !keyFile) problem('JWT_PUBLIC_KEY', "(or JWT_PUBLIC_KEY_FILE) is required outside dev mode: the PEM public key of your identity provider's token signer, unless OIDC_ISSUER names your OpenID Connect provider");
    if (!issuer) problem('JWT_ISSUER', 'is required outside dev mode: the `iss` your identity provider puts in access tokens');
    if (!audience) problem('JWT_AUDIENCE', 'is required outside dev mode: the `aud` your identity provider puts in tokens meant for Curbside');
  }
  if (publicKey) {
    jwt = { publicKey, ...(keyFile ? { keyFile } : {}), algorithm: algorithm as JwtAlgorithm, issuer: issuer ?? 'curbside-dev', audience: audience ?? 'curbside', clockToleranceSec };
  }

  const ttlMs = num('PRESENCE_TTL_MS', 30_000, 1_000, 3_600_000);
  const heartbeatMs = num('PRESENCE_HEARTBEAT_MS', 10_000, 200, 3_600_000);
  if (heartbeatMs >= ttlMs) problem('PRESENCE_HEARTBEAT_MS', `${heartbeatMs} must be less than PRESENCE_TTL_MS (${ttlMs}), or devices flicker offline`);

  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problem('LOG_LEVEL', `must be one of fatal, error, warn, info, debug, trace, silent (got "${logLevel}")`);
  }

  const host = get('HOST') ?? (mode === 'dev' ? '127.0.0.1' : '0.0.0.0');
  const exposeDev = get(DANGEROUS_DEV_EXPOSURE);
  if (exposeDev !== undefined && exposeDev !== 'yes') problem(DANGEROUS_DEV_EXPOSURE, `must be "yes" or unset (got "${exposeDev}")`);
  if (mode === 'dev' && !publicKey && !oidc && !isLoopbackHost(host) && exposeDev !== 'yes') {
    problem(
      'HOST',
      `${host} in dev mode would let anyone who reaches it mint a token for any clinician (POST /dev/token). Use HOST=127.0.0.1, set JWT_PUBLIC_KEY/JWT_ISSUER/JWT_AUDIENCE (dev tokens off), or set ${DANGEROUS_DEV_EXPOSURE}=yes if you really mean it`,
    );
  }
  const ipMode = get('AUDIT_CLIENT_IP') ?? 'keep';
  const ipKey = get('AUDIT_IP_HASH_KEY');
  let auditClientIp: HubConfig['auditClientIp'] = { mode: 'keep' };
  if (ipMode === 'omit') auditClientIp = { mode: 'omit' };
  else if (ipMode === 'hash') {
    if (!ipKey || ipKey.length < 32) problem('AUDIT_IP_HASH_KEY', 'AUDIT_CLIENT_IP=hash needs it: a secret of at least 32 characters, the same on every node (e.g. `openssl rand -hex 32`)');
    else auditClientIp = { mode: 'hash', key: ipKey };
  } else if (ipMode !== 'keep') problem('AUDIT_CLIENT_IP', `must be keep, hash or omit (got "${ipMode}")`);
  const adminToken = get('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 32) problem('ADMIN_TOKEN', 'must be at least 32 characters (e.g. `openssl rand -hex 32`)');
  const trustProxyRaw = get('TRUST_PROXY');
  let trustProxy: string | number | undefined;
  if (trustProxyRaw !== undefined) {
    if (/^\d{1,2}$/.test(trustProxyRaw)) trustProxy = Number(trustProxyRaw);
    else if (/^[0-9a-f:.,/ a-z]+$/i.test(trustProxyRaw)) trustProxy = trustProxyRaw;
    else problem('TRUST_PROXY', `must be a hop count or comma-separated addresses/CIDRs (got "${trustProxyRaw}")`);
  }

  const port = num('PORT', 3000, 0, 65535);
  const config: HubConfig = {
    mode,
    port,
    metrics: loadMetricsConfig(get, port, problem),
    host,
    adminToken,
    trustProxy,
    connectTimeoutMs: num('CONNECT_TIMEOUT_MS', 5_000, 500, 9_000),
    maxTokenLifetimeSec: num('JWT_MAX_LIFETIME_SEC', 86_400, 60, 30 * 86_400),
    maxSocketsPerDevice: num('MAX_SOCKETS_PER_DEVICE', 5, 1, 1000),
    recentAuthSec: num('RECENT_AUTH_SEC', 600, 30, 86_400),
    auditClientIp,
    nodeId: get('NODE_ID') ?? `${hostname()}-${process.pid}`,
    logLevel,
    mongo: mongoUri ? { uri: mongoUri, dbName: get('MONGODB_DB'), writeConcern, groupCommitWaitMs } : undefined,
    redis: redisUrl ? { url: redisUrl, keyPrefix: get('REDIS_KEY_PREFIX') ?? 'curbside:' } : undefined,
    jwt,
    oidc,
    presence: { ttlMs, heartbeatMs },
    maxFrameBytes: Limits.MAX_FRAME_BYTES,
    slowConsumerMaxBytes: num('SLOW_CONSUMER_MAX_BYTES', 8 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    shutdownGraceMs: num('SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    maxInFlight: num('MAX_IN_FLIGHT', DEFAULT_MAX_IN_FLIGHT, 10, 1_000_000),
    storageWatchdogMs: num('STORAGE_WATCHDOG_MS', 60_000, 0, 86_400_000),
    retentionMs: num('RETENTION_DAYS', 30, 1, 3650) * 24 * 3600 * 1000,
    sweepIntervalMs: num('SWEEP_INTERVAL_MS', 600_000, 0, 86_400_000),
    alerts: loadAlertsConfig(num, problem),
    attachments: loadAttachmentsConfig(num),
    ackFlushMs: num('ACK_FLUSH_MS', 30_000, 0, 600_000),
    widgetBundlePath: get('WIDGET_BUNDLE'),
    security: loadSecurityConfig(get, mode, problem),
  };
  if (issues.length) throw new ConfigError(issues);
  return config;
}
