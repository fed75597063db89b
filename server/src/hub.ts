import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { CloseCode, SEALED_SENDER, wireParser } from '@curbside/shared';
import type { HubConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { DevTokenIssuer, TokenVerifier, type TokenVerifierOptions } from './auth/tokens.js';
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
import { MemoryStorage } from './adapters/memory/storage.js';
import { MemoryPresence } from './adapters/memory/presence.js';
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

/** How often sockets are checked for unsent data piling up. */
const SLOW_CONSUMER_CHECK_MS = 500;

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

/** After the storage watchdog gives up, how long the node may spend closing before `onFatal`. */
const FATAL_CLOSE_MS = 5_000;

/**
 * One hub node: HTTP probes, the socket.io gateway, the message relay, presence heartbeats.
 * `listen()` starts it; `close()` stops accepting, tells clients to reconnect elsewhere, and
 * releases every resource.
 */
export class Hub {
  readonly httpServer: HttpServer;
  readonly io: HubServer;
  readonly gateway: Gateway;
  readonly logger: Logger;
  /** Origins, rate limits, revocation (`revokeToken`), device administration, audit trail. */
  readonly security: HubSecurity;
  readonly audit: AuditLog;
  /** Urgent and emergent messages: acknowledgements and durable re-notification timers. */
  readonly alerts: Alerts;
  /** Members' devices, read on every send (cached per node when Redis is there to invalidate). */
  readonly directory: DeviceDirectory;
  /** This node's Prometheus metrics (served at /metrics when METRICS_PORT or METRICS_TOKEN is set). */
  readonly metrics: HubMetrics;
  /** Where /metrics is served on a listener of its own (METRICS_PORT), once listening. */
  metricsUrl: string | undefined;
  private metricsServer: HttpServer | undefined;
  /** The storage port, timed for metrics. */
  private readonly storage: Storage;
  /** The identity provider's verification keys this node accepts (rotation: `POST /admin/keys/reload`). */
  readonly keys: KeyRing;
  /** The operator actions behind /admin (and the curbside-admin CLI). */
  readonly administration: Administration;
  /** Encrypted attachments: uploads, downloads, references from sends, the sweep (issue #21). */
  readonly attachments: Attachments;
  private readonly blobs: BlobStore;
  private readonly relay: MessageRelay;
  private readonly verifier: TokenVerifier;
  private heartbeat: NodeJS.Timeout | undefined;
  private slowConsumerCheck: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** End of the last watchdog period in which storage answered its ping and no request found it unreachable. */
  private storageOkAt = 0;
  /** When a handshake or request last failed because the database could not be reached. */
  private storageFailedAt = 0;

  /** Delete envelopes every recipient device acked, and those past retention (FerretDB has no TTL). */
  async sweep(now = Date.now()): Promise<number> {
    try {
      await this.relay.flushAcks(); // the sweep goes by the delivery acks: write those noted so far first
      const { deleted } = await this.storage.sweepEnvelopes(now);
      if (deleted) this.logger.info({ deleted }, 'swept delivered and expired envelopes');
      await this.attachments.sweep(now).catch((err: unknown) => this.logger.warn({ err }, 'attachment sweep failed'));
      return deleted;
    } catch (err) {
      this.logger.warn({ err }, 'envelope sweep failed');
      return 0;
    }
  }
  private accepting = true;
  private closed: Promise<void> | undefined;

  constructor(private readonly deps: HubDeps) {
    const { config, presence, logger } = deps;
    this.logger = logger;
    this.metrics = new HubMetrics({ nodeId: config.nodeId, connections: () => this.gateway?.connections.size ?? 0 });
    // Database latency and errors are measured at the storage port; Redis per command on each client.
    const storage = this.metrics.instrumentStorage(deps.storage);
    this.storage = storage;
    if (deps.fanout) for (const client of [deps.fanout.pub, deps.fanout.sub]) this.metrics.instrumentRedis(client);
    if (presence instanceof RedisPresence) this.metrics.instrumentRedis(presence.redis);
    // Database commands by name (driver command monitoring): what a message costs the database.
    if (deps.storage instanceof MongoStorage) this.metrics.instrumentMongo(deps.storage.connection.getClient() as unknown as MongoCommandEvents);
    const verifierOptions = verifierOptionsFor(config, deps.devTokens);
    const verifier = new TokenVerifier({ ...verifierOptions, ...(config.maxTokenLifetimeSec !== undefined ? { maxLifetimeSec: config.maxTokenLifetimeSec } : {}) });
    this.verifier = verifier;
    const devKey = deps.devTokens !== undefined && !config.jwt && !config.oidc;
    this.keys = new KeyRing({
      verifier,
      nodeId: config.nodeId,
      algorithm: 'algorithm' in verifierOptions ? verifierOptions.algorithm : 'from the provider key set',
      keyFile: devKey ? undefined : config.jwt?.keyFile,
      source: config.oidc ? 'oidc' : devKey ? 'dev' : config.jwt?.keyFile !== undefined ? 'file' : 'env',
    });
    this.audit = deps.audit ?? (deps.storage instanceof MongoStorage ? new MongoAuditLog({ connection: deps.storage.connection, logger, writer: config.nodeId }) : new MemoryAuditLog({ logger }));
    // Device lists are cached per node only where tags in Redis tell every node when one changed.
    this.directory = new DeviceDirectory({
      storage,
      tags: deps.fanout ? new RedisDirectoryTags({ redis: deps.fanout.pub, keyPrefix: deps.fanout.keyPrefix }) : undefined,
      logger,
    });
    this.security = new HubSecurity({
      config: config.security ?? defaultSecurityConfig(config.mode),
      storage,
      audit: this.audit,
      logger,
      redis: deps.fanout ? { client: deps.fanout.pub, keyPrefix: deps.fanout.keyPrefix } : undefined,
      onDevicesChanged: (orgId, userId) => this.directory.changed(orgId, userId),
      trustProxy: config.trustProxy,
      auditClientIp: config.auditClientIp,
      recentAuthSec: config.recentAuthSec,
    });

    const credentials = new Credentials(storage);
    this.administration = new Administration({ storage, security: this.security, audit: this.audit, keys: this.keys, logger, clustered: deps.fanout !== undefined, alertDefaults: config.alerts ?? DEFAULT_ALERTS, credentials, pseudonyms: new Pseudonyms(storage, (o, u, d, specialty) => credentials.holdsValid(o, u, d, specialty)) });
    ({ attachments: this.attachments, blobs: this.blobs } = attachmentsFor({ storage, underlying: deps.storage, blobs: deps.blobs, config, logger, metrics: this.metrics }));
    const app = createHttpApp({
      origins: this.security.origins,
      nodeId: config.nodeId,
      mode: config.mode,
      logger,
      devTokens: deps.devTokens,
      isAccepting: () => this.accepting,
      widgetBundlePath: config.widgetBundlePath ?? defaultWidgetBundlePath(),
      adminToken: config.adminToken,
      admin: { security: this.security, administration: this.administration },
      trustProxy: config.trustProxy,
      attachments: { attachments: this.attachments, verifier, security: this.security, storage },
      // Pseudonymous pool posts; the relay and the gateway are made below, with socket.io, and reached when a post arrives.
      sealedPosts: { sealedPosts: new SealedPosts({ storage, relay: { sendSealed: (orgId, req) => this.relay.sendSealed(orgId, req) }, pseudonyms: this.administration.pseudonyms }), security: this.security, deliver: (orgId, o) => (this.metrics.envelopesIn.inc(), this.gateway.fanOut(orgId, SEALED_SENDER, o.recipientUserIds, o.envelope)) },
      // With a token and no port of its own, /metrics sits on the main port behind that token.
      metrics: config.metrics?.token !== undefined && config.metrics.port === undefined ? (req, res) => this.metrics.handle(req, res, config.metrics?.token) : undefined,
      readiness: [
        { name: 'storage', check: () => storage.ping() },
        { name: 'presence', check: () => presence.ping() },
        ...(deps.fanout ? [{ name: 'fanout', check: async () => void (await deps.fanout!.pub.ping()) }] : []),
      ],
    });
    this.httpServer = createServer(app);
    this.io = new Server(this.httpServer, {
      maxHttpBufferSize: config.maxFrameBytes,
      serveClient: false,
      parser: wireParser,
      ...this.security.origins.socketOptions(),
      ...(deps.fanout ? { adapter: createAdapter(catchPublishFailures(deps.fanout.pub, logger), deps.fanout.sub, { key: `${deps.fanout.keyPrefix}socket.io` }) } : {}),
    });
    this.relay = new MessageRelay(
      storage,
      Date.now,
      config.retentionMs, // undefined: the relay's default
      this.directory,
      // Acks are filtered by membership through the directory's cache (a tag read per conversation
      // instead of a database read): every conversation with acks is checked on every write.
      new DeliveryCursors({
        storage: { getConversation: (orgId, id) => this.directory.conversation(orgId, id), ackDelivered: (orgId, deviceId, cursors) => storage.ackDelivered(orgId, deviceId, cursors) },
        flushMs: config.ackFlushMs,
        logger,
      }),
    );
    this.administration.attach(this.io);
    this.alerts = new Alerts({ storage, directory: this.directory, io: this.io, logger, config: config.alerts ?? DEFAULT_ALERTS, record: (e) => this.security.record(e) });
    this.administration.attachAlerts(this.alerts);
    this.gateway = new Gateway({ io: this.io, verifier, storage, presence, relay: this.relay, alerts: this.alerts, attachments: this.attachments, keys: new DeviceKeys(storage, this.directory), deviceLists: new DeviceLists(storage, this.directory, { recentAuthSec: config.recentAuthSec }), teams: new CareTeams(storage, this.directory, Date.now, (orgId, userIds, deviceId) => this.administration.credentials.credentialed(orgId, userIds, deviceId)), roles: new OnCallRoles(storage, this.directory), pools: new ConsultPools(storage), credentials: this.administration.credentials, pseudonyms: this.administration.pseudonyms, profiles: new Profiles(storage), logger, security: this.security, onStorageUnreachable: () => (this.storageFailedAt = Date.now()), metrics: this.metrics, ...(config.maxSocketsPerDevice !== undefined ? { maxSocketsPerDevice: config.maxSocketsPerDevice } : {}) });
  }

  /** Initialise storage, start listening, start presence heartbeats. Port 0 picks a free port. */
  async listen(port = this.deps.config.port, host = this.deps.config.host): Promise<{ port: number; url: string }> {
    await this.storage.init();
    await this.audit.init();
    await this.blobs.init();
    await new Promise<void>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(port, host, () => {
        this.httpServer.off('error', reject);
        resolve();
      });
    });
    const { heartbeatMs } = this.deps.config.presence;
    this.heartbeat = setInterval(() => {
      this.deps.presence
        .heartbeat([...this.gateway.connections.values()])
        .catch((err: unknown) => this.logger.warn({ err }, 'presence heartbeat failed'));
    }, heartbeatMs);
    this.heartbeat.unref();
    this.slowConsumerCheck = setInterval(() => this.gateway.dropSlowConsumers(this.deps.config.slowConsumerMaxBytes ?? 8 * 1024 * 1024), SLOW_CONSUMER_CHECK_MS);
    this.slowConsumerCheck.unref();
    const sweepMs = this.deps.config.sweepIntervalMs ?? 600_000;
    if (sweepMs > 0) {
      this.sweeper = setInterval(() => void this.sweep(), sweepMs);
      this.sweeper.unref();
    }
    this.startStorageWatchdog();
    this.alerts.start();
    await this.startMetrics(host);
    if (this.deps.config.oidc) {
      // Discovery and keys now rather than at the first handshake; a provider that is down is tried again then.
      const { issuer } = this.deps.config.oidc;
      this.verifier.warmUp().then(
        (found) => this.logger.info({ issuer, jwksUri: found?.jwksUri }, 'identity provider discovered'),
        (err: unknown) => this.logger.warn({ issuer, err: (err as Error)?.message }, 'identity provider not reachable yet; handshakes retry discovery'),
      );
    }
    const addr = this.httpServer.address() as AddressInfo;
    const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    return { port: addr.port, url };
  }

  /** /metrics on its own listener (METRICS_PORT), on the main port behind METRICS_TOKEN, or off; the log says which. */
  private async startMetrics(host: string): Promise<void> {
    const m = this.deps.config.metrics;
    if (m?.port !== undefined) {
      const { server, url } = await this.metrics.listen(m.port, m.host ?? host, m.token);
      this.metricsServer = server;
      this.metricsUrl = url;
      this.logger.info({ url, token: m.token !== undefined }, 'metrics served on their own port');
    } else if (m?.token !== undefined) {
      this.logger.info('metrics served at /metrics on the main port, behind METRICS_TOKEN');
    } else {
      this.logger.info('metrics off: set METRICS_PORT (a listener of their own) or METRICS_TOKEN (/metrics on the main port) to serve /metrics');
    }
  }

  /**
   * A node whose storage stays unreachable for `storageWatchdogMs` (every ping fails, or requests keep
   * failing with database-unreachable errors) while other nodes may be fine is no use to its clients:
   * it closes (clients move to other nodes) and reports `onFatal`, whose owner exits so the
   * supervisor starts a fresh process. During a full database outage every node does this, and a
   * restarted node fails to start (`listen()` rejects) until the database is back.
   */
  private startStorageWatchdog(): void {
    const limitMs = this.deps.config.storageWatchdogMs ?? 0;
    if (limitMs <= 0 || !this.deps.onFatal) return;
    this.storageOkAt = Date.now();
    const everyMs = Math.max(100, Math.min(5_000, Math.floor(limitMs / 4)));
    let probing = false;
    let previousProbeAt = Date.now();
    this.watchdog = setInterval(() => {
      if (probing) {
        this.checkWatchdog(limitMs);
        return;
      }
      probing = true;
      const windowStart = previousProbeAt;
      previousProbeAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${everyMs} ms`)), everyMs);
      });
      // (Not unavailableAfter: the log should keep the ping's own error.)
      Promise.race([this.storage.ping(), timeout])
        .then(
          () => {
            // A ping alone can mislead: requests on this node may still be failing (bug 3 in
            // docs/faults.md). Healthy means the ping answered and no request failed since the last probe.
            if (this.storageFailedAt < windowStart) this.storageOkAt = Date.now();
            else this.checkWatchdog(limitMs);
          },
          (err: unknown) => {
            this.logger.warn({ err, downMs: Date.now() - this.storageOkAt }, 'storage ping failed');
            this.checkWatchdog(limitMs);
          },
        )
        .finally(() => {
          clearTimeout(timer);
          probing = false;
        });
    }, everyMs);
    this.watchdog.unref();
  }

  private checkWatchdog(limitMs: number): void {
    const downMs = Date.now() - this.storageOkAt;
    if (downMs < limitMs || this.closed) return;
    if (this.watchdog) clearInterval(this.watchdog);
    this.logger.error({ downMs }, 'storage unreachable for too long; closing this node so its supervisor restarts it');
    const reason = `storage unreachable for ${downMs} ms`;
    // Clients are told to move when the drain starts; do not wait the full grace period (or a stuck
    // database driver) before handing over to the supervisor.
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, FATAL_CLOSE_MS);
    });
    void Promise.race([this.close().catch(() => {}), bounded]).then(() => {
      clearTimeout(timer);
      this.deps.onFatal?.(reason);
    });
  }

  /** Graceful stop: refuse new work, ask clients to reconnect (to another node), release everything. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.accepting = false;
      if (this.heartbeat) clearInterval(this.heartbeat);
      if (this.slowConsumerCheck) clearInterval(this.slowConsumerCheck);
      if (this.sweeper) clearInterval(this.sweeper);
      await this.alerts.stop();
      // Finish what is in flight (each is a durable write the client waits to hear about), then go.
      if (this.watchdog) clearInterval(this.watchdog);
      // Idle sockets are closed at once and busy ones as soon as their answers are out, so clients
      // move to another node while the in-flight writes (durable acks they wait for) finish here.
      const closing = { code: CloseCode.SERVER_SHUTDOWN, message: 'Hub node is shutting down; reconnect' };
      await this.gateway.drain(this.deps.config.shutdownGraceMs ?? 10_000, closing);
      this.gateway.closeAll(closing.code, closing.message);
      // io.close() discards unsent frames; give the closing notices a moment to reach their clients
      // (so they know to move, not just that the network dropped).
      const flushBy = Date.now() + 1_000;
      while (this.io.engine.clientsCount > 0 && Date.now() < flushBy) await new Promise((r) => setTimeout(r, 20));
      const conns = [...this.gateway.connections.values()];
      await Promise.allSettled(conns.map((c) => this.deps.presence.disconnect(c)));
      await new Promise<void>((resolve) => this.io.close(() => resolve()));
      await this.relay.close().catch((err: unknown) => this.logger.warn({ err }, 'delivery acks not written at close'));
      this.security.close();
      await this.audit.close().catch((err: unknown) => this.logger.error({ err }, 'audit log did not close cleanly'));
      await Promise.allSettled([this.blobs.close(), this.storage.close(), this.deps.presence.close()]);
      const metricsServer = this.metricsServer;
      if (metricsServer) {
        metricsServer.closeAllConnections();
        await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      }
      if (this.deps.fanout) {
        this.deps.fanout.pub.disconnect();
        this.deps.fanout.sub.disconnect();
      }
      await this.deps.onClose?.();
    })();
    return this.closed;
  }
}

/**
 * Build a hub from validated config: memory adapters in dev mode, MongoDB + Redis otherwise.
 * `overrides` lets tests pick a database name or key prefix without touching the environment.
 */
export function createHubFromConfig(config: HubConfig, overrides: { logger?: Logger; dbName?: string; onFatal?: (reason: string) => void } = {}): Hub {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel, nodeId: config.nodeId });
  if (config.mode === 'dev') {
    return new Hub({
      config,
      logger,
      storage: new MemoryStorage(),
      presence: new MemoryPresence({ ttlMs: config.presence.ttlMs }),
      devTokens: config.jwt || config.oidc ? undefined : new DevTokenIssuer(),
    });
  }
  const { mongo, redis } = config;
  if (!mongo || !redis) throw new Error('production mode needs both MongoDB and Redis');
  const redisOptions = { maxRetriesPerRequest: 2, enableAutoPipelining: true, lazyConnect: false };
  const presenceClient = new Redis(redis.url, redisOptions);
  const pub = new Redis(redis.url, redisOptions);
  const sub = new Redis(redis.url, redisOptions);
  for (const c of [presenceClient, pub, sub]) c.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  return new Hub({
    config,
    logger,
    storage: new MongoStorage({ uri: mongo.uri, dbName: overrides.dbName ?? mongo.dbName, writeConcern: mongo.writeConcern, groupCommitWaitMs: mongo.groupCommitWaitMs }),
    presence: new RedisPresence({ redis: presenceClient, keyPrefix: redis.keyPrefix, ttlMs: config.presence.ttlMs }),
    fanout: { pub, sub, keyPrefix: redis.keyPrefix },
    ...(overrides.onFatal ? { onFatal: overrides.onFatal } : {}),
    onClose: async () => {
      presenceClient.disconnect();
    },
  });
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
