import { expect } from 'chai';
import { MemoryDeviceStore, isCurbsideError, type Envelope, type SendResult } from '@curbside/client-sdk';
import { HubHarness, bytes, eventually, text } from '../support/hub.js';

describe('the persisted outbox', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('a send queued when the app stopped goes out once when the device comes back', async () => {
    const t = await harness.start('real');
    const store = new MemoryDeviceStore();
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store, e2ee: false });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    const got: Envelope[] = [];
    patel.on('envelope', (e) => got.push(e));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    // Offline: the send is accepted and kept, then the app shuts down before any ack.
    lee.disconnect();
    await eventually(() => !lee.connected, 'lee offline');
    const pending = lee.sendEnvelope(conv.id, { body: bytes('queued while offline') }, { clientMessageId: 'offline-1' });
    await eventually(async () => (await store.list('outbox')).length === 1, 'persisted');
    await lee.close();
    const err = await pending.catch((e: unknown) => e);
    expect(isCurbsideError(err) && err.code).to.equal('NOT_CONNECTED');
    expect(isCurbsideError(err) && err.details).to.deep.equal({ queued: true });

    // The app starts again with the same device store.
    const again = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store, e2ee: false });
    const sent: SendResult[] = [];
    again.on('sent', (s) => sent.push(s.result));
    await again.connect();
    await eventually(() => got.length === 1 && sent.length === 1, 'delivered from the restored outbox');
    expect(text(got[0]!.body!)).to.equal('queued while offline');
    expect(got[0]!.clientMessageId).to.equal('offline-1');
    expect(await store.list('outbox')).to.deep.equal([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(got).to.have.length(1);
    expect(await t.storage.envelopesAfter('org-a', conv.id, 0, 10)).to.have.length(1);
  });
});
