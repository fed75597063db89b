/**
 * Issue #20: "a hub killed mid-escalation". Two real hub processes on their own Redis and FerretDB; an
 * urgent message escalates over two tiers while the hubs are killed (SIGKILL) one after the other: the
 * sender's node before the first tier is due, the other node between the tiers (the first restarted
 * meanwhile). Each tier activates once, on whichever node is up, and its user reads the message.
 */
import { expect } from 'chai';
import type { AlertUpdate, EscalatedMessage } from '@curbside/client-sdk';
import { sleep } from '../../scripts/faults/cluster.js';
import { faultClients } from '../support/fault-clients.js';
import { eventually } from '../../scripts/faults/checker.js';

describe('alerts: an escalation survives hub kills (two hub processes)', function () {
  this.timeout(240_000);
  const faults = faultClients();

  it('each tier activates once, on the node that is up, though every node was killed once during it', async () => {
    const c = await faults.start({ nodes: 2, hubEnv: { ALERT_SWEEP_MS: '100', ALERT_REPEAT_URGENT_MS: '600000', ALERT_REPEAT_EMERGENT_MS: '300000' } });
    const [first, second] = c.nodes.map((n) => n.url) as [string, string];
    const client = faults.client;
    const lee = client({ userId: 'dr-lee', deviceId: 'lee-phone' }, [first, second]);
    const patel = client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, [second, first]);
    const ortiz = client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' }, [second, first]);
    const chen = client({ userId: 'dr-chen', deviceId: 'chen-phone' }, [second, first]);
    const escalated = new Map<string, EscalatedMessage[]>([['rn-ortiz', []], ['dr-chen', []]]);
    const leeUpdates: AlertUpdate[] = [];
    ortiz.on('escalatedMessage', (m) => escalated.get('rn-ortiz')!.push(m));
    chen.on('escalatedMessage', (m) => escalated.get('dr-chen')!.push(m));
    lee.on('alert', (u) => leeUpdates.push(u));
    await Promise.all([lee, patel, ortiz, chen].map((x) => x.connect()));
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    const text = 'Massive haemorrhage, theatre 3: need a senior now';
    const ack = await lee.sendText(conv.id, text, { priority: 'emergent', escalate: [{ afterMs: 3_000, userIds: ['rn-ortiz'] }, { afterMs: 8_000, userIds: ['dr-chen'] }] });
    await c.killNode(0); // the sender's node, before anything is due
    await eventually(() => escalated.get('rn-ortiz')!.length === 1, 'tier 1 reached on node 2', 20_000);
    await c.restartNode(0);
    await c.killNode(1); // now the other one, between the tiers
    await eventually(() => escalated.get('dr-chen')!.length === 1, 'tier 2 reached on the restarted node 1', 30_000);
    expect(escalated.get('rn-ortiz')![0]!.text).to.equal(text);
    expect(escalated.get('dr-chen')![0]!.text).to.equal(text);

    const settled = await chen.alerts.acknowledge(conv.id, ack.seq);
    const tiers = settled.timeline.filter((e) => e.type === 'escalated').map((e) => e.tier);
    expect(tiers, 'each tier activated once').to.deep.equal([1, 2]);
    expect(settled.state).to.equal('acknowledged');
    expect(settled.tiers?.map((t) => t.activatedAt !== undefined)).to.deep.equal([true, true]);
    await eventually(() => leeUpdates.some((u) => u.reason === 'acknowledged' && u.acks.some((a) => a.userId === 'dr-chen')), 'the sender hears who took it', 20_000);
    await sleep(500);
    expect(escalated.get('rn-ortiz')!.length + escalated.get('dr-chen')!.length, 'nobody got it twice').to.equal(2);
  });
});
