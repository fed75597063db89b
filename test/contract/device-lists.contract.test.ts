/**
 * DeviceListStore contract (server/src/ports/device-lists.ts) over MemoryStorage and MongoStorage on each of
 * the run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL), two instances standing for two hub nodes.
 */
import { expect } from 'chai';
import type { SignedDeviceList } from '@curbside/shared';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';
import { testDeviceKeys } from '../support/keys.js';

const impls = storageImpls('devlists');

const keys = testDeviceKeys();
/** Version `version` naming `deviceIds` (signatures are the hub's business, not storage's). */
function list(version: number, ...deviceIds: string[]): SignedDeviceList {
  return keys.signDeviceList('dr-lee', { version, devices: deviceIds.map((deviceId) => ({ deviceId, identityKey: keys.identityKey })), signerDeviceId: deviceIds[0]! });
}

for (const impl of impls) {
  describe(`DeviceListStore contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => (h = await impl.open()));
    afterEach(() => h.cleanup());

    it('keeps consecutive versions, newest as the head, history oldest first and byte-exact', async () => {
      expect(await h.a.deviceListHeads('org-a', ['dr-lee'])).to.deep.equal([]);
      expect(await h.a.deviceListHistory('org-a', 'dr-lee')).to.equal(undefined);
      const v1 = list(1, 'phone');
      const v2 = list(2, 'phone', 'laptop');
      expect(await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 0, list: v1, maxHistory: 64 })).to.equal('ok');
      expect(await h.b.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 1, list: v2, maxHistory: 64 })).to.equal('ok');
      expect(await h.a.deviceListHeads('org-a', ['dr-lee', 'dr-kim'])).to.deep.equal([{ userId: 'dr-lee', version: 2, deviceIds: ['phone', 'laptop'] }]);
      expect(await h.b.deviceListHistory('org-a', 'dr-lee')).to.deep.equal({ version: 2, lists: [v1, v2] });
    });

    it('refuses a version that is not the next one, and a stale expected version, changing nothing', async () => {
      expect(await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 0, list: list(2, 'phone'), maxHistory: 64 })).to.equal('conflict');
      expect(await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 0, list: list(1, 'phone'), maxHistory: 64 })).to.equal('ok');
      expect(await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 0, list: list(1, 'laptop'), maxHistory: 64 })).to.equal('conflict');
      expect(await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 2, list: list(3, 'phone'), maxHistory: 64 })).to.equal('conflict');
      expect((await h.a.deviceListHistory('org-a', 'dr-lee'))!.lists.map((l) => l.version)).to.deep.equal([1]);
    });

    it('two nodes racing for the same next version: exactly one wins', async () => {
      await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 0, list: list(1, 'phone'), maxHistory: 64 });
      const results = await Promise.all([
        h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 1, list: list(2, 'phone', 'laptop'), maxHistory: 64 }),
        h.b.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: 1, list: list(2, 'phone', 'tablet'), maxHistory: 64 }),
      ]);
      expect([...results].sort()).to.deep.equal(['conflict', 'ok']);
      const head = (await h.a.deviceListHeads('org-a', ['dr-lee']))[0]!;
      expect(head.deviceIds).to.deep.equal(results[0] === 'ok' ? ['phone', 'laptop'] : ['phone', 'tablet']);
    });

    it('keeps only the last maxHistory versions, and lists are per organisation', async () => {
      for (let v = 1; v <= 5; v++) await h.a.appendDeviceList({ orgId: 'org-a', userId: 'dr-lee', expectedVersion: v - 1, list: list(v, 'phone'), maxHistory: 3 });
      expect(await h.a.deviceListHistory('org-a', 'dr-lee')).to.deep.include({ version: 5 });
      expect((await h.a.deviceListHistory('org-a', 'dr-lee'))!.lists.map((l) => l.version)).to.deep.equal([3, 4, 5]);
      expect(await h.a.deviceListHistory('org-b', 'dr-lee')).to.equal(undefined);
      expect(await h.a.deviceListHeads('org-b', ['dr-lee'])).to.deep.equal([]);
    });
  });
}
