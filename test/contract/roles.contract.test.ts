/**
 * RoleStore contract (server/src/ports/roles.ts), role threads (`createConversation` with `roleId`) and
 * hand-offs of alerts (`handOffAlert`), over MemoryStorage and MongoStorage on each of the run's
 * Mongo-wire DBs (FerretDB on SQLite and on PostgreSQL); two instances stand for two hub nodes.
 */
import assert from 'node:assert/strict';
import type { TeamState } from '@curbside/shared';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';

const role = (teamId: string, name: string, members: string[], over: Partial<TeamState> = {}): TeamState => ({
  teamId,
  index: 0,
  head: 'f'.repeat(64),
  members: Object.fromEntries(members.map((u, i) => [u, i === 0 ? 'owner' : 'member'])),
  oncall: { name, shifts: [] },
  ...over,
});

for (const impl of storageImpls('roles')) {
  describe(`RoleStore contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => (h = await impl.open()));
    afterEach(() => h.cleanup());

    it('lists the roles of one organisation with their hand-off and shifts; plain teams are not roles', async () => {
      const shifts = [{ userIds: ['dr-bell'], from: 100, to: 200 }];
      await h.a.createTeam({ orgId: 'org-a', state: role('cardio', 'Cardiology on-call', ['dr-chief', 'dr-bell'], { oncall: { name: 'Cardiology on-call', hold: { userId: 'dr-bell', at: 50 }, shifts } }), createdBy: 'dr-chief', now: 1 });
      await h.a.createTeam({ orgId: 'org-a', state: { teamId: 'plain', index: 0, head: 'e'.repeat(64), members: { 'dr-chief': 'owner' } }, createdBy: 'dr-chief', now: 1 });
      await h.a.createTeam({ orgId: 'org-b', state: role('rrt', 'Rapid response', ['dr-x']), createdBy: 'dr-x', now: 1 });
      const roles = await h.b.listRoles('org-a');
      assert.deepEqual(roles.map((r) => [r.teamId, r.oncall]), [['cardio', { name: 'Cardiology on-call', hold: { userId: 'dr-bell', at: 50 }, shifts }]]);
      assert.deepEqual((await h.b.listRoles('org-b')).map((r) => r.teamId), ['rrt']);
      assert.deepEqual(await h.b.listRoles('org-c'), []);
    });

    it('lists the consult pools of one organisation with their topic and hidden cases; roles and plain teams are not pools', async () => {
      const pool = (teamId: string, topic: string, hidden: string[]): TeamState => ({ teamId, index: 3, head: 'd'.repeat(64), members: { 'dr-okafor': 'owner', 'dr-lee': 'member' }, pool: { topic, hidden } });
      await h.a.createTeam({ orgId: 'org-a', state: pool('derm', 'Dermatology curbside', ['case-1']), createdBy: 'dr-okafor', now: 1 });
      await h.a.createTeam({ orgId: 'org-a', state: role('cardio', 'Cardiology on-call', ['dr-chief']), createdBy: 'dr-chief', now: 1 });
      await h.a.createTeam({ orgId: 'org-b', state: pool('pid', 'Paediatric ID', []), createdBy: 'dr-x', now: 1 });
      const pools = await h.b.listPools('org-a');
      assert.deepEqual(pools.map((p) => [p.teamId, p.pool, p.members]), [['derm', { topic: 'Dermatology curbside', hidden: ['case-1'] }, { 'dr-lee': 'member', 'dr-okafor': 'owner' }]]);
      assert.deepEqual((await h.b.listRoles('org-a')).map((r) => r.teamId), ['cardio']);
      assert.deepEqual((await h.b.listPools('org-b')).map((p) => p.teamId), ['pid']);
      // The conversation says it is a pool (what a sealed post checks); a role's team does not.
      assert.deepEqual([(await h.b.getConversation('org-a', 'derm'))?.pool, (await h.b.getConversation('org-a', 'cardio'))?.pool, await h.b.getConversation('org-b', 'derm')], [true, undefined, undefined]);
      // A hide advances the stored state like any statement; every node reads it.
      const before = (await h.b.getTeamState('org-a', 'derm'))!;
      assert.equal(await h.a.advanceTeam('org-a', 'derm', before.index, { ...before, index: 4, pool: { topic: 'Dermatology curbside', hidden: ['case-1', 'case-2'] } }), 'ok');
      assert.deepEqual((await h.b.getTeamState('org-a', 'derm'))!.pool, { topic: 'Dermatology curbside', hidden: ['case-1', 'case-2'] });
    });

    it('one thread per requester and role, on any node; its members follow the role’s', async () => {
      await h.a.createTeam({ orgId: 'org-a', state: role('cardio', 'Cardiology on-call', ['dr-chief', 'dr-bell']), createdBy: 'dr-chief', now: 1 });
      const open = (s: typeof h.a, requester: string) => s.createConversation({ orgId: 'org-a', kind: 'group', createdBy: requester, memberUserIds: ['dr-chief', 'dr-bell'], roleId: 'cardio', now: 2 });
      const [first, second] = await Promise.all([open(h.a, 'dr-ed'), open(h.b, 'dr-ed')]);
      assert.equal(first.conversation.id, second.conversation.id);
      assert.deepEqual([first.created, second.created].sort(), [false, true]);
      assert.equal(first.conversation.roleId, 'cardio');
      assert.deepEqual(first.conversation.memberUserIds, ['dr-ed', 'dr-chief', 'dr-bell']);
      const other = await open(h.b, 'dr-icu');
      assert.notEqual(other.conversation.id, first.conversation.id);
      // A direct conversation between the same users is another conversation.
      const direct = await h.a.createConversation({ orgId: 'org-a', kind: 'direct', createdBy: 'dr-ed', memberUserIds: ['dr-chief'], now: 3 });
      assert.notEqual(direct.conversation.id, first.conversation.id);

      const written = await h.b.setRoleThreadMembers('org-a', 'cardio', ['dr-chief', 'dr-cruz']);
      assert.deepEqual(written.sort(), [first.conversation.id, other.conversation.id].sort());
      assert.deepEqual((await h.a.getConversation('org-a', first.conversation.id))!.memberUserIds, ['dr-ed', 'dr-chief', 'dr-cruz']);
      assert.deepEqual((await h.a.getConversation('org-a', other.conversation.id))!.memberUserIds, ['dr-icu', 'dr-chief', 'dr-cruz']);
      assert.deepEqual(await h.a.setRoleThreadMembers('org-a', 'cardio', ['dr-cruz', 'dr-chief']), [], 'already right: nothing written');
      // The requester stays in their thread even when the role loses them as a member.
      await h.a.setRoleThreadMembers('org-a', 'cardio', ['dr-chief']);
      assert.deepEqual((await h.b.getConversation('org-a', first.conversation.id))!.memberUserIds, ['dr-ed', 'dr-chief']);
      assert.deepEqual(await h.b.setRoleThreadMembers('org-b', 'cardio', ['x']), [], 'another organisation has no such threads');
    });

    it('hands out a team’s signed statements in order, a page at a time', async () => {
      await h.a.createTeam({ orgId: 'org-a', state: role('cardio', 'Cardiology on-call', ['dr-chief']), createdBy: 'dr-chief', now: 1 });
      for (let i = 0; i < 5; i++) {
        await h.a.appendEnvelope({ orgId: 'org-a', conversationId: 'cardio', senderUserId: 'dr-chief', senderDeviceId: 'chief-laptop', clientMessageId: `team:cardio:${i}`, membership: { statement: `{"index":${i}}`, signature: new Uint8Array(64).fill(i) }, now: 10 + i });
        await h.a.appendEnvelope({ orgId: 'org-a', conversationId: 'cardio', senderUserId: 'dr-chief', senderDeviceId: 'chief-laptop', clientMessageId: `msg-${i}`, body: new Uint8Array([1, 2, 3]), now: 10 + i });
      }
      const all = await h.b.teamStatements('org-a', 'cardio', 0, 10);
      assert.deepEqual(all.map((s) => s.statement), [0, 1, 2, 3, 4].map((i) => `{"index":${i}}`));
      assert.deepEqual([...all[3]!.signature], new Array(64).fill(3));
      assert.deepEqual((await h.b.teamStatements('org-a', 'cardio', 2, 2)).map((s) => s.statement), ['{"index":2}', '{"index":3}']);
      assert.deepEqual(await h.b.teamStatements('org-b', 'cardio', 0, 10), []);
    });

    it('a pending alert handed to new holders asks them too, once each, on any node; a settled one is not handed over', async () => {
      const spec = { orgId: 'org-a', conversationId: 'thread-1', seq: 3, messageId: 'm-3', clientMessageId: 'c-3', sentAt: 900, senderUserId: 'dr-ed', senderDeviceId: 'ed-phone', priority: 'urgent' as const, ackPolicy: 'any' as const, ackFrom: ['dr-bell'], createdAt: 1_000, firstDueAt: 2_000 };
      await h.a.raiseAlert(spec);
      const [x, y] = await Promise.all([
        h.a.handOffAlert({ orgId: 'org-a', conversationId: 'thread-1', seq: 3, userIds: ['dr-cruz'], byUserId: 'dr-bell', now: 1_500 }),
        h.b.handOffAlert({ orgId: 'org-a', conversationId: 'thread-1', seq: 3, userIds: ['dr-cruz', 'dr-bell'], byUserId: 'dr-bell', now: 1_501 }),
      ]);
      assert.equal(x.status, 'handed-off');
      assert.equal(y.status, 'handed-off');
      const alert = (await h.b.getAlert('org-a', 'thread-1', 3))!;
      assert.deepEqual(alert.ackFrom, ['dr-bell', 'dr-cruz']);
      assert.equal(alert.timeline.filter((e) => e.type === 'handed-off' && e.userId === 'dr-cruz').length, 1, 'one hand-off record per user');
      assert.deepEqual((await h.a.listOpenAlerts({ orgId: 'org-a', userId: 'dr-cruz', since: 0, limit: 10 })).map((a) => a.seq), [3]);
      assert.equal((await h.a.listOpenAlerts({ orgId: 'org-b', userId: 'dr-cruz', since: 0, limit: 10 })).length, 0);
      const acked = await h.a.acknowledgeAlert({ orgId: 'org-a', conversationId: 'thread-1', seq: 3, userId: 'dr-cruz', deviceId: 'cruz-phone', now: 1_600 });
      assert.equal(acked.status, 'acknowledged');
      assert.equal((await h.b.handOffAlert({ orgId: 'org-a', conversationId: 'thread-1', seq: 3, userIds: ['dr-lee'], byUserId: 'dr-cruz', now: 1_700 })).status, 'settled');
      assert.equal((await h.b.handOffAlert({ orgId: 'org-a', conversationId: 'thread-1', seq: 99, userIds: ['dr-lee'], byUserId: 'dr-cruz', now: 1_700 })).status, 'not_found');
    });
  });
}
