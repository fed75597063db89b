import { expect } from 'chai';
import { MemoryDeviceStore, type ChatMessage, type DecryptionError } from '@curbside/client-sdk';
import { RatchetSession } from '../../client-sdk/src/crypto/index.js';
import { HubHarness, eventually, sharedBackend } from '../support/hub.js';
import { expectNotStored } from '../support/canary.js';

describe('end-to-end encryption: limits and the plaintext canary', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('a forward gap above 2000 is a clean error; said by two messages in a row, the session repairs itself', async () => {
    const t = await harness.start('memory');
    const leeStore = new MemoryDeviceStore();
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store: leeStore });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const got: ChatMessage[] = [];
    const errors: DecryptionError[] = [];
    const leeGot: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    patel.on('decryptionError', (e) => errors.push(e));
    lee.on('message', (m) => leeGot.push(m));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, 'first');
    await patel.sendText(conv.id, 'confirms the session');
    await eventually(() => got.length === 1 && leeGot.length === 1, 'session confirmed both ways');
    const stored = async () => t.storage.envelopesAfter('org-a', conv.id, 0, 100);
    await eventually(async () => (await stored()).some((e) => e.senderDeviceId === 'lee-phone' && e.kind === 'receipt'), "lee's delivered receipt went out");

    // Lee's device loses 2001 messages' worth of chain: advance its stored session without sending.
    const key = 'dr-patel\npatel-laptop';
    const sessions = await leeStore.get<{ sessions: Uint8Array[] }>('sessions', key);
    const session = RatchetSession.deserialize(sessions!.sessions[0]!);
    for (let i = 0; i < 2001; i++) session.encrypt(new Uint8Array(1));
    await leeStore.put('sessions', key, { sessions: [session.serialize(), ...sessions!.sessions.slice(1)] });

    await lee.sendText(conv.id, 'too far ahead');
    await eventually(() => errors.length === 1, 'gap error');
    expect(errors[0]!.reason).to.equal('GAP_TOO_LARGE');
    // One header saying so is no evidence (a flipped counter byte says it too): nothing is reset yet.
    const fromPatel = async () => (await stored()).filter((e) => e.senderDeviceId === 'patel-laptop' && e.kind !== 'receipt').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(await fromPatel(), 'no repair after one').to.equal(1);
    await lee.sendText(conv.id, 'still too far ahead');
    await eventually(() => errors.length === 2, 'second gap error');
    expect(errors[1]!.reason).to.equal('GAP_TOO_LARGE');
    await eventually(async () => (await fromPatel()) === 2, 'repair sent');
    await lee.sendText(conv.id, 'after repair');
    await eventually(() => got.length === 2, 'readable again');
    expect(got.map((m) => m.text)).to.deep.equal(['first', 'after repair']);
  });

  it('a known plaintext, urgent or not, never appears in the database or the hub logs (Redis + Mongo-wire DB)', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const canary = 'CANARY-e2ee-3f9a1c: potassium 6.8, patient in bed 12';
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const leeDesk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const received: string[] = [];
    patel.on('message', (m) => received.push(m.text));
    leeDesk.on('message', (m) => received.push(m.text));
    await Promise.all([lee.connect(), leeDesk.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, canary);
    await patel.sendText(conv.id, `re: ${canary}`, { priority: 'urgent' });
    await eventually(() => received.filter((r) => r.includes(canary)).length === 3, 'delivered to all devices');

    const needles = [canary, 'CANARY-e2ee-3f9a1c', Buffer.from(canary).toString('base64'), Buffer.from(canary).toString('hex')];
    const scanned = await expectNotStored(shared.dbName, needles);
    expect(scanned.collections).to.include.members(['envelopes', 'alerts', 'alert_timers']);
    expect(scanned.documents).to.be.greaterThan(5);
    const logs = t.logs.text();
    expect(logs.length).to.be.greaterThan(100);
    expect(logs).to.not.include('CANARY-e2ee');
    expect(logs).to.not.include(Buffer.from(canary).toString('base64'));
  });
});
