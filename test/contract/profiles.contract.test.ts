/**
 * ProfileDirectory contract (server/src/ports/profiles.ts) over MemoryStorage and MongoStorage on each
 * of the run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL), two instances standing for two
 * hub nodes: what one node records, the other answers.
 */
import assert from 'node:assert/strict';
import { searchWords } from '@curbside/shared';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';

for (const impl of storageImpls('profiles')) {
  describe(`ProfileDirectory contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => {
      h = await impl.open();
      await h.a.recordTokenProfile({ orgId: 'org-a', userId: 'dr-patel', profile: { displayName: 'Anita Patel', role: 'Cardiology registrar', department: 'Cardiology' }, now: 1 });
      await h.a.recordTokenProfile({ orgId: 'org-a', userId: 'rn-ortiz', profile: { displayName: 'Luis Ortiz', role: 'Charge nurse', department: 'Ward 4' }, now: 1 });
      await h.a.recordTokenProfile({ orgId: 'org-a', userId: 'dr-lee', profile: { displayName: 'Min Lee' }, now: 1 });
      await h.a.recordTokenProfile({ orgId: 'org-b', userId: 'dr-patel', profile: { displayName: 'Other Org Patel', role: 'Cardiology consultant' }, now: 1 });
    });
    afterEach(() => h.cleanup());

    it('looks profiles up by user id within one organisation, in the order asked; unknown users are left out', async () => {
      assert.deepEqual(await h.b.lookupProfiles('org-a', ['rn-ortiz', 'nobody', 'dr-lee', 'rn-ortiz']), [
        { userId: 'rn-ortiz', displayName: 'Luis Ortiz', role: 'Charge nurse', department: 'Ward 4' },
        { userId: 'dr-lee', displayName: 'Min Lee' },
      ]);
      assert.deepEqual(await h.b.lookupProfiles('org-b', ['dr-patel', 'rn-ortiz']), [{ userId: 'dr-patel', displayName: 'Other Org Patel', role: 'Cardiology consultant' }]);
      assert.deepEqual(await h.b.lookupProfiles('org-c', ['dr-patel']), []);
    });

    it('a new token profile replaces the old one as a whole', async () => {
      await h.b.recordTokenProfile({ orgId: 'org-a', userId: 'dr-patel', profile: { displayName: 'Anita Patel', role: 'Cardiology consultant' }, now: 2 });
      assert.deepEqual(await h.a.lookupProfiles('org-a', ['dr-patel']), [{ userId: 'dr-patel', displayName: 'Anita Patel', role: 'Cardiology consultant' }]);
    });

    it("an operator's fields win over the token's, field by field, and clearing one shows the token's again", async () => {
      const set = await h.a.setAdminProfile({ orgId: 'org-a', userId: 'dr-patel', change: { role: 'Interventional cardiology fellow' }, now: 3 });
      assert.deepEqual(set, { userId: 'dr-patel', displayName: 'Anita Patel', role: 'Interventional cardiology fellow', department: 'Cardiology' });
      // A later sign-in restates the token's role: the operator's still wins.
      await h.b.recordTokenProfile({ orgId: 'org-a', userId: 'dr-patel', profile: { displayName: 'Anita Patel', role: 'Cardiology registrar', department: 'Cardiology' }, now: 4 });
      assert.equal((await h.b.lookupProfiles('org-a', ['dr-patel']))[0]?.role, 'Interventional cardiology fellow');
      assert.deepEqual(await h.b.setAdminProfile({ orgId: 'org-a', userId: 'dr-patel', change: { role: null }, now: 5 }), {
        userId: 'dr-patel',
        displayName: 'Anita Patel',
        role: 'Cardiology registrar',
        department: 'Cardiology',
      });
      assert.deepEqual((await h.a.lookupProfiles('org-b', ['dr-patel']))[0]?.role, 'Cardiology consultant', 'the same user id in another organisation is untouched');
    });

    it('an operator may give a profile to a user not seen yet', async () => {
      await h.a.setAdminProfile({ orgId: 'org-a', userId: 'dr-new', change: { displayName: 'Sam New', department: 'ED' }, now: 3 });
      assert.deepEqual(await h.b.lookupProfiles('org-a', ['dr-new']), [{ userId: 'dr-new', displayName: 'Sam New', department: 'ED' }]);
    });

    it('searches name, role, department and id for every word, case-insensitively, within one organisation', async () => {
      const ids = async (orgId: string, q: string, limit = 20) => (await h.b.searchProfiles(orgId, searchWords(q), limit)).map((p) => p.userId);
      assert.deepEqual(await ids('org-a', 'cardio'), ['dr-patel']);
      assert.deepEqual(await ids('org-a', 'WARD 4'), ['rn-ortiz']);
      assert.deepEqual(await ids('org-a', 'dr'), ['dr-lee', 'dr-patel']);
      assert.deepEqual(await ids('org-a', 'dr', 1), ['dr-lee']);
      assert.deepEqual(await ids('org-a', 'patel registrar'), ['dr-patel']);
      assert.deepEqual(await ids('org-a', 'patel nurse'), []);
      assert.deepEqual(await ids('org-b', 'patel'), ['dr-patel']);
      assert.deepEqual(await ids('org-b', 'ortiz'), []);
    });

    it('search words are text, not patterns', async () => {
      await h.a.recordTokenProfile({ orgId: 'org-a', userId: 'dr-x', profile: { displayName: 'A.B (locum)' }, now: 1 });
      const ids = async (q: string) => (await h.b.searchProfiles('org-a', searchWords(q), 20)).map((p) => p.userId);
      assert.deepEqual(await ids('a.b'), ['dr-x']);
      assert.deepEqual(await ids('(locum)'), ['dr-x']);
      assert.deepEqual(await ids('a.*'), []);
      assert.deepEqual(await ids('.'), ['dr-x']);
    });

    it("a search does not match a token's value that an operator's value hides", async () => {
      await h.a.setAdminProfile({ orgId: 'org-a', userId: 'rn-ortiz', change: { department: 'ICU' }, now: 3 });
      assert.deepEqual((await h.b.searchProfiles('org-a', searchWords('ward'), 20)).map((p) => p.userId), []);
      assert.deepEqual((await h.b.searchProfiles('org-a', searchWords('icu'), 20)).map((p) => p.userId), ['rn-ortiz']);
    });
  });
}
