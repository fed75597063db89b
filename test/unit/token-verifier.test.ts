import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { ErrorCode } from '@curbside/shared';
import { HubError, TokenVerifier, type ClaimMapping } from '@curbside/server';

/** The claim mapping and device binding rules of the one verifier, on a static key (no network). */
describe('token verifier: claim mapping', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const base = { publicKey, algorithm: 'ES256' as const, issuer: 'https://idp.example', audience: 'curbside', clockToleranceSec: 0 };
  const keycloak: ClaimMapping = { userClaim: 'preferred_username', org: { fixed: 'st-marys' }, nameClaim: 'name', rolesClaim: 'realm_access.roles' };

  async function sign(claims: JWTPayload, ttlSec = 300): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(base.issuer).setAudience(base.audience).setIssuedAt(now).setExpirationTime(now + ttlSec).sign(privateKey);
  }

  async function codeOf(p: Promise<unknown>): Promise<string> {
    try {
      await p;
      return 'ok';
    } catch (e) {
      expect(e).to.be.instanceOf(HubError);
      return (e as HubError).code;
    }
  }

  it('maps user, fixed organisation, name and nested roles; keeps jti and auth_time; the device comes from the handshake', async () => {
    const v = new TokenVerifier({ ...base, claims: keycloak });
    const authTime = Math.floor(Date.now() / 1000) - 60;
    const token = await sign({ sub: 'f81d4fae', preferred_username: 'dr-lee', name: 'Dr Ana Lee', realm_access: { roles: ['physician', 'icu', 42] }, jti: 'tok-1', auth_time: authTime });
    const who = await v.verify(token, { deviceId: 'lee-phone' });
    expect(who).to.deep.include({ orgId: 'st-marys', userId: 'dr-lee', deviceId: 'lee-phone', tokenId: 'tok-1', authTime: authTime * 1000, name: 'Dr Ana Lee' });
    expect(who.roles).to.deep.equal(['physician', 'icu']);
  });

  it('reads roles given as one space-separated string, and an organisation claim', async () => {
    const v = new TokenVerifier({ ...base, claims: { userClaim: 'sub', org: { claim: 'hospital' }, rolesClaim: 'scope' } });
    const who = await v.verify(await sign({ sub: 'dr-lee', hospital: 'org-a', scope: 'chat physician' }), { deviceId: 'd1' });
    expect(who).to.deep.include({ orgId: 'org-a', userId: 'dr-lee' });
    expect(who.roles).to.deep.equal(['chat', 'physician']);
  });

  it('refuses (AUTH_INVALID) a missing or malformed user or organisation, a missing device id, and a handshake that contradicts the token', async () => {
    const v = new TokenVerifier({ ...base, claims: { userClaim: 'preferred_username', org: { claim: 'hospital' } } });
    expect(await codeOf(v.verify(await sign({ hospital: 'org-a' }), { deviceId: 'd1' }))).to.equal(ErrorCode.AUTH_INVALID);
    expect(await codeOf(v.verify(await sign({ preferred_username: 'dr lee', hospital: 'org-a' }), { deviceId: 'd1' })), 'not an id').to.equal(ErrorCode.AUTH_INVALID);
    expect(await codeOf(v.verify(await sign({ preferred_username: 'dr-lee', hospital: ['org-a'] }), { deviceId: 'd1' }))).to.equal(ErrorCode.AUTH_INVALID);
    expect(await codeOf(v.verify(await sign({ preferred_username: 'dr-lee', hospital: 'org-a' })))).to.equal(ErrorCode.AUTH_INVALID);
    expect(await codeOf(v.verify(await sign({ preferred_username: 'dr-lee', hospital: 'org-a' }), { deviceId: 'd1', userId: 'dr-patel' }))).to.equal(ErrorCode.AUTH_INVALID);
    const mapped = new TokenVerifier({ ...base, claims: { userClaim: 'constructor', org: { fixed: 'a' } } });
    expect(await codeOf(mapped.verify(await sign({ sub: 'x' }), { deviceId: 'd1' })), 'an inherited property is no claim').to.equal(ErrorCode.AUTH_INVALID);
  });

  it('static tokens: the dev claim names the device; a handshake naming another device is refused', async () => {
    const v = new TokenVerifier(base);
    const token = await sign({ sub: 'dr-lee', org: 'org-a', dev: 'lee-phone' });
    expect((await v.verify(token)).deviceId).to.equal('lee-phone');
    expect((await v.verify(token, { deviceId: 'lee-phone' })).deviceId).to.equal('lee-phone');
    expect(await codeOf(v.verify(token, { deviceId: 'lee-laptop' }))).to.equal(ErrorCode.AUTH_INVALID);
    expect(await codeOf(v.verify(await sign({ sub: 'dr-lee', org: 'org-a', dev: 7 }), { deviceId: 'x' })), 'a dev claim that is no id').to.equal(ErrorCode.AUTH_INVALID);
  });

  it('refuses a token that lives longer than the hub accepts, and says expired for an expired one', async () => {
    const v = new TokenVerifier({ ...base, maxLifetimeSec: 600 });
    expect(await codeOf(v.verify(await sign({ sub: 'dr-lee', org: 'org-a', dev: 'd' }, 3600)))).to.equal(ErrorCode.AUTH_INVALID);
    expect(await codeOf(v.verify(await sign({ sub: 'dr-lee', org: 'org-a', dev: 'd' }, -10)))).to.equal(ErrorCode.AUTH_EXPIRED);
  });
});
