/**
 * Prometheus metrics of one hub node (prom-client), in a registry of its own: two hubs in one
 * process (tests, benchmarks) never share or collide. Labels are bounded enums only (error codes,
 * limit names, storage operations, Redis commands, delivery paths): never a user, device,
 * conversation or anything a client wrote, for privacy and for cardinality.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Send-to-ack: a durable database write and its fan-out; tens of ms in a healthy cluster, seconds when overloaded. */
const ACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** One database or Redis call. */
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface MetricsConfig {
  /** Serve /metrics on a listener of its own on this port (0: any free port). */
  port?: number | undefined;
  /** Interface of that listener. @default the hub's HOST */
  host?: string | undefined;
  /** Bearer token required to read /metrics (on the main port, or on its own port too when set). */
  token?: string | undefined;
}

/**
 * Process metrics (CPU, memory, GC, event-loop lag: prom-client's defaults) are the same for every
 * hub in a process, and their collectors (a GC observer, an event-loop delay monitor) cannot be
 * stopped: one registry for the process, made once, shown by every hub's /metrics with its node label.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 20 });
  }
  return processRegistry;
}

export class HubMetrics {
  /** This node's own metrics (the process metrics are added at scrape time: `exposition()`). */
  readonly registry = new Registry();
  private readonly nodeId: string;
  readonly connections: Gauge;
  readonly authFailures: Counter<'reason'>;
  readonly envelopesIn: Counter;
  readonly envelopesOut: Counter<'path'>;
  readonly sendAckSeconds: Histogram;
  readonly storageSeconds: Histogram<'op'>;
  readonly storageErrors: Counter<'op'>;
  readonly redisSeconds: Histogram<'command'>;
  readonly redisErrors: Counter<'command'>;
  readonly rateLimited: Counter<'limit'>;
  readonly requestsShed: Counter<'event'>;
  readonly dbCommands: Counter<'command' | 'collection'>;
  readonly dbDocumentsInserted: Counter<'collection'>;
  readonly dbCommandSeconds: Histogram<'command' | 'collection'>;
  readonly attachmentBytes: Counter<'direction'>;

  constructor(options: { nodeId: string; connections: () => number }) {
    const registers = [this.registry];
    this.nodeId = options.nodeId;
    this.registry.setDefaultLabels({ node: options.nodeId });
    // Process CPU, memory, GC and event-loop lag (nodejs_eventloop_lag_seconds and its percentiles).
    processMetrics();
    this.connections = new Gauge({
      name: 'curbside_connections',
      help: 'Authenticated sockets held by this node',
      registers,
      collect() {
        this.set(options.connections());
      },
    });
    this.authFailures = new Counter({ name: 'curbside_auth_failures_total', help: 'Refused socket handshakes, by error code', labelNames: ['reason'], registers });
    this.envelopesIn = new Counter({ name: 'curbside_envelopes_in_total', help: 'Envelopes accepted from devices (envelope:send and sealed pool posts answered ok, retries included)', registers });
    this.envelopesOut = new Counter({
      name: 'curbside_envelopes_out_total',
      help: 'Envelopes sent towards devices: push = fanned out by this node after a send or a care-team statement (once per envelope, to every recipient device on every node); sync = served by sync:fetch',
      labelNames: ['path'],
      registers,
    });
    this.sendAckSeconds = new Histogram({
      name: 'curbside_send_ack_seconds',
      help: 'From an envelope:send arriving to its ack leaving (validation, limits, the durable write)',
      buckets: ACK_BUCKETS,
      registers,
    });
    this.storageSeconds = new Histogram({ name: 'curbside_db_call_seconds', help: 'Database calls through the storage port, by operation', labelNames: ['op'], buckets: CALL_BUCKETS, registers });
    this.storageErrors = new Counter({ name: 'curbside_db_errors_total', help: 'Database calls that failed, by operation', labelNames: ['op'], registers });
    this.redisSeconds = new Histogram({ name: 'curbside_redis_command_seconds', help: 'Redis commands (presence, fan-out, rate limits, revocation), by command', labelNames: ['command'], buckets: CALL_BUCKETS, registers });
    this.redisErrors = new Counter({ name: 'curbside_redis_errors_total', help: 'Redis commands that failed, by command', labelNames: ['command'], registers });
    this.rateLimited = new Counter({ name: 'curbside_rate_limited_total', help: 'Requests and handshakes refused RATE_LIMITED, by limit', labelNames: ['limit'], registers });
    this.requestsShed = new Counter({
      name: 'curbside_requests_shed_total',
      help: 'Requests refused UNAVAILABLE because this node already had MAX_IN_FLIGHT requests in flight (overload; clients retry), by event',
      labelNames: ['event'],
      registers,
    });
    this.dbCommands = new Counter({
      name: 'curbside_db_commands_total',
      help: 'Wire commands this node sent to the database (driver command monitoring), by command name and collection: what one message costs the database',
      labelNames: ['command', 'collection'],
      registers,
    });
    this.dbDocumentsInserted = new Counter({
      name: 'curbside_db_documents_inserted_total',
      help: 'Documents carried by insert commands, by collection (÷ insert commands = the group-commit batch size)',
      labelNames: ['collection'],
      registers,
    });
    this.dbCommandSeconds = new Histogram({
      name: 'curbside_db_command_seconds',
      help: "Wire commands to the database, from sent to answered (the driver's command monitoring), by command name and collection",
      labelNames: ['command', 'collection'],
      buckets: CALL_BUCKETS,
      registers,
    });
    this.attachmentBytes = new Counter({
      name: 'curbside_attachment_bytes_total',
      help: 'Attachment ciphertext bytes this node received in stored parts (direction=upload) and sent in downloads (direction=download)',
      labelNames: ['direction'],
      registers,
    });
  }

  /**
   * Count every command the MongoDB driver sends (its command monitoring: the client must be made with
   * `monitorCommands: true`), by name and collection, and the documents of inserts by collection. Names and
   * collections are the code's own (a fixed set); anything else is counted as `other`.
   */
  instrumentMongo(client: MongoCommandEvents): void {
    const marked = client as MongoCommandEvents & { [INSTRUMENTED]?: true };
    if (marked[INSTRUMENTED]) return;
    marked[INSTRUMENTED] = true;
    /** Commands sent and not answered yet, by the driver's request id: their labels. */
    const inFlight = new Map<unknown, { command: string; collection: string }>();
    client.on('commandStarted', (event) => {
      const name = typeof event.commandName === 'string' && /^[a-zA-Z]{1,32}$/.test(event.commandName) ? event.commandName : 'other';
      // The collection a command names as its value (`{ insert: 'envelopes', … }`); none for `hello`, `ping`, ….
      const target = event.command?.[name];
      const collection = typeof target === 'string' ? (/^[a-z_]{1,40}$/.test(target) ? target : 'other') : '';
      this.dbCommands.inc({ command: name, collection });
      if (name === 'insert' && Array.isArray(event.command?.['documents'])) this.dbDocumentsInserted.inc({ collection }, event.command['documents'].length);
      // The driver answers every command it started, succeeded or failed; the bound is for a driver that would not.
      if (inFlight.size < MAX_TIMED_COMMANDS) inFlight.set(event.requestId, { command: name, collection });
    });
    const answered = (event: { requestId?: unknown; duration?: unknown }) => {
      const labels = inFlight.get(event.requestId);
      if (!labels) return;
      inFlight.delete(event.requestId);
      if (typeof event.duration === 'number') this.dbCommandSeconds.observe(labels, event.duration / 1000);
    };
    client.on('commandSucceeded', answered);
    client.on('commandFailed', answered);
  }

  /**
   * The storage port with every call timed, by method name (a fixed set): latency, and failures
   * (a refused request such as a duplicate is an answer, not a failure; only thrown errors count).
   */
  instrumentStorage<T extends object>(storage: T): T {
    const { storageSeconds, storageErrors } = this;
    const wrapped = new Map<PropertyKey, unknown>();
    return new Proxy(storage, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
        let fn = wrapped.get(prop);
        if (!fn) {
          fn = function (this: unknown, ...args: unknown[]) {
            const end = storageSeconds.startTimer({ op: prop });
            let result: unknown;
            try {
              result = (value as (...a: unknown[]) => unknown).apply(target, args);
            } catch (err) {
              storageErrors.inc({ op: prop });
              throw err;
            }
            if (result instanceof Promise) {
              return result.then(
                (v: unknown) => {
                  end();
                  return v;
                },
                (err: unknown) => {
                  end();
                  storageErrors.inc({ op: prop });
                  throw err;
                },
              );
            }
            return result;
          };
          wrapped.set(prop, fn);
        }
        return fn;
      },
    });
  }

  /** Time every command an ioredis client sends (its `sendCommand`), by command name. */
  instrumentRedis(client: Redis): void {
    const { redisSeconds, redisErrors } = this;
    const marked = client as Redis & { [INSTRUMENTED]?: true };
    if (marked[INSTRUMENTED]) return;
    marked[INSTRUMENTED] = true;
    const send = client.sendCommand.bind(client) as (command: RedisCommand, stream?: unknown) => unknown;
    // A command sent while the client is not connected waits in ioredis' offline queue and goes
    // through sendCommand again on connect: timed once, from the first call (the wait is latency too).
    const timed = new WeakSet<object>();
    (client as unknown as { sendCommand: (command: RedisCommand, stream?: unknown) => unknown }).sendCommand = (command, stream) => {
      if (typeof command !== 'object' || command === null || timed.has(command)) return send(command, stream);
      timed.add(command);
      const name = typeof command.name === 'string' && /^[a-z]{1,24}$/i.test(command.name) ? command.name.toLowerCase() : 'other';
      const end = redisSeconds.startTimer({ command: name });
      // ioredis names itself with CLIENT SETINFO at every connect and ignores the refusal of a Redis
      // before 7.2: not an error of the hub's.
      const ignoredRefusal = name === 'client' && String(command.args?.[0] ?? '').toLowerCase() === 'setinfo';
      command.promise?.then(
        () => end(),
        () => {
          end();
          if (!ignoredRefusal) redisErrors.inc({ command: name });
        },
      );
      return send(command, stream);
    };
  }

  /** Everything /metrics shows: this node's metrics and the process's, each sample labelled with this node. */
  exposition(): Registry {
    const merged = Registry.merge([processMetrics(), this.registry]);
    merged.setDefaultLabels({ node: this.nodeId });
    return merged;
  }

  /** The Prometheus text exposition. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const registry = this.exposition();
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  /**
   * Answer GET /metrics: the exposition, or 401 without the right bearer token (when one is set).
   * Anything else on a metrics listener of its own is 404.
   */
  async handle(req: IncomingMessage, res: ServerResponse, token: string | undefined): Promise<void> {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('send Authorization: Bearer <METRICS_TOKEN>\n');
      return;
    }
    const { contentType, body } = await this.scrape();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
  }

  /** A listener of its own for /metrics (METRICS_PORT). */
  async listen(port: number, host: string, token: string | undefined): Promise<{ server: Server; url: string }> {
    const server = createServer((req, res) => {
      this.handle(req, res, token).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    return { server, url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/metrics` };
  }
}

const INSTRUMENTED = Symbol('curbside.metrics');

/** Commands timed at once at most (their labels wait for the answer). */
const MAX_TIMED_COMMANDS = 10_000;

/** The part of a MongoClient that command monitoring needs. */
export interface MongoCommandEvents {
  on(event: 'commandStarted', listener: (event: { requestId?: unknown; commandName?: unknown; command?: Record<string, unknown> }) => void): unknown;
  on(event: 'commandSucceeded' | 'commandFailed', listener: (event: { requestId?: unknown; duration?: unknown }) => void): unknown;
}

interface RedisCommand {
  name?: string;
  args?: unknown[];
  promise?: Promise<unknown>;
}

/** Constant-time comparison of `Authorization: Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '';
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
