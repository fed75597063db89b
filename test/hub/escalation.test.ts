/**
 * Issue #20: escalation under end-to-end encryption. The sender's device seals the urgent message once
 * more and wraps its key for every device of every later tier at send time; the hub holds the wrapped
 * keys and releases a tier's only when nobody acknowledged within its timeout; an acknowledgement stops
 * the escalation. Two hub nodes on real Redis and the Mongo-wire DB, one of them stopped mid-escalation.
 */
import { expect } from 'chai';
import { ClientEvent, ErrorCode, type AlertUpdate } from '@curbside/shared';
import type { CurbsideClient, EscalatedMessage } from '@curbside/client-sdk';
import type { HubConfig } from '@curbside/server';
import { HubHarness, codeOf, eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { expectNotStored } from '../support/canary.js';
import { connectRaw, errorCode, sleep } from '../security/support.js';
import { testDeviceKeys } from '../support/keys.js';

const REPEAT_MS = 600;
const fastAlerts = (c: HubConfig) => (c.alerts = { repeatMs: { urgent: REPEAT_MS, emergent: REPEAT_MS / 2 }, maxRepeats: 2, sweepMs: 50 });
const TEXT = 'ESCALATION-CANARY-7d1e: bed 12 K+ 6.8, ECG peaked T waves, no answer from the registrar';

function watch(client: CurbsideClient) {
  const updates: AlertUpdate[] = [];
  const escalated: EscalatedMessage[] = [];
  client.on('alert', (u) => updates.push(u));
  client.on('escalatedMessage', (m) => escalated.push(m));
  const errors: string[] = [];
  client.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
  return { updates, escalated, errors };
}

describe('alerts: escalation tiers receive the content only when they activate (two nodes, Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('escalates across three tiers, survives the loss of a node, and stops at the first acknowledgement; the hub never holds the text', async () => {
    const shared = sharedBackend();
    const node1: TestHub = await harness.start('real', shared, fastAlerts);
    const node2: TestHub = await harness.start('real', shared, fastAlerts);
    const lee = node1.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node2.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const ortiz = node2.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' });
    const chen = node2.client({ userId: 'dr-chen', deviceId: 'chen-phone' });
    const bystander = node2.client({ userId: 'dr-other', deviceId: 'other-phone' });
    const [p, o, c, b] = [watch(patel), watch(ortiz), watch(chen), watch(bystander)];
    await Promise.all([lee, patel, ortiz, chen, bystander].map((x) => x.connect()));
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    const sentAt = Date.now();
    const ack = await lee.sendText(conv.id, TEXT, {
      priority: 'urgent',
      escalate: [
        { afterMs: 1_500, userIds: ['rn-ortiz'] },
        { afterMs: 3_500, userIds: ['dr-chen'] },
      ],
    });
    await eventually(() => p.updates.some((u) => u.reason === 'raised'), 'the addressee hears of it');
    // Before its tier activates, nobody else can have the content: the hub will not release it.
    expect(await codeOf(ortiz.alerts.escalatedMessage(conv.id, ack.seq))).to.equal(ErrorCode.NOT_FOUND);
    expect(o.updates, 'a later tier hears nothing before it activates').to.deep.equal([]);

    await eventually(() => o.escalated.length === 1, 'tier 1 gets the message', 5_000);
    expect(Date.now() - sentAt).to.be.at.least(1_400);
    expect(o.escalated[0]).to.include({ conversationId: conv.id, seq: ack.seq, senderUserId: 'dr-lee', text: TEXT, priority: 'urgent' });
    expect(c.escalated, 'tier 2 not yet').to.deep.equal([]);
    expect(await codeOf(chen.alerts.escalatedMessage(conv.id, ack.seq))).to.equal(ErrorCode.NOT_FOUND);

    // The sender's node goes away mid-escalation; node 2 carries on.
    await node1.hub.close();
    await eventually(() => c.escalated.length === 1, 'tier 2 gets the message after node 1 is gone', 6_000);
    expect(c.escalated[0]!.text).to.equal(TEXT);
    expect(Date.now() - sentAt).to.be.at.least(3_400);

    const settled = await chen.alerts.acknowledge(conv.id, ack.seq);
    expect(settled.state).to.equal('acknowledged');
    expect(settled.acks.map((a) => a.userId)).to.deep.equal(['dr-chen']);
    expect(settled.ackFrom).to.deep.equal(['dr-patel', 'rn-ortiz', 'dr-chen']);
    const types = settled.timeline.map((e) => (e.type === 'escalated' ? `escalated ${e.tier}` : e.type));
    expect(types[0]).to.equal('raised');
    expect(types.filter((t) => t.startsWith('escalated'))).to.deep.equal(['escalated 1', 'escalated 2']);
    expect(types.at(-1)).to.equal('acknowledged');
    expect(types.indexOf('escalated 1')).to.be.below(types.indexOf('escalated 2'));
    await eventually(() => p.updates.some((u) => u.reason === 'acknowledged'), 'the addressee hears it was taken');

    const repeats = p.updates.filter((u) => u.reason === 'repeated').length;
    await sleep(REPEAT_MS * 2);
    expect(p.updates.filter((u) => u.reason === 'repeated').length, 'no re-notification after the acknowledgement').to.be.at.most(repeats + 1);
    expect(b.updates.concat(b.escalated as never[]), 'someone in no tier hears nothing').to.deep.equal([]);
    expect(await codeOf(bystander.alerts.escalatedMessage(conv.id, ack.seq))).to.equal(ErrorCode.NOT_FOUND);

    const scanned = await expectNotStored(shared.dbName, [TEXT, 'ESCALATION-CANARY-7d1e', Buffer.from(TEXT).toString('base64')]);
    expect(scanned.collections).to.include.members(['alerts', 'alert_held', 'alert_firings']);
    for (const t of [node1, node2]) expect(t.logs.text()).to.not.include('ESCALATION-CANARY');
    expect([...o.errors, ...c.errors, ...p.errors]).to.deep.equal([]);
  });

  it("a tier user's acknowledgement is confirmed end to end: sealed by their device, for the sender's devices only", async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, fastAlerts);
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const ortiz = node.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' });
    const [p, o] = [watch(patel), watch(ortiz)];
    const patelProblems: string[] = [];
    patel.on('decryptionError', (e) => patelProblems.push(e.reason));
    await Promise.all([lee, patel, ortiz].map((x) => x.connect()));
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.sendText(conv.id, 'Bed 5 sats 84% on 15 L', { priority: 'emergent', escalate: [{ afterMs: 1_200, userIds: ['rn-ortiz'] }] });
    await eventually(() => o.escalated.length === 1, 'the tier gets the message', 5_000);

    // A confirmation that names someone else's device is refused, and the acknowledgement with it.
    const raw = await connectRaw(node.url, node.idp.mint({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' }));
    try {
      const forged = await raw.call(ClientEvent.ALERT_ACK, { conversationId: conv.id, seq: ack.seq, confirmation: { clientMessageId: 'c-1', body: new Uint8Array(64), recipients: [{ deviceId: 'patel-laptop', ciphertext: new Uint8Array(64) }] } });
      expect(errorCode(forged)).to.equal(ErrorCode.DEVICE_LIST_STALE);
    } finally {
      raw.close();
    }
    expect((await node.storage.getAlert('org-a', conv.id, ack.seq))!.acks).to.deep.equal([]);

    const settled = await ortiz.alerts.acknowledge(conv.id, ack.seq);
    expect(settled.acks.map((a) => a.userId)).to.deep.equal(['rn-ortiz']);
    await eventually(() => lee.alerts.confirmedEndToEnd(settled, 'rn-ortiz'), 'the sender has the tier user’s own sealed confirmation');
    expect(lee.alerts.confirmedEndToEnd(settled, 'dr-patel')).to.equal(false);
    await sleep(300);
    expect(patelProblems, 'the other member ignores a receipt not for them').to.deep.equal([]);
    expect(p.errors).to.deep.equal([]);
  });

  it('an acknowledgement in time stops the escalation: the next tier never gets the content', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, fastAlerts);
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const ortiz = node.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' });
    const o = watch(ortiz);
    await Promise.all([lee, patel, ortiz].map((x) => x.connect()));
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.sendText(conv.id, 'Can you see bed 3?', { priority: 'emergent', escalate: [{ afterMs: 1_200, userIds: ['rn-ortiz'] }] });
    await eventually(async () => (await node.storage.getAlert('org-a', conv.id, ack.seq)) !== undefined, 'alert stored');
    await patel.alerts.acknowledge(conv.id, ack.seq);
    await sleep(1_800);
    expect(o.updates).to.deep.equal([]);
    expect(o.escalated).to.deep.equal([]);
    expect(await codeOf(ortiz.alerts.escalatedMessage(conv.id, ack.seq))).to.equal(ErrorCode.NOT_FOUND);
    const alert = await node.storage.getAlert('org-a', conv.id, ack.seq);
    expect(alert?.tiers?.[0]?.activatedAt).to.equal(undefined);
  });

  it('refuses escalations that name conversation members, repeat a user, or wrap keys for devices that are not the tier users’, and stores nothing', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, fastAlerts);
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    const patel = node.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    const ortiz = node.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' }, { e2ee: false });
    await Promise.all([lee, patel, ortiz].map((x) => x.connect()));
    for (const x of [patel, ortiz]) {
      const keys = testDeviceKeys();
      await x.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(1) });
    }
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const body = new Uint8Array([1, 2, 3]);
    const share = (deviceId: string) => ({ deviceId, ciphertext: new Uint8Array([9]) });
    const send = (tiers: Array<{ afterMs: number; userIds: string[]; recipients: Array<{ deviceId: string; ciphertext: Uint8Array }> }>) =>
      codeOf(lee.sendEnvelope(conv.id, { body, alert: { priority: 'urgent', escalation: { body, tiers } } }));
    expect(await send([{ afterMs: 2_000, userIds: ['dr-patel'], recipients: [share('patel-laptop')] }]), 'a member').to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await send([{ afterMs: 2_000, userIds: ['rn-ortiz'], recipients: [share('patel-laptop')] }]), "someone else's device").to.equal(ErrorCode.DEVICE_LIST_STALE);
    expect(await send([{ afterMs: 2_000, userIds: ['rn-ortiz'], recipients: [share('ortiz-tablet')] }, { afterMs: 1_000, userIds: ['dr-x'], recipients: [share('x')] }]), 'out of order').to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await send([{ afterMs: 2_000, userIds: ['rn-ortiz'], recipients: [share('ortiz-tablet')] }, { afterMs: 3_000, userIds: ['rn-ortiz'], recipients: [share('ortiz-tablet')] }]), 'twice').to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await codeOf(lee.sendEnvelope(conv.id, { body, alert: { priority: 'urgent', ackPolicy: 'all', escalation: { body, tiers: [{ afterMs: 2_000, userIds: ['rn-ortiz'], recipients: [share('ortiz-tablet')] }] } } })), 'policy all').to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await node.storage.envelopesAfter('org-a', conv.id, 0, 10), 'no envelope stored').to.deep.equal([]);
    expect(await node.storage.listOpenAlerts({ orgId: 'org-a', userId: 'dr-lee', since: 0, limit: 10 })).to.deep.equal([]);
  });
});
