/**
 * The per-key queue the MongoDB adapter runs a conversation's appends and team changes on
 * (`server/src/adapters/mongo/keyed-queue.ts`): one at a time per key, in call order; other keys do
 * not wait; a failure does not stall the key; the map does not keep keys with nothing queued.
 */
import { expect } from 'chai';
import { KeyedQueue } from '../../server/src/adapters/mongo/keyed-queue.js';

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('KeyedQueue', function () {
  it('runs calls for one key one at a time, in call order', async function () {
    const queue = new KeyedQueue();
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const gates = [gate(), gate(), gate()];
    const calls = gates.map((g, i) =>
      queue.run('c1', async () => {
        running++;
        most = Math.max(most, running);
        log.push(`start ${i}`);
        await g.promise;
        log.push(`end ${i}`);
        running--;
        return i;
      }),
    );
    // Opened in reverse: each still waits for the one called before it.
    for (const g of [...gates].reverse()) g.open();
    expect(await Promise.all(calls)).to.deep.equal([0, 1, 2]);
    expect(most).to.equal(1);
    expect(log).to.deep.equal(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('does not hold one key behind another', async function () {
    const queue = new KeyedQueue();
    const held = gate();
    const slow = queue.run('c1', () => held.promise.then(() => 'c1'));
    expect(await queue.run('c2', async () => 'c2')).to.equal('c2');
    held.open();
    expect(await slow).to.equal('c1');
  });

  it('goes on with the next call after one fails, and forgets keys with nothing queued', async function () {
    const queue = new KeyedQueue();
    const failed = queue.run('c1', async () => {
      throw new Error('insert refused');
    });
    const next = queue.run('c1', async () => 'next');
    expect(queue.size).to.equal(1);
    await failed.then(
      () => expect.fail('the failure reaches its caller'),
      (err: Error) => expect(err.message).to.equal('insert refused'),
    );
    expect(await next).to.equal('next');
    expect(queue.size).to.equal(0);
  });
});
