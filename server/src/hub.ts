/**
 * One hub node's lifecycle: start (storage, listener, heartbeats, the sweep, the storage watchdog,
 * metrics), and the graceful stop that drains the gateway and releases every resource; and
 * `createHubFromConfig`, which picks the adapters for a mode. How the node's parts are built and
 * connected is in wiring.ts.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { CloseCode } from '@curbside/shared';
import type { HubConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { DevTokenIssuer, type TokenVerifier } from './auth/tokens.js';
import type { Gateway } from './realtime/gateway.js';
import type { HubServer } from './realtime/sockets.js';
import type { MessageRelay } from './domain/message-relay.js';
import type { Alerts } from './alerts/alerts.js';
import type { Storage } from './ports/storage.js';
import { MemoryStorage } from './adapters/memory/storage.js';
import { MemoryPresence } from './adapters/memory/presence.js';
import { MongoStorage } from './adapters/mongo/storage.js';
import { RedisPresence } from './adapters/redis/presence.js';
import type { HubSecurity } from './security/hub-security.js';
import type { AuditLog } from './audit/port.js';
import type { DeviceDirectory } from './domain/device-directory.js';
import type { HubMetrics } from './metrics/metrics.js';
import type { KeyRing } from './auth/key-ring.js';
import type { Administration } from './admin/administration.js';
import type { Attachments } from './attachments/attachments.js';
import type { BlobStore } from './ports/blob-store.js';
import { wireHub, type HubDeps } from './wiring.js';

/** How often sockets are checked for unsent data piling up. */
const SLOW_CONSUMER_CHECK_MS = 500;

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

  private accepting = true;
  private closed: Promise<void> | undefined;

  constructor(private readonly deps: HubDeps) {
    this.logger = deps.logger;
    ({
      metrics: this.metrics,
      storage: this.storage,
      verifier: this.verifier,
      keys: this.keys,
      audit: this.audit,
      directory: this.directory,
      security: this.security,
      administration: this.administration,
      attachments: this.attachments,
      blobs: this.blobs,
      httpServer: this.httpServer,
      io: this.io,
      relay: this.relay,
      alerts: this.alerts,
      gateway: this.gateway,
    } = wireHub(deps, { isAccepting: () => this.accepting, onStorageUnreachable: () => (this.storageFailedAt = Date.now()) }));
  }

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
