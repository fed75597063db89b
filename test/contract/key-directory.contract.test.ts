import { expect } from 'chai';
import mongoose from 'mongoose';
import { MemoryStorage, MongoStorage, type Storage } from '@curbside/server';
import { mongoBackends, uniqueName } from '../support/services.js';
import { testDeviceKeys } from '../support/keys.js';

const ORG = 'org-a';
const impls: Array<{ name: string; make: () => Promise<{ storage: Storage; cleanup: () => Promise<void> }> }> = [
  { name: 'MemoryStorage', make: async () => ({ storage: new MemoryStorage(), cleanup: async () => {} }) },
  ...mongoBackends().map((backend) => ({
    name: `MongoStorage on ${backend.name}`,
    make: async () => {
      const dbName = uniqueName('keys');
      const storage = new MongoStorage({ uri: backend.uri(), dbName });
      return {
        storage,
        cleanup: async () => {
          await storage.close();
          const conn = await mongoose.createConnection(backend.uri(), { dbName }).asPromise();
          await conn.dropDatabase();
          await conn.close();
        },
      };
    },
  })),
];

for (const impl of impls) {
  describe(`KeyDirectory contract: ${impl.name}`, function () {
    let s: Storage;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ storage: s, cleanup } = await impl.make());
      await s.init();
      for (const [userId, deviceId] of [['lee', 'lee-1'], ['lee', 'lee-2'], ['patel', 'patel-1']] as const) {
        await s.touchDevice({ orgId: ORG, userId, deviceId, now: 1 });
      }
    });
    afterEach(() => cleanup());

    const publish = (deviceId: string, keys = testDeviceKeys(), otks = 0, firstId = 1) =>
      s.publishKeys({ orgId: ORG, deviceId, identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(otks, firstId), maxStored: 500, now: 2 });

    it('a first publish needs a signed prekey, then records the identity', async () => {
      const k = testDeviceKeys();
      expect(await s.publishKeys({ orgId: ORG, deviceId: 'lee-1', identityKey: k.identityKey, maxStored: 500, now: 2 })).to.deep.equal({ status: 'signed_prekey_required' });
      expect(await s.listDeviceIdentities(ORG, ['lee'])).to.deep.equal([]);
      expect(await publish('lee-1', k, 3)).to.deep.equal({ status: 'ok', firstPublish: true, oneTimePrekeys: 3 });
      const ids = await s.listDeviceIdentities(ORG, ['lee']);
      expect(ids.map((d) => d.deviceId)).to.deep.equal(['lee-1']);
      expect(Buffer.from(ids[0]!.identityKey).equals(Buffer.from(k.identityKey))).to.equal(true);
    });

    it('never replaces an identity key under the same device id', async () => {
      await publish('lee-1');
      expect(await publish('lee-1', testDeviceKeys())).to.deep.equal({ status: 'identity_mismatch' });
    });

    it('later publishes add prekeys and rotate the signed prekey; retried key ids are ignored', async () => {
      const k = testDeviceKeys();
      await publish('lee-1', k, 5, 1);
      const again = await s.publishKeys({ orgId: ORG, deviceId: 'lee-1', identityKey: k.identityKey, oneTimePrekeys: k.oneTimePrekeys(5, 4), maxStored: 500, now: 3 });
      expect(again).to.deep.equal({ status: 'ok', firstPublish: false, oneTimePrekeys: 8 });
      const rotated = k.signedPrekey(2);
      await s.publishKeys({ orgId: ORG, deviceId: 'lee-1', identityKey: k.identityKey, signedPrekey: rotated, maxStored: 500, now: 4 });
      const [bundle] = await s.claimBundles(ORG, ['lee'], ['lee-1']);
      expect(bundle!.signedPrekey.keyId).to.equal(2);
      expect(Buffer.from(bundle!.signedPrekey.signature).equals(Buffer.from(rotated.signature))).to.equal(true);
    });

    it('refuses a batch that would exceed the per-device cap, storing none of it', async () => {
      const k = testDeviceKeys();
      await publish('lee-1', k, 8);
      const res = await s.publishKeys({ orgId: ORG, deviceId: 'lee-1', identityKey: k.identityKey, oneTimePrekeys: k.oneTimePrekeys(5, 100), maxStored: 10, now: 3 });
      expect(res).to.deep.equal({ status: 'too_many_prekeys', stored: 8 });
      expect(await s.countOneTimePrekeys(ORG, 'lee-1')).to.equal(8);
    });

    it('hands out each one-time prekey once, lowest id first, then falls back to the signed prekey alone', async () => {
      await publish('lee-1', testDeviceKeys(), 2, 10);
      const first = await s.claimBundles(ORG, ['lee']);
      expect(first.map((b) => [b.deviceId, b.oneTimePrekey?.keyId])).to.deep.equal([['lee-1', 10]]);
      const second = await s.claimBundles(ORG, ['lee']);
      expect(second[0]!.oneTimePrekey?.keyId).to.equal(11);
      const third = await s.claimBundles(ORG, ['lee']);
      expect(third[0]!.oneTimePrekey).to.equal(undefined);
      expect(third[0]!.signedPrekey.publicKey.byteLength).to.equal(32);
      expect(await s.countOneTimePrekeys(ORG, 'lee-1')).to.equal(0);
    });

    it('concurrent claimers never receive the same one-time prekey', async () => {
      await publish('lee-1', testDeviceKeys(), 20, 1);
      const claims = await Promise.all(Array.from({ length: 30 }, () => s.claimBundles(ORG, ['lee'])));
      const handed = claims.map((c) => c[0]!.oneTimePrekey?.keyId).filter((id): id is number => id !== undefined);
      expect(handed).to.have.length(20);
      expect(new Set(handed).size).to.equal(20);
    });

    it('lists and claims only devices with published keys, of the users asked, in this organisation', async () => {
      await publish('lee-1');
      await publish('patel-1');
      await s.touchDevice({ orgId: 'org-b', userId: 'lee', deviceId: 'lee-b', now: 1 });
      await s.publishKeys({ orgId: 'org-b', deviceId: 'lee-b', identityKey: testDeviceKeys().identityKey, signedPrekey: testDeviceKeys().signedPrekey(), maxStored: 500, now: 2 });
      expect((await s.listDeviceIdentities(ORG, ['lee', 'patel'])).map((d) => `${d.userId}/${d.deviceId}`)).to.deep.equal(['lee/lee-1', 'patel/patel-1']);
      expect((await s.claimBundles(ORG, ['lee'])).map((b) => b.deviceId)).to.deep.equal(['lee-1']);
      expect((await s.claimBundles('org-b', ['lee'])).map((b) => b.deviceId)).to.deep.equal(['lee-b']);
      expect(await s.claimBundles(ORG, ['nobody'])).to.deep.equal([]);
    });
  });
}
