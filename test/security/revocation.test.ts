/**
 * Revocation on real Redis and the Mongo-wire DB, across two hub nodes: per token (jti) and per
 * device. Extends the forged-token suite (test/hub/handshake.test.ts) with revoked credentials.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CloseCode, ErrorCode, type DevicesMineResult, type KeysClaimResult, type DevicesListResult, type Conversation } from '@curbside/shared';
import { rateLimitsOff } from '@curbside/server';
import { sharedBackend, type TestHub } from '../support/hub.js';
import { serviceUrls } from '../support/services.js';
import { testDeviceKeys } from '../support/keys.js';
import { connectRaw, errorCode, handshakeOutcome, sleep, type RawClient, rawHubs } from './support.js';

describe('revocation (real Redis + Mongo-wire DB, two nodes)', function () {
  const { harness, open } = rawHubs();
  const connect = async (url: string, token: string) => {
    const c = await connectRaw(url, token);
    open.push(c);
    return c;
  };
  const who = (userId: string, deviceId: string) => ({ userId, deviceId });

  async function publishKeys(c: RawClient, otks = 5) {
    const k = testDeviceKeys();
    const ack = await c.call('keys:publish', { identityKey: k.identityKey, signedPrekey: k.signedPrekey(), oneTimePrekeys: k.oneTimePrekeys(otks) });
    expect(errorCode(ack)).to.equal('ok');
    return k;
  }

  it('revoking a token (jti) closes its sockets on every node within a second, with session:closing REVOKED, and refuses it at the handshake', async () => {
    const shared = sharedBackend();
    const [n1, n2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const jti = `tok-${randomUUID()}`;
    const token = n1.idp.mint(who('dr-lee', 'lee-phone'), { jti });
    const victim = await connect(n2.url, token);
    const sameDeviceOtherToken = await connect(n2.url, n1.idp.mint(who('dr-lee', 'lee-phone')));

    await n1.hub.security.revokeToken({ orgId: 'org-a', tokenId: jti, expiresAt: Date.now() + 600_000 });
    // The victim sends nothing, so no per-event re-check can find the revocation: only the push across
    // nodes can drop it (the bound is for a hung test, not a measurement).
    const reason = await Promise.race([victim.disconnected, sleep(15_000).then(() => 'still connected')]);
    expect(reason, 'dropped across nodes by the push').to.equal('io server disconnect');
    expect(victim.closings.map((c) => c.code)).to.deep.equal([CloseCode.REVOKED]);
    await sleep(100);
    expect(sameDeviceOtherToken.socket.connected, 'other tokens of the device are unaffected').to.equal(true);

    expect(await handshakeOutcome(n1.url, token)).to.equal(ErrorCode.AUTH_REVOKED);
    expect(await handshakeOutcome(n2.url, token)).to.equal(ErrorCode.AUTH_REVOKED);
    expect(await handshakeOutcome(n2.url, n1.idp.mint(who('dr-lee', 'lee-phone')))).to.equal('connected');
  });

  it('nothing revoked comes back when Redis loses its entries: revoked tokens and devices are kept in the database too', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const jti = `tok-${randomUUID()}`;
    const token = t.idp.mint(who('dr-lee', 'lee-phone'), { jti });
    await t.hub.security.revokeToken({ orgId: 'org-a', tokenId: jti, expiresAt: Date.now() + 600_000 });
    const phone = await connect(t.url, t.idp.mint(who('dr-patel', 'patel-phone')));
    await publishKeys(phone);
    const laptop = await connect(t.url, t.idp.mint(who('dr-patel', 'patel-laptop')));
    expect(await laptop.call('device:revoke', { deviceId: 'patel-phone' })).to.deep.equal({ ok: true, data: { deviceId: 'patel-phone', revoked: true } });

    // What a Redis restart without persistence, a FLUSHALL or a fresh instance does to this hub's entries.
    const redis = new Redis(serviceUrls().redisUrl);
    try {
      const keys = await redis.keys(`${shared.keyPrefix}revoked:*`);
      expect(keys.length, 'the revocations were in Redis').to.equal(2);
      await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    expect(await handshakeOutcome(t.url, token), 'the revoked token').to.equal(ErrorCode.AUTH_REVOKED);
    expect(await handshakeOutcome(t.url, t.idp.mint(who('dr-patel', 'patel-phone'))), 'the revoked device').to.equal(ErrorCode.AUTH_REVOKED);
    expect(await handshakeOutcome(t.url, t.idp.mint(who('dr-lee', 'lee-phone'))), 'another token of the same device').to.equal('connected');
  });

  it('a live socket whose revocation broadcast was missed is cut off at its next event after the re-check interval', async () => {
    const t = await harness.start('real', sharedBackend(), (c) => {
      c.security = { corsOrigins: [], rateLimits: rateLimitsOff(), revocationRecheckMs: 100 };
    });
    const jti = `tok-${randomUUID()}`;
    const c = await connect(t.url, t.idp.mint(who('dr-lee', 'lee-phone'), { jti }));
    expect(errorCode(await c.call('conversation:list', {}))).to.equal('ok');
    // Only the list: no broadcast reaches the socket.
    await t.hub.security.revocations.revokeToken('org-a', jti, Date.now() + 60_000);
    await sleep(150);
    expect(errorCode(await c.call('conversation:list', {}))).to.equal(ErrorCode.AUTH_REVOKED);
    expect(await c.disconnected).to.equal('io server disconnect');
    expect(c.closings.map((x) => x.code)).to.deep.equal([CloseCode.REVOKED]);
  });

  describe('device:revoke', function () {
    let n1: TestHub;
    let n2: TestHub;
    let shared: ReturnType<typeof sharedBackend>;
    beforeEach(async () => {
      shared = sharedBackend();
      [n1, n2] = [await harness.start('real', shared), await harness.start('real', shared)];
    });

    it('drops the lost device on every node, deletes its keys, tells its contacts, and refuses it from then on', async () => {
      const leePhone = await connect(n1.url, n1.idp.mint(who('dr-lee', 'lee-phone')));
      const leeLaptop = await connect(n2.url, n1.idp.mint(who('dr-lee', 'lost-laptop')));
      const patel = await connect(n1.url, n1.idp.mint(who('dr-patel', 'patel-phone')));
      const kim = await connect(n2.url, n1.idp.mint(who('dr-kim', 'kim-phone')));
      await publishKeys(leePhone);
      await publishKeys(leeLaptop);
      await publishKeys(patel);
      const conv = await leePhone.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' });
      expect(conv.ok).to.equal(true);
      const laptopSeenBefore = (await n1.storage.listDevices('org-a', 'dr-lee')).find((d) => d.deviceId === 'lost-laptop')!.lastSeenAt;

      const ack = await leePhone.call('device:revoke', { deviceId: 'lost-laptop' });
      expect(ack).to.deep.equal({ ok: true, data: { deviceId: 'lost-laptop', revoked: true } });
      // The laptop is idle: only the revocation's push can close it.
      expect(await Promise.race([leeLaptop.disconnected, sleep(15_000).then(() => 'still connected')])).to.equal('io server disconnect');
      expect(leeLaptop.closings.map((c) => c.code)).to.deep.equal([CloseCode.REVOKED]);

      // Contacts (and the user's other devices) hear of it; strangers do not.
      await sleep(100);
      const removed = (c: RawClient) => c.pushes.filter((p) => p.event === 'device:removed').map((p) => p.payload);
      expect(removed(patel)).to.deep.equal([{ userId: 'dr-lee', deviceId: 'lost-laptop' }]);
      expect(removed(leePhone)).to.deep.equal([{ userId: 'dr-lee', deviceId: 'lost-laptop' }]);
      expect(removed(kim)).to.deep.equal([]);

      // Nobody can start a new session with it.
      const claim = await patel.call<KeysClaimResult>('keys:claim', { userIds: ['dr-lee'] });
      expect(claim.ok && claim.data.bundles.map((b) => b.deviceId)).to.deep.equal(['lee-phone']);
      const list = await patel.call<DevicesListResult>('devices:list', { userIds: ['dr-lee'] });
      expect(list.ok && list.data.devices.map((d) => d.deviceId)).to.deep.equal(['lee-phone']);
      expect(await n2.storage.countOneTimePrekeys('org-a', 'lost-laptop')).to.equal(0);

      // It can no longer authenticate, on either node, even with a fresh token, and nothing is written.
      expect(await handshakeOutcome(n1.url, n1.idp.mint(who('dr-lee', 'lost-laptop')))).to.equal(ErrorCode.AUTH_REVOKED);
      expect(await handshakeOutcome(n2.url, n1.idp.mint(who('dr-lee', 'lost-laptop')))).to.equal(ErrorCode.AUTH_REVOKED);
      expect((await n1.storage.listDevices('org-a', 'dr-lee')).find((d) => d.deviceId === 'lost-laptop')!.lastSeenAt).to.equal(laptopSeenBefore);

      // The database tombstone holds even if Redis loses the revocation list.
      const redis = new Redis(serviceUrls().redisUrl);
      const keys = await redis.keys(`${shared.keyPrefix}revoked:*`);
      expect(keys.length).to.be.greaterThan(0);
      await redis.del(...keys);
      redis.disconnect();
      expect(await handshakeOutcome(n2.url, n1.idp.mint(who('dr-lee', 'lost-laptop')))).to.equal(ErrorCode.AUTH_REVOKED);

      // The sender's device list no longer needs it: an encrypted send to Patel alone is accepted.
      const send = await leePhone.call('envelope:send', {
        conversationId: conv.ok && conv.data.id,
        clientMessageId: 'after-revoke',
        recipients: [{ deviceId: 'patel-phone', ciphertext: new Uint8Array([1, 2, 3]) }],
      });
      expect(errorCode(send)).to.equal('ok');

      const mine = await leePhone.call<DevicesMineResult>('devices:mine', {});
      expect(mine.ok).to.equal(true);
      const devices = mine.ok ? mine.data.devices : [];
      expect(devices.map((d) => [d.deviceId, d.current, d.hasKeys, d.revokedAt !== undefined])).to.deep.equal([
        ['lee-phone', true, true, false],
        ['lost-laptop', false, false, true],
      ]);

      expect(await leePhone.call('device:revoke', { deviceId: 'lost-laptop' })).to.deep.equal({ ok: true, data: { deviceId: 'lost-laptop', revoked: false } });
    });

    it("refuses to revoke another clinician's device or one that does not exist (NOT_FOUND), and leaves it connected", async () => {
      const leePhone = await connect(n1.url, n1.idp.mint(who('dr-lee', 'lee-phone')));
      const mallory = await connect(n2.url, n1.idp.mint(who('dr-mallory', 'mal-phone')));
      expect(errorCode(await mallory.call('device:revoke', { deviceId: 'lee-phone' }))).to.equal(ErrorCode.NOT_FOUND);
      expect(errorCode(await mallory.call('device:revoke', { deviceId: 'no-such-device' }))).to.equal(ErrorCode.NOT_FOUND);
      await sleep(100);
      expect(leePhone.socket.connected).to.equal(true);
      expect(await n1.storage.deviceRevokedAt('org-a', 'lee-phone')).to.equal(undefined);
    });

    it('a device may revoke itself (sign out and wipe): it is closed and refused afterwards', async () => {
      const phone = await connect(n1.url, n1.idp.mint(who('dr-lee', 'lee-phone')));
      const ack = await phone.call('device:revoke', { deviceId: 'lee-phone' });
      expect(errorCode(ack)).to.equal('ok');
      expect(await phone.disconnected).to.equal('io server disconnect');
      expect(await handshakeOutcome(n2.url, n1.idp.mint(who('dr-lee', 'lee-phone')))).to.equal(ErrorCode.AUTH_REVOKED);
    });
  });
});
