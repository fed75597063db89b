/**
 * Fuzzing the hub's socket events and REST bodies with fast-check. Used by
 * test/security/fuzz.test.ts (in `npm test`) and scripts/fuzz.ts (long runs).
 *
 * One hub on memory adapters, one raw socket.io-client connection with the project's wireParser,
 * reused for every case. Each case sends one event (every client event the hub knows, plus unknown
 * names) with an arbitrary or near-valid payload and checks: the hub answers (ack within the
 * timeout), the answer is `{ ok: true, data }` or `{ ok: false, error }` with a shared error code,
 * a refused request changed nothing in storage, and the hub never crashes or drops the connection.
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { ClientEvent, ErrorCode, HTTP_STATUS_BY_CODE, RestErrorBodySchema, type Conversation } from '@curbside/shared';
import { Hub, MemoryPresence, MemoryStorage, createHubFromConfig, createLogger, loadConfig, rateLimitsOff, type HubConfig, type Storage } from '@curbside/server';
import { testDeviceKeys } from '../support/keys.js';
import { connectRaw, type RawClient } from './support.js';

const ORG = 'fuzz-org';
const USER = 'fuzz-user';
const PEER = 'fuzz-peer';
const ERROR_CODES = new Set<string>(Object.values(ErrorCode));
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

export interface FuzzStats {
  cases: number;
  outcomes: Record<string, number>;
  reconnects: number;
  /** Frames the wire parser refused (a `__proto__` key), which closes the connection by design. */
  parserRefusals: number;
  ms: number;
}

/** A hub on memory adapters with its own signing key, and a token factory. */
export async function startFuzzHub(): Promise<{ hub: Hub; url: string; storage: Storage; mint(userId: string, deviceId: string, orgId?: string): string }> {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey: KeyObject = pair.privateKey;
  const config: HubConfig = {
    mode: 'dev',
    port: 0,
    host: '127.0.0.1',
    nodeId: 'fuzz',
    logLevel: 'silent',
    mongo: undefined,
    redis: undefined,
    jwt: { publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), algorithm: 'RS256', issuer: 'fuzz-idp', audience: 'curbside', clockToleranceSec: 0 },
    presence: { ttlMs: 30_000, heartbeatMs: 10_000 },
    maxFrameBytes: 256 * 1024,
    // Rate limits off: the fuzzer sends as fast as it can; limits have their own tests.
    security: { corsOrigins: [], rateLimits: rateLimitsOff(), revocationRecheckMs: 5000 },
  };
  const storage = new MemoryStorage();
  const logger = createLogger({ level: 'silent', nodeId: 'fuzz', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const hub = new Hub({ config, storage, presence: new MemoryPresence({ ttlMs: 30_000 }), logger });
  const { url } = await hub.listen(0, '127.0.0.1');
  const mint = (userId: string, deviceId: string, orgId = ORG) =>
    jwt.sign({ sub: userId, org: orgId, dev: deviceId }, privateKey, { algorithm: 'RS256', issuer: 'fuzz-idp', audience: 'curbside', expiresIn: 3600, jwtid: randomUUID() });
  return { hub, url, storage, mint };
}

/** What a refused request must leave unchanged: everything the fuzz user can reach. */
async function digest(storage: Storage, deviceId: string): Promise<string> {
  const conversations = await storage.listConversationsForUser(ORG, USER);
  const envelopes = await Promise.all(conversations.map((c) => storage.envelopesAfter(ORG, c.id, 0, 10_000)));
  const identities = await storage.listDeviceIdentities(ORG, [USER, PEER]);
  const own = await storage.listOwnDevices(ORG, USER);
  return JSON.stringify([
    conversations.map((c) => [c.id, c.lastSeq, c.memberUserIds.length]),
    envelopes.map((list) => list.length),
    identities.map((d) => d.deviceId),
    own.map((d) => [d.deviceId, d.hasKeys, d.revokedAt ?? 0]),
    await storage.countOneTimePrekeys(ORG, deviceId),
    await storage.countOneTimePrekeys(ORG, 'peer-phone'),
  ]);
}

/** Ids the generators mix in, so near-valid payloads reach deep into the handlers. */
interface Pools {
  conversationIds: string[];
  userIds: string[];
  deviceIds: string[];
}

function arbitraries(pools: Pools) {
  const operator = fc.constantFrom<unknown>({ $ne: null }, { $gt: '' }, { $where: '1' }, { $regex: '.*' }, JSON.parse('{"__proto__":{"polluted":true}}') as unknown, { constructor: { prototype: { polluted: true } } });
  const bytes = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 80 }),
    fc.constantFrom(32, 64, 16 * 1024 + 1, 64 * 1024 + 1).map((n) => new Uint8Array(n)),
  );
  const weird = fc.oneof(
    fc.anything({ maxDepth: 2, maxKeys: 4 }),
    operator,
    fc.constantFrom<unknown>(null, undefined, true, 0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2, '', ' ', '\u0000', 'x'.repeat(200)),
    bytes,
  );
  const id = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...pools.conversationIds, ...pools.userIds, ...pools.deviceIds) },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ minLength: 120, maxLength: 140 }) },
    { weight: 1, arbitrary: weird },
  );
  const ids = (max: number) => fc.oneof(fc.array(id, { minLength: 0, maxLength: max }), weird);
  const int = fc.oneof(fc.integer({ min: -2, max: 600 }), fc.constantFrom(2 ** 31, 2 ** 53), weird);
  const keys = testDeviceKeys();
  const signedPrekey = fc.oneof(
    fc.constant(keys.signedPrekey()),
    fc.record({ keyId: int, publicKey: fc.oneof(bytes, weird), signature: fc.oneof(bytes, weird) }, { requiredKeys: [] }),
    weird,
  );
  const prekeys = fc.oneof(fc.constant(keys.oneTimePrekeys(3, 1000)), fc.array(fc.record({ keyId: int, publicKey: fc.oneof(bytes, weird) }, { requiredKeys: [] }), { maxLength: 4 }), weird);
  const recipients = fc.oneof(fc.array(fc.record({ deviceId: id, ciphertext: fc.oneof(bytes, weird) }, { requiredKeys: [] }), { maxLength: 4 }), weird);
  const extra = fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', '$where', 'orgId', 'userId')), weird, { maxKeys: 2 });

  const shaped: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
    [ClientEvent.CONVERSATION_CREATE]: fc.record({ kind: fc.oneof(fc.constantFrom('direct', 'group'), weird), peerUserId: id, title: fc.oneof(fc.string({ maxLength: 20 }), weird), memberUserIds: ids(5) }, { requiredKeys: [] }),
    [ClientEvent.ENVELOPE_SEND]: fc.oneof(
      fc.record({ conversationId: id, clientMessageId: fc.oneof(fc.uuid(), id), body: fc.oneof(bytes, weird), recipients }, { requiredKeys: [] }),
      // Near-valid: the shared conversation, a fresh or reused message id, a body and/or Peer's device.
      fc.record(
        {
          conversationId: fc.constant(pools.conversationIds[0]!),
          clientMessageId: fc.oneof(fc.uuid(), fc.constantFrom('reused-1', 'reused-2')),
          body: fc.uint8Array({ minLength: 1, maxLength: 64 }),
          recipients: fc.constant([{ deviceId: 'peer-phone', ciphertext: new Uint8Array([1, 2, 3]) }]),
        },
        { requiredKeys: ['conversationId', 'clientMessageId'] },
      ),
    ),
    [ClientEvent.SYNC_FETCH]: fc.record({ cursors: fc.oneof(fc.array(fc.record({ conversationId: id, afterSeq: int }, { requiredKeys: [] }), { maxLength: 4 }), weird), limit: int }, { requiredKeys: [] }),
    [ClientEvent.KEYS_PUBLISH]: fc.record({ identityKey: fc.oneof(fc.constant(keys.identityKey), bytes, weird), signedPrekey, oneTimePrekeys: prekeys }, { requiredKeys: [] }),
    [ClientEvent.KEYS_CLAIM]: fc.record({ userIds: ids(4), deviceIds: ids(4) }, { requiredKeys: [] }),
    [ClientEvent.DEVICES_LIST]: fc.record({ userIds: ids(4) }, { requiredKeys: [] }),
    [ClientEvent.DEVICE_REVOKE]: fc.record({ deviceId: id }, { requiredKeys: [] }),
  };
  const known = Object.values(ClientEvent) as string[];
  const event = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 16 }).filter((s) => !RESERVED.has(s)) },
  );
  const payloadFor = (e: string) =>
    fc.oneof(
      { weight: 3, arbitrary: Object.hasOwn(shaped, e) ? fc.tuple(shaped[e]!, extra, fc.boolean()).map(([p, x, merge]) => (merge ? { ...p, ...x } : p)) : fc.constant({}) },
      { weight: 2, arbitrary: weird },
      { weight: 1, arbitrary: fc.constant({}) },
    );
  /** The argument list: one payload (the normal shape), none, two, or no ack at all. */
  const shape = fc.constantFrom<'one' | 'none' | 'two' | 'noack'>('one', 'one', 'one', 'one', 'one', 'one', 'none', 'two', 'noack');
  return fc.record({ event, shape }).chain(({ event: e, shape: s }) => fc.record({ event: fc.constant(e), shape: fc.constant(s), payload: payloadFor(e), second: weird }));
}

/** Run `numRuns` socket cases against a hub; throws (with fast-check's counterexample) on the first violation. */
export async function fuzzSocketEvents(
  target: { url: string; storage: Storage; mint(userId: string, deviceId: string, orgId?: string): string },
  numRuns: number,
  seed?: number,
  progress?: (stats: FuzzStats) => void,
): Promise<FuzzStats> {
  const started = Date.now();
  const deviceId = 'fuzz-phone';
  // Setup: a peer with keys, a shared conversation, and another organisation's conversation.
  const peer = await connectRaw(target.url, target.mint(PEER, 'peer-phone'));
  const pk = testDeviceKeys();
  await peer.call('keys:publish', { identityKey: pk.identityKey, signedPrekey: pk.signedPrekey(), oneTimePrekeys: pk.oneTimePrekeys(400) });
  const stranger = await connectRaw(target.url, target.mint('stranger', 'stranger-phone', 'other-org'));
  const foreign = await stranger.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: USER });
  let client: RawClient = await connectRaw(target.url, target.mint(USER, deviceId));
  const shared = await client.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: PEER });
  const pools: Pools = {
    conversationIds: [shared.ok ? shared.data.id : 'x', foreign.ok ? foreign.data.id : 'y', randomUUID()],
    userIds: [USER, PEER, 'stranger', 'nobody'],
    deviceIds: ['peer-phone', 'stranger-phone', 'no-such-device'],
  };
  const stats: FuzzStats = { cases: 0, outcomes: {}, reconnects: 0, parserRefusals: 0, ms: 0 };
  const count = (k: string) => (stats.outcomes[k] = (stats.outcomes[k] ?? 0) + 1);

  try {
    await fc.assert(
      fc.asyncProperty(arbitraries(pools), async ({ event, shape, payload, second }) => {
        stats.cases++;
        if (progress && stats.cases % 10_000 === 0) progress(stats);
        if (!client.socket.connected) {
          // After a frame the parser refused, carry on with a new connection of the same device.
          stats.reconnects++;
          client = await connectRaw(target.url, target.mint(USER, deviceId));
        }
        const before = await digest(target.storage, deviceId);
        const socket = client.socket.timeout(3000);
        let ack: unknown;
        if (shape === 'noack') {
          client.socket.emit(event, payload);
          if (hasProtoKey(payload)) {
            stats.parserRefusals++;
            count('parser refused (__proto__ key): connection closed');
            await client.disconnected;
            return;
          }
          ack = await socket.emitWithAck(ClientEvent.KEYS_COUNT, {});
          count('no-ack (then alive)');
          expect((ack as { ok?: unknown }).ok === true, 'hub answers after an event without ack');
          return;
        }
        const args = shape === 'one' ? [payload] : shape === 'two' ? [payload, second] : [];
        try {
          ack = await socket.emitWithAck(event, ...args);
        } catch (e) {
          // The wire parser refuses a `__proto__` key anywhere (MessagePack decoder): socket.io closes
          // that connection before any handler runs. Anything else must be answered.
          if (hasProtoKey(args)) {
            stats.parserRefusals++;
            count('parser refused (__proto__ key): connection closed');
            await client.disconnected;
            expect((await digest(target.storage, deviceId)) === before, 'a refused frame changed storage');
            return;
          }
          throw new Error(`no answer to ${event} within 3 s: ${(e as Error).message}`);
        }
        const res = ack as { ok?: unknown; data?: unknown; error?: { code?: unknown; message?: unknown } };
        if (res.ok === true) {
          expect('data' in res, `${event}: ok without data`);
          count(`${event} ok`);
          return;
        }
        expect(res.ok === false && typeof res.error === 'object' && res.error !== null, `${event}: answer is neither ok nor a typed error: ${safe(ack)}`);
        expect(typeof res.error!.code === 'string' && ERROR_CODES.has(res.error!.code), `${event}: unknown error code ${safe(res.error)}`);
        expect(typeof res.error!.message === 'string', `${event}: error without message`);
        expect(res.error!.code !== ErrorCode.INTERNAL, `${event}: INTERNAL error for ${safe(args)}`);
        count(res.error!.code as string);
        const after = await digest(target.storage, deviceId);
        expect(after === before, `${event}: refused (${String(res.error!.code)}) but storage changed for ${safe(args)}`);
      }),
      // A case that hangs fails with its counterexample instead of stalling the run.
      { numRuns, ...(seed !== undefined ? { seed } : {}), endOnFailure: true, timeout: 10_000 },
    );
  } finally {
    client.close();
    peer.close();
    stranger.close();
  }
  stats.ms = Date.now() - started;
  return stats;
}

/** Arbitrary REST requests against a dev-mode hub (the only mode with a request body: POST /dev/token). */
export async function fuzzRest(numRuns: number, seed?: number): Promise<FuzzStats> {
  const started = Date.now();
  const hub = createHubFromConfig(loadConfig({ LOG_LEVEL: 'silent' }));
  const { url } = await hub.listen(0, '127.0.0.1');
  const stats: FuzzStats = { cases: 0, outcomes: {}, reconnects: 0, parserRefusals: 0, ms: 0 };
  const body = fc.oneof(
    fc.anything({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
    fc.record({ userId: fc.oneof(fc.string(), fc.anything()), deviceId: fc.oneof(fc.string(), fc.anything()), orgId: fc.anything(), ttlSeconds: fc.anything(), name: fc.anything() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.constantFrom('{', '{"userId":', '[]', 'null', '"x"', '{"__proto__":{"a":1}}', 'x'.repeat(20_000)),
  );
  const path = fc.oneof({ weight: 6, arbitrary: fc.constant('/dev/token') }, { weight: 1, arbitrary: fc.constantFrom('/healthz', '/readyz', '/nope', '/dev/token/x', '/%ff') });
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1');
  try {
    await fc.assert(
      fc.asyncProperty(body, path, contentType, fc.constantFrom('POST', 'GET', 'PUT'), async (b, p, ct, method) => {
        stats.cases++;
        const res = await fetch(`${url}${p}`, { method, headers: { 'content-type': ct }, ...(method === 'GET' ? {} : { body: b }) });
        const text = await res.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new Error(`${method} ${p}: non-JSON answer ${res.status}: ${text.slice(0, 100)}`);
        }
        if (res.status === 200) {
          stats.outcomes['200'] = (stats.outcomes['200'] ?? 0) + 1;
          if (p === '/dev/token') expect(typeof (json as { token?: unknown }).token === 'string', 'a 200 from /dev/token carries a token');
          return;
        }
        if (p === '/readyz' && res.status === 503) return;
        const parsed = RestErrorBodySchema.safeParse(json);
        expect(parsed.success, `${method} ${p}: error body is not { error: { code, message } }: ${text.slice(0, 200)}`);
        const code = parsed.success ? parsed.data.error.code : ErrorCode.INTERNAL;
        expect(code !== ErrorCode.INTERNAL, `${method} ${p} ${ct}: INTERNAL for ${b.slice(0, 100)}`);
        expect(HTTP_STATUS_BY_CODE[code] === res.status, `${method} ${p}: status ${res.status} does not match ${code}`);
        stats.outcomes[code] = (stats.outcomes[code] ?? 0) + 1;
      }),
      { numRuns, ...(seed !== undefined ? { seed } : {}), endOnFailure: true },
    );
    const health = await fetch(`${url}/healthz`);
    expect(health.status === 200, 'hub still healthy after the REST fuzz');
  } finally {
    await hub.close();
  }
  stats.ms = Date.now() - started;
  return stats;
}

function hasProtoKey(v: unknown, depth = 0): boolean {
  if (depth > 10 || v === null || typeof v !== 'object' || v instanceof Uint8Array) return false;
  // The encoder drops undefined values (ignoreUndefined), so only a defined `__proto__` reaches the hub.
  if (!Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, '__proto__') && (v as Record<string, unknown>)['__proto__'] !== undefined) return true;
  return Object.values(v as Record<string, unknown>).some((x) => hasProtoKey(x, depth + 1));
}

function expect(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

function safe(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `<${x.byteLength} bytes>` : typeof x === 'bigint' ? String(x) : x))?.slice(0, 300) ?? String(v);
  } catch {
    return String(v);
  }
}
