/**
 * DeviceAdmin contract (server/src/ports/device-admin.ts) over MemoryStorage and MongoStorage on each of the
 * run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL), two instances standing for two hub nodes.
 */
import assert from 'node:assert/strict';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';
import { testDeviceKeys } from '../support/keys.js';

const impls = storageImpls('devadmin');

for (const impl of impls) {
  describe(`DeviceAdmin contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => {
      h = await impl.open();
      for (const [userId, deviceId] of [
        ['dr-lee', 'lee-phone'],
        ['dr-lee', 'lee-laptop'],
        ['dr-patel', 'patel-phone'],
      ] as const) {
        await h.a.touchDevice({ orgId: 'org-a', userId, deviceId, now: 100 });
      }
      await h.a.touchDevice({ orgId: 'org-b', userId: 'dr-lee', deviceId: 'lee-laptop', now: 100 });
      for (const [orgId, deviceId] of [
        ['org-a', 'lee-laptop'],
        ['org-b', 'lee-laptop'],
      ] as const) {
        const k = testDeviceKeys();
        const r = await h.a.publishKeys({ orgId, deviceId, identityKey: k.identityKey, signedPrekey: k.signedPrekey(), oneTimePrekeys: k.oneTimePrekeys(5), maxStored: 500, now: 100 });
        assert.equal(r.status, 'ok');
      }
    });
    afterEach(() => h.cleanup());

    it('lists the user’s own devices with key state, ordered by id', async () => {
      const list = await h.b.listOwnDevices('org-a', 'dr-lee');
      assert.deepEqual(
        list.map((d) => [d.deviceId, d.hasKeys, d.revokedAt]),
        [
          ['lee-laptop', true, undefined],
          ['lee-phone', false, undefined],
        ],
      );
    });

    it('revokes: tombstone, keys and prekeys gone, visible from another node; idempotent; scoped to owner and organisation', async () => {
      assert.deepEqual(await h.a.revokeDevice({ orgId: 'org-a', userId: 'dr-patel', deviceId: 'lee-laptop', now: 200 }), { status: 'not_found' });
      assert.deepEqual(await h.a.revokeDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'nope', now: 200 }), { status: 'not_found' });
      assert.deepEqual(await h.a.revokeDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-laptop', now: 200 }), { status: 'revoked' });
      assert.deepEqual(await h.b.revokeDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-laptop', now: 300 }), { status: 'already' });
      assert.equal(await h.b.deviceRevokedAt('org-a', 'lee-laptop'), 200);
      assert.equal(await h.b.deviceRevokedAt('org-a', 'lee-phone'), undefined);
      assert.equal(await h.b.countOneTimePrekeys('org-a', 'lee-laptop'), 0);
      assert.deepEqual(await h.b.listDeviceIdentities('org-a', ['dr-lee']), []);
      assert.deepEqual(await h.b.claimBundles('org-a', ['dr-lee']), []);
      const mine = await h.b.listOwnDevices('org-a', 'dr-lee');
      assert.deepEqual(
        mine.map((d) => [d.deviceId, d.hasKeys, d.revokedAt]),
        [
          ['lee-laptop', false, 200],
          ['lee-phone', false, undefined],
        ],
      );
      // The same device id in another organisation is untouched.
      assert.equal(await h.b.deviceRevokedAt('org-b', 'lee-laptop'), undefined);
      assert.equal(await h.b.countOneTimePrekeys('org-b', 'lee-laptop'), 5);
    });

    it('restores a revoked device (an operator’s decision), from another node, scoped to its organisation; idempotent', async () => {
      await h.a.revokeDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-laptop', now: 200 });
      await h.a.revokeDevice({ orgId: 'org-b', userId: 'dr-lee', deviceId: 'lee-laptop', now: 200 });
      assert.deepEqual(await h.b.restoreDevice('org-a', 'lee-laptop'), { status: 'restored' });
      assert.equal(await h.a.deviceRevokedAt('org-a', 'lee-laptop'), undefined);
      assert.equal(await h.a.deviceRevokedAt('org-b', 'lee-laptop'), 200);
      assert.deepEqual(await h.a.restoreDevice('org-a', 'lee-laptop'), { status: 'not_revoked' });
      assert.deepEqual(await h.a.restoreDevice('org-a', 'lee-phone'), { status: 'not_revoked' });
      // Its keys stay gone: it publishes new ones when it signs in again.
      assert.deepEqual(await h.b.listDeviceIdentities('org-a', ['dr-lee']), []);
    });

    it('keeps a revoked token until its keepUntil, on every node, per organisation; a second revoke only extends it', async () => {
      assert.equal(await h.b.tokenRevoked('org-a', 'jti-1', 100), false);
      await h.a.revokeToken({ orgId: 'org-a', tokenId: 'jti-1', keepUntil: 1_000, now: 100 });
      assert.equal(await h.b.tokenRevoked('org-a', 'jti-1', 100), true);
      assert.equal(await h.b.tokenRevoked('org-a', 'jti-1', 999), true);
      assert.equal(await h.b.tokenRevoked('org-a', 'jti-1', 1_000), false, 'past keepUntil the token is refused for its expiry anyway');
      assert.equal(await h.b.tokenRevoked('org-b', 'jti-1', 100), false, 'another organisation’s token with the same jti');
      assert.equal(await h.b.tokenRevoked('org-a', 'jti-2', 100), false);

      await Promise.all([
        h.a.revokeToken({ orgId: 'org-a', tokenId: 'jti-1', keepUntil: 5_000, now: 200 }),
        h.b.revokeToken({ orgId: 'org-a', tokenId: 'jti-1', keepUntil: 500, now: 200 }),
      ]);
      assert.equal(await h.a.tokenRevoked('org-a', 'jti-1', 4_999), true, 'the later keepUntil wins, whichever node wrote last');

      // Expired revocations are forgotten when another is written; the live one stays.
      await h.a.revokeToken({ orgId: 'org-a', tokenId: 'jti-3', keepUntil: 300, now: 250 });
      await h.b.revokeToken({ orgId: 'org-a', tokenId: 'jti-4', keepUntil: 9_000, now: 400 });
      assert.equal(await h.a.tokenRevoked('org-a', 'jti-3', 0), false, 'forgotten once past its keepUntil');
      assert.equal(await h.a.tokenRevoked('org-a', 'jti-1', 400), true);
    });
  });
}
