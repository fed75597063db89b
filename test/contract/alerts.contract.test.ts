/**
 * AlertStore contract (server/src/ports/alerts.ts) over MemoryStorage and MongoStorage on each of the
 * run's Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL), two instances standing for two hub
 * nodes: a timer claimed by one node is not claimed by the other, however they race.
 */
import assert from 'node:assert/strict';
import type { AlertSpecRecord } from '../../server/src/ports/alerts.js';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';

const spec = (over: Partial<AlertSpecRecord> = {}): AlertSpecRecord => ({
  orgId: 'org-a',
  conversationId: 'ward-4',
  seq: 7,
  messageId: 'm-7',
  clientMessageId: 'c-7',
  sentAt: 900,
  senderUserId: 'dr-lee',
  senderDeviceId: 'lee-phone',
  priority: 'urgent',
  ackPolicy: 'any',
  ackFrom: ['dr-patel', 'rn-ortiz'],
  createdAt: 1_000,
  firstDueAt: 2_000,
  ...over,
});
const every = (ms: number) => (a: { repeats: number }) => ({ nextDueAt: 1_000 + (a.repeats + 2) * ms });

for (const impl of storageImpls('alerts')) {
  describe(`AlertStore contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => (h = await impl.open()));
    afterEach(() => h.cleanup());

    it('raises an alert once: a retried send answers the stored one unchanged', async () => {
      const first = await h.a.raiseAlert(spec());
      assert.equal(first.status, 'raised');
      assert.deepEqual(
        { state: first.alert.state, nextDueAt: first.alert.nextDueAt, repeats: first.alert.repeats, acks: first.alert.acks, timeline: first.alert.timeline },
        { state: 'pending', nextDueAt: 2_000, repeats: 0, acks: [], timeline: [{ type: 'raised', at: 1_000 }] },
      );
      const again = await h.b.raiseAlert(spec({ priority: 'emergent', createdAt: 5_000, firstDueAt: 6_000 }));
      assert.equal(again.status, 'existing');
      assert.deepEqual(again.alert, first.alert);
      assert.deepEqual(await h.b.getAlert('org-a', 'ward-4', 7), first.alert);
      assert.equal(await h.b.getAlert('org-b', 'ward-4', 7), undefined, 'another organisation');
    });

    it("policy any: the first required acknowledgement settles it; later ones are recorded; the sender's is not required", async () => {
      await h.a.raiseAlert(spec());
      const acked = await h.b.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'rn-ortiz', deviceId: 'ortiz-tablet', now: 1_500 });
      assert.equal(acked.status, 'acknowledged');
      assert.equal(acked.status === 'acknowledged' && acked.alert.state, 'acknowledged');
      assert.equal(acked.status === 'acknowledged' && acked.alert.nextDueAt, undefined);
      assert.equal((await h.a.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'rn-ortiz', deviceId: 'ortiz-phone', now: 1_600 })).status, 'already');
      assert.equal((await h.a.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'dr-lee', deviceId: 'lee-phone', now: 1_600 })).status, 'not_required');
      assert.equal((await h.a.acknowledgeAlert({ orgId: 'org-b', conversationId: 'ward-4', seq: 7, userId: 'rn-ortiz', deviceId: 'x', now: 1_600 })).status, 'not_found');
      const late = await h.a.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'dr-patel', deviceId: 'patel-phone', now: 1_700 });
      assert.equal(late.status, 'acknowledged');
      const alert = await h.b.getAlert('org-a', 'ward-4', 7);
      assert.deepEqual(alert?.acks, [
        { userId: 'rn-ortiz', deviceId: 'ortiz-tablet', at: 1_500 },
        { userId: 'dr-patel', deviceId: 'patel-phone', at: 1_700 },
      ]);
      assert.deepEqual(alert?.timeline.map((e) => [e.type, e.at, e.userId]), [
        ['raised', 1_000, undefined],
        ['acknowledged', 1_500, 'rn-ortiz'],
        ['acknowledged', 1_700, 'dr-patel'],
      ]);
      assert.deepEqual(await h.a.claimDueAlerts({ now: 10_000, limit: 10, plan: every(1_000) }), [], 'a settled alert does not fire');
    });

    it('policy all: pending until every required user acknowledged', async () => {
      await h.a.raiseAlert(spec({ ackPolicy: 'all' }));
      const one = await h.b.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'dr-patel', deviceId: 'patel-phone', now: 1_500 });
      assert.equal(one.status === 'acknowledged' && one.alert.state, 'pending');
      assert.equal(one.status === 'acknowledged' && one.alert.nextDueAt, 2_000);
      const two = await h.a.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'rn-ortiz', deviceId: 'ortiz-tablet', now: 1_600 });
      assert.equal(two.status === 'acknowledged' && two.alert.state, 'acknowledged');
      assert.deepEqual(await h.b.claimDueAlerts({ now: 10_000, limit: 10, plan: every(1_000) }), []);
    });

    it('a due timer fires as a repeat with the next due time the plan gives, and finally expires', async () => {
      await h.a.raiseAlert(spec());
      assert.deepEqual(await h.b.claimDueAlerts({ now: 1_999, limit: 10, plan: every(1_000) }), [], 'not due yet');
      const [first] = await h.b.claimDueAlerts({ now: 2_010, limit: 10, plan: every(1_000) });
      assert.deepEqual([first?.repeats, first?.nextDueAt, first?.state], [1, 3_000, 'pending']);
      assert.deepEqual(await h.a.claimDueAlerts({ now: 2_020, limit: 10, plan: every(1_000) }), [], 'fired once');
      assert.equal((await h.a.getAlert('org-a', 'ward-4', 7))?.nextDueAt, 3_000);
      const [second] = await h.a.claimDueAlerts({ now: 3_005, limit: 10, plan: every(1_000) });
      assert.deepEqual([second?.repeats, second?.nextDueAt], [2, 4_000]);
      const [last] = await h.b.claimDueAlerts({ now: 4_001, limit: 10, plan: () => ({ expire: true }) });
      assert.deepEqual([last?.state, last?.repeats, last?.nextDueAt], ['expired', 2, undefined]);
      assert.deepEqual((await h.a.getAlert('org-a', 'ward-4', 7))?.timeline.map((e) => [e.type, e.at]), [
        ['raised', 1_000],
        ['repeated', 2_010],
        ['repeated', 3_005],
        ['expired', 4_001],
      ]);
      assert.deepEqual(await h.a.claimDueAlerts({ now: 99_000, limit: 10, plan: every(1_000) }), []);
      // A late answer still counts, and settles it.
      const late = await h.b.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'dr-patel', deviceId: 'patel-phone', now: 5_000 });
      assert.equal(late.status === 'acknowledged' && late.alert.state, 'acknowledged');
    });

    it('two nodes claiming the same due timers at once fire each exactly once', async () => {
      const n = 24;
      for (let i = 1; i <= n; i++) await h.a.raiseAlert(spec({ seq: i, messageId: `m-${i}` }));
      const claims = await Promise.all(
        Array.from({ length: 6 }, (_, k) => (k % 2 ? h.a : h.b).claimDueAlerts({ now: 2_500, limit: n, plan: () => ({ nextDueAt: 50_000 }) })),
      );
      const fired = claims.flat().map((a) => a.seq);
      assert.equal(fired.length, n, `fired ${fired.length} times for ${n} alerts`);
      assert.equal(new Set(fired).size, n);
      for (let i = 1; i <= n; i++) {
        const a = await h.b.getAlert('org-a', 'ward-4', i);
        assert.deepEqual([a?.repeats, a?.nextDueAt], [1, 50_000], `alert ${i}`);
      }
    });

    it('escalation: a tier activates once at its time, releases its wrapped keys only then and only to its users, and adds them to those asked', async () => {
      const tiers = [
        { afterMs: 1_500, userIds: ['dr-backup'] },
        { afterMs: 3_000, userIds: ['dr-chief'] },
      ];
      const held = [
        { tier: 1, recipients: [{ deviceId: 'backup-phone', ciphertext: new Uint8Array([1, 1]) }] },
        { tier: 2, recipients: [{ deviceId: 'chief-phone', ciphertext: new Uint8Array([2, 2]) }] },
      ];
      await h.a.raiseAlert(spec({ tiers, escalationBody: new Uint8Array([7, 7, 7]), firstDueAt: 50_000 }), held);
      const content = (userId: string, deviceId: string) => h.b.escalationContent({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId, deviceId });
      assert.equal(await content('dr-backup', 'backup-phone'), undefined, 'not before its tier activates');
      assert.equal((await h.b.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'dr-backup', deviceId: 'backup-phone', now: 1_200 })).status, 'not_required');
      assert.equal((await h.a.getAlert('org-a', 'ward-4', 7))?.nextDueAt, 2_500, 'the first tier is the next timer');

      const claims = (await Promise.all([h.a, h.b, h.a].map((s) => s.claimDueAlerts({ now: 2_600, limit: 10, plan: every(1_000) })))).flat();
      assert.deepEqual(claims.map((c) => c.fired), [{ type: 'escalated', at: 2_600, tier: 1 }], 'once');
      const opened = await content('dr-backup', 'backup-phone');
      assert.deepEqual([opened?.body, opened?.ciphertext, opened?.spec.clientMessageId], [new Uint8Array([7, 7, 7]), new Uint8Array([1, 1]), 'c-7']);
      assert.deepEqual((await content('dr-backup', 'backup-laptop'))?.ciphertext, undefined, 'a device the sender wrapped nothing for');
      assert.equal(await content('dr-chief', 'chief-phone'), undefined, 'tier 2 still waits');
      assert.equal(await content('dr-patel', 'patel-phone'), undefined, 'members read it in the conversation');
      const now = await h.a.getAlert('org-a', 'ward-4', 7);
      assert.deepEqual(now?.ackFrom, ['dr-patel', 'rn-ortiz', 'dr-backup']);
      assert.deepEqual(now?.tiers?.map((t) => t.activatedAt), [2_600, undefined]);

      const ack = await h.b.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 7, userId: 'dr-backup', deviceId: 'backup-phone', now: 2_700 });
      assert.equal(ack.status === 'acknowledged' && ack.alert.state, 'acknowledged');
      assert.deepEqual(await h.a.claimDueAlerts({ now: 10_000, limit: 10, plan: every(1_000) }), [], 'the acknowledgement stopped the escalation');
      assert.equal(await content('dr-chief', 'chief-phone'), undefined);
    });

    it("keeps each organisation's own alert settings, replaced as a whole", async () => {
      assert.equal(await h.a.getAlertSettings('org-a'), undefined);
      await h.a.setAlertSettings('org-a', { urgentMs: 60_000, emergentMs: 20_000, maxRepeats: undefined }, 1);
      assert.deepEqual(await h.b.getAlertSettings('org-a'), { urgentMs: 60_000, emergentMs: 20_000 });
      await h.b.setAlertSettings('org-a', { maxRepeats: 5 }, 2);
      assert.deepEqual(await h.a.getAlertSettings('org-a'), { maxRepeats: 5 });
      assert.equal(await h.a.getAlertSettings('org-b'), undefined);
    });

    it("lists a user's open alerts (to acknowledge, or sent), newest first, within the organisation", async () => {
      await h.a.raiseAlert(spec({ seq: 1, messageId: 'm-1', createdAt: 1_000 }));
      await h.a.raiseAlert(spec({ seq: 2, messageId: 'm-2', createdAt: 2_000 }));
      await h.a.raiseAlert(spec({ seq: 3, messageId: 'm-3', createdAt: 3_000, ackFrom: ['rn-ortiz'] }));
      await h.a.raiseAlert(spec({ orgId: 'org-b', seq: 4, messageId: 'm-4', createdAt: 4_000 }));
      await h.b.acknowledgeAlert({ orgId: 'org-a', conversationId: 'ward-4', seq: 2, userId: 'rn-ortiz', deviceId: 'ortiz-tablet', now: 2_500 });
      const seqs = async (userId: string, since = 0) => (await h.b.listOpenAlerts({ orgId: 'org-a', userId, since, limit: 10 })).map((a) => a.seq);
      assert.deepEqual(await seqs('dr-patel'), [1]);
      assert.deepEqual(await seqs('rn-ortiz'), [3, 1]);
      assert.deepEqual(await seqs('dr-lee'), [3, 1], 'the sender');
      assert.deepEqual(await seqs('rn-ortiz', 2_000), [3]);
      assert.deepEqual(await seqs('nobody'), []);
    });
  });
}
