/**
 * PseudonymStore contract (server/src/ports/pseudonyms.ts) over MemoryStorage and MongoStorage on each
 * of the run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL); two instances stand for two hub
 * nodes racing for the same cap or the same nullifier.
 */
import assert from 'node:assert/strict';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';
import type { StoredPseudonymRequest } from '../../server/src/ports/pseudonyms.js';

const doc = (label: string) => ({ signed: `{"label":"${label}"}`, signature: 's'.repeat(86) });
const request = (requestId: string, count: number, over: Partial<StoredPseudonymRequest> = {}): StoredPseudonymRequest => ({
  requestId,
  userId: 'dr-okafor',
  deviceId: 'okafor-phone',
  epoch: '2026-12',
  specialty: 'Dermatology',
  count,
  createdAt: 100,
  request: { request: `{"requestId":"${requestId}"}`, signature: 'r'.repeat(86) },
  ...over,
});

for (const impl of storageImpls('pseudonyms')) {
  describe(`PseudonymStore contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => (h = await impl.open()));
    afterEach(() => h.cleanup());

    it('keeps one key per (organisation, epoch, specialty): the same again is fine, another a conflict; revocations once; per organisation', async () => {
      assert.deepEqual((await Promise.all([h.a.putPseudonymKey('org-a', '2026-12', 'Dermatology', doc('k1')), h.b.putPseudonymKey('org-a', '2026-12', 'Dermatology', doc('k1'))])).sort(), ['same', 'stored']);
      assert.equal(await h.b.putPseudonymKey('org-a', '2026-12', 'Dermatology', doc('k2')), 'conflict');
      assert.equal(await h.b.putPseudonymKey('org-a', '2026-12', 'Cardiology', doc('k3')), 'stored');
      assert.equal(await h.b.putPseudonymKey('org-b', '2026-12', 'Dermatology', doc('k4')), 'stored');
      await h.a.putPseudonymKeyRevocation('org-a', '2026-12', 'Dermatology', doc('r1'));
      await h.b.putPseudonymKeyRevocation('org-a', '2026-12', 'Dermatology', doc('r1-again'));
      const keys = await h.b.pseudonymKeys('org-a');
      assert.deepEqual(keys.keys.map((k) => k.signed).sort(), [doc('k1').signed, doc('k3').signed].sort());
      assert.deepEqual(keys.revocations, [doc('r1')]);
      assert.deepEqual(await h.a.pseudonymKeys('org-c'), { keys: [], revocations: [] });
    });

    it('counts requests against the cap atomically across nodes: racing requests never exceed it; an id is stored once', async () => {
      const outcomes = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => (i % 2 ? h.a : h.b).putPseudonymRequest('org-a', request(`q${i}`, 2, { createdAt: 100 + i }), 7)));
      assert.equal(outcomes.filter((o) => o === 'stored').length, 3, 'three requests of 2 fit a cap of 7');
      assert.equal(outcomes.filter((o) => o === 'over-cap').length, 3);
      assert.equal(await h.a.pseudonymRequested('org-a', 'dr-okafor', '2026-12', 'Dermatology'), 6);
      assert.equal(await h.b.putPseudonymRequest('org-a', request('q-one', 1), 7), 'stored', 'one more fits exactly');
      assert.equal(await h.b.putPseudonymRequest('org-a', request('q-one', 1), 100), 'exists');
      assert.equal(await h.a.putPseudonymRequest('org-a', request('q-big', 30), 20), 'over-cap', 'a request larger than the cap');
      assert.equal(await h.a.pseudonymRequested('org-a', 'dr-okafor', '2026-12', 'Dermatology'), 7, 'refused and repeated requests count nothing');
      assert.equal(await h.a.putPseudonymRequest('org-a', request('q-other', 5, { specialty: 'Cardiology' }), 7), 'stored', 'another specialty has its own count');
      assert.equal(await h.a.putPseudonymRequest('org-b', request('q-orgb', 5), 7), 'stored', 'another organisation too');
    });

    it('lists pending requests oldest first, answers each once, and gives a device only its own answers to the requests it names', async () => {
      await h.a.putPseudonymRequest('org-a', request('q2', 1, { createdAt: 200 }), 10);
      await h.a.putPseudonymRequest('org-a', request('q1', 2, { createdAt: 100 }), 10);
      await h.a.putPseudonymRequest('org-a', request('q3', 1, { createdAt: 300, deviceId: 'okafor-laptop' }), 10);
      await h.a.putPseudonymRequest('org-b', request('q4', 1), 10);
      assert.deepEqual((await h.b.pendingPseudonymRequests('org-a', 10)).map((r) => r.requestId), ['q1', 'q2', 'q3']);
      assert.deepEqual(await h.b.pseudonymRequest('org-a', 'q1'), request('q1', 2, { createdAt: 100 }));
      assert.equal(await h.b.pseudonymRequest('org-b', 'q1'), undefined);
      const sigs = ['x'.repeat(342), 'y'.repeat(342)];
      assert.deepEqual((await Promise.all([h.a.answerPseudonymRequest('org-a', 'q1', sigs, 1), h.b.answerPseudonymRequest('org-a', 'q1', ['z'.repeat(342)], 2)])).sort(), ['already', 'answered']);
      assert.equal(await h.a.answerPseudonymRequest('org-a', 'nope', sigs, 1), 'not-found');
      await h.a.answerPseudonymRequest('org-a', 'q3', ['w'.repeat(342)], 3);
      assert.deepEqual((await h.b.pendingPseudonymRequests('org-a', 10)).map((r) => r.requestId), ['q2']);
      const answers = await h.b.pseudonymAnswers('org-a', 'dr-okafor', 'okafor-phone', ['q1', 'q2', 'q3', 'nope']);
      assert.equal(answers.length, 1);
      assert.deepEqual(answers[0]!.requestId, 'q1');
      assert.ok(answers[0]!.blindSignatures.length === 2 || answers[0]!.blindSignatures.length === 1, 'whichever answer won, once');
      assert.deepEqual(await h.b.pseudonymAnswers('org-a', 'dr-okafor', 'okafor-laptop', ['q1', 'q3']), [{ requestId: 'q3', epoch: '2026-12', specialty: 'Dermatology', blindSignatures: ['w'.repeat(342)] }], 'only this device’s answers');
      assert.deepEqual(await h.b.pseudonymAnswers('org-a', 'dr-lee', 'okafor-phone', ['q1']), [], 'only this user’s');
      assert.deepEqual(await h.b.pseudonymAnswers('org-b', 'dr-okafor', 'okafor-phone', ['q1']), []);
      assert.deepEqual(await h.b.pseudonymAnswers('org-a', 'dr-okafor', 'okafor-phone', []), []);
    });

    it('spends a nullifier once per scope, atomically across nodes', async () => {
      const n = 'ab'.repeat(32);
      const outcomes = await Promise.all([h.a.spendPseudonym('org-a', 'pool-1', n, 1), h.b.spendPseudonym('org-a', 'pool-1', n, 1), h.a.spendPseudonym('org-a', 'pool-1', n, 2)]);
      assert.deepEqual(outcomes.sort(), ['ok', 'spent', 'spent']);
      assert.equal(await h.b.spendPseudonym('org-a', 'pool-2', n, 3), 'ok', 'another scope');
      assert.equal(await h.b.spendPseudonym('org-b', 'pool-1', n, 3), 'ok', 'another organisation');
      assert.equal(await h.a.spendPseudonym('org-a', 'pool-2', n, 4), 'spent');
    });
  });
}
