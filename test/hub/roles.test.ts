/**
 * Issue #20, roles and on-call: a role is a care team whose signed log also says who holds it (shifts,
 * and explicit hand-offs). A page to a role is sealed for whoever holds it at send time; when the role
 * changes hands during a pending escalation, the previous holder's device hands the message over and
 * the new holder's acknowledgement stops the escalation. Two hub nodes on real Redis and the Mongo-wire DB.
 */
import { expect } from 'chai';
import { ClientEvent, ErrorCode, type AlertUpdate } from '@curbside/shared';
import type { ChatMessage, CurbsideClient, EscalatedMessage } from '@curbside/client-sdk';
import type { HubConfig } from '@curbside/server';
import { HubHarness, codeOf, eventually, sharedBackend } from '../support/hub.js';
import { expectNotStored } from '../support/canary.js';
import { withDb } from '../support/db.js';
import { connectRaw, errorCode, sleep } from '../security/support.js';

const fastAlerts = (c: HubConfig) => (c.alerts = { repeatMs: { urgent: 800, emergent: 400 }, maxRepeats: 5, sweepMs: 50 });
const TEXT = 'ROLE-CANARY-41c9: bed 7 new AF 160 bpm, BP 85/50, please come';
const HOUR = 3_600_000;

function watch(client: CurbsideClient) {
  const messages: ChatMessage[] = [];
  const updates: AlertUpdate[] = [];
  const escalated: EscalatedMessage[] = [];
  const problems: string[] = [];
  client.on('message', (m) => messages.push(m));
  client.on('alert', (u) => updates.push(u));
  client.on('escalatedMessage', (m) => escalated.push(m));
  client.on('decryptionError', (e) => problems.push(`decrypt: ${e.reason}`));
  client.on('error', (e) => problems.push(`${e.code}: ${e.message}`));
  return { messages, updates, escalated, problems };
}

/** The cast, connected: the role's owner and two cardiologists on the first node, the ED doctor and a consultant on the last. */
async function ward(harness: HubHarness, nodes: 1 | 2) {
  const shared = sharedBackend();
  const node1 = await harness.start('real', shared, fastAlerts);
  const node2 = nodes === 2 ? await harness.start('real', shared, fastAlerts) : node1;
  const cast = {
    chief: node1.client({ userId: 'dr-chief', deviceId: 'chief-laptop' }),
    bell: node1.client({ userId: 'dr-bell', deviceId: 'bell-phone' }),
    cruz: node2.client({ userId: 'dr-cruz', deviceId: 'cruz-phone' }),
    ed: node2.client({ userId: 'dr-ed', deviceId: 'ed-phone' }),
    sup: node2.client({ userId: 'dr-sup', deviceId: 'sup-phone' }),
  };
  await Promise.all(Object.values(cast).map((x) => x.connect()));
  return { shared, node1, node2, ...cast };
}

describe('on-call roles: pages go to whoever holds the role, and a hand-off passes pending urgent messages on (two nodes, Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('hands a pending escalation to the new holder, whose acknowledgement stops it; non-holders and the hub never read it', async () => {
    const { shared, node1, node2, chief, bell, cruz, ed, sup } = await ward(harness, 2);
    const [b, c, e, s, ch] = [watch(bell), watch(cruz), watch(ed), watch(sup), watch(chief)];

    const { roleId } = await chief.roles.create('Cardiology on-call', [{ userId: 'dr-bell' }, { userId: 'dr-cruz' }]);
    await chief.roles.schedule(roleId, [{ userIds: ['dr-bell'], from: Date.now() - HOUR, to: Date.now() + HOUR }]);

    // The ED doctor finds the role and who holds it, verified from the signed log.
    const found = await ed.roles.search('cardiology');
    expect(found.map((r) => [r.name, r.holders])).to.deep.equal([['Cardiology on-call', ['dr-bell']]]);
    expect(await ed.roles.search('neurology')).to.deep.equal([]);

    const ack = await ed.roles.page(roleId, TEXT, { priority: 'urgent', escalate: [{ afterMs: 4_000, userIds: ['dr-sup'] }] });
    await eventually(() => b.messages.some((m) => m.text === TEXT), 'the holder reads the page');
    expect(b.messages.find((m) => m.text === TEXT)).to.include({ senderUserId: 'dr-ed', priority: 'urgent', seq: ack.seq });
    const raised = await eventually(() => b.updates.some((u) => u.reason === 'raised'), 'the holder is alerted').then(() => b.updates.find((u) => u.reason === 'raised')!);
    expect(raised.ackFrom).to.deep.equal(['dr-bell']);

    // Dr Cruz takes the role: Dr Bell's device hands the pending page over, unprompted.
    await cruz.roles.take(roleId);
    await eventually(() => c.messages.some((m) => m.text === TEXT), 'the new holder reads the handed-over page', 8_000);
    expect(c.messages.find((m) => m.text === TEXT)).to.include({ senderUserId: 'dr-ed', handedOffBy: 'dr-bell', seq: ack.seq, priority: 'urgent' });
    await eventually(() => c.updates.some((u) => u.reason === 'handed-off'), 'the new holder is alerted');
    expect((await ed.roles.get(roleId)).holders).to.deep.equal(['dr-cruz']);

    const settled = await cruz.alerts.acknowledge(thread(ack), ack.seq);
    expect(settled.state).to.equal('acknowledged');
    expect(settled.ackFrom).to.deep.equal(['dr-bell', 'dr-cruz']);
    const types = settled.timeline.map((t) => t.type);
    expect(types[0]).to.equal('raised');
    expect(types.indexOf('handed-off')).to.be.greaterThan(0).and.below(types.indexOf('acknowledged'));
    expect(settled.timeline.find((t) => t.type === 'handed-off')).to.include({ userId: 'dr-cruz', byUserId: 'dr-bell' });

    // Past the tier's timeout: the supervisor never gets it.
    await sleep(4_500);
    expect(s.escalated).to.deep.equal([]);
    expect(await codeOf(sup.alerts.escalatedMessage(thread(ack), ack.seq))).to.equal(ErrorCode.NOT_FOUND);

    // The chief is a member of the role but never held it: the page reached their devices without a key.
    expect(ch.messages.filter((m) => m.text === TEXT)).to.deep.equal([]);
    expect([...b.problems, ...c.problems, ...e.problems, ...ch.problems, ...s.problems]).to.deep.equal([]);
    await expectNotStored(shared.dbName, [TEXT, 'ROLE-CANARY-41c9', Buffer.from(TEXT).toString('base64')]);
    for (const n of [node1, node2]) expect(n.logs.text()).to.not.include('ROLE-CANARY');

    function thread(sent: { conversationId: string }): string {
      return sent.conversationId;
    }
  });

  it('at the end of a shift the outgoing holder’s device hands pending pages to the next shift by itself', async () => {
    const { node1: node, chief, cruz, ed } = await ward(harness, 1);
    const c = watch(cruz);
    const { roleId } = await chief.roles.create('Ward 4 charge nurse', [{ userId: 'dr-bell' }, { userId: 'dr-cruz' }]);
    const change = Date.now() + 2_500;
    await chief.roles.schedule(roleId, [
      { userIds: ['dr-bell'], from: change - HOUR, to: change },
      { userIds: ['dr-cruz'], from: change, to: change + HOUR },
    ]);
    const ack = await ed.roles.page(roleId, 'Bed 2 family asking for the charge nurse', { priority: 'urgent' });
    expect((await node.storage.getAlert('org-a', ack.conversationId, ack.seq))!.ackFrom).to.deep.equal(['dr-bell']);
    await eventually(() => c.messages.some((m) => m.handedOffBy === 'dr-bell'), 'the next shift gets the pending page when the shift changes', 8_000);
    expect(Date.now()).to.be.at.least(change);
    await eventually(async () => (await node.storage.getAlert('org-a', ack.conversationId, ack.seq))!.ackFrom.includes('dr-cruz'), 'and is asked to acknowledge it');
  });

  it("follows the role's signed escalation policy: a page nobody acknowledges goes to whoever holds the backup role, then to the consultant", async () => {
    const { node1, chief, bell, cruz, ed, sup } = await ward(harness, 2);
    const [c, s] = [watch(cruz), watch(sup)];
    const { roleId } = await chief.roles.create('Cardiology on-call', [{ userId: 'dr-bell' }]);
    const backup = await chief.roles.create('Cardiology backup', [{ userId: 'dr-cruz' }]);
    await bell.roles.take(roleId);
    await cruz.roles.take(backup.roleId);
    expect(await codeOf(bell.roles.setEscalationPolicy(roleId, [{ afterMs: 1_500, userIds: ['dr-sup'] }])), 'a plain member sets no policy').to.equal(ErrorCode.INVALID_STATEMENT);
    await chief.roles.setEscalationPolicy(roleId, [
      { afterMs: 1_500, roleIds: [backup.roleId] },
      { afterMs: 3_000, userIds: ['dr-sup'] },
    ]);
    expect((await ed.roles.get(roleId)).escalation).to.deep.equal([
      { afterMs: 1_500, userIds: [], roleIds: [backup.roleId] },
      { afterMs: 3_000, userIds: ['dr-sup'], roleIds: [] },
    ]);

    const sentAt = Date.now();
    const ack = await ed.roles.page(roleId, 'Bed 9: VT, pulse present, need cardiology now', { priority: 'emergent' });
    await eventually(() => c.escalated.some((m) => m.text === 'Bed 9: VT, pulse present, need cardiology now'), 'the backup role’s holder gets it', 6_000);
    expect(Date.now() - sentAt).to.be.at.least(1_400);
    await eventually(() => s.escalated.length === 1, 'then the consultant', 6_000);
    const settled = await sup.alerts.acknowledge(ack.conversationId, ack.seq);
    expect(settled.ackFrom).to.deep.equal(['dr-bell', 'dr-cruz', 'dr-sup']);
    expect(settled.tiers?.map((t) => t.userIds)).to.deep.equal([['dr-cruz'], ['dr-sup']]);
    // An app may still send without escalation.
    const quiet = await ed.roles.page(roleId, 'FYI only, no escalation', { priority: 'urgent', escalate: [] });
    await eventually(async () => (await node1.storage.getAlert('org-a', quiet.conversationId, quiet.seq)) !== undefined, 'the alert is stored');
    expect((await node1.storage.getAlert('org-a', quiet.conversationId, quiet.seq))!.tiers).to.equal(undefined);
    expect([...c.problems, ...s.problems]).to.deep.equal([]);
  });

  it('trusts the signed log, not the hub: a holder written into the database alone gets no page', async () => {
    const { shared, chief, bell, cruz, ed } = await ward(harness, 1);
    const [b, c] = [watch(bell), watch(cruz)];
    const { roleId } = await chief.roles.create('Rapid response', [{ userId: 'dr-bell' }, { userId: 'dr-cruz' }]);
    await bell.roles.take(roleId);

    // An attacker with the database makes Dr Cruz the holder, without a signed statement.
    const edited = await withDb(shared.dbName, (db) => db.collection('conversations').updateOne({ conversationId: roleId }, { $set: { 'team.oncall.hold': { userId: 'dr-cruz', at: Date.now() } } }));
    expect(edited.modifiedCount).to.equal(1);
    const hubSays = (await ed.hub.roleSearch('rapid'))[0]!;
    expect(hubSays.holderUserIds, 'the hub now claims Dr Cruz').to.deep.equal(['dr-cruz']);
    expect((await ed.roles.get(roleId)).holders, 'the client verifies the log').to.deep.equal(['dr-bell']);

    await ed.roles.page(roleId, 'Rapid response to ward 3, bed 2');
    await eventually(() => b.messages.some((m) => m.text === 'Rapid response to ward 3, bed 2'), 'the signed holder reads it');
    await sleep(300);
    expect(c.messages).to.deep.equal([]);
  });

  it('refuses what the rules forbid with typed errors, and changes nothing', async () => {
    const { node1: node, chief, bell, ed } = await ward(harness, 1);
    const other = node.client({ userId: 'dr-chief', deviceId: 'b-laptop', orgId: 'org-b' });
    await other.connect();
    const { roleId } = await chief.roles.create('Ward 4 charge nurse', [{ userId: 'dr-bell' }]);

    expect(await codeOf(chief.roles.create('ward 4 CHARGE nurse', [])), 'one role per name').to.equal(ErrorCode.CONFLICT);
    expect(await codeOf(ed.roles.page(roleId, 'anyone?')), 'nobody holds it: nothing is sent').to.equal(ErrorCode.NOT_FOUND);
    expect(await codeOf(ed.roles.take(roleId)), 'only a member takes it').to.equal(ErrorCode.FORBIDDEN);
    expect(await codeOf(bell.roles.schedule(roleId, [{ userIds: ['dr-bell'], from: Date.now(), to: Date.now() + HOUR }])), 'a plain member sets no shifts').to.equal(ErrorCode.INVALID_STATEMENT);
    expect(await codeOf(chief.roles.schedule(roleId, [{ userIds: ['dr-ed'], from: Date.now(), to: Date.now() + HOUR }])), 'shifts name members').to.equal(ErrorCode.INVALID_STATEMENT);
    expect((await ed.roles.get(roleId)).holders).to.deep.equal([]);

    // Another organisation sees no such role; a plain care team is not a role.
    expect(await other.roles.search()).to.deep.equal([]);
    expect(await codeOf(other.roles.open(roleId))).to.equal(ErrorCode.NOT_FOUND);
    const team = await chief.teams.create('Ward 4 discharge', [{ userId: 'dr-bell' }]);
    expect(await codeOf(ed.roles.open(team.teamId))).to.equal(ErrorCode.NOT_FOUND);
    expect(await codeOf(ed.hub.roleLog(team.teamId))).to.equal(ErrorCode.NOT_FOUND);

    // A hand-off outside a role thread, or of nothing pending, is refused before anything is stored.
    const direct = await ed.createConversation({ kind: 'direct', peerUserId: 'dr-bell' });
    const raw = await connectRaw(node.url, node.idp.mint({ userId: 'dr-ed', deviceId: 'ed-phone' }));
    try {
      const handoff = async (conversationId: string) =>
        errorCode(await raw.call(ClientEvent.ENVELOPE_SEND, { conversationId, clientMessageId: `h-${conversationId}`, recipients: [{ deviceId: 'bell-phone', ciphertext: new Uint8Array(8) }], partial: true, handoff: { seqs: [1] } }));
      expect(await handoff(direct.id)).to.equal(ErrorCode.FORBIDDEN);
      await bell.roles.take(roleId);
      const roleThread = await ed.roles.open(roleId);
      // The requester is no holder handing over, and names a device of the role's: nothing pending asks them.
      expect(await handoff(roleThread.id)).to.equal(ErrorCode.NOT_FOUND);
      expect((await node.storage.getConversation('org-a', roleThread.id))!.lastSeq).to.equal(0);
      // A role thread follows the role's members: it is not left.
      expect(await codeOf(ed.leaveConversation(roleThread.id))).to.equal(ErrorCode.INVALID_PAYLOAD);
    } finally {
      raw.close();
    }
  });
});
