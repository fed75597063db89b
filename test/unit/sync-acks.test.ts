import { expect } from 'chai';
import { SYNC_ACK_DELAY_MS, SYNC_ACK_MIN_INTERVAL_MS, syncAckDelayMs, type Envelope } from '@curbside/shared';
import { MemoryCursorStore } from '@curbside/client-sdk';
import { Sync } from '../../client-sdk/src/hub/sync.js';
import type { HubConnection } from '../../client-sdk/src/hub/connection.js';

describe('sync:ack cadence: a device acks soon after a quiet spell, and at most once per interval while messages keep coming', () => {
  it('syncAckDelayMs: the short delay after a quiet spell, the rest of the interval right after an ack', () => {
    expect(syncAckDelayMs(10_000, -Infinity)).to.equal(SYNC_ACK_DELAY_MS);
    expect(syncAckDelayMs(10_000, 10_000)).to.equal(SYNC_ACK_MIN_INTERVAL_MS);
    expect(syncAckDelayMs(13_000, 10_000)).to.equal(SYNC_ACK_MIN_INTERVAL_MS - 3_000);
    expect(syncAckDelayMs(14_900, 10_000), 'never sooner than the short delay').to.equal(SYNC_ACK_DELAY_MS);
    expect(syncAckDelayMs(60_000, 10_000)).to.equal(SYNC_ACK_DELAY_MS);
  });

  it('the SDK merges what arrives during the interval into one ack, sent when the interval ends, with the highest seq; a stopped client keeps no ack timer and acks on its next connect', async function () {
    this.timeout(2 * SYNC_ACK_MIN_INTERVAL_MS + 10_000);
    const acks: Array<{ at: number; cursors: Array<{ conversationId: string; afterSeq: number }> }> = [];
    const connection = {
      connected: true,
      request: async (_event: string, payload: { cursors: Array<{ conversationId: string; afterSeq: number }> }) => {
        acks.push({ at: Date.now(), cursors: payload.cursors });
        return {};
      },
    } as unknown as HubConnection;
    const sync = new Sync({ connection, cursors: new MemoryCursorStore(), handle: async () => {}, isDeferral: () => false, synced: () => {}, error: (e) => expect.fail(e.message), failed: (e) => expect.fail(e.message) });
    await sync.prepare();
    const envelope = (seq: number): Envelope => ({ messageId: `m${seq}`, conversationId: 'c1', seq, senderUserId: 'dr-lee', senderDeviceId: 'lee-phone', clientMessageId: `cm${seq}`, sentAt: Date.now() });
    const t0 = Date.now();
    sync.receiveLive(envelope(1));
    await until(() => acks.length === 1);
    expect(acks[0]!.cursors).to.deep.equal([{ conversationId: 'c1', afterSeq: 1 }]);
    expect(acks[0]!.at - t0, 'the first ack after a quiet spell goes after the short delay').to.be.lessThan(SYNC_ACK_MIN_INTERVAL_MS);
    // Three more while the interval runs: no ack until it ends, then one with the highest seq.
    for (const seq of [2, 3, 4]) {
      sync.receiveLive(envelope(seq));
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(acks, 'nothing more during the interval').to.have.length(1);
    await until(() => acks.length === 2);
    expect(acks[1]!.cursors).to.deep.equal([{ conversationId: 'c1', afterSeq: 4 }]);
    expect(acks[1]!.at - acks[0]!.at).to.be.at.least(SYNC_ACK_MIN_INTERVAL_MS - 5);
    // A client stopped with an ack pending keeps no timer running; the next connect sends it.
    sync.receiveLive(envelope(5));
    await sync.settled();
    const timers = () => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    sync.stop();
    expect(timers(), 'the ack timer is cleared').to.equal(before - 1);
    await sync.prepare();
    await until(() => acks.length === 3);
    expect(acks[2]!.cursors).to.deep.equal([{ conversationId: 'c1', afterSeq: 5 }]);
  });
});

async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + SYNC_ACK_MIN_INTERVAL_MS + 5_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
