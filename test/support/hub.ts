/**
 * Start hubs on port 0 for tests, with teardown registered in one place
 * (the shape of hocuspocus' `newHocuspocus` helper).
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { Writable } from 'node:stream';
import jwt from 'jsonwebtoken';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import {
  Hub,
  MemoryPresence,
  MemoryStorage,
  MongoStorage,
  RedisPresence,
  createLogger,
  type HubConfig,
  type Storage,
  type Presence,
} from '@curbside/server';
import { CurbsideClient, isCurbsideError, type ChatMessage, type CurbsideClientOptions, type TeamChange } from '@curbside/client-sdk';
import type { Envelope } from '@curbside/shared';
import { serviceUrls, uniqueName } from './services.js';

/** Plays the hospital identity provider: an RS256 key pair and a minting function. */
export class TestIdp {
  readonly issuer = 'https://idp.test-hospital.example';
  readonly audience = 'curbside';
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;

  constructor() {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.publicKeyPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  mint(
    who: { userId: string; deviceId: string; orgId?: string; claims?: Record<string, unknown> },
    overrides: { expiresInSec?: number; issuer?: string; audience?: string; jti?: string; authAgeSec?: number | null } = {},
  ): string {
    // A sign-in just now, as an identity provider's fresh token says (auth_time); null: no auth_time at all.
    const authTime = overrides.authAgeSec === null ? {} : { auth_time: Math.floor(Date.now() / 1000) - (overrides.authAgeSec ?? 0) };
    return jwt.sign({ ...who.claims, sub: who.userId, org: who.orgId ?? 'org-a', dev: who.deviceId, ...authTime }, this.privateKey, {
      algorithm: 'RS256',
      issuer: overrides.issuer ?? this.issuer,
      audience: overrides.audience ?? this.audience,
      expiresIn: overrides.expiresInSec ?? 600,
      jwtid: overrides.jti ?? randomUUID(),
    });
  }
}

/** Everything the hub logs, kept in memory so tests can search it (the plaintext canary does). */
export class LogCapture {
  readonly lines: string[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      this.lines.push(chunk.toString());
      cb();
    },
  });
  text(): string {
    return this.lines.join('');
  }
}

export type Backend = 'memory' | 'real';

export interface TestHub {
  hub: Hub;
  url: string;
  idp: TestIdp;
  storage: Storage;
  presence: Presence;
  logs: LogCapture;
  /**
   * An SDK client as this user/device, closed at teardown. Its `connect()` also links it when its
   * user already has a signed device list: another connected client of the same user (on this
   * backend) enters its link code, as the clinician would. `manualLink: true` leaves it pending.
   */
  client(who: Who, options?: Partial<CurbsideClientOptions>): CurbsideClient;
}

export interface Who {
  userId: string;
  deviceId: string;
  orgId?: string;
  /** More claims for its tokens (e.g. the directory profile: `name`, `profile_role`, `department`). */
  claims?: Record<string, unknown>;
  /** Leave linking to the test (the device stays `pending` after connect if its user has a list). */
  manualLink?: boolean;
}

export interface Shared {
  idp: TestIdp;
  dbName: string;
  keyPrefix: string;
  /** A Redis of the test's own (e.g. one it will stop); default: the run's shared Redis. */
  redisUrl?: string;
  /** Another of the run's Mongo-wire DBs (e.g. `serviceUrls().ferretDbPostgresUri`); default: the one tests use. */
  mongoUri?: string;
}

export function sharedBackend(): Shared {
  return { idp: new TestIdp(), dbName: uniqueName('hub'), keyPrefix: `${uniqueName('test')}:` };
}

/**
 * Test harness: tracks hubs and clients and closes them (and drops test databases) in `cleanup()`.
 * Call `cleanup` from an `afterEach`.
 */
export class HubHarness {
  private readonly hubs: Hub[] = [];
  private readonly clients: CurbsideClient[] = [];
  /** Who each client is, and on which backend (clients of one user link each other). */
  private readonly identities = new Map<CurbsideClient, { who: Who; world: unknown }>();
  private readonly dbNames = new Map<string, string>();
  private readonly redisPrefixes = new Set<string>();

  async start(
    backend: Backend,
    shared: Shared = sharedBackend(),
    tweak: (c: HubConfig) => void = () => {},
    wrapStorage: (s: Storage) => Storage = (s) => s,
    onFatal?: (reason: string) => void,
  ): Promise<TestHub> {
    const logs = new LogCapture();
    const nodeId = `test-${randomUUID().slice(0, 8)}`;
    const config: HubConfig = {
      mode: backend === 'memory' ? 'dev' : 'production',
      port: 0,
      host: '127.0.0.1',
      nodeId,
      logLevel: 'debug',
      mongo: undefined,
      redis: undefined,
      jwt: { publicKey: shared.idp.publicKeyPem, algorithm: 'RS256', issuer: shared.idp.issuer, audience: shared.idp.audience, clockToleranceSec: 0 },
      presence: { ttlMs: 30_000, heartbeatMs: 10_000 },
      maxFrameBytes: 256 * 1024,
      shutdownGraceMs: 2_000,
    };
    tweak(config);
    const logger = createLogger({ level: config.logLevel, nodeId, destination: logs.stream });
    let storage: Storage;
    let presence: Presence;
    let fanout: { pub: Redis; sub: Redis; keyPrefix: string } | undefined;
    let presenceClient: Redis | undefined;
    if (backend === 'memory') {
      storage = new MemoryStorage();
      presence = new MemoryPresence({ ttlMs: config.presence.ttlMs });
    } else {
      const mongoUri = shared.mongoUri ?? serviceUrls().mongoUri;
      const redisUrl = shared.redisUrl ?? serviceUrls().redisUrl;
      storage = new MongoStorage({ uri: mongoUri, dbName: shared.dbName });
      this.dbNames.set(shared.dbName, mongoUri);
      if (!shared.redisUrl) this.redisPrefixes.add(shared.keyPrefix);
      const quiet = (r: Redis) => (r.on('error', () => {}), r);
      presenceClient = quiet(new Redis(redisUrl));
      presence = new RedisPresence({ redis: presenceClient, keyPrefix: shared.keyPrefix, ttlMs: config.presence.ttlMs });
      fanout = { pub: quiet(new Redis(redisUrl)), sub: quiet(new Redis(redisUrl)), keyPrefix: shared.keyPrefix };
    }
    storage = wrapStorage(storage);
    const hub = new Hub({
      config,
      storage,
      presence,
      logger,
      fanout,
      ...(onFatal ? { onFatal } : {}),
      onClose: async () => {
        presenceClient?.disconnect();
      },
    });
    this.hubs.push(hub);
    const { url } = await hub.listen(0, '127.0.0.1');
    return {
      hub,
      url,
      idp: shared.idp,
      storage,
      presence,
      logs,
      client: (who, options = {}) => {
        const client = new CurbsideClient({
          url,
          token: () => shared.idp.mint(who),
          transports: ['websocket'],
          requestTimeoutMs: 5000,
          reconnectDelayMs: 100,
          reconnectDelayMaxMs: 500,
          ...options,
        });
        this.clients.push(client);
        this.identities.set(client, { who, world: backend === 'memory' ? storage : shared.dbName });
        if (!who.manualLink && options.e2ee !== false) {
          const connect = client.connect.bind(client);
          client.connect = async () => {
            await connect();
            if (client.devices.linkState === 'pending') await this.linkFromSibling(client);
          };
        }
        return client;
      },
    };
  }

  /** What the clinician does with a new device: enter its code on a linked device of theirs. */
  private async linkFromSibling(client: CurbsideClient): Promise<void> {
    const me = this.identities.get(client)!;
    const sameUser = (c: CurbsideClient) => {
      const other = this.identities.get(c);
      return c !== client && other !== undefined && other.world === me.world && other.who.userId === me.who.userId && (other.who.orgId ?? 'org-a') === (me.who.orgId ?? 'org-a');
    };
    let sibling: CurbsideClient | undefined;
    await eventually(
      () => (sibling = this.clients.find((c) => sameUser(c) && c.connected && c.devices.linkState === 'linked')) !== undefined,
      `a connected, linked device of ${me.who.userId} to link ${me.who.deviceId} from (connect one first, or pass manualLink)`,
      10_000,
    );
    await sibling!.devices.link(await client.devices.linkCode());
    await eventually(() => client.devices.linkState === 'linked', `${me.who.deviceId} linked`, 10_000);
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients.splice(0)) c.disconnect();
    this.identities.clear();
    await Promise.allSettled(this.hubs.splice(0).map((h) => h.close()));
    if (this.dbNames.size || this.redisPrefixes.size) {
      const { redisUrl } = serviceUrls();
      for (const [db, mongoUri] of this.dbNames) {
        const conn = await mongoose.createConnection(mongoUri, { dbName: db }).asPromise();
        await conn.dropDatabase().catch(() => {});
        await conn.close();
      }
      const redis = new Redis(redisUrl);
      for (const prefix of this.redisPrefixes) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      }
      redis.disconnect();
    }
    this.dbNames.clear();
    this.redisPrefixes.clear();
  }
}

/** The code of the CurbsideError `p` rejects with; undefined if it resolves. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isCurbsideError(e) ? e.code : `not a CurbsideError: ${String(e)}`;
  }
}

/** How an SDK client's first connect ends: 'connected', or the code of the refusal. */
export async function connectOutcome(options: CurbsideClientOptions): Promise<string> {
  const client = new CurbsideClient(options);
  try {
    return (await codeOf(client.connect())) ?? 'connected';
  } finally {
    client.disconnect();
  }
}

/** Resolve when `predicate` holds, polling; fail with `what` after `timeoutMs`. */
export async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** What a client heard: decrypted messages, raw envelopes, team changes, and every problem (decryption failures and errors) as text. */
export function watchClient(client: CurbsideClient): { messages: ChatMessage[]; envelopes: Envelope[]; changes: TeamChange[]; problems: string[] } {
  const seen = { messages: [] as ChatMessage[], envelopes: [] as Envelope[], changes: [] as TeamChange[], problems: [] as string[] };
  client.on('message', (m) => seen.messages.push(m));
  client.on('envelope', (e) => seen.envelopes.push(e));
  client.on('teamChanged', (c) => seen.changes.push(c));
  client.on('decryptionError', (e) => seen.problems.push(`decrypt: ${e.reason}`));
  client.on('error', (e) => seen.problems.push(`${e.code}: ${e.message}`));
  return seen;
}
