import { expect } from 'chai';
import { backoffMs, jitter, withTimeout } from '@curbside/shared';

describe('timing: one backoff and one timeout for the hub, the SDK and the scripts', () => {
  it('backoffMs doubles from baseMs, stops at maxMs, and jitters within ½× to 1½× unless told not to', () => {
    const plain = [0, 1, 2, 3, 4, 5, 40].map((a) => backoffMs(a, { baseMs: 250, maxMs: 3000, jitter: false }));
    expect(plain).to.deep.equal([250, 500, 1000, 2000, 3000, 3000, 3000]);
    expect(backoffMs(-3, { baseMs: 250, maxMs: 3000, jitter: false }), 'a negative attempt is the first').to.equal(250);
    for (let i = 0; i < 200; i++) {
      const ms = backoffMs(2, { baseMs: 100, maxMs: 10_000 });
      expect(ms).to.be.within(200, 600);
      expect(jitter(1000)).to.be.within(500, 1500);
    }
  });

  it('withTimeout settles with the promise, or rejects with the given error, and leaves no timer behind', async () => {
    expect(await withTimeout(Promise.resolve(7), 1000, () => new Error('late'))).to.equal(7);
    const never = new Promise<number>(() => {});
    const err = await withTimeout(never, 20, () => new Error('no answer in 20 ms')).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error).with.property('message', 'no answer in 20 ms');
    const failed = await withTimeout(Promise.reject(new Error('boom')), 1000, () => new Error('late')).catch((e: Error) => e.message);
    expect(failed).to.equal('boom');
    // A settled race clears its timer: nothing keeps the event loop busy for the full second.
    const handles = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await withTimeout(Promise.resolve(1), 60_000, () => new Error('late'));
    expect((process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout').length).to.equal(handles);
  });
});
