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
    }, { maxBatch: 100 });
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
    }, { maxBatch: 2 });
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
    const inserts = new GroupCommit<number>(write, { maxBatch: 3, lane });
    const updates = new GroupCommit<number>(write, { maxBatch: 3, lane, waitMs: 1 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? inserts : updates).submit(i)));
    expect(most).to.equal(1);
    // A failed write does not stop the lane.
    await lane.run(() => Promise.reject(new Error('x'))).catch(() => {});
    expect(await lane.run(async () => 'after')).to.equal('after');
  });

  it('with a bounded wait, items a moment apart share one write; a full batch goes at once; nobody is answered before its write is', async () => {
    const batches: number[][] = [];
    let finish!: () => void;
    const commit = new GroupCommit<number>(
      async (items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((r) => (finish = r));
        return [];
      },
      { maxBatch: 4, waitMs: 60_000 },
    );
    let answered = 0;
    const first = commit.submit(1).then(() => answered++);
    // 2 and 3 come a few event-loop turns later (as concurrent senders do), within the wait.
    await new Promise((r) => setTimeout(r, 5));
    const more = [2, 3].map((n) => commit.submit(n).then(() => answered++));
    await new Promise((r) => setTimeout(r, 5));
    expect(batches, 'the wait is not over and the batch is not full: nothing written yet').to.deep.equal([]);
    // The fourth fills the batch: written without waiting out the wait.
    const fourth = commit.submit(4).then(() => answered++);
    await new Promise((r) => setTimeout(r, 5));
    expect(batches).to.deep.equal([[1, 2, 3, 4]]);
    expect(answered, 'the batch is written but its command has not answered').to.equal(0);
    finish();
    await Promise.all([first, ...more, fourth]);
    expect(answered).to.equal(4);
    expect(commit.stats()).to.deep.equal({ batches: 1, items: 4 });

    // A lone item is written once the (short) wait is over.
    const lone: number[][] = [];
    const short = new GroupCommit<number>(async (items) => (lone.push(items), []), { maxBatch: 4, waitMs: 2 });
    await short.submit(7);
    expect(lone).to.deep.equal([[7]]);
  });
});
