/**
 * Regression (security round 2, finding 3, siblings): one device could revoke all its siblings with no
 * re-authentication, and permanently: a stolen phone locked out the laptop. Revoking another of one's
 * devices now needs a recent sign-in (`auth_time`), and an operator can restore a revoked device.
 * On Redis + the Mongo-wire DB.
 */
import { expect } from 'chai';
import { ErrorCode } from '@curbside/shared';
import { sharedBackend, type TestHub } from '../support/hub.js';
import { connectRaw, errorCode, handshakeOutcome, sleep, rawHubs } from '../security/support.js';

describe('regression: a stolen phone cannot lock out its owner’s other devices (Redis + Mongo-wire DB)', function () {
  this.timeout(30_000);
  const { harness, open } = rawHubs();
  const ADMIN = 'operator-token-for-device-restore-0123456789';
  let t: TestHub;
  beforeEach(async () => {
    t = await harness.start('real', sharedBackend(), (c) => (c.adminToken = ADMIN));
  });
  const device = async (deviceId: string, authAgeSec: number | null = 0) => {
    const c = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId }, { authAgeSec }));
    open.push(c);
    return c;
  };

  it('revoking a sibling needs a sign-in within RECENT_AUTH_SEC; an old or missing auth_time is REAUTHENTICATION_REQUIRED and changes nothing', async () => {
    const laptop = await device('lee-laptop');
    for (const age of [3600, null]) {
      const thief = await device('lee-phone', age);
      const refused = await thief.call('device:revoke', { deviceId: 'lee-laptop' });
      expect(errorCode(refused), `auth_time ${age === null ? 'absent' : `${age} s old`}`).to.equal(ErrorCode.REAUTHENTICATION_REQUIRED);
      expect(!refused.ok && refused.error.details?.maxAgeSec).to.equal(600);
      thief.close();
    }
    await sleep(100);
    expect(laptop.socket.connected).to.equal(true);
    expect(await t.storage.deviceRevokedAt('org-a', 'lee-laptop')).to.equal(undefined);
    // A device may always revoke itself; a fresh sign-in may revoke a sibling.
    const old = await device('lee-tablet', 3600);
    expect(errorCode(await old.call('device:revoke', { deviceId: 'lee-tablet' }))).to.equal('ok');
    const fresh = await device('lee-phone', 5);
    expect(errorCode(await fresh.call('device:revoke', { deviceId: 'lee-laptop' }))).to.equal('ok');
    expect(await Promise.race([laptop.disconnected, sleep(3000).then(() => 'still connected')])).to.equal('io server disconnect');
  });

  it('an operator restores a revoked device through the admin API; it signs in again', async () => {
    const phone = await device('lee-phone');
    await device('lee-laptop');
    expect(errorCode(await phone.call('device:revoke', { deviceId: 'lee-laptop' }))).to.equal('ok');
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-laptop' }))).to.equal(ErrorCode.AUTH_REVOKED);
    const restore = (authorization: string | undefined, body: unknown) =>
      fetch(`${t.url}/admin/devices/restore`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body) });
    expect((await restore(undefined, { orgId: 'org-a', deviceId: 'lee-laptop' })).status).to.equal(401);
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-laptop' })), 'nothing restored yet').to.equal(ErrorCode.AUTH_REVOKED);
    const ok = await restore(`Bearer ${ADMIN}`, { orgId: 'org-a', deviceId: 'lee-laptop', by: 'helpdesk ticket 88' });
    expect(await ok.json()).to.deep.equal({ restored: true });
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-laptop' }))).to.equal('connected');
    expect(await (await restore(`Bearer ${ADMIN}`, { orgId: 'org-a', deviceId: 'lee-laptop' })).json(), 'twice').to.deep.equal({ restored: false });
    t.hub.security.flushAudit();
    await t.hub.audit.flush();
    const entries = (await Promise.all((await t.hub.audit.chains()).map((c) => t.hub.audit.entries(c, -1, 1000)))).flat();
    expect(entries.filter((e) => e.action === 'admin:restore-device').map((e) => [e.targetDeviceId, e.userId])).to.deep.include(['lee-laptop', 'helpdesk ticket 88']);
  });
});
