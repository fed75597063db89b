import { expect } from 'chai';
import { GroupCommit, WriteLane } from '../../server/src/adapters/mongo/group-commit.js';

/** A write the test finishes by hand, to control what is in flight. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('GroupCommit and WriteLane (logic)', () => {
  it('writes submitted together go as one batch; later ones wait for the write in flight and go together', async () => {
    const batches: number[][] = [];
    const first = gate();
    const commit = new GroupCommit<number>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await first.opened;
      return [];
    }, 100);
    const a = [1, 2, 3].map((n) => commit.submit(n));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const b = [4, 5].map((n) => commit.submit(n));
    first.open();
    await Promise.all([...a, ...b]);
    expect(batches).to.deep.equal([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('each submitter gets its own outcome; a failed write fails its whole batch and the next batch goes on', async () => {
    let call = 0;
    const commit = new GroupCommit<string>(async (items) => {
      call++;
      if (call === 1) return items.map((x) => (x === 'bad' ? new Error(`refused ${x}`) : undefined));
      if (call === 2) throw new Error('connection lost');
      return [];
    }, 2);
    const outcomes = await Promise.allSettled(['ok', 'bad', 'x', 'y', 'z'].map((x) => commit.submit(x)));
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as Error).message))).to.deep.equal([
      'ok',
      'refused bad',
      'connection lost',
      'connection lost',
      'ok',
    ]);
  });

  it('group commits sharing a lane never have two writes in flight', async () => {
    const lane = new WriteLane();
    let inFlight = 0;
    let most = 0;
    const write = async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return [];
    };
    const inserts = new GroupCommit<number>(write, 3, lane);
    const updates = new GroupCommit<number>(write, 3, lane);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? inserts : updates).submit(i)));
    expect(most).to.equal(1);
    // A failed write does not stop the lane.
    await lane.run(() => Promise.reject(new Error('x'))).catch(() => {});
    expect(await lane.run(async () => 'after')).to.equal('after');
  });
});
