/**
 * The deadline on the hub's Redis reads (`unavailableAfter`, server/src/errors.ts: directory tags,
 * revocations). A node whose event loop was blocked past the deadline must not take its own lag for
 * Redis being down: under overload that turned every late reply into a database read instead
 * (docs/benchmarks.md, issue #19, "Open-loop steps"). Real Redis: its reply lands in the socket while
 * this process is busy, as it does on a loaded hub.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ErrorCode } from '@curbside/shared';
import { HubError, unavailableAfter } from '../../server/src/errors.js';
import { serviceUrls } from '../support/services.js';
import { blockEventLoop } from '../support/busy.js';

describe('Redis read deadline (real Redis)', function () {
  let redis: Redis;
  before(async function () {
    redis = new Redis(serviceUrls().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  after(() => redis.disconnect());

  it('a reply that arrived while the event loop was blocked past the deadline wins over the late timer', async function () {
    for (let round = 0; round < 5; round++) {
      const answer = unavailableAfter(redis.ping(), 20, 'tags unreachable');
      blockEventLoop(200); // Redis answers within a millisecond; the 20 ms timer is long overdue when the loop turns
      expect(await answer, `round ${round}`).to.equal('PONG');
    }
  });

  it('a reply that does not come in time is still UNAVAILABLE', async function () {
    const never = new Promise<string>(() => {});
    const err = await unavailableAfter(never, 50, 'tags unreachable').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(HubError);
    expect((err as HubError).code).to.equal(ErrorCode.UNAVAILABLE);
    expect((err as HubError).message).to.equal('tags unreachable');
  });

  it('a failed read is UNAVAILABLE too', async function () {
    const err = await unavailableAfter(Promise.reject(new Error('ECONNRESET')), 1000, 'tags unreachable').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as HubError).code).to.equal(ErrorCode.UNAVAILABLE);
  });
});
