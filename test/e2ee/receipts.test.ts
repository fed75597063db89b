import { expect } from 'chai';
import { MemoryDeviceStore, type ChatMessage, type CurbsideClient, type DecryptionError, type Receipt, type UnavailableMessage } from '@curbside/client-sdk';
import { HubHarness, eventually } from '../support/hub.js';

interface Watch {
  client: CurbsideClient;
  messages: ChatMessage[];
  receipts: Receipt[];
  noise: Array<DecryptionError | UnavailableMessage>;
}

function watch(client: CurbsideClient): Watch {
  const w: Watch = { client, messages: [], receipts: [], noise: [] };
  client.on('message', (m) => w.messages.push(m));
  client.on('receipt', (r) => w.receipts.push(r));
  client.on('decryptionError', (e) => w.noise.push(e));
  client.on('unavailable', (u) => w.noise.push(u));
  return w;
}

describe('delivery and read receipts (encrypted)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('1:1: sent → delivered when decrypted → read when the app marks it; the sender’s other device stays quiet', async () => {
    const t = await harness.start('memory');
    const lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    const leeDesk = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-desk' }));
    const patel = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }));
    await Promise.all([lee, leeDesk, patel].map((w) => w.client.connect()));
    const conv = await lee.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.client.sendText(conv.id, 'K+ 6.8 — please review');
    expect(lee.client.messageStatus(ack.messageId)).to.deep.equal({ 'dr-patel': 'sent' });
    await eventually(() => lee.client.messageStatus(ack.messageId)?.['dr-patel'] === 'delivered', 'delivered receipt');
    await patel.client.markRead(conv.id, [patel.messages[0]!.messageId]);
    await eventually(() => lee.client.messageStatus(ack.messageId)?.['dr-patel'] === 'read', 'read receipt');
    expect(lee.receipts.map((r) => [r.messageId, r.userId, r.status])).to.deep.equal([
      [ack.messageId, 'dr-patel', 'delivered'],
      [ack.messageId, 'dr-patel', 'read'],
    ]);
    await new Promise((r) => setTimeout(r, 200));
    for (const w of [lee, leeDesk, patel]) expect(w.noise, 'receipts raise no errors or placeholders').to.deep.equal([]);
    expect(patel.messages.map((m) => m.text), 'receipts are not shown as messages').to.deep.equal(['K+ 6.8 — please review']);
  });

  it('markRead called from inside the message handler is sent (an app marks what it shows at once)', async () => {
    const t = await harness.start('memory');
    const lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    const patelClient = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const marked: Array<Promise<void>> = [];
    patelClient.on('message', (m) => marked.push(patelClient.markRead(m.conversationId, [m.messageId])));
    await Promise.all([lee.client.connect(), patelClient.connect()]);
    const conv = await lee.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.client.sendText(conv.id, 'seen at once');
    await eventually(() => lee.client.messageStatus(ack.messageId)?.['dr-patel'] === 'read', 'read receipt from inside the handler');
    expect(marked).to.have.length(1);
    await Promise.all(marked);
  });

  it('statuses and senders survive a restart: read after a reload is sent, and a receipt that arrives after a reload moves the status', async () => {
    const t = await harness.start('memory');
    const leeStore = new MemoryDeviceStore();
    const patelStore = new MemoryDeviceStore();
    let lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store: leeStore }));
    let patel = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store: patelStore }));
    await Promise.all([lee.client.connect(), patel.client.connect()]);
    const conv = await lee.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const ack = await lee.client.sendText(conv.id, 'Lactate 4.1, repeat at 16:00?');
    await eventually(() => lee.client.messageStatus(ack.messageId)?.['dr-patel'] === 'delivered', 'delivered before the restarts');
    const received = patel.messages[0]!;

    // Both apps restart; Lee's stays closed while Patel reads the message after his reload.
    await lee.client.close();
    await patel.client.close();
    patel = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store: patelStore }));
    await patel.client.connect();
    await patel.client.markRead(conv.id, [received.messageId]);

    lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store: leeStore }));
    await lee.client.connect();
    expect(lee.client.messageStatus(ack.messageId), 'the status kept from before the restart').to.be.an('object');
    await eventually(() => lee.client.messageStatus(ack.messageId)?.['dr-patel'] === 'read', 'the read receipt applied after the restart');
    expect(lee.receipts.map((r) => [r.messageId, r.status])).to.deep.equal([[ack.messageId, 'read']]);
  });

  it('care team: each member’s receipts reach only the sender, and statuses are per member', async () => {
    const t = await harness.start('memory');
    const lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    const patel = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }));
    const ortiz = watch(t.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' }));
    await Promise.all([lee, patel, ortiz].map((w) => w.client.connect()));
    const { teamId } = await lee.client.teams.create('Ward 4B', [{ userId: 'dr-patel' }, { userId: 'rn-ortiz' }]);
    const ack = await lee.client.sendText(teamId, 'Rounds at 8');
    await eventually(() => {
      const s = lee.client.messageStatus(ack.messageId);
      return s?.['dr-patel'] === 'delivered' && s['rn-ortiz'] === 'delivered';
    }, 'delivered by both');
    await ortiz.client.markRead(teamId, [ortiz.messages[0]!.messageId]);
    await eventually(() => lee.client.messageStatus(ack.messageId)?.['rn-ortiz'] === 'read', 'ortiz read it');
    expect(lee.client.messageStatus(ack.messageId)).to.deep.equal({ 'dr-patel': 'delivered', 'rn-ortiz': 'read' });
    await new Promise((r) => setTimeout(r, 200));
    for (const w of [lee, patel, ortiz]) expect(w.noise).to.deep.equal([]);
    expect(patel.receipts, 'other members do not see receipts meant for the sender').to.deep.equal([]);
  });
});
