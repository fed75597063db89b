import { expect } from 'chai';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { CurbsideClient, type ChatMessage } from '@curbside/client-sdk';
import { ErrorCode } from '@curbside/shared';
import { HubError, TokenVerifier, loadConfig, type HubConfig } from '@curbside/server';
import { HubHarness, connectOutcome, eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { HUB_AUDIENCE, TestOidcProvider, signingKey, type Clinician } from '../support/oidc.js';

const LEE: Clinician = { clientId: 'app-lee', username: 'dr-lee', hospital: 'org-a', name: 'Dr Ana Lee', roles: ['physician', 'cardiology'] };
const PATEL: Clinician = { clientId: 'app-patel', username: 'dr-patel', hospital: 'org-a', name: 'Dr Raj Patel', roles: ['physician'] };

/**
 * The hub against a real OpenID Connect provider (oidc-provider on a loopback port, started here):
 * discovery, the key set fetched and fetched again on a new `kid`, issuer and audience checks, the
 * claim mapping, and devices bound at registration rather than named by a custom claim.
 */
describe('OpenID Connect identity provider', function () {
  const harness = new HubHarness();
  const providers: TestOidcProvider[] = [];
  afterEach(async () => {
    await harness.cleanup();
    await Promise.all(providers.splice(0).map((p) => p.stop()));
  });

  async function provider(options: Parameters<TestOidcProvider['start']>[0] = {}): Promise<TestOidcProvider> {
    const p = await new TestOidcProvider().start(options);
    providers.push(p);
    p.addClinician(LEE);
    p.addClinician(PATEL);
    return p;
  }

  /** A hub on Redis and the Mongo-wire DB, configured as an operator would: from the environment. */
  async function hubFor(idp: TestOidcProvider, env: Record<string, string> = {}): Promise<TestHub> {
    const fromEnv = loadConfig({
      MONGODB_URI: 'mongodb://unused',
      REDIS_URL: 'redis://unused',
      OIDC_ISSUER: idp.issuer,
      OIDC_AUDIENCE: HUB_AUDIENCE,
      OIDC_USER_CLAIM: 'preferred_username',
      OIDC_ORG_CLAIM: 'hospital',
      OIDC_NAME_CLAIM: 'name',
      OIDC_ROLES_CLAIM: 'roles',
      OIDC_JWKS_COOLDOWN_MS: '1000',
      ...env,
    });
    return harness.start('real', sharedBackend(), (c: HubConfig) => {
      c.jwt = undefined;
      c.oidc = fromEnv.oidc;
    });
  }

  function clientOf(t: TestHub, idp: TestOidcProvider, who: Clinician, deviceId: string, manualLink = false): CurbsideClient {
    return t.client({ userId: who.username, deviceId, manualLink }, { token: () => idp.token(who.clientId), deviceId, userId: who.username });
  }

  /** A provider, a hub trusting it, and Dr Lee and Dr Patel signed in with its tokens; Patel's messages are collected. */
  async function twoClinicians() {
    const idp = await provider();
    const t = await hubFor(idp);
    const lee = clientOf(t, idp, LEE, 'lee-phone');
    const patel = clientOf(t, idp, PATEL, 'patel-laptop');
    const got: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    await Promise.all([lee.connect(), patel.connect()]);
    return { idp, t, lee, patel, got };
  }

  const refusal = (t: TestHub, token: string, auth: { deviceId?: string; userId?: string } = { deviceId: 'any-device' }) =>
    connectOutcome({ url: t.url, token, transports: ['websocket'], e2ee: false, ...auth });

  it('clinicians sign in with provider tokens (claims mapped, device bound from the handshake) and exchange an end-to-end-encrypted message', async () => {
    const { t, lee, got } = await twoClinicians();

    const sockets = [...t.hub.io.of('/').sockets.values()].map((s) => s.data);
    expect(sockets.find((d) => d.deviceId === 'lee-phone')).to.deep.include({ orgId: 'org-a', userId: 'dr-lee', name: 'Dr Ana Lee', roles: ['physician', 'cardiology'] });
    expect(sockets.find((d) => d.deviceId === 'lee-phone')?.tokenId, 'jti flows for revocation').to.be.a('string');
    expect((await t.storage.listDevices('org-a', 'dr-lee')).map((d) => d.deviceId)).to.deep.equal(['lee-phone']);

    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, 'K+ 6.1 on the 14:00 panel');
    await eventually(() => got.length === 1, 'message delivered');
    expect(got[0]!.text).to.equal('K+ 6.1 on the 14:00 panel');
    expect(got[0]!.senderUserId).to.equal('dr-lee');
  });

  it('a key rotation mid-run keeps clients working: new tokens under the new kid are accepted without a hub restart', async () => {
    const { idp, t, lee, patel, got } = await twoClinicians();
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, 'before rotation');
    await eventually(() => got.length === 1, 'first message');
    const fetchesBefore = idp.jwksFetches;

    await idp.rotateKey('key-2');
    const fresh = await idp.token(LEE.clientId);
    expect(decodeProtectedHeader(fresh).kid, 'the provider signs with the new key').to.equal('key-2');

    // Both reconnect with fresh tokens (the token callback), signed by a key the hub has not seen.
    lee.disconnect();
    patel.disconnect();
    await Promise.all([lee.connect(), patel.connect()]);
    expect(idp.jwksFetches, 'the hub fetched the key set again for the new kid').to.be.greaterThan(fetchesBefore);
    await lee.sendText(conv.id, 'after rotation');
    await eventually(() => got.length === 2, 'second message');
    expect(got.map((m) => m.text)).to.deep.equal(['before rotation', 'after rotation']);

    // A third device of a clinician signs in for the first time under the new key as well. (It stays
    // pending: linking it needs a recent sign-in, and client-credentials tokens carry no auth_time.)
    const patelTablet = clientOf(t, idp, PATEL, 'patel-tablet', true);
    await patelTablet.connect();
    expect(patelTablet.connected).to.equal(true);
    expect(patelTablet.devices.linkState).to.equal('pending');
  });

  it('a new kid inside the key-set cooldown is UNAVAILABLE with retryAfterMs (not a sign-out); after a fresh fetch an unknown kid is AUTH_INVALID', async () => {
    const idp = await provider();
    const verifier = (cooldownMs: number) =>
      new TokenVerifier({ issuer: idp.issuer, audience: HUB_AUDIENCE, clockToleranceSec: 0, claims: { userClaim: 'preferred_username', org: { claim: 'hospital' } }, oidc: { jwksCooldownMs: cooldownMs } });
    const patient = verifier(600_000);
    const eager = verifier(0);
    await patient.warmUp();
    await eager.warmUp();
    const fetches = idp.jwksFetches;
    await idp.rotateKey('key-2');
    const token = await idp.token(LEE.clientId);
    const refused = await patient.verify(token, { deviceId: 'lee-phone' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(HubError);
    expect((refused as HubError).code).to.equal(ErrorCode.UNAVAILABLE);
    expect((refused as HubError).details).to.deep.equal({ retryAfterMs: 600_000 });
    expect(idp.jwksFetches, 'no fetch inside the cooldown').to.equal(fetches);
    expect((await eager.verify(token, { deviceId: 'lee-phone' })).userId).to.equal('dr-lee');
    expect(idp.jwksFetches, 'one fetch for the new kid').to.equal(fetches + 1);

    // A kid the provider never published: fetched afresh, still unknown, so the token is refused.
    const stranger = await new TestOidcProvider().start({ keys: [await signingKey('never-published')], issuer: idp.issuer });
    providers.push(stranger);
    stranger.addClinician(LEE);
    const forged = await stranger.token(LEE.clientId);
    const eagerAgain = verifier(0);
    await eagerAgain.warmUp();
    const code = await eagerAgain.verify(forged, { deviceId: 'lee-phone' }).then(
      () => 'accepted',
      (e: unknown) => (e as HubError).code,
    );
    expect(code).to.equal(ErrorCode.AUTH_INVALID);
  });

  it("operators see the provider's keys (source oidc, fingerprints) and 'keys reload' fetches the key set again", async () => {
    const idp = await provider();
    const t = await hubFor(idp);
    expect(await refusal(t, await idp.token(LEE.clientId), { deviceId: 'lee-phone' })).to.equal('connected');
    const before = t.hub.keys.describe();
    expect(before.source).to.equal('oidc');
    expect(before.fingerprints).to.have.length(1);
    await idp.rotateKey('key-2');
    const fetches = idp.jwksFetches;
    const after = await t.hub.keys.reload();
    expect(idp.jwksFetches).to.equal(fetches + 1);
    expect(after.fingerprints).to.have.length(2);
    expect(after.fingerprints).to.include(before.fingerprints[0]);
  });

  it('refuses a token from another issuer, even one signed with the same key, and a token for another audience (AUTH_INVALID), recording nothing', async () => {
    const idp = await provider();
    const t = await hubFor(idp);
    // A second provider: another issuer URL, and the very same signing key (so only the issuer check can refuse it).
    const other = await provider({ keys: idp.signingKeys });
    const otherToken = await other.token(LEE.clientId);
    expect(decodeProtectedHeader(otherToken).kid).to.equal(decodeProtectedHeader(await idp.token(LEE.clientId)).kid);
    expect(await refusal(t, otherToken, { deviceId: 'lee-phone' })).to.equal(ErrorCode.AUTH_INVALID);
    // A second provider with a key of its own.
    const stranger = await provider();
    expect(await refusal(t, await stranger.token(LEE.clientId), { deviceId: 'lee-phone' })).to.equal(ErrorCode.AUTH_INVALID);
    // The right provider, but a token meant for another application.
    expect(await refusal(t, await idp.token(LEE.clientId, 'urn:pharmacy:api'), { deviceId: 'lee-phone' })).to.equal(ErrorCode.AUTH_INVALID);
    expect(await t.storage.getUser('org-a', 'dr-lee')).to.equal(undefined);
    expect(t.hub.io.of('/').sockets.size).to.equal(0);
    // And the right token still works.
    expect(await refusal(t, await idp.token(LEE.clientId), { deviceId: 'lee-phone' })).to.equal('connected');
  });

  it('binds a device to the first user who registers it: another clinician naming it is refused (FORBIDDEN); no device id, or another user id, is refused (AUTH_INVALID)', async () => {
    const idp = await provider();
    const t = await hubFor(idp);
    expect(await refusal(t, await idp.token(LEE.clientId), { deviceId: 'ward-tablet' })).to.equal('connected');
    expect(await refusal(t, await idp.token(PATEL.clientId), { deviceId: 'ward-tablet' })).to.equal(ErrorCode.FORBIDDEN);
    expect(await t.storage.listDevices('org-a', 'dr-patel')).to.deep.equal([]);
    expect(await refusal(t, await idp.token(PATEL.clientId), {})).to.equal(ErrorCode.AUTH_INVALID);
    expect(await refusal(t, await idp.token(PATEL.clientId), { deviceId: 'patel-phone', userId: 'dr-lee' })).to.equal(ErrorCode.AUTH_INVALID);
    expect(await t.storage.listDevices('org-a', 'dr-patel')).to.deep.equal([]);
  });

  it("revocation by the provider token's jti: its socket is closed and the token refused (AUTH_REVOKED); a fresh token works", async () => {
    const idp = await provider();
    const t = await hubFor(idp);
    const token = await idp.token(LEE.clientId);
    const { jti, exp } = decodeJwt(token);
    expect(jti).to.be.a('string');
    const client = new CurbsideClient({ url: t.url, token, transports: ['websocket'], e2ee: false, deviceId: 'lee-phone', userId: 'dr-lee' });
    await client.connect();
    const closed = new Promise<void>((resolve) => client.on('disconnected', () => resolve()));
    await t.hub.security.revokeToken({ orgId: 'org-a', tokenId: jti!, expiresAt: exp! * 1000 });
    await closed;
    client.disconnect();
    expect(await refusal(t, token, { deviceId: 'lee-phone' })).to.equal(ErrorCode.AUTH_REVOKED);
    expect(await refusal(t, await idp.token(LEE.clientId), { deviceId: 'lee-phone' })).to.equal('connected');
  });

  it('one fixed organisation per deployment (OIDC_FIXED_ORG), the user id from `sub`', async () => {
    const idp = await provider();
    const t = await hubFor(idp, { OIDC_USER_CLAIM: '', OIDC_ORG_CLAIM: '', OIDC_FIXED_ORG: 'st-marys' });
    expect(await refusal(t, await idp.token(LEE.clientId), { deviceId: 'lee-phone', userId: 'app-lee' })).to.equal('connected');
    expect((await t.storage.listDevices('st-marys', 'app-lee')).map((d) => d.deviceId)).to.deep.equal(['lee-phone']);
  });

  it('a provider that cannot be reached answers UNAVAILABLE (the client retries), and the hub uses it once it is up', async () => {
    const idp = await provider();
    const port = idp.port;
    const keys = idp.signingKeys;
    const token = await idp.token(LEE.clientId);
    await idp.stop();
    const t = await hubFor(idp);
    const client = new CurbsideClient({ url: t.url, token, transports: ['websocket'], e2ee: false, deviceId: 'lee-phone', userId: 'dr-lee', reconnectDelayMs: 100, reconnectDelayMaxMs: 300 });
    const connecting = client.connect();
    await eventually(() => t.logs.text().includes('"code":"UNAVAILABLE"'), 'handshake refused UNAVAILABLE while the provider is down', 10_000);
    // The provider comes back on the same address with the same key: the next attempt is accepted.
    const back = await new TestOidcProvider().start({ port, keys });
    providers.push(back);
    back.addClinician(LEE);
    await connecting;
    expect(client.connected).to.equal(true);
    client.disconnect();
  });

  it('configuration: OIDC and a static key are exclusive, and bad combinations name the setting', () => {
    const base = { MONGODB_URI: 'mongodb://db/curbside', REDIS_URL: 'redis://127.0.0.1:6379' };
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(problems({ OIDC_ISSUER: 'https://login.hospital.example', OIDC_AUDIENCE: 'curbside', OIDC_FIXED_ORG: 'org-a' })).to.equal('');
    expect(problems({ OIDC_ISSUER: 'https://login.hospital.example', OIDC_AUDIENCE: 'curbside', OIDC_FIXED_ORG: 'org-a', JWT_ISSUER: 'x' })).to.match(/^OIDC_ISSUER: set OIDC_ISSUER .* or JWT_PUBLIC_KEY.*not both/m);
    expect(problems({ OIDC_ISSUER: 'https://login.hospital.example' })).to.match(/^OIDC_AUDIENCE: is required with OIDC_ISSUER/m).and.match(/^OIDC_ORG_CLAIM: \(or OIDC_FIXED_ORG\) is required/m);
    expect(problems({ OIDC_ISSUER: 'https://login.hospital.example', OIDC_AUDIENCE: 'c', OIDC_ORG_CLAIM: 'org', OIDC_FIXED_ORG: 'a' })).to.match(/^OIDC_FIXED_ORG: set OIDC_ORG_CLAIM or OIDC_FIXED_ORG, not both/m);
    expect(problems({ OIDC_ISSUER: 'http://login.hospital.example', OIDC_AUDIENCE: 'c', OIDC_FIXED_ORG: 'a' })).to.match(/^OIDC_ISSUER: must be an https:\/\/ URL/m);
    expect(problems({ OIDC_AUDIENCE: 'c' })).to.match(/^OIDC_AUDIENCE: is set but OIDC_ISSUER is not/m);
    expect(problems({ OIDC_ISSUER: 'https://login.hospital.example', OIDC_AUDIENCE: 'c', OIDC_FIXED_ORG: 'a', OIDC_ROLES_CLAIM: 'roles[0]' })).to.match(/^OIDC_ROLES_CLAIM: must be a claim name/m);
  });
});
