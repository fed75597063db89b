import { expect } from 'chai';
import { MemoryDeviceStore, type Envelope } from '@curbside/client-sdk';
import { HubHarness, eventually, type Backend } from '../support/hub.js';
import { SWEEP_GRACE_MS } from '../../server/src/ports/storage-rules.js';

for (const backend of ['memory', 'real'] as Backend[]) {
  describe(`per-device delivery state and retention (${backend === 'memory' ? 'memory adapters' : 'Redis + Mongo-wire DB'})`, function () {
    const harness = new HubHarness();
    afterEach(() => harness.cleanup());

    it('an envelope stays until every device it was for acked it, or its retention ends', async () => {
      const t = await harness.start(backend, undefined, (c) => {
        c.sweepIntervalMs = 0; // swept by hand below
        c.retentionMs = 60 * 60_000;
      });
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      const tabletStore = new MemoryDeviceStore();
      const tablet = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { store: tabletStore });
      const tabletGot: Envelope[] = [];
      tablet.on('envelope', (e) => tabletGot.push(e));
      await Promise.all([lee.connect(), patel.connect(), tablet.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      const early = [await lee.sendText(conv.id, 'one'), await lee.sendText(conv.id, 'two'), await lee.sendText(conv.id, 'three')].map((a) => a.seq);
      await eventually(() => tabletGot.filter((e) => e.body && e.kind !== 'receipt').length === 3, 'tablet got all three');
      await new Promise((r) => setTimeout(r, 1200)); // processed seqs are acked in batches
      tablet.disconnect(); // the tablet stops acking from here on

      const late = (await lee.sendText(conv.id, 'four (tablet offline)')).seq;
      await new Promise((r) => setTimeout(r, 1200));
      // Past the sweep's grace (nothing younger goes: it may sit just above a node's seq base).
      await t.hub.sweep(Date.now() + SWEEP_GRACE_MS);
      const seqs = async () => (await t.storage.envelopesAfter('org-a', conv.id, 0, 100)).map((e) => e.seq);
      const afterSweep = await seqs();
      for (const s of early) expect(afterSweep, `seq ${s} was acked by every device it was for`).to.not.include(s);
      expect(afterSweep, 'what the tablet never acked stays').to.include(late);

      // Past retention it goes too, but the conversation's latest envelope always stays.
      await t.hub.sweep(Date.now() + 2 * 60 * 60_000);
      const expired = await seqs();
      expect(expired).to.have.length(1);
      expect(expired[0]).to.equal(Math.max(...afterSweep));

      // The tablet comes back: the hub no longer has what expired, and the SDK moves past it cleanly.
      const back = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { store: tabletStore });
      await back.connect();
      const next = await lee.sendText(conv.id, 'five');
      await eventually(async () => back.cursor(conv.id) >= next.seq, 'the tablet caught up to the newest seq');
    });
  });
}
