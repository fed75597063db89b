import { expect } from 'chai';
import { DeliveryCursors } from '../../server/src/domain/delivery-cursors.js';
import { MemoryStorage } from '../../server/src/adapters/memory/storage.js';

const ORG = 'org-a';
const lee = { orgId: ORG, userId: 'dr-lee', deviceId: 'lee-phone' };

async function setup() {
  const storage = new MemoryStorage();
  const { conversation: mine } = await storage.createConversation({ orgId: ORG, kind: 'group', createdBy: 'dr-lee', memberUserIds: ['dr-kim'], now: 1 });
  const { conversation: theirs } = await storage.createConversation({ orgId: ORG, kind: 'group', createdBy: 'dr-kim', memberUserIds: ['dr-ito'], now: 1 });
  const writes: Array<{ deviceId: string; cursors: Array<{ conversationId: string; afterSeq: number }> }> = [];
  let fail = false;
  const recording = {
    getConversation: storage.getConversation.bind(storage),
    ackDelivered: async (orgId: string, deviceId: string, cursors: ReadonlyArray<{ conversationId: string; afterSeq: number }>) => {
      if (fail) throw new Error('database unreachable');
      writes.push({ deviceId, cursors: [...cursors] });
    },
  };
  return { mine, theirs, writes, recording, setFail: (v: boolean) => (fail = v) };
}

describe('DeliveryCursors: delivery acks merged and written in batches', () => {
  it('writes one cursor per device and conversation, the highest seq acked, only when flushed', async () => {
    const { mine, writes, recording } = await setup();
    const cursors = new DeliveryCursors({ storage: recording, flushMs: 60_000 });
    cursors.note(lee, [{ conversationId: mine.id, afterSeq: 3 }]);
    cursors.note(lee, [{ conversationId: mine.id, afterSeq: 7 }]);
    cursors.note(lee, [{ conversationId: mine.id, afterSeq: 5 }]); // late and lower: ignored
    expect(writes, 'nothing written before the flush').to.have.length(0);
    expect(cursors.size).to.equal(1);
    await cursors.flush();
    expect(writes).to.deep.equal([{ deviceId: 'lee-phone', cursors: [{ conversationId: mine.id, afterSeq: 7 }] }]);
    expect(cursors.size).to.equal(0);
    await cursors.close();
  });

  it("drops acks for conversations the device's user is not in (or that do not exist)", async () => {
    const { mine, theirs, writes, recording } = await setup();
    const cursors = new DeliveryCursors({ storage: recording, flushMs: 60_000 });
    cursors.note(lee, [
      { conversationId: mine.id, afterSeq: 2 },
      { conversationId: theirs.id, afterSeq: 9 },
      { conversationId: 'no-such-conversation', afterSeq: 1 },
    ]);
    cursors.note({ ...lee, orgId: 'org-b' }, [{ conversationId: mine.id, afterSeq: 4 }]); // another tenant
    await cursors.flush();
    expect(writes).to.deep.equal([{ deviceId: 'lee-phone', cursors: [{ conversationId: mine.id, afterSeq: 2 }] }]);
  });

  it('keeps acks whose write failed and writes them (merged with newer ones) next time', async () => {
    const { mine, writes, recording, setFail } = await setup();
    const cursors = new DeliveryCursors({ storage: recording, flushMs: 60_000 });
    cursors.note(lee, [{ conversationId: mine.id, afterSeq: 4 }]);
    setFail(true);
    let failed = false;
    await cursors.flush().catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(cursors.size, 'put back').to.equal(1);
    cursors.note(lee, [{ conversationId: mine.id, afterSeq: 6 }]);
    setFail(false);
    await cursors.flush();
    expect(writes).to.deep.equal([{ deviceId: 'lee-phone', cursors: [{ conversationId: mine.id, afterSeq: 6 }] }]);
    await cursors.close();
  });

  it('writes on its own after flushMs, and at once past maxPending', async () => {
    const { mine, theirs, writes, recording } = await setup();
    const timed = new DeliveryCursors({ storage: recording, flushMs: 20 });
    timed.note(lee, [{ conversationId: mine.id, afterSeq: 1 }]);
    await new Promise((r) => setTimeout(r, 200));
    expect(writes).to.have.length(1);
    const bounded = new DeliveryCursors({ storage: recording, flushMs: 60_000, maxPending: 2 });
    bounded.note(lee, [{ conversationId: mine.id, afterSeq: 2 }]);
    bounded.note({ ...lee, userId: 'dr-kim', deviceId: 'kim-phone' }, [{ conversationId: theirs.id, afterSeq: 3 }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(writes.map((w) => w.deviceId)).to.deep.equal(['lee-phone', 'lee-phone', 'kim-phone']);
    await Promise.all([timed.close(), bounded.close()]);
  });
});
