/**
 * CredentialStore contract (server/src/ports/credentials.ts) over MemoryStorage and MongoStorage on each
 * of the run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL); two instances stand for two hub nodes.
 */
import assert from 'node:assert/strict';
import { searchWords } from '@curbside/shared';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';

const doc = (serial: string) => ({ signed: `{"serial":"${serial}"}`, signature: 's'.repeat(86) });
const attestation = (serial: string, userId: string, specialty: string, issuedAt: number) => ({ serial, userId, specialty, issuedAt, document: doc(serial) });

for (const impl of storageImpls('credentials')) {
  describe(`CredentialStore contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => (h = await impl.open()));
    afterEach(() => h.cleanup());

    it("keeps each organisation's credentialing key once: the same again is fine, another is a conflict, racing nodes agree", async () => {
      const key = 'k'.repeat(43);
      const outcomes = await Promise.all([h.a.setCredentialKey('org-a', key, 1), h.b.setCredentialKey('org-a', key, 1)]);
      assert.deepEqual(outcomes.sort(), ['same', 'set']);
      assert.equal(await h.b.setCredentialKey('org-a', 'x'.repeat(43), 2), 'conflict');
      assert.equal(await h.a.getCredentialKey('org-a'), key);
      assert.equal(await h.a.getCredentialKey('org-b'), undefined);
    });

    it('stores attestations once per serial, answers them per user newest first with their revocations, within one organisation', async () => {
      assert.equal(await h.a.putAttestation('org-a', attestation('s1', 'dr-okafor', 'Dermatology', 10)), 'stored');
      assert.equal(await h.b.putAttestation('org-a', attestation('s1', 'dr-okafor', 'Dermatology', 10)), 'exists');
      await h.a.putAttestation('org-a', attestation('s2', 'dr-okafor', 'Dermatology', 20));
      await h.a.putAttestation('org-a', attestation('s3', 'dr-lee', 'Emergency medicine', 15));
      await h.a.putAttestation('org-b', attestation('s4', 'dr-okafor', 'Cardiology', 30));
      await h.b.putRevocation('org-a', 's1', doc('r1'));
      await h.b.putRevocation('org-a', 's1', doc('r1-again'));
      assert.equal(await h.a.hasAttestation('org-a', 's2'), true);
      assert.equal(await h.a.hasAttestation('org-b', 's2'), false);
      const mine = await h.b.credentialsOf('org-a', ['dr-okafor']);
      assert.deepEqual(mine.attestations.map((a) => a.signed), [doc('s2').signed, doc('s1').signed]);
      assert.deepEqual(mine.revocations, [doc('r1')]);
      assert.deepEqual((await h.b.credentialsOf('org-b', ['dr-okafor'])).attestations.map((a) => a.signed), [doc('s4').signed]);
      assert.deepEqual(await h.b.credentialsOf('org-c', ['dr-okafor']), { attestations: [], revocations: [] });
    });

    it('searches specialties for every word, case-insensitively, newest first, up to a limit', async () => {
      await h.a.putAttestation('org-a', attestation('s1', 'dr-okafor', 'Paediatric Dermatology', 10));
      await h.a.putAttestation('org-a', attestation('s2', 'dr-ng', 'Dermatology', 20));
      await h.a.putAttestation('org-a', attestation('s3', 'dr-lee', 'Paediatric infectious diseases', 30));
      const serials = async (q: string, limit = 10) => (await h.b.searchCredentials('org-a', searchWords(q), limit)).attestations.map((a) => a.signed);
      assert.deepEqual(await serials('derma'), [doc('s2').signed, doc('s1').signed]);
      assert.deepEqual(await serials('PAEDIATRIC derm'), [doc('s1').signed]);
      assert.deepEqual(await serials('paediatric', 1), [doc('s3').signed]);
      assert.deepEqual(await serials('(.*)'), [], 'words are text, not patterns');
      assert.deepEqual((await h.b.searchCredentials('org-b', searchWords('derma'), 10)).attestations, []);
    });
  });
}
