/** Raw socket.io clients (no SDK) for the security tests: exact control over what is sent. */
import { io as rawIo, type Socket } from 'socket.io-client';
import { ServerEvent, wireParser, type Ack, type SessionClosing, type WireError } from '@curbside/shared';
import { rateLimitsOff, type HubConfig, type SecurityConfig, type Storage } from '@curbside/server';
import { HubHarness } from '../support/hub.js';

export interface RawClient {
  socket: Socket;
  /** `session:closing` notices received, in order. */
  closings: SessionClosing[];
  /** Every server push by event name. */
  pushes: Array<{ event: string; payload: unknown }>;
  /** Resolves with the disconnect reason. */
  disconnected: Promise<string>;
  call<T = unknown>(event: string, payload: unknown, timeoutMs?: number): Promise<Ack<T>>;
  close(): void;
}

/** Connect with a token; rejects with the handshake's WireError (or the transport error). */
export function connectRaw(url: string, token: string | undefined, options: { origin?: string; transports?: Array<'websocket' | 'polling'> } = {}): Promise<RawClient> {
  const socket = rawIo(url, {
    parser: wireParser,
    transports: options.transports ?? ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 5000,
    auth: token === undefined ? {} : { token },
    ...(options.origin ? { extraHeaders: { origin: options.origin } } : {}),
  });
  const closings: SessionClosing[] = [];
  const pushes: RawClient['pushes'] = [];
  socket.on(ServerEvent.SESSION_CLOSING, (info: SessionClosing) => closings.push(info));
  socket.onAny((event: string, payload: unknown) => pushes.push({ event, payload }));
  const disconnected = new Promise<string>((resolve) => socket.on('disconnect', (reason) => resolve(reason)));
  return new Promise((resolve, reject) => {
    socket.once('connect', () =>
      resolve({
        socket,
        closings,
        pushes,
        disconnected,
        call: <T>(event: string, payload: unknown, timeoutMs = 5000) => socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<Ack<T>>,
        close: () => socket.disconnect(),
      }),
    );
    socket.once('connect_error', (err: Error & { data?: WireError }) => {
      socket.disconnect();
      reject(Object.assign(new Error(err.message), { wire: err.data }));
    });
  });
}

/** The handshake error code a connection attempt gets, or 'connected'. */
export async function handshakeOutcome(url: string, token: string | undefined, options: { origin?: string; transports?: Array<'websocket' | 'polling'> } = {}): Promise<string> {
  try {
    const c = await connectRaw(url, token, options);
    c.close();
    return 'connected';
  } catch (e) {
    return (e as { wire?: WireError }).wire?.code ?? `transport: ${(e as Error).message}`;
  }
}

/** A storage wrapper that counts every method call after `arm()`: proof that a request reached no query. */
export function spyStorage(inner: Storage): { storage: Storage; calls: string[]; arm(): void } {
  const calls: string[] = [];
  let armed = false;
  const storage = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (armed) calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { storage, calls, arm: () => void (armed = true) };
}

export function errorCode(ack: Ack<unknown>): string {
  return ack.ok ? 'ok' : ack.error.code;
}

export { sleep } from '@curbside/shared';

/** The hub harness and the raw clients of one describe block: both closed after each test. */
export function rawHubs(): { harness: HubHarness; open: RawClient[] } {
  const harness = new HubHarness();
  const open: RawClient[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await harness.cleanup();
  });
  return { harness, open };
}

/** A hub config tweak: these rate limits, every other one off (for tests of something else, or of one limit). */
export function onlyRateLimits(over: Partial<SecurityConfig['rateLimits']> = {}): (c: HubConfig) => void {
  return (c) => {
    c.security = { corsOrigins: [], rateLimits: { ...rateLimitsOff(), ...over }, revocationRecheckMs: 60_000 };
  };
}
