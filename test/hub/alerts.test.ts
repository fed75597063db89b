/**
 * Issue #20: urgent and emergent messages that get answered. An urgent message raises an alert the
 * hub keeps (metadata only: the text stays end-to-end encrypted, and is sealed with its priority);
 * recipients are re-notified on durable timers until someone required acknowledges; the sender sees
 * who acknowledged and when; each step is in the audit chain. Two hub nodes on real Redis and the
 * Mongo-wire DB; intervals shortened through config.
 */
import { expect } from 'chai';
import { ClientEvent, ErrorCode, type AlertUpdate, type AlertState } from '@curbside/shared';
import type { AuditEntry, Hub, HubConfig } from '@curbside/server';
import type { CurbsideClient } from '@curbside/client-sdk';
import { bytes, codeOf, eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { connectRaw, errorCode, rawHubs, sleep } from '../security/support.js';

const REPEAT_MS = 700;
const fastAlerts = (c: HubConfig) => (c.alerts = { repeatMs: { urgent: REPEAT_MS, emergent: REPEAT_MS / 2 }, maxRepeats: 50, sweepMs: 50 });

async function auditOf(hub: Hub): Promise<AuditEntry[]> {
  hub.security.flushAudit();
  await hub.audit.flush();
  return (await Promise.all((await hub.audit.chains()).map((c) => hub.audit.entries(c, -1, 10_000)))).flat();
}

describe('alerts: urgent messages are re-notified until acknowledged (two nodes, Redis + Mongo-wire DB)', function () {
  const { harness, open } = rawHubs();

  it('an urgent message repeats on the recipient until they acknowledge; the sender sees by whom and when; each repeat fires once across nodes', async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared, fastAlerts), await harness.start('real', shared, fastAlerts)];
    const lee = node1.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node2.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const patelUpdates: AlertUpdate[] = [];
    const leeUpdates: AlertUpdate[] = [];
    const messages: Array<{ text: string; priority: string; seq: number }> = [];
    patel.on('alert', (u) => patelUpdates.push(u));
    lee.on('alert', (u) => leeUpdates.push(u));
    patel.on('message', (m) => messages.push({ text: m.text, priority: m.priority, seq: m.seq }));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, 'Good morning');
    const ack = await lee.sendText(conv.id, 'K+ 6.8 in bed 12, please review now', { priority: 'urgent' });
    await eventually(() => messages.length === 2, 'both messages decrypted');
    expect(messages.map((m) => m.priority)).to.deep.equal(['routine', 'urgent']);

    await eventually(() => patelUpdates.filter((u) => u.reason === 'repeated').length >= 3, 'three re-notifications', 10_000);
    const raised = patelUpdates.find((u) => u.reason === 'raised');
    expect(raised).to.include({ conversationId: conv.id, seq: ack.seq, messageId: ack.messageId, senderUserId: 'dr-lee', priority: 'urgent', state: 'pending', ackPolicy: 'any' });
    expect(raised?.ackFrom).to.deep.equal(['dr-patel']);
    expect(patel.alerts.awaitsMe(raised!)).to.equal(true);
    const repeats = patelUpdates.filter((u) => u.reason === 'repeated').map((u) => u.repeats);
    expect(repeats, 'each re-notification once, in order, from whichever node claimed it').to.deep.equal(repeats.map((_, i) => i + 1));

    const acknowledged = await patel.alerts.acknowledge(conv.id, ack.seq);
    expect(acknowledged.state).to.equal('acknowledged');
    await eventually(() => leeUpdates.some((u) => u.reason === 'acknowledged'), 'the sender hears of the acknowledgement');
    const seen = leeUpdates.find((u) => u.reason === 'acknowledged')!;
    expect(seen.acks.map((a) => [a.userId, a.deviceId])).to.deep.equal([['dr-patel', 'patel-laptop']]);
    expect(seen.acks[0]!.at).to.be.within(seen.createdAt, Date.now());
    expect(seen.timeline.map((e) => e.type)).to.deep.equal(['raised', ...seen.timeline.slice(1, -1).map(() => 'repeated'), 'acknowledged']);
    expect(lee.alerts.get(conv.id, ack.seq)?.state).to.equal('acknowledged');
    expect(lee.alerts.awaitsMe(seen)).to.equal(false);
    // And from Patel's own device, sealed end to end: the hub could not have made this one up.
    await eventually(() => lee.alerts.confirmedEndToEnd(seen, 'dr-patel'), "Patel's device confirms the acknowledgement end to end");

    const repeatsAtAck = patelUpdates.filter((u) => u.reason === 'repeated').length;
    await sleep(REPEAT_MS * 3);
    expect(patelUpdates.filter((u) => u.reason === 'repeated').length, 'no re-notification after the acknowledgement').to.be.at.most(repeatsAtAck + 1);
    expect(await patel.alerts.open()).to.deep.equal([]);
    expect(await codeOf(patel.alerts.acknowledge(conv.id, ack.seq)), 'twice is fine').to.equal(undefined);

    // The audit chain (one, in the shared database) has the raise, the repeats and the acknowledgement, with their times.
    node2.hub.security.flushAudit();
    await node2.hub.audit.flush();
    const entries = (await auditOf(node1.hub)).filter((e) => e.conversationId === conv.id && e.action.startsWith('alert:'));
    const acks = entries.filter((e) => e.action === ClientEvent.ALERT_ACK && e.outcome === 'ok');
    expect(acks.map((e) => [e.userId, e.deviceId, e.seq])).to.deep.include(['dr-patel', 'patel-laptop', ack.seq]);
    expect(entries.filter((e) => e.action === 'alert:raised')).to.have.length(1);
    expect(entries.filter((e) => e.action === 'alert:repeated').length).to.be.at.least(3);
  });

  it('an acknowledgement only the hub reports (a hostile hub inventing one) is not confirmed end to end', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, fastAlerts);
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const leeUpdates: AlertUpdate[] = [];
    lee.on('alert', (u) => leeUpdates.push(u));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.sendText(conv.id, 'Are you there?', { priority: 'urgent' });
    // The hub records and announces an acknowledgement in Patel's name on its own; Patel's device never made one.
    await node.hub.alerts.acknowledge({ orgId: 'org-a', userId: 'dr-patel', deviceId: 'patel-laptop' }, { conversationId: conv.id, seq: ack.seq });
    await eventually(() => leeUpdates.some((u) => u.reason === 'acknowledged'), 'the hub reports it acknowledged');
    const claimed = lee.alerts.get(conv.id, ack.seq)!;
    expect(claimed.acks.map((a) => a.userId)).to.deep.equal(['dr-patel']);
    await sleep(500);
    expect(lee.alerts.confirmedEndToEnd(claimed, 'dr-patel'), 'no sealed acknowledgement from Patel').to.equal(false);
  });

  it('someone who leaves the conversation is no longer re-alerted, and may no longer acknowledge', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, fastAlerts);
    const [lee, patel, ortiz] = ['dr-lee', 'dr-patel', 'rn-ortiz'].map((u) => node.client({ userId: u, deviceId: `${u}-phone` }, { e2ee: false })) as [CurbsideClient, CurbsideClient, CurbsideClient];
    const seen = new Map<string, AlertUpdate[]>([['dr-patel', []], ['rn-ortiz', []]]);
    patel.on('alert', (u) => seen.get('dr-patel')!.push(u));
    ortiz.on('alert', (u) => seen.get('rn-ortiz')!.push(u));
    await Promise.all([lee, patel, ortiz].map((c) => c.connect()));
    const group = await lee.createConversation({ kind: 'group', memberUserIds: ['dr-patel', 'rn-ortiz'] });
    const ack = await lee.sendEnvelope(group.id, { body: bytes('opaque'), alert: { priority: 'urgent', ackPolicy: 'all' } });
    await eventually(() => seen.get('rn-ortiz')!.some((u) => u.reason === 'repeated'), 'both re-alerted');
    await ortiz.leaveConversation(group.id);
    await sleep(REPEAT_MS / 2);
    const atLeave = seen.get('rn-ortiz')!.length;
    const patelAtLeave = seen.get('dr-patel')!.length;
    await sleep(REPEAT_MS * 2.5);
    expect(seen.get('rn-ortiz')!.length, 'no more re-alerts after leaving').to.equal(atLeave);
    expect(seen.get('dr-patel')!.length, 'those still in keep being asked').to.be.greaterThan(patelAtLeave);
    expect(await codeOf(ortiz.alerts.acknowledge(group.id, ack.seq))).to.equal(ErrorCode.FORBIDDEN);
    expect((await node.storage.getAlert('org-a', group.id, ack.seq))?.acks).to.deep.equal([]);
  });

  it('a timer outlives the hub: with no node up when a re-notification falls due, the next node to start fires it, once', async () => {
    const shared = sharedBackend();
    const node1 = await harness.start('real', shared, fastAlerts);
    const lee = node1.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    const patel = node1.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.sendEnvelope(conv.id, { body: bytes('opaque'), alert: { priority: 'emergent' } });
    const raisedAt = Date.now();
    await node1.hub.close();
    await sleep(REPEAT_MS);
    const node2 = await harness.start('real', shared, fastAlerts);
    const later = node2.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { e2ee: false });
    const updates: AlertUpdate[] = [];
    later.on('alert', (u) => updates.push(u));
    await later.connect();
    await eventually(async () => ((await node2.storage.getAlert('org-a', conv.id, ack.seq))?.repeats ?? 0) >= 1, 'the due timer fired on node 2', 5_000);
    const stored = await node2.storage.getAlert('org-a', conv.id, ack.seq);
    const firstRepeat = stored!.timeline.find((e) => e.type === 'repeated')!;
    expect(firstRepeat.at - raisedAt, 'fired after it was due, on the node that came up').to.be.at.least(REPEAT_MS / 2 - 50);
    await eventually(() => updates.some((u) => u.reason === 'repeated' || (u.repeats >= 1 && u.state === 'pending')), 'the recipient was re-notified');
    await sleep(200);
    const times = (await node2.storage.getAlert('org-a', conv.id, ack.seq))!.timeline.filter((e) => e.type === 'repeated').map((e) => e.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, 'one firing per interval').to.be.at.least(REPEAT_MS / 2 - 60);
  });

  it("an organisation's own intervals, set by its operator, apply on every node; another organisation keeps the defaults", async () => {
    const shared = sharedBackend();
    const ADMIN = 'alerts-operator-token-'.padEnd(40, 'k');
    const slow = (c: HubConfig) => {
      c.adminToken = ADMIN;
      c.alerts = { repeatMs: { urgent: 60_000, emergent: 30_000 }, maxRepeats: 50, sweepMs: 50 };
    };
    const [node1, node2] = [await harness.start('real', shared, slow), await harness.start('real', shared, slow)];
    const post = (body: unknown) =>
      fetch(`${node1.url}/admin/alerts/settings`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    expect(await post({ orgId: 'org-a', urgentMs: 1_000, emergentMs: 2_000 })).to.deep.include({ status: 400 });
    expect(await post({ orgId: 'org-a', urgentMs: 1_000, maxRepeats: 3 }), "the default emergent interval (30 s) would be longer than the urgent one").to.deep.include({ status: 400 });
    const set = await post({ orgId: 'org-a', urgentMs: 1_000, emergentMs: 1_000, maxRepeats: 3 });
    expect(set).to.deep.equal({ status: 200, body: { orgId: 'org-a', urgentMs: 1_000, emergentMs: 1_000, maxRepeats: 3, set: ['urgentMs', 'emergentMs', 'maxRepeats'] } });
    const raised: Array<{ orgId: string; conversationId: string; seq: number }> = [];
    for (const orgId of ['org-a', 'org-b']) {
      const lee = node2.client({ userId: 'dr-lee', deviceId: `lee-${orgId}`, orgId }, { e2ee: false });
      const patel = node2.client({ userId: 'dr-patel', deviceId: `patel-${orgId}`, orgId }, { e2ee: false });
      await Promise.all([lee.connect(), patel.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      const ack = await lee.sendEnvelope(conv.id, { body: bytes('opaque'), alert: { priority: 'urgent' } });
      raised.push({ orgId, conversationId: conv.id, seq: ack.seq });
    }
    const [a, b] = raised as [(typeof raised)[0], (typeof raised)[0]];
    await eventually(async () => (await node2.storage.getAlert(a.orgId, a.conversationId, a.seq))?.state === 'expired', "org-a's alert re-notified three times at its own interval, then expired", 10_000);
    const stored = await node2.storage.getAlert(a.orgId, a.conversationId, a.seq);
    expect(stored?.repeats).to.equal(3);
    expect((await node2.storage.getAlert(b.orgId, b.conversationId, b.seq))?.repeats, "org-b's default is a minute").to.equal(0);
    const show = await fetch(`${node2.url}/admin/alerts/settings?orgId=org-b`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json());
    expect(show).to.deep.equal({ orgId: 'org-b', urgentMs: 60_000, emergentMs: 30_000, maxRepeats: 50, set: [] });
  });

  it('bad alert requests get typed errors and change nothing', async () => {
    const shared = sharedBackend();
    const t: TestHub = await harness.start('real', shared, fastAlerts);
    const raw = async (userId: string, deviceId: string, orgId = 'org-a') => {
      const c = await connectRaw(t.url, t.idp.mint({ userId, deviceId, orgId }));
      open.push(c);
      return c;
    };
    const lee = await raw('dr-lee', 'lee-phone');
    const patel = await raw('dr-patel', 'patel-laptop');
    const conv = await lee.call<{ id: string }>(ClientEvent.CONVERSATION_CREATE, { kind: 'direct', peerUserId: 'dr-patel' });
    if (!conv.ok) throw new Error('create failed');
    const conversationId = conv.data.id;
    const send = (payload: Record<string, unknown>) => lee.call<{ seq: number }>(ClientEvent.ENVELOPE_SEND, { conversationId, clientMessageId: `c-${Math.random()}`, body: bytes('x'), ...payload });
    expect(errorCode(await send({ alert: { priority: 'routine' } }))).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(errorCode(await send({ alert: { priority: 'urgent', extra: 1 } }))).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(errorCode(await send({ kind: 'receipt', recipients: [{ deviceId: 'patel-laptop', ciphertext: bytes('r') }], partial: true, body: undefined, alert: { priority: 'urgent' } }))).to.equal(ErrorCode.INVALID_PAYLOAD);
    const sent = await send({ alert: { priority: 'urgent' } });
    if (!sent.ok) throw new Error('send failed');
    const seq = sent.data.seq;
    expect(errorCode(await lee.call(ClientEvent.ALERT_ACK, { conversationId, seq })), "the sender's own").to.equal(ErrorCode.FORBIDDEN);
    expect(errorCode(await patel.call(ClientEvent.ALERT_ACK, { conversationId, seq: seq + 1 }))).to.equal(ErrorCode.NOT_FOUND);
    expect(errorCode(await patel.call(ClientEvent.ALERT_ACK, { conversationId, seq: -1 }))).to.equal(ErrorCode.INVALID_PAYLOAD);
    const outsider = await raw('dr-patel', 'other-org-device', 'org-b');
    expect(errorCode(await outsider.call(ClientEvent.ALERT_ACK, { conversationId, seq })), 'another organisation').to.equal(ErrorCode.NOT_FOUND);
    expect(errorCode(await outsider.call(ClientEvent.ALERT_LIST, {}))).to.equal('ok');
    const alert = (await t.storage.getAlert('org-a', conversationId, seq)) as AlertState;
    expect([alert.state, alert.acks]).to.deep.equal(['pending', []]);
    expect(errorCode(await patel.call(ClientEvent.ALERT_ACK, { conversationId, seq }))).to.equal('ok');
  });
});
