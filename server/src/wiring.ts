/**
 * The wiring of one hub node: its metrics, token verification and keys, audit log, device directory,
 * security, the domain services, the HTTP app, socket.io, the message relay, alerts and the
 * gateway, each built and handed the others it uses. Starting, watching and stopping the node is
 * `Hub`'s (hub.ts).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import { SEALED_SENDER, wireParser } from '@curbside/shared';
import type { HubConfig } from './config.js';
import type { Logger } from './logger.js';
import { TokenVerifier, type DevTokenIssuer, type TokenVerifierOptions } from './auth/tokens.js';
import { createHttpApp } from './http/app.js';
import { defaultWidgetBundlePath } from './http/widget.js';
import { Gateway } from './realtime/gateway.js';
import type { HubServer } from './realtime/sockets.js';
import { MessageRelay } from './domain/message-relay.js';
import { DeviceLists } from './domain/device-lists.js';
import { DeviceKeys } from './domain/device-keys.js';
import { OnCallRoles } from './domain/roles.js';
import { ConsultPools } from './domain/consult-pools.js';
import { Credentials } from './domain/credentials.js';
import { Pseudonyms } from './domain/pseudonyms.js';
import { SealedPosts } from './domain/sealed-posts.js';
import { CareTeams } from './domain/care-teams.js';
import { Profiles } from './domain/profiles.js';
import { Alerts } from './alerts/alerts.js';
import { DEFAULT_ALERTS } from './alerts/config.js';
import type { Storage } from './ports/storage.js';
import type { Presence } from './ports/presence.js';
import { MongoStorage } from './adapters/mongo/storage.js';
import { RedisPresence } from './adapters/redis/presence.js';
import { HubSecurity } from './security/hub-security.js';
import { defaultSecurityConfig } from './security/config.js';
import type { AuditLog } from './audit/port.js';
import { MemoryAuditLog } from './audit/memory.js';
import { MongoAuditLog } from './audit/mongo.js';
import { DeviceDirectory } from './domain/device-directory.js';
import { DeliveryCursors } from './domain/delivery-cursors.js';
import { RedisDirectoryTags } from './adapters/redis/directory-tags.js';
import { HubMetrics, type MongoCommandEvents } from './metrics/metrics.js';
import { KeyRing } from './auth/key-ring.js';
import { Administration } from './admin/administration.js';
import { attachmentsFor, type Attachments } from './attachments/attachments.js';
import type { BlobStore } from './ports/blob-store.js';

export interface HubDeps {
  config: HubConfig;
  storage: Storage;
  presence: Presence;
  logger: Logger;
  /** Cross-node fan-out through the socket.io Redis adapter. Absent: this process only. */
  fanout?: { pub: Redis; sub: Redis; keyPrefix: string } | undefined;
  /** Dev mode: the hub signs its own tokens, used only when neither `config.oidc` nor `config.jwt` is set. */
  devTokens?: DevTokenIssuer | undefined;
  /** Extra resources to close after everything else (e.g. Redis clients the hub created). */
  onClose?: () => Promise<void>;
  /**
   * Called when the node gave up (its storage stayed unreachable for `storageWatchdogMs`) and has
   * closed; the process should exit so its supervisor restarts it. Without it the watchdog is off.
   */
  onFatal?: (reason: string) => void;
  /** Where audit entries go. Default: the storage's MongoDB database when it is a MongoStorage, else memory. */
  audit?: AuditLog | undefined;
  /** Where attachment ciphertext goes. Default: GridFS in the storage's database when it is a MongoStorage, else memory. */
  blobs?: BlobStore | undefined;
}

/** What the parts ask of the hub's lifecycle while they run. */
export interface HubHooks {
  /** Whether the node still takes new work (false once it is closing). */
  isAccepting: () => boolean;
  /** A handshake or request failed because the database could not be reached (the storage watchdog listens). */
  onStorageUnreachable: () => void;
}

/** One hub node's parts, wired together and not started (the fields of `Hub` say what each is for). */
export interface HubParts {
  metrics: HubMetrics;
  /** The storage port, timed for metrics. */
  storage: Storage;
  verifier: TokenVerifier;
  keys: KeyRing;
  audit: AuditLog;
  directory: DeviceDirectory;
  security: HubSecurity;
  administration: Administration;
  attachments: Attachments;
  blobs: BlobStore;
  httpServer: HttpServer;
  io: HubServer;
  relay: MessageRelay;
  alerts: Alerts;
  gateway: Gateway;
}

/** Build one node's parts from its dependencies and connect them to one another. */
export function wireHub(deps: HubDeps, hub: HubHooks): HubParts {
  const { config, presence, logger } = deps;
  // The gateway is made last, once everything it uses exists; the metrics and sealed posts reach it only when they run.
  let gateway: Gateway | undefined;
  const metrics = new HubMetrics({ nodeId: config.nodeId, connections: () => gateway?.connections.size ?? 0 });
  // Database latency and errors are measured at the storage port; Redis per command on each client.
  const storage = metrics.instrumentStorage(deps.storage);
  if (deps.fanout) for (const client of [deps.fanout.pub, deps.fanout.sub]) metrics.instrumentRedis(client);
  if (presence instanceof RedisPresence) metrics.instrumentRedis(presence.redis);
  // Database commands by name (driver command monitoring): what a message costs the database.
  if (deps.storage instanceof MongoStorage) metrics.instrumentMongo(deps.storage.connection.getClient() as unknown as MongoCommandEvents);
  const verifierOptions = verifierOptionsFor(config, deps.devTokens);
  const verifier = new TokenVerifier({ ...verifierOptions, ...(config.maxTokenLifetimeSec !== undefined ? { maxLifetimeSec: config.maxTokenLifetimeSec } : {}) });
  const devKey = deps.devTokens !== undefined && !config.jwt && !config.oidc;
  const keys = new KeyRing({
    verifier,
    nodeId: config.nodeId,
    algorithm: 'algorithm' in verifierOptions ? verifierOptions.algorithm : 'from the provider key set',
    keyFile: devKey ? undefined : config.jwt?.keyFile,
    source: config.oidc ? 'oidc' : devKey ? 'dev' : config.jwt?.keyFile !== undefined ? 'file' : 'env',
  });
  const audit = deps.audit ?? (deps.storage instanceof MongoStorage ? new MongoAuditLog({ connection: deps.storage.connection, logger, writer: config.nodeId }) : new MemoryAuditLog({ logger }));
  // Device lists are cached per node only where tags in Redis tell every node when one changed.
  const directory = new DeviceDirectory({
    storage,
    tags: deps.fanout ? new RedisDirectoryTags({ redis: deps.fanout.pub, keyPrefix: deps.fanout.keyPrefix }) : undefined,
    logger,
  });
  const security = new HubSecurity({
    config: config.security ?? defaultSecurityConfig(config.mode),
    storage,
    audit,
    logger,
    redis: deps.fanout ? { client: deps.fanout.pub, keyPrefix: deps.fanout.keyPrefix } : undefined,
    onDevicesChanged: (orgId, userId) => directory.changed(orgId, userId),
    trustProxy: config.trustProxy,
    auditClientIp: config.auditClientIp,
    recentAuthSec: config.recentAuthSec,
  });

  const credentials = new Credentials(storage);
  const administration = new Administration({ storage, security, audit, keys, logger, clustered: deps.fanout !== undefined, alertDefaults: config.alerts ?? DEFAULT_ALERTS, credentials, pseudonyms: new Pseudonyms(storage, (o, u, d, specialty) => credentials.holdsValid(o, u, d, specialty)) });
  const { attachments, blobs } = attachmentsFor({ storage, underlying: deps.storage, blobs: deps.blobs, config, logger, metrics });
  const app = createHttpApp({
    origins: security.origins,
    nodeId: config.nodeId,
    mode: config.mode,
    logger,
    devTokens: deps.devTokens,
    isAccepting: hub.isAccepting,
    widgetBundlePath: config.widgetBundlePath ?? defaultWidgetBundlePath(),
    adminToken: config.adminToken,
    admin: { security, administration },
    trustProxy: config.trustProxy,
    attachments: { attachments, verifier, security, storage },
    // Pseudonymous pool posts; the relay and the gateway are made below, with socket.io, and reached when a post arrives.
    sealedPosts: { sealedPosts: new SealedPosts({ storage, relay: { sendSealed: (orgId, req) => relay.sendSealed(orgId, req) }, pseudonyms: administration.pseudonyms }), security, deliver: (orgId, o) => (metrics.envelopesIn.inc(), gateway!.fanOut(orgId, SEALED_SENDER, o.recipientUserIds, o.envelope)) },
    // With a token and no port of its own, /metrics sits on the main port behind that token.
    metrics: config.metrics?.token !== undefined && config.metrics.port === undefined ? (req, res) => metrics.handle(req, res, config.metrics?.token) : undefined,
    readiness: [
      { name: 'storage', check: () => storage.ping() },
      { name: 'presence', check: () => presence.ping() },
      ...(deps.fanout ? [{ name: 'fanout', check: async () => void (await deps.fanout!.pub.ping()) }] : []),
    ],
  });
  const httpServer = createServer(app);
  const io: HubServer = new Server(httpServer, {
    maxHttpBufferSize: config.maxFrameBytes,
    serveClient: false,
    parser: wireParser,
    ...security.origins.socketOptions(),
    ...(deps.fanout ? { adapter: createAdapter(catchPublishFailures(deps.fanout.pub, logger), deps.fanout.sub, { key: `${deps.fanout.keyPrefix}socket.io` }) } : {}),
  });
  const relay = new MessageRelay(
    storage,
    Date.now,
    config.retentionMs, // undefined: the relay's default
    directory,
    // Acks are filtered by membership through the directory's cache (a tag read per conversation
    // instead of a database read): every conversation with acks is checked on every write.
    new DeliveryCursors({
      storage: { getConversation: (orgId, id) => directory.conversation(orgId, id), ackDelivered: (orgId, deviceId, cursors) => storage.ackDelivered(orgId, deviceId, cursors) },
      flushMs: config.ackFlushMs,
      logger,
    }),
  );
  administration.attach(io);
  const alerts = new Alerts({ storage, directory, io, logger, config: config.alerts ?? DEFAULT_ALERTS, record: (e) => security.record(e) });
  administration.attachAlerts(alerts);
  gateway = new Gateway({ io, verifier, storage, presence, relay, alerts, attachments, keys: new DeviceKeys(storage, directory), deviceLists: new DeviceLists(storage, directory, { recentAuthSec: config.recentAuthSec }), teams: new CareTeams(storage, directory, Date.now, (orgId, userIds, deviceId) => administration.credentials.credentialed(orgId, userIds, deviceId)), roles: new OnCallRoles(storage, directory), pools: new ConsultPools(storage), credentials: administration.credentials, pseudonyms: administration.pseudonyms, profiles: new Profiles(storage), logger, security, onStorageUnreachable: hub.onStorageUnreachable, metrics, ...(config.maxSocketsPerDevice !== undefined ? { maxSocketsPerDevice: config.maxSocketsPerDevice } : {}), ...(config.maxInFlight !== undefined ? { maxInFlight: config.maxInFlight } : {}) });
  return { metrics, storage, verifier, keys, audit, directory, security, administration, attachments, blobs, httpServer, io, relay, alerts, gateway };
}

/** How access tokens are verified: the OpenID Connect provider, the static key, or (dev mode) the hub's own. */
function verifierOptionsFor(config: HubConfig, devTokens: DevTokenIssuer | undefined): TokenVerifierOptions {
  if (config.oidc) {
    const { issuer, audience, claims, jwksCooldownMs, jwksMaxAgeMs, clockToleranceSec } = config.oidc;
    return { issuer, audience, claims, clockToleranceSec: clockToleranceSec ?? 5, oidc: { jwksCooldownMs, jwksMaxAgeMs } };
  }
  if (config.jwt) return config.jwt;
  if (devTokens) return devTokens.verifierOptions();
  throw new Error('No token verification: set OIDC_ISSUER or JWT_PUBLIC_KEY, or run in dev mode');
}

/**
 * socket.io's Redis adapter publishes without waiting for the answer. ioredis rejects a publish that
 * outlived `maxRetriesPerRequest` (Redis down or restarting), and an unhandled rejection ends the
 * process: one Redis restart took down every hub node that fanned out a message meanwhile. The
 * envelope is already stored; receivers on other nodes get it at their next gap or resync.
 */
function catchPublishFailures(pub: Redis, logger: Logger): Redis {
  const publish = pub.publish.bind(pub) as (...args: unknown[]) => Promise<number>;
  (pub as unknown as { publish: (...args: unknown[]) => Promise<number> }).publish = (...args: unknown[]) => {
    const sent = publish(...args);
    sent.catch((err: unknown) => logger.warn({ err: (err as Error)?.message }, 'fan-out publish to Redis failed; other nodes miss this push'));
    return sent;
  };
  return pub;
}
