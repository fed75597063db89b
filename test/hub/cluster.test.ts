import { expect } from 'chai';
import type { Envelope } from '@curbside/client-sdk';
import { HubHarness, bytes, eventually, sharedBackend, text } from '../support/hub.js';

describe('two hub nodes sharing Redis and the Mongo-wire DB', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('a client on one node reaches a client on the other, both ways, with one sequence', async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const lee = node1.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node2.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const leeDesk = node2.client({ userId: 'dr-lee', deviceId: 'lee-desk' });
    const got = { lee: [] as Envelope[], patel: [] as Envelope[], desk: [] as Envelope[] };
    lee.on('envelope', (e) => got.lee.push(e));
    patel.on('envelope', (e) => got.patel.push(e));
    leeDesk.on('envelope', (e) => got.desk.push(e));
    const conversationsSeen: string[] = [];
    patel.on('conversation', (c) => conversationsSeen.push(c.id));
    await Promise.all([lee.connect(), patel.connect(), leeDesk.connect()]);

    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await eventually(() => conversationsSeen.includes(conv.id), 'conversation event crosses nodes');

    const a = await lee.sendEnvelope(conv.id, { body: bytes('from node 1') });
    const b = await patel.sendEnvelope(conv.id, { body: bytes('from node 2') });
    expect([a.seq, b.seq]).to.deep.equal([1, 2]);
    await eventually(() => got.patel.length === 1 && got.lee.length === 1 && got.desk.length === 2, 'cross-node delivery');
    expect(text(got.patel[0]!.body!)).to.equal('from node 1');
    expect(text(got.lee[0]!.body!)).to.equal('from node 2');
    expect(got.desk.map((e) => e.seq)).to.deep.equal([1, 2]);

    // Presence is shared: either node sees devices connected to the other.
    expect(await node1.presence.onlineDevices('org-a', 'dr-patel')).to.deep.equal(['patel-laptop']);
    expect(await node2.presence.onlineDevices('org-a', 'dr-lee')).to.deep.equal(['lee-desk', 'lee-phone']);
  });

  it('interleaved sends through both nodes get unique, gap-free sequence numbers, delivered in order', async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const a = node1.client({ userId: 'dr-lee', deviceId: 'a' });
    const b = node2.client({ userId: 'dr-patel', deviceId: 'b' });
    const watcher = node1.client({ userId: 'dr-kim', deviceId: 'k' });
    const seen: number[] = [];
    watcher.on('envelope', (e) => seen.push(e.seq));
    await Promise.all([a.connect(), b.connect(), watcher.connect()]);
    const team = await a.createConversation({ kind: 'group', memberUserIds: ['dr-patel', 'dr-kim'] });
    const acks = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).sendEnvelope(team.id, { body: bytes(`m${i}`) })));
    const seqs = acks.map((x) => x.seq).sort((x, y) => x - y);
    expect(seqs).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    await eventually(() => seen.length === 40, 'watcher gets all 40', 8000);
    expect(seen).to.deep.equal(seqs);
  });
});
