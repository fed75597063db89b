/**
 * The SDK's connection to a hub: one socket.io socket, authenticated with the app's token (fetched
 * again before every attempt), reconnected with backoff after a network failure, a refused but
 * retryable handshake or a server-side close, and a request/answer call typed by the wire contract.
 * It knows nothing of messages: the outbox, sync and the messengers build on {@link HubConnection.request}
 * and the pushes they subscribe to.
 */
import { io, type Socket } from 'socket.io-client';
import {
  CloseCode,
  ErrorCode,
  ServerEvent,
  WireErrorSchema,
  backoffMs,
  jitter,
  sleep,
  wireParser,
  type Ack,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SessionClosing,
  DEVICE_ID_HEADER,
  USER_ID_HEADER,
} from '@curbside/shared';
import { CurbsideError } from '../errors.js';
import { TypedEmitter } from '../emitter.js';
import { attemptsFor, retryWaitMs } from './retries.js';

/** Why the client is (or went) offline. */
export type DisconnectReason =
  /** The app called `disconnect()`. */
  | 'client'
  /** The hub node is shutting down; the SDK reconnects, possibly to another node. */
  | 'server-shutdown'
  /** The token expired; the SDK reconnects with a fresh one if it has a token callback. */
  | 'token-expired'
  /** The device or token was revoked; the SDK does not reconnect. */
  | 'revoked'
  /** The hub dropped this client for falling behind; the SDK reconnects and resyncs. */
  | 'slow-consumer'
  /** The hub refused the handshake (see the `error` event); the SDK stops. */
  | 'auth-failed'
  /** The network or the hub went away; the SDK reconnects with backoff. */
  | 'network';

/** Handshakes refused as expired that are tried again with a fresh token. */
const MAX_AUTH_RETRIES = 3;

type HubSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** What the answer to a request carries, by event. */
export type AckData<F> = F extends (req: never, ack: (res: Ack<infer T>) => void) => void ? T : never;

/** Transport failures in a row (the hub unreachable) before the next hub URL is tried. */
const FAILOVER_AFTER = 2;

/** How to reach the hub and authenticate (the connection-level part of the client's options). */
export interface HubConnectionOptions {
  /**
   * Hub URL, e.g. `https://chat.hospital.example`, or the URLs of several hub nodes: when the one in use
   * cannot be reached (two failed attempts in a row), the client connects to the next.
   */
  url: string | readonly string[];
  /**
   * The access token, or a function that returns a fresh one. A function is called before every
   * connection attempt, so an expired token is replaced without the app doing anything.
   */
  token: string | (() => string | Promise<string>);
  /**
   * This device's id, for hubs whose access tokens carry no `dev` claim (an OpenID Connect
   * provider's): sent in the handshake, and bound to the token's user the first time it connects.
   * Keep it with the device's `store`. @default the token's `dev` claim
   */
  deviceId?: string;
  /**
   * This clinician's user id as the hub reads it from the token, when that is not the `sub` claim
   * (the hub's OIDC_USER_CLAIM). The hub refuses the handshake if the token names another user.
   * @default the token's `sub` claim
   */
  userId?: string;
  /** How long to wait for the hub's answer to one request. @default 10000 */
  requestTimeoutMs?: number;
  /** First reconnect delay; doubles up to `reconnectDelayMaxMs` with jitter. @default 500 */
  reconnectDelayMs?: number;
  /** @default 10000 */
  reconnectDelayMaxMs?: number;
  /** socket.io transports. @default ['websocket', 'polling'] */
  transports?: Array<'websocket' | 'polling' | 'webtransport'>;
}

export interface HubConnectionEvents {
  /** Authenticated (again, after every reconnect). */
  connected: () => void;
  disconnected: (info: { reason: DisconnectReason; willReconnect: boolean }) => void;
  /** A refused handshake, or a token callback that failed. */
  error: (error: CurbsideError) => void;
}

type PushHandler = (...args: never[]) => void;

/** One hub connection: socket, authentication, reconnects, and typed requests. */
export class HubConnection extends TypedEmitter<HubConnectionEvents> {
  private socket: HubSocket | undefined;
  private readonly pushes: Array<[string, PushHandler]> = [];
  private authRetries = 0;
  /** Handshakes refused with a retryable error (the hub could not check the token) since the last connect. */
  private handshakeRetries = 0;
  private closingCode: CloseCode | undefined;
  private isStopped = false;
  private readonly urls: readonly string[];
  private urlIndex = 0;
  /** Connection attempts in a row that failed below the handshake (nobody answered). */
  private transportFailures = 0;
  private deviceId: string | undefined;
  private userId: string | undefined;
  readonly timeoutMs: number;

  constructor(private readonly options: HubConnectionOptions) {
    super();
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'url: give the hub URL, or a list of its nodes');
  }

  /** The hub URL this connection uses now. */
  get url(): string {
    return this.urls[this.urlIndex]!;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** The app stopped the client (`disconnect()`/`close()`): nothing reconnects or retries until `open()`. */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** Every hub node this connection may use, the one in use first (HTTP requests go to the same nodes). */
  get nodeUrls(): string[] {
    return [...this.urls.slice(this.urlIndex), ...this.urls.slice(0, this.urlIndex)];
  }

  /**
   * Headers that authenticate an HTTP request to the hub as this device, like the socket handshake:
   * a fresh token, and the stated device and user ids when the options give them.
   */
  async authHeaders(): Promise<Record<string, string>> {
    const token = await this.currentToken();
    return {
      authorization: `Bearer ${token}`,
      ...(this.options.deviceId ? { [DEVICE_ID_HEADER]: this.options.deviceId } : {}),
      ...(this.options.userId ? { [USER_ID_HEADER]: this.options.userId } : {}),
    };
  }

  /** Who this device is: the `userId`/`deviceId` options, else the token's `sub` and `dev` (once a token was fetched). */
  get identity(): { userId: string | undefined; deviceId: string | undefined } {
    return { userId: this.userId, deviceId: this.deviceId };
  }

  /** Handle a push from the hub, on this socket and every later one. Register before {@link open}. */
  onPush<E extends keyof ServerToClientEvents>(event: E, handler: ServerToClientEvents[E]): void {
    this.pushes.push([event, handler as PushHandler]);
    (this.socket as unknown as { on(e: string, h: PushHandler): void } | undefined)?.on(event, handler as PushHandler);
  }

  /** The app wants to be online again: sends and requests no longer count as after a stop. */
  resume(): void {
    this.isStopped = false;
  }

  /**
   * Connect (or reconnect) now. Returns at once; `connected` or `error` tells how it went.
   * @returns whether the socket was already connected
   */
  open(): boolean {
    this.isStopped = false;
    const socket = this.socket ?? this.createSocket();
    if (socket.connected) return true;
    socket.connect();
    return false;
  }

  /** Go offline until {@link open}. */
  stop(): void {
    this.isStopped = true;
    this.socket?.disconnect();
  }

  /**
   * One request/answer round trip, turned into a typed result or a CurbsideError. Requests that are
   * safe to repeat are retried when the connection drops mid-request or the node is unavailable.
   */
  async request<E extends keyof ClientToServerEvents>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<AckData<ClientToServerEvents[E]>> {
    const attempts = attemptsFor(event);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requestOnce(event, payload);
      } catch (e) {
        const waitMs = retryWaitMs(e, attempt, attempts);
        if (waitMs === undefined || this.isStopped) throw e;
        if (waitMs > 0) {
          await sleep(waitMs);
          if (this.isStopped) throw e;
        }
      }
    }
  }

  private async requestOnce<E extends keyof ClientToServerEvents>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<AckData<ClientToServerEvents[E]>> {
    if (!this.socket?.connected) await this.waitForConnection();
    const socket = this.socket!;
    let res: Ack<AckData<ClientToServerEvents[E]>>;
    try {
      // socket.io's typed emitWithAck cannot follow a generic event key; the wire contract is the map.
      res = (await (socket.timeout(this.timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<unknown> }).emitWithAck(event, payload)) as Ack<
        AckData<ClientToServerEvents[E]>
      >;
    } catch {
      // socket.io rejects with a timeout, or at once when the connection dropped before the answer.
      if (!socket.connected) throw new CurbsideError(ErrorCode.NOT_CONNECTED, `Connection lost before the hub answered ${event}`);
      throw new CurbsideError(ErrorCode.TIMEOUT, `No answer from the hub to ${event} within ${this.timeoutMs} ms`);
    }
    if (!res || typeof res !== 'object' || !('ok' in res)) throw new CurbsideError(ErrorCode.INTERNAL, `Malformed answer to ${event}`);
    if (!res.ok) throw CurbsideError.fromWire(res.error);
    return res.data;
  }

  /**
   * A request made during a brief disconnect waits for the reconnect (up to the request timeout)
   * instead of failing: the app should not have to care about a dropped Wi-Fi packet.
   */
  private waitForConnection(): Promise<void> {
    if (!this.socket || this.isStopped) return Promise.reject(new CurbsideError(ErrorCode.NOT_CONNECTED, 'Not connected to the hub'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new CurbsideError(ErrorCode.NOT_CONNECTED, `Not connected to the hub (waited ${this.timeoutMs} ms)`));
      }, this.timeoutMs);
      const off = this.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async currentToken(): Promise<string> {
    const t = this.options.token;
    const token = typeof t === 'function' ? await t() : t;
    const claims = claimsFromToken(token);
    this.deviceId = this.options.deviceId ?? claims.dev ?? this.deviceId;
    this.userId = this.options.userId ?? claims.sub ?? this.userId;
    return token;
  }

  private reconnectLater(ms: number): void {
    const socket = this.socket;
    // Not if the app stopped meanwhile, nor on a socket a failover has replaced.
    setTimeout(() => !this.isStopped && this.socket === socket && socket?.connect(), ms);
  }

  /** The hub at the current URL cannot be reached: drop this socket and connect to the next URL. */
  private failover(): void {
    const old = this.socket;
    if (old) {
      old.off();
      old.io.reconnection(false);
      old.disconnect();
    }
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.transportFailures = 0;
    this.socket = undefined;
    if (!this.isStopped) this.createSocket().connect();
  }

  private createSocket(): HubSocket {
    const socket: HubSocket = io(this.url, {
      autoConnect: false,
      parser: wireParser,
      transports: this.options.transports ?? ['websocket', 'polling'],
      reconnection: true,
      reconnectionDelay: this.options.reconnectDelayMs ?? 500,
      reconnectionDelayMax: this.options.reconnectDelayMaxMs ?? 10_000,
      randomizationFactor: 0.5,
      auth: (cb) => {
        this.currentToken().then(
          (token) => cb({ token, ...(this.options.deviceId ? { deviceId: this.options.deviceId } : {}), ...(this.options.userId ? { userId: this.options.userId } : {}) }),
          (e: unknown) => {
            this.emit('error', new CurbsideError(ErrorCode.AUTH_REQUIRED, `Token callback failed: ${(e as Error)?.message ?? e}`));
            cb({});
          },
        );
      },
    });
    this.socket = socket;
    for (const [event, handler] of this.pushes) (socket as unknown as { on(e: string, h: PushHandler): void }).on(event, handler);

    socket.on('connect', () => {
      this.authRetries = 0;
      this.handshakeRetries = 0;
      this.transportFailures = 0;
      this.closingCode = undefined;
      this.emit('connected');
    });

    socket.on('connect_error', (err: Error & { data?: unknown }) => {
      const wire = WireErrorSchema.safeParse(err.data);
      if (!wire.success) {
        // Transport-level failure: socket.io's manager retries this URL with backoff; with several
        // hub URLs, the next is tried after a few failures in a row.
        this.transportFailures += 1;
        if (this.urls.length > 1 && this.transportFailures >= FAILOVER_AFTER) this.failover();
        return;
      }
      const error = CurbsideError.fromWire(wire.data);
      // A refused handshake is not retried by socket.io. An expired token is worth one more attempt
      // when the app gave us a way to get a fresh one.
      if (error.code === ErrorCode.AUTH_EXPIRED && typeof this.options.token === 'function' && this.authRetries < MAX_AUTH_RETRIES) {
        this.authRetries += 1;
        this.reconnectLater(200 * this.authRetries);
        return;
      }
      // UNAVAILABLE, INTERNAL, RATE_LIMITED...: the hub could not check the handshake now (its Redis or
      // database is down, it is shutting down, too many handshakes). Not a verdict on the token: try
      // again with backoff, as socket.io does after a transport failure.
      if (error.retryable) {
        this.handshakeRetries += 1;
        const backoff = backoffMs(this.handshakeRetries - 1, { baseMs: this.options.reconnectDelayMs ?? 500, maxMs: this.options.reconnectDelayMaxMs ?? 10_000 });
        this.reconnectLater(Math.max(error.retryAfterMs, backoff));
        return;
      }
      this.emit('error', error);
      this.emit('disconnected', { reason: 'auth-failed', willReconnect: false });
    });

    socket.on(ServerEvent.SESSION_CLOSING, (info: SessionClosing) => {
      this.closingCode = info.code;
    });

    socket.on('disconnect', (reason) => {
      if (this.isStopped || reason === 'io client disconnect') {
        this.emit('disconnected', { reason: 'client', willReconnect: false });
        return;
      }
      const mapped = mapClose(this.closingCode);
      if (reason === 'io server disconnect') {
        // socket.io does not reconnect after a server-side disconnect: decide here.
        const willReconnect = mapped !== 'revoked' && !(mapped === 'token-expired' && typeof this.options.token !== 'function');
        this.emit('disconnected', { reason: mapped, willReconnect });
        if (willReconnect) this.reconnectLater(jitter(this.options.reconnectDelayMs ?? 500));
        return;
      }
      this.emit('disconnected', { reason: 'network', willReconnect: true });
    });
    return socket;
  }
}

function mapClose(code: CloseCode | undefined): DisconnectReason {
  switch (code) {
    case CloseCode.SERVER_SHUTDOWN:
      return 'server-shutdown';
    case CloseCode.TOKEN_EXPIRED:
      return 'token-expired';
    case CloseCode.REVOKED:
      return 'revoked';
    case CloseCode.SLOW_CONSUMER:
      return 'slow-consumer';
    default:
      return 'server-shutdown';
  }
}

/**
 * Who the token says we are (`sub`, `dev`), read without verifying: the hub verifies; the SDK only
 * needs to recognise its own envelopes and label its own messages.
 */
function claimsFromToken(token: string): { sub?: string; dev?: string } {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { sub?: unknown; dev?: unknown };
    return {
      ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
      ...(typeof claims.dev === 'string' ? { dev: claims.dev } : {}),
    };
  } catch {
    return {};
  }
}
