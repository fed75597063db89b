/**
 * Input hardening: MongoDB operator objects in id fields never reach a query (the shared schemas
 * refuse them with INVALID_PAYLOAD first; mongoose `sanitizeFilter` and `strictQuery` are the second
 * line on the real Mongo-wire DB), unknown events get a typed answer, and browser origins are
 * checked at the socket handshake and on REST.
 */
import { expect } from 'chai';
import mongoose from 'mongoose';
import { ClientEvent, ErrorCode, type Conversation } from '@curbside/shared';
import { MongoStorage, OriginPolicy, loadConfig, createHubFromConfig, ConfigError, rateLimitsOff, type Storage } from '@curbside/server';
import { sharedBackend, type TestHub } from '../support/hub.js';
import { serviceUrls, uniqueName } from '../support/services.js';
import { connectRaw, errorCode, handshakeOutcome, spyStorage, rawHubs } from './support.js';

const OPERATORS: unknown[] = [{ $ne: null }, { $gt: '' }, { $regex: '.*' }, { $in: ['a', 'b'] }, { $where: 'sleep(1000)' }, { $exists: true }];

/** Every id field of every client event, each replaced by an operator object in an otherwise valid payload. */
function operatorPayloads(op: unknown): Array<[string, unknown]> {
  const bin = new Uint8Array(32).fill(7);
  return [
    [ClientEvent.CONVERSATION_CREATE, { kind: 'direct', peerUserId: op }],
    [ClientEvent.CONVERSATION_CREATE, { kind: 'group', memberUserIds: [op] }],
    [ClientEvent.CONVERSATION_CREATE, { kind: 'group', memberUserIds: op }],
    [ClientEvent.ENVELOPE_SEND, { conversationId: op, clientMessageId: 'm', body: bin }],
    [ClientEvent.ENVELOPE_SEND, { conversationId: 'c', clientMessageId: op, body: bin }],
    [ClientEvent.ENVELOPE_SEND, { conversationId: 'c', clientMessageId: 'm', recipients: [{ deviceId: op, ciphertext: bin }] }],
    [ClientEvent.SYNC_FETCH, { cursors: [{ conversationId: op, afterSeq: 0 }] }],
    [ClientEvent.SYNC_FETCH, { cursors: [{ conversationId: 'c', afterSeq: op }] }],
    [ClientEvent.KEYS_CLAIM, { userIds: [op] }],
    [ClientEvent.KEYS_CLAIM, { userIds: op }],
    [ClientEvent.KEYS_CLAIM, { userIds: ['u'], deviceIds: [op] }],
    [ClientEvent.DEVICES_LIST, { userIds: [op] }],
    [ClientEvent.KEYS_PUBLISH, { identityKey: op }],
    [ClientEvent.KEYS_PUBLISH, { identityKey: bin, oneTimePrekeys: [{ keyId: op, publicKey: bin }] }],
    [ClientEvent.DEVICE_REVOKE, { deviceId: op }],
    [ClientEvent.CONVERSATION_LIST, { filter: op }],
    [ClientEvent.KEYS_COUNT, { deviceId: op }],
    [ClientEvent.DEVICES_MINE, { userId: op }],
  ];
}

describe('input hardening', function () {
  const { harness, open } = rawHubs();

  it('an operator object in any id field of any event is INVALID_PAYLOAD and reaches no storage method (real DB)', async () => {
    let spy!: ReturnType<typeof spyStorage>;
    const t = await harness.start('real', sharedBackend(), undefined, (s: Storage) => (spy = spyStorage(s)).storage);
    const c = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    open.push(c);
    spy.arm();
    let cases = 0;
    for (const op of OPERATORS) {
      for (const [event, payload] of operatorPayloads(op)) {
        const ack = await c.call(event, payload);
        expect(errorCode(ack), `${event} ${JSON.stringify(payload)}`).to.equal(ErrorCode.INVALID_PAYLOAD);
        cases++;
      }
    }
    expect(cases).to.equal(OPERATORS.length * operatorPayloads(null).length);
    expect(spy.calls, 'no storage call for any refused payload').to.deep.equal([]);
  });

  it("an operator's name with NUL or another control character is INVALID_PAYLOAD and changes nothing (real DB)", async () => {
    // PostgreSQL's jsonb (FerretDB's PostgreSQL backend) refuses NUL: stored text (here the audit log's
    // operator) holds no control character.
    const admin = 'operator-secret-'.padEnd(40, 'x');
    const t = await harness.start('real', sharedBackend(), (c) => (c.adminToken = admin));
    open.push(await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })));
    const disable = (by: string) =>
      fetch(`${t.url}/admin/users/disable`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ orgId: 'org-a', userId: 'dr-lee', by }),
      });
    for (const by of ['helpdesk\u00007', 'helpdesk\t7', 'help\ndesk 7', '\u001b[31mhelpdesk', 'helpdesk\u007f']) {
      const res = await disable(by);
      expect([res.status, ((await res.json()) as { error?: { code: string } }).error?.code], JSON.stringify(by)).to.deep.equal([400, ErrorCode.INVALID_PAYLOAD]);
    }
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-laptop' })), 'dr-lee not disabled').to.equal('connected');
    // Any other character is a name.
    expect((await disable('Dr. Müller \u2014 helpdesk')).status).to.equal(200);
  });

  it('MongoStorage itself neutralises operator objects (sanitizeFilter) on the real Mongo-wire DB', async () => {
    const dbName = uniqueName('inject');
    const s = new MongoStorage({ uri: serviceUrls().mongoUri, dbName });
    await s.init();
    try {
      await s.touchDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-phone', now: 1 });
      const { conversation } = await s.createConversation({ orgId: 'org-a', kind: 'direct', createdBy: 'dr-lee', memberUserIds: ['dr-patel'], now: 1 });
      const evil = { $ne: null } as unknown as string;
      // Had the operator been applied, each of these would match org-a's data. The key encoder refuses
      // it, or Mongoose casts it away (CastError: never sent) or sends it wrapped in $eq
      // (sanitizeFilter): nothing matches.
      const neutral = async (what: string, p: Promise<unknown>) => {
        try {
          const r = await p;
          expect(r === undefined || (Array.isArray(r) && r.length === 0), `${what} returned ${JSON.stringify(r)}`).to.equal(true);
        } catch (e) {
          const refusedByKeyEncoder = e instanceof TypeError && /^compositeKey: every part must be a string/.test(e.message);
          expect(refusedByKeyEncoder || e instanceof mongoose.Error.CastError, `${what}: ${String(e)}`).to.equal(true);
        }
      };
      await neutral('getConversation id', s.getConversation('org-a', evil));
      await neutral('getConversation org', s.getConversation(evil, conversation.id));
      await neutral('listConversationsForUser', s.listConversationsForUser('org-a', evil));
      await neutral('listDevices', s.listDevices(evil, evil));
      await neutral('getUser', s.getUser('org-a', evil));
      await neutral('findSent', s.findSent(evil, evil, evil));
      await neutral('deviceRevokedAt', s.deviceRevokedAt(evil, evil));
      await neutral('envelopesAfter', s.envelopesAfter('org-a', evil, 0, 10));
      await neutral('listOwnDevices', s.listOwnDevices('org-a', evil));
      // strictQuery: a filter path the schema does not have is dropped, not passed to the database.
      const conn = s.connection;
      expect(conn.get('sanitizeFilter')).to.equal(true);
      expect(conn.models.Conversation!.schema.get('strictQuery')).to.equal(true);
    } finally {
      await s.close();
      const c = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
      await c.dropDatabase();
      await c.close();
    }
  });

  it('an unknown event is answered with INVALID_PAYLOAD (when it asks for an answer)', async () => {
    const t = await harness.start('memory');
    const c = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    open.push(c);
    expect(errorCode(await c.call('admin:drop-everything', {}))).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(errorCode(await c.call('conversation:list', {}))).to.equal('ok');
  });

  describe('origins', function () {
    let t: TestHub;
    beforeEach(async () => {
      t = await harness.start('real', sharedBackend(), (c) => {
        c.security = { corsOrigins: ['https://app.hospital.example'], rateLimits: rateLimitsOff(), revocationRecheckMs: 5000 };
      });
    });
    const token = () => t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });

    it('refuses a socket handshake from a disallowed Origin (websocket and polling), accepts an allowed one and none', async () => {
      for (const transports of [['websocket'], ['polling']] as const) {
        expect(await handshakeOutcome(t.url, token(), { origin: 'https://evil.example', transports: [...transports] })).to.match(/^transport/);
        expect(await handshakeOutcome(t.url, token(), { origin: 'https://app.hospital.example', transports: [...transports] })).to.equal('connected');
        expect(await handshakeOutcome(t.url, token(), { transports: [...transports] })).to.equal('connected');
      }
      expect(await t.storage.listDevices('org-a', 'dr-lee')).to.have.length(1);
    });

    it('CORS on express: allowed origins get the header, others a typed 403, preflights included', async () => {
      const allowed = await fetch(`${t.url}/healthz`, { headers: { origin: 'https://app.hospital.example' } });
      expect(allowed.status).to.equal(200);
      expect(allowed.headers.get('access-control-allow-origin')).to.equal('https://app.hospital.example');
      const evil = await fetch(`${t.url}/healthz`, { headers: { origin: 'https://evil.example' } });
      expect(evil.status).to.equal(403);
      expect(((await evil.json()) as { error: { code: string } }).error.code).to.equal(ErrorCode.FORBIDDEN);
      const preflight = await fetch(`${t.url}/dev/token`, { method: 'OPTIONS', headers: { origin: 'https://app.hospital.example', 'access-control-request-method': 'POST' } });
      expect(preflight.status).to.equal(204);
      expect(preflight.headers.get('access-control-allow-methods')).to.include('POST');
      const evilPreflight = await fetch(`${t.url}/dev/token`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
      expect(evilPreflight.status).to.equal(403);
      const socketIoCors = await fetch(`${t.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'https://evil.example' } });
      expect(socketIoCors.status).to.equal(403);
    });

    it('dev mode allows localhost origins by default and nothing else', async () => {
      const dev = await harness.start('memory', sharedBackend(), (c) => {
        c.security = undefined;
      });
      expect(await handshakeOutcome(dev.url, dev.idp.mint({ userId: 'a', deviceId: 'b' }), { origin: 'http://localhost:5173' })).to.equal('connected');
      expect(await handshakeOutcome(dev.url, dev.idp.mint({ userId: 'a', deviceId: 'b' }), { origin: 'https://evil.example' })).to.match(/^transport/);
      const p = new OriginPolicy('dev-localhost');
      expect([p.allows('http://127.0.0.1:3000'), p.allows('http://[::1]:8080'), p.allows('https://localhost'), p.allows('http://localhost.evil.example'), p.allows('null')]).to.deep.equal([true, true, true, false, false]);
    });

    it('CORS_ORIGINS and RATE_LIMIT_* are parsed and checked at start', () => {
      const c = loadConfig({ CORS_ORIGINS: 'https://app.hospital.example, https://Other.example:8443', RATE_LIMIT_ENVELOPE_SEND: '20/5', RATE_LIMIT_HANDSHAKE: '0', RATE_LIMIT_ORG_FACTOR: '1000' });
      expect(c.security?.budgetFactors).to.deep.equal({ user: 2, org: 1000 });
      expect(c.security?.corsOrigins).to.deep.equal(['https://app.hospital.example', 'https://other.example:8443']);
      expect(c.security?.rateLimits.envelopeSend).to.deep.equal({ points: 20, durationSec: 5 });
      expect(c.security?.rateLimits.handshake.points).to.equal(0);
      expect(loadConfig({}).security?.corsOrigins).to.equal('dev-localhost');
      try {
        loadConfig({ CORS_ORIGINS: '*,https://ok.example/path', RATE_LIMIT_KEYS_CLAIM: 'lots', RATE_LIMIT_USER_FACTOR: '0' });
        expect.fail('should refuse');
      } catch (e) {
        const all = (e as ConfigError).problems.join('\n');
        expect(all).to.match(/CORS_ORIGINS: must be .* bad: \*, https:\/\/ok\.example\/path/);
        expect(all).to.match(/RATE_LIMIT_KEYS_CLAIM: must be N\/S/);
        expect(all).to.match(/RATE_LIMIT_USER_FACTOR: must be a whole number of at least 1 \(got "0"\)/);
      }
    });
  });

  it('a REST body with operator objects is INVALID_PAYLOAD (dev-mode hub with dev tokens)', async () => {
    const hub = createHubFromConfig(loadConfig({ LOG_LEVEL: 'silent' }));
    const { url } = await hub.listen(0, '127.0.0.1');
    try {
      const bodies = [
        '{"userId":{"$ne":null},"deviceId":"x"}',
        '{"userId":"a","deviceId":"b","orgId":{"$gt":""}}',
        '{"userId":"a","deviceId":"b","__proto__":{"admin":true}}',
        '{"userId":"a","deviceId":"b","constructor":{"prototype":{"admin":true}}}',
      ];
      for (const body of bodies) {
        const res = await fetch(`${url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const json = (await res.json()) as { error?: { code: string } };
        expect([res.status, json.error?.code], body).to.deep.equal([400, ErrorCode.INVALID_PAYLOAD]);
      }
      expect(({} as { admin?: boolean }).admin, 'no prototype pollution').to.equal(undefined);
    } finally {
      await hub.close();
    }
  });

  it('an operator-shaped conversation id from a member is still refused before the relay', async () => {
    const t = await harness.start('memory');
    const c = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    open.push(c);
    const conv = await c.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' });
    expect(conv.ok).to.equal(true);
    expect(errorCode(await c.call('envelope:send', { conversationId: { $eq: conv.ok && conv.data.id }, clientMessageId: 'm', body: new Uint8Array([1]) }))).to.equal(ErrorCode.INVALID_PAYLOAD);
  });
});
