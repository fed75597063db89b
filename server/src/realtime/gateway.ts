/**
 * The socket.io gateway: the handshake, the connections, the dispatch of each client event to its
 * route (the route table, with each event's schema and handler, is in routes.ts), the fan-out of
 * stored envelopes to devices, and the drain of a node that is shutting down.
 */
import type { HubSocket } from './sockets.js';
import {
  ClientEvent,
  CloseCode,
  ErrorCode,
  HandshakeAuthSchema,
  Rooms,
  compositeKey,
  ServerEvent,
  parsePayload,
  type Ack,
  type SocketData,
} from '@curbside/shared';
import { HubError, isStorageUnreachable, toWireError } from '../errors.js';
import type { PresenceConnection } from '../ports/presence.js';
import { projectForDevice } from '../domain/message-relay.js';
import type { StoredEnvelope } from '../ports/storage.js';
import type { IncomingMessage } from 'node:http';
import { closeAtExpiry } from './session-expiry.js';
import { GatewayRoutes, type GatewayDeps, type Route } from './routes.js';
import { Admission, DEFAULT_MAX_IN_FLIGHT } from './admission.js';

/**
 * socket.io side of the hub: the handshake, connection lifecycle and one handler per client event.
 * Every handler validates its payload with the shared schema and answers through the ack with
 * `{ ok: true, data }` or `{ ok: false, error }`; nothing a client sends can throw past here.
 */
export class Gateway {
  /** Sockets per device on this node (`compositeKey(org, device)`). */
  private readonly socketsPerDevice = new Map<string, number>();
  /** Connections held by this node, refreshed in presence on every heartbeat. */
  readonly connections = new Map<string, PresenceConnection>();
  private readonly now: () => number;
  /** Every client event's route (schema, handler, audit), shared by all sockets. */
  private readonly routes: ReadonlyMap<string, Route>;
  /** Requests being handled now; a shutting-down node waits for them (their writes are durable acks). */
  private inFlight = 0;
  /** Requests in flight per socket: a draining node closes each socket once its own are answered. */
  private readonly socketInFlight = new Map<string, number>();
  private drained: (() => void) | undefined;
  private accepting = true;
  private drainClose: { code: CloseCode; message: string } | undefined;
  /** Load shedding: requests past `maxInFlight` are refused UNAVAILABLE at once. */
  private readonly admission: Admission;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
    this.admission = new Admission(deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, { logger: deps.logger, metrics: deps.metrics });
    this.routes = new GatewayRoutes(deps, (orgId, senderDeviceId, userIds, envelope) => this.fanOut(orgId, senderDeviceId, userIds, envelope)).buildRoutes();
    // engine.io keeps each session's first HTTP request (IncomingMessage, headers, parser state) for
    // the socket's lifetime. Nothing reads it after the handshake (origins are checked in
    // allowRequest, the address is copied): dropping it is socket.io's own advice for memory per connection.
    deps.io.engine.on('connection', (raw: { request: IncomingMessage | null; clientAddress?: string }) => {
      // The client's address (forwarded, behind a trusted proxy) is worked out while the headers exist.
      if (raw.request) raw.clientAddress = deps.security.addressOf(raw.request);
      raw.request = null;
    });
    deps.security.attach(deps.io);
    deps.io.use((socket, next) => {
      const verified: { identity?: SocketData } = {};
      this.authenticate(socket, verified).then(
        () => {
          deps.security.recordHandshake(socket, socket.data, 'ok');
          next();
        },
        (err: unknown) => {
          const wire = toWireError(err);
          deps.security.recordHandshake(socket, verified.identity, wire.code);
          deps.metrics?.authFailures.inc({ reason: wire.code });
          this.countRateLimited(wire);
          if (wire.code === ErrorCode.INTERNAL) deps.logger.error({ err }, 'handshake failed unexpectedly');
          else if (isStorageUnreachable(err)) {
            deps.onStorageUnreachable?.();
            deps.logger.warn({ err, code: wire.code, ip: deps.security.loggedAddress(socket) }, 'handshake refused: storage unreachable');
          } else if (wire.code === ErrorCode.UNAVAILABLE) {
            // e.g. the identity provider cannot be reached: the operator should hear of it.
            deps.logger.warn({ code: wire.code, reason: wire.message, ip: deps.security.loggedAddress(socket) }, 'handshake refused: a dependency is unavailable');
          } else deps.logger.info({ code: wire.code, ip: deps.security.loggedAddress(socket) }, 'handshake refused');
          // socket.io hands err.data to the client's connect_error unchanged.
          const e = new Error(wire.message) as Error & { data: unknown };
          e.data = wire;
          next(e);
        },
      );
    });
    deps.io.on('connection', (socket) => this.onConnection(socket));
  }

  private async authenticate(socket: HubSocket, verified: { identity?: SocketData }): Promise<void> {
    if (!this.accepting) throw new HubError(ErrorCode.UNAVAILABLE, 'This hub node is shutting down; connect to another node');
    const { security } = this.deps;
    const auth = HandshakeAuthSchema.safeParse(socket.handshake.auth);
    if (!auth.success) {
      return security.handshakeFailed(security.clientAddress(socket), new HubError(ErrorCode.AUTH_REQUIRED, 'An access token is required in the handshake auth field `token`'));
    }
    let identity: SocketData;
    try {
      identity = await this.deps.verifier.verify(auth.data.token, { deviceId: auth.data.deviceId, userId: auth.data.userId });
    } catch (err) {
      // Only failures count against an address; a valid token is limited per device and user below.
      return security.handshakeFailed(security.clientAddress(socket), err);
    }
    verified.identity = identity;
    await security.limitHandshake(identity);
    const held = this.socketsPerDevice.get(compositeKey(identity.orgId, identity.deviceId)) ?? 0;
    if (held >= (this.deps.maxSocketsPerDevice ?? 5)) {
      throw new HubError(ErrorCode.RATE_LIMITED, 'This device holds too many connections; close one first', { limit: 'socketsPerDevice', retryAfterMs: 5000 });
    }
    // Before anything is written: a revoked token or device leaves no trace but the audit entry.
    await this.deps.security.assertNotRevoked(identity);
    const { device } = await this.deps.storage.touchDevice({
      orgId: identity.orgId,
      userId: identity.userId,
      deviceId: identity.deviceId,
      now: this.now(),
    });
    if (device.userId !== identity.userId) {
      throw new HubError(ErrorCode.FORBIDDEN, 'This device id belongs to another user');
    }
    await this.deps.profiles.recordSignIn(identity);
    socket.data = identity;
  }

  private onConnection(socket: HubSocket): void {
    const { orgId, userId, deviceId } = socket.data;
    const conn: PresenceConnection = { orgId, userId, deviceId, connectionId: socket.id };
    this.connections.set(socket.id, conn);
    const deviceKey = compositeKey(orgId, deviceId);
    this.socketsPerDevice.set(deviceKey, (this.socketsPerDevice.get(deviceKey) ?? 0) + 1);
    void socket.join([Rooms.device(orgId, deviceId), Rooms.user(orgId, userId)]);
    this.deps.presence.connect(conn).catch((err: unknown) => this.deps.logger.warn({ err }, 'presence connect failed'));
    this.deps.logger.debug({ orgId, userId, deviceId, socket: socket.id }, 'device connected');
    this.deps.security.onConnection(socket);
    // The session ends when its token does, whether or not the client sends anything.
    const expiry = closeAtExpiry(socket, this.now, () => this.close(socket, CloseCode.TOKEN_EXPIRED, 'Access token expired; reconnect with a fresh one'));

    // One listener for every client event; the routes are shared by all sockets. (A listener and
    // closures per event per socket cost about 5 KB of heap per connection.)
    socket.onAny((event: unknown, ...args: unknown[]) => this.dispatch(socket, event, args));
    socket.on('disconnect', (reason) => {
      expiry.cancel();
      this.connections.delete(socket.id);
      const left = (this.socketsPerDevice.get(deviceKey) ?? 1) - 1;
      if (left > 0) this.socketsPerDevice.set(deviceKey, left);
      else this.socketsPerDevice.delete(deviceKey);
      this.deps.presence.disconnect(conn).catch((err: unknown) => this.deps.logger.warn({ err }, 'presence disconnect failed'));
      this.deps.logger.debug({ orgId, userId, deviceId, socket: socket.id, reason }, 'device disconnected');
      this.deps.security.record({ action: 'disconnect', outcome: 'ok', orgId, userId, deviceId, ip: this.deps.security.clientAddress(socket), note: reason });
    });
  }

  /**
   * Push a stored envelope to the devices that should have it, each with only its own share: named
   * devices get theirs; for a body-only or partial send every other member device gets the
   * envelope without a share. Never back to the sending device. (Also for sealed posts, which arrive over HTTP.)
   */
  fanOut(orgId: string, senderDeviceId: string, userIds: string[], envelope: StoredEnvelope): void {
    const { io } = this.deps;
    const named = envelope.recipients ?? [];
    this.deps.metrics?.envelopesOut.inc({ path: 'push' });
    for (const r of named) io.to(Rooms.device(orgId, r.deviceId)).emit(ServerEvent.ENVELOPE, projectForDevice(envelope, r.deviceId));
    if (named.length > 0 && !envelope.partial) return;
    io.to(userIds.map((u) => Rooms.user(orgId, u)))
      .except([Rooms.device(orgId, senderDeviceId), ...named.map((r) => Rooms.device(orgId, r.deviceId))])
      .emit(ServerEvent.ENVELOPE, projectForDevice(envelope, ''));
  }

  /**
   * One client event: its route, expiry check, schema validation, typed errors through the ack. An
   * event no route knows still gets a typed answer (when it asked for one). Every answer is audited,
   * except that routes with `audit: 'refusals'` leave out the accepted ones: for the signals a device
   * sends several times a second that read nothing (delivery acks, typing).
   */
  private dispatch(socket: HubSocket, event: unknown, args: unknown[]): void {
    const ack = args[args.length - 1];
    const route = typeof event === 'string' ? this.routes.get(event) : undefined;
    if (!route) {
      // Refused either way; past the device's budget the answer says so, and the audit counts them.
      void this.deps.security.limitUnknown(socket).then(
        () => ({ code: ErrorCode.INVALID_PAYLOAD, message: 'Unknown event' }),
        (err: unknown) => toWireError(err),
      ).then((error) => {
        this.countRateLimited(error);
        this.deps.security.recordEvent(socket, 'unknown-event', error.code, undefined, undefined);
        if (typeof ack === 'function') (ack as (res: Ack<never>) => void)({ ok: false, error });
      });
      return;
    }
    const name = event as string;
    if (typeof ack !== 'function') {
      this.deps.logger.info({ event: name, socket: socket.id }, 'event without ack ignored');
      this.deps.security.recordEvent(socket, name, 'NO_ACK', undefined, undefined);
      return;
    }
    let request: unknown;
    let release: (() => void) | undefined;
    const startedAt = performance.now();
    // Answers are audited: outcome and the ids of the validated request and of the result.
    const reply = (res: Ack<unknown>) => {
      release?.();
      (ack as (res: Ack<unknown>) => void)(res);
      this.countAnswer(name, res, startedAt);
      if (res.ok && route.audit === 'refusals') return;
      this.deps.security.recordEvent(socket, name, res.ok ? 'ok' : res.error.code, request, res.ok ? res.data : undefined);
    };
    if (args.length !== 2) {
      reply({ ok: false, error: { code: ErrorCode.INVALID_PAYLOAD, message: `${name} takes exactly one payload argument` } });
      return;
    }
    if (socket.data.tokenExpiresAt <= this.now()) {
      reply({ ok: false, error: { code: ErrorCode.AUTH_EXPIRED, message: 'Access token has expired; refresh it and reconnect' } });
      this.close(socket, CloseCode.TOKEN_EXPIRED, 'Access token expired');
      return;
    }
    const parsed = parsePayload(route.schema, args[0]);
    if (!parsed.ok) {
      reply({ ok: false, error: parsed.error });
      return;
    }
    request = parsed.value;
    const failed = (err: unknown) => {
      const wire = toWireError(err);
      if (wire.code === ErrorCode.INTERNAL) this.deps.logger.error({ err, event: name, socket: socket.id }, 'handler failed');
      else if (isStorageUnreachable(err)) {
        this.deps.onStorageUnreachable?.();
        this.deps.logger.warn({ err, event: name, socket: socket.id }, 'storage unreachable');
      }
      reply({ ok: false, error: wire });
    };
    if (!this.accepting) {
      reply({ ok: false, error: { code: ErrorCode.UNAVAILABLE, message: 'This hub node is shutting down; retry on another node' } });
      return;
    }
    const admitted = this.admission.admit(name);
    if (!admitted.ok) {
      // Not audited (that would be more writes for a node that has too many): counted in curbside_requests_shed_total.
      (ack as (res: Ack<unknown>) => void)({ ok: false, error: admitted.error });
      return;
    }
    release = admitted.release;
    const run = () => {
      this.inFlight++;
      this.socketInFlight.set(socket.id, (this.socketInFlight.get(socket.id) ?? 0) + 1);
      return route
        .run(socket, parsed.value, ahead)
        .then((data) => reply({ ok: true, data }), failed)
        .finally(() => {
          const left = (this.socketInFlight.get(socket.id) ?? 1) - 1;
          if (left > 0) this.socketInFlight.set(socket.id, left);
          else {
            this.socketInFlight.delete(socket.id);
            // Draining: this socket's last answer is out, so it may move to another node now.
            if (this.drainClose && socket.connected) this.close(socket, this.drainClose.code, this.drainClose.message);
          }
          if (--this.inFlight === 0) this.drained?.();
        });
    };
    // Revocation re-check and rate limit; unlimited events run at once, in arrival order. Reads the
    // route needs anyway start first, in the same turn: their Redis commands go out with the gate's.
    const ahead = route.ahead?.(socket, parsed.value);
    const gate = this.deps.security.gate(name, socket, parsed.value);
    if (gate) gate.then(run, failed);
    else void run();
  }

  /** Metrics of one answer: refusals for a rate limit, envelopes in and their send-to-ack time, envelopes synced. */
  private countAnswer(event: string, res: Ack<unknown>, startedAt: number): void {
    const { metrics } = this.deps;
    if (!metrics) return;
    if (!res.ok) return this.countRateLimited(res.error);
    if (event === ClientEvent.ENVELOPE_SEND) {
      metrics.envelopesIn.inc();
      metrics.sendAckSeconds.observe((performance.now() - startedAt) / 1000);
    } else if (event === ClientEvent.SYNC_FETCH) {
      const n = (res.data as { envelopes?: unknown[] }).envelopes?.length ?? 0;
      if (n > 0) metrics.envelopesOut.inc({ path: 'sync' }, n);
    }
  }

  /** A RATE_LIMITED answer, by the limit its details name (a fixed set of rule names). */
  private countRateLimited(error: { code: string; details?: Record<string, unknown> | undefined }): void {
    if (error.code !== ErrorCode.RATE_LIMITED || !this.deps.metrics) return;
    const limit = typeof error.details?.['limit'] === 'string' ? error.details['limit'] : 'unknown';
    this.deps.metrics.rateLimited.inc({ limit });
  }

  /** Tell the client why, then disconnect. */
  close(socket: HubSocket, code: CloseCode, message: string): void {
    socket.emit(ServerEvent.SESSION_CLOSING, { code, message });
    socket.disconnect(true);
  }

  closeAll(code: CloseCode, message: string): void {
    for (const socket of this.deps.io.of('/').sockets.values()) this.close(socket, code, message);
  }

  /**
   * Stop taking connections and requests; close each socket (with `code`) as soon as its own
   * requests in flight are answered, so its client moves to another node at once; wait at most
   * `graceMs` for the rest. Sockets still busy after that are the caller's to close.
   */
  async drain(graceMs: number, close: { code: CloseCode; message: string }): Promise<void> {
    this.accepting = false;
    this.drainClose = close;
    for (const socket of this.deps.io.of('/').sockets.values()) {
      if (!this.socketInFlight.has(socket.id)) this.close(socket, close.code, close.message);
    }
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Drop sockets that cannot keep up: unsent data past `maxBytes` (engine.io's buffer plus the
   * WebSocket's). Memory stays bounded; the client reconnects and resyncs what it missed by seq.
   */
  dropSlowConsumers(maxBytes: number): void {
    for (const socket of this.deps.io.of('/').sockets.values()) {
      const conn = socket.conn as unknown as { writeBuffer?: Array<{ data?: unknown }>; transport?: { socket?: { bufferedAmount?: number } } };
      const queued = (conn.writeBuffer ?? []).reduce((n, p) => n + byteLength(p.data), 0);
      const inSocket = conn.transport?.socket?.bufferedAmount ?? 0;
      if (queued + inSocket > maxBytes) {
        this.deps.logger.warn({ socket: socket.id, deviceId: socket.data.deviceId, bytes: queued + inSocket }, 'dropping a slow consumer');
        this.close(socket, CloseCode.SLOW_CONSUMER, 'Too far behind; reconnect and resync');
        // Discard what is queued and cut the connection now: waiting to flush to a reader that
        // does not read is exactly the memory this protects.
        socket.conn.close(true);
        (conn.transport?.socket as { terminate?: () => void } | undefined)?.terminate?.();
      }
    }
  }
}

function byteLength(data: unknown): number {
  if (typeof data === 'string') return data.length;
  if (data instanceof Uint8Array) return data.byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  return 0;
}
