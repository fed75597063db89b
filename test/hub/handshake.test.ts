import { expect } from 'chai';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ErrorCode } from '@curbside/shared';
import { HubHarness, connectOutcome, eventually, type TestHub } from '../support/hub.js';

/** A token built by hand, for forgeries jsonwebtoken refuses to sign. */
function handMade(header: object, payload: object, signature = ''): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

describe('handshake authentication', function () {
  const harness = new HubHarness();
  let t: TestHub;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => ({ sub: 'dr-lee', org: 'org-a', dev: 'lee-phone', iss: t.idp.issuer, aud: t.idp.audience, exp: now() + 600 });

  beforeEach(async () => {
    t = await harness.start('real');
  });
  afterEach(() => harness.cleanup());

  const refusal = (token: string | undefined) => connectOutcome({ url: t.url, token: token as string, transports: ['websocket'] });

  it('accepts a valid token and binds user, organisation and device', async () => {
    const client = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    await client.connect();
    const sockets = [...t.hub.io.of('/').sockets.values()];
    expect(sockets).to.have.length(1);
    expect(sockets[0]!.data).to.include({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-phone' });
    expect(await t.storage.listDevices('org-a', 'dr-lee')).to.have.length(1);
  });

  const forgeries: Array<[string, () => string | undefined, string]> = [
    ['no token at all', () => undefined, ErrorCode.AUTH_REQUIRED],
    ['garbage', () => 'not.a.jwt', ErrorCode.AUTH_INVALID],
    ['signed by another key', () => jwt.sign(claims(), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, { algorithm: 'RS256' }), ErrorCode.AUTH_INVALID],
    ['alg none', () => handMade({ alg: 'none', typ: 'JWT' }, claims()), ErrorCode.AUTH_INVALID],
    // The classic key-confusion attack: HS256 with the RSA public key as the HMAC secret.
    [
      'HS256 signed with the public key',
      () => {
        const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
        const body = Buffer.from(JSON.stringify(claims())).toString('base64url');
        const sig = createHmac('sha256', t.idp.publicKeyPem).update(`${header}.${body}`).digest('base64url');
        return `${header}.${body}.${sig}`;
      },
      ErrorCode.AUTH_INVALID,
    ],
    ['ES256 (not the pinned algorithm)', () => jwt.sign(claims(), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, { algorithm: 'ES256' }), ErrorCode.AUTH_INVALID],
    ['wrong audience', () => t.idp.mint({ userId: 'dr-lee', deviceId: 'd' }, { audience: 'someone-else' }), ErrorCode.AUTH_INVALID],
    ['wrong issuer', () => t.idp.mint({ userId: 'dr-lee', deviceId: 'd' }, { issuer: 'https://evil.example' }), ErrorCode.AUTH_INVALID],
    ['expired', () => t.idp.mint({ userId: 'dr-lee', deviceId: 'd' }, { expiresInSec: -10 }), ErrorCode.AUTH_EXPIRED],
    ['missing device claim', () => jwt.sign({ sub: 'dr-lee', org: 'org-a' }, t.idp.privateKey, { algorithm: 'RS256', issuer: t.idp.issuer, audience: t.idp.audience, expiresIn: 60 }), ErrorCode.AUTH_INVALID],
    [
      'tampered payload (sub changed after signing)',
      () => {
        const [h, , s] = t.idp.mint({ userId: 'dr-lee', deviceId: 'd' }).split('.');
        const body = Buffer.from(JSON.stringify({ ...claims(), sub: 'dr-admin' })).toString('base64url');
        return `${h}.${body}.${s}`;
      },
      ErrorCode.AUTH_INVALID,
    ],
  ];

  for (const [name, token, code] of forgeries) {
    it(`refuses a token: ${name} (${code}) and records nothing`, async () => {
      expect(await refusal(token())).to.equal(code);
      expect(await t.storage.getUser('org-a', 'dr-lee')).to.equal(undefined);
      expect(t.hub.io.of('/').sockets.size).to.equal(0);
    });
  }

  it('refuses a revoked token (jti), and a revoked device even with a fresh token (AUTH_REVOKED), recording nothing', async () => {
    const revoked = t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { jti: 'stolen-token' });
    await t.hub.security.revokeToken({ orgId: 'org-a', tokenId: 'stolen-token', expiresAt: Date.now() + 600_000 });
    expect(await refusal(revoked)).to.equal(ErrorCode.AUTH_REVOKED);
    expect(await t.storage.getUser('org-a', 'dr-lee')).to.equal(undefined);

    const laptop = t.client({ userId: 'dr-lee', deviceId: 'lost-laptop' });
    await laptop.connect();
    await t.hub.security.revokeDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lost-laptop' }, 'lost-laptop');
    expect(await refusal(t.idp.mint({ userId: 'dr-lee', deviceId: 'lost-laptop' }))).to.equal(ErrorCode.AUTH_REVOKED);
  });

  it('refuses a device id that belongs to another clinician', async () => {
    const lee = t.client({ userId: 'dr-lee', deviceId: 'shared-tablet' });
    await lee.connect();
    expect(await refusal(t.idp.mint({ userId: 'dr-mallory', deviceId: 'shared-tablet' }))).to.equal(ErrorCode.FORBIDDEN);
    expect(await t.storage.listDevices('org-a', 'dr-mallory')).to.deep.equal([]);
  });

  it('refreshes an expired token through the callback on reconnect', async () => {
    let calls = 0;
    const client = t.client(
      { userId: 'dr-lee', deviceId: 'lee-phone' },
      { token: () => (++calls === 1 ? t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { expiresInSec: -5 }) : t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })) },
    );
    await client.connect();
    expect(calls).to.equal(2);
    expect(client.connected).to.equal(true);
  });

  it('closes the session when its token expires, says why, and a client without a token callback stays off', async () => {
    const client = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { token: t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { expiresInSec: 2 }) });
    const reasons: Array<{ reason: string; willReconnect: boolean }> = [];
    client.on('disconnected', (d) => reasons.push(d));
    await client.connect();
    await eventually(() => reasons.some((r) => r.reason === 'token-expired'), 'disconnected with token-expired', 5000);
    expect(reasons.find((r) => r.reason === 'token-expired')?.willReconnect).to.equal(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(client.connected, 'no reconnect with the same expired token').to.equal(false);
  });
});
