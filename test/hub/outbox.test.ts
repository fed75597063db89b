import { expect } from 'chai';
import { MemoryDeviceStore, isCurbsideError, type Envelope, type SendResult } from '@curbside/client-sdk';
import { HubHarness, bytes, eventually, text, type TestHub } from '../support/hub.js';

/** Dr Lee (on `store`) and Dr Patel, transport only, in a direct conversation; Patel's envelopes are collected. */
async function pair(t: TestHub, store: MemoryDeviceStore) {
  const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store, e2ee: false });
  const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
  const got: Envelope[] = [];
  patel.on('envelope', (e) => got.push(e));
  await Promise.all([lee.connect(), patel.connect()]);
  const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
  return { lee, patel, got, conv };
}

describe('the persisted outbox', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('a send queued when the app stopped goes out once when the device comes back', async () => {
    const t = await harness.start('real');
    const store = new MemoryDeviceStore();
    const { lee, got, conv } = await pair(t, store);

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

  it('close() settles sends started just before and after disconnect, and hands every one to the next client', async () => {
    const t = await harness.start('memory');
    // A store as slow to write as a disk or IndexedDB: the outbox entry lands after disconnect().
    class SlowStore extends MemoryDeviceStore {
      override async put<T>(...args: Parameters<MemoryDeviceStore['put']>): Promise<void> {
        await new Promise((r) => setTimeout(r, 100));
        return super.put<T>(...(args as Parameters<MemoryDeviceStore['put']>));
      }
    }
    const store = new SlowStore();
    const { lee, got, conv } = await pair(t, store);

    const outcomes: Record<string, unknown> = {};
    const watch = (name: string, p: Promise<unknown>) =>
      p.then(
        () => (outcomes[name] = 'acked'),
        (e: unknown) => (outcomes[name] = isCurbsideError(e) ? `${e.code}${e.details?.queued ? ' queued' : ''}` : String(e)),
      );
    const before = watch('before', lee.sendEnvelope(conv.id, { body: bytes('just before') }, { clientMessageId: 'before-1' }));
    lee.disconnect();
    const after = watch('after', lee.sendEnvelope(conv.id, { body: bytes('just after') }, { clientMessageId: 'after-1' }));
    await lee.close();
    // When close() resolves both are settled and persisted (close() used to return before the writes
    // landed, and the next client restored an outbox without them).
    expect((await store.list('outbox')).map(([id]) => id).sort()).to.deep.equal(['after-1', 'before-1']);
    await Promise.all([before, after]);
    expect(outcomes).to.deep.equal({ before: 'NOT_CONNECTED queued', after: 'NOT_CONNECTED queued' });

    const again = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store, e2ee: false });
    await again.connect();
    await eventually(() => got.length === 2, 'both delivered by the next client');
    expect(got.map((e) => text(e.body!)).sort()).to.deep.equal(['just after', 'just before']);
    await eventually(async () => (await store.list('outbox')).length === 0, 'outbox emptied');
    expect(await t.storage.envelopesAfter('org-a', conv.id, 0, 10)).to.have.length(2);
  });
});
