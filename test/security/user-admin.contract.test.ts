/**
 * UserAdmin contract (server/src/ports/user-admin.ts) over MemoryStorage and MongoStorage on each of the
 * run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL), two instances standing for two hub nodes.
 */
import assert from 'node:assert/strict';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';

const impls = storageImpls('useradmin');

for (const impl of impls) {
  describe(`UserAdmin contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => {
      h = await impl.open();
      for (const [orgId, userId, deviceId] of [
        ['org-a', 'dr-patel', 'patel-phone'],
        ['org-a', 'dr-lee', 'lee-phone'],
        ['org-a', 'rn-ortiz', 'ortiz-phone'],
        ['org-a', 'dr-lee', 'lee-laptop'],
        ['org-b', 'dr-lee', 'lee-laptop'],
        ['org-a b', 'x', 'x-phone'],
      ] as const) {
        await h.a.touchDevice({ orgId, userId, deviceId, now: 100 });
      }
    });
    afterEach(() => h.cleanup());

    it('lists one organisation’s users by id, page by page', async () => {
      const all = await h.b.listUsers('org-a', { limit: 10 });
      assert.deepEqual(
        all.map((u) => [u.orgId, u.userId, u.createdAt, u.disabledAt]),
        [
          ['org-a', 'dr-lee', 100, undefined],
          ['org-a', 'dr-patel', 100, undefined],
          ['org-a', 'rn-ortiz', 100, undefined],
        ],
      );
      assert.deepEqual((await h.b.listUsers('org-a', { limit: 2 })).map((u) => u.userId), ['dr-lee', 'dr-patel']);
      assert.deepEqual((await h.b.listUsers('org-a', { after: 'dr-patel', limit: 2 })).map((u) => u.userId), ['rn-ortiz']);
      assert.deepEqual((await h.b.listUsers('org-b', { limit: 10 })).map((u) => u.userId), ['dr-lee']);
      assert.deepEqual(await h.b.listUsers('org-c', { limit: 10 }), []);
    });

    it('disables a user once, per organisation, seen by every node; enables again', async () => {
      assert.deepEqual(await h.a.disableUser({ orgId: 'org-a', userId: 'dr-lee', now: 500 }), { status: 'disabled' });
      assert.deepEqual(await h.b.disableUser({ orgId: 'org-a', userId: 'dr-lee', now: 600 }), { status: 'already' });
      assert.equal(await h.b.userDisabledAt('org-a', 'dr-lee'), 500);
      assert.equal(await h.b.userDisabledAt('org-b', 'dr-lee'), undefined, 'the same id in another organisation');
      assert.equal((await h.b.listUsers('org-a', { limit: 10 })).find((u) => u.userId === 'dr-lee')?.disabledAt, 500);
      assert.deepEqual(await h.b.enableUser('org-a', 'dr-lee'), { status: 'enabled' });
      assert.deepEqual(await h.a.enableUser('org-a', 'dr-lee'), { status: 'not_disabled' });
      assert.equal(await h.a.userDisabledAt('org-a', 'dr-lee'), undefined);
    });

    it('a user the organisation does not have is not_found, and nothing is written', async () => {
      assert.deepEqual(await h.a.disableUser({ orgId: 'org-b', userId: 'dr-patel', now: 500 }), { status: 'not_found' });
      assert.equal(await h.b.userDisabledAt('org-b', 'dr-patel'), undefined);
    });
  });
}
