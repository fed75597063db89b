/**
 * One contract for every DirectoryTags implementation (MemoryDirectoryTags, RedisDirectoryTags on a
 * real Redis), then what only the shared store does: tags seen by several nodes, and a store that
 * lost its data handing out new tags, never old ones.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { DirectoryTags } from '../../server/src/ports/directory-tags.js';
import { MemoryDirectoryTags } from '../../server/src/adapters/memory/directory-tags.js';
import { RedisDirectoryTags } from '../../server/src/adapters/redis/directory-tags.js';
import { serviceUrls, uniqueName } from '../support/services.js';

interface Implementation {
  name: string;
  /** Two handles on one store (two hub nodes); `make` is called once per test. */
  make(): { a: DirectoryTags; b: DirectoryTags };
  after(): Promise<void>;
}

const redisClients: Redis[] = [];
function redisTags(prefix: string): DirectoryTags {
  const redis = new Redis(serviceUrls().redisUrl, { maxRetriesPerRequest: 1 });
  redisClients.push(redis);
  return new RedisDirectoryTags({ redis, keyPrefix: prefix });
}

const implementations: Implementation[] = [
  {
    name: 'MemoryDirectoryTags',
    make: () => {
      const one = new MemoryDirectoryTags();
      return { a: one, b: one };
    },
    after: async () => {},
  },
  {
    name: 'RedisDirectoryTags (real Redis)',
    make: () => {
      const prefix = `${uniqueName('dirtags')}:`;
      return { a: redisTags(prefix), b: redisTags(prefix) };
    },
    after: async () => {
      await Promise.all(redisClients.splice(0).map((r) => r.quit().catch(() => r.disconnect())));
    },
  },
];

for (const impl of implementations) {
  describe(`directory tags contract: ${impl.name}`, () => {
    afterEach(() => impl.after());

    it('gives every user a tag, the same one on every read until it is bumped', async () => {
      const { a, b } = impl.make();
      const first = await a.read('org-1', ['dr-ito', 'dr-okafor']);
      expect(first).to.have.length(2);
      expect(first[0]).to.be.a('string').and.not.equal(first[1]);
      expect(await a.read('org-1', ['dr-okafor', 'dr-ito'])).to.deep.equal([first[1], first[0]]);
      expect(await b.read('org-1', ['dr-ito']), 'another node reads the same tag').to.deep.equal([first[0]]);
    });

    it('a bump gives a new tag that every node sees, and leaves other users alone', async () => {
      const { a, b } = impl.make();
      const [ito, okafor] = await a.read('org-1', ['dr-ito', 'dr-okafor']);
      await b.bump('org-1', 'dr-ito');
      const [ito2, okafor2] = await a.read('org-1', ['dr-ito', 'dr-okafor']);
      expect(ito2).to.not.equal(ito);
      expect(okafor2).to.equal(okafor);
      await a.bump('org-1', 'dr-ito');
      const [ito3] = await b.read('org-1', ['dr-ito']);
      expect(ito3).to.not.equal(ito2);
      expect(ito3).to.not.equal(ito);
    });

    it('keeps organisations apart', async () => {
      const { a } = impl.make();
      const [one] = await a.read('org-1', ['dr-ito']);
      const [two] = await a.read('org-2', ['dr-ito']);
      expect(one).to.not.equal(two);
      await a.bump('org-2', 'dr-ito');
      expect(await a.read('org-1', ['dr-ito'])).to.deep.equal([one]);
    });

    it('answers an empty list with an empty list', async () => {
      const { a } = impl.make();
      expect(await a.read('org-1', [])).to.deep.equal([]);
    });
  });
}

describe('RedisDirectoryTags on a real Redis: what only a shared store does', () => {
  afterEach(async () => {
    await Promise.all(redisClients.splice(0).map((r) => r.quit().catch(() => r.disconnect())));
  });

  it('two nodes reading a user without a tag at the same time agree on one tag', async () => {
    const prefix = `${uniqueName('dirtags')}:`;
    const nodes = Array.from({ length: 8 }, () => redisTags(prefix));
    const tags = await Promise.all(nodes.map((n) => n.read('org-1', ['dr-new'])));
    expect(new Set(tags.map((t) => t[0])).size, 'one tag for everyone').to.equal(1);
  });

  it('after the store lost its data, a user gets a tag no node has seen before', async () => {
    const prefix = `${uniqueName('dirtags')}:`;
    const node = redisTags(prefix);
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const [tag] = await node.read('org-1', ['dr-ito']);
      expect(seen.has(tag!), 'an old tag came back').to.equal(false);
      seen.add(tag!);
      // What a Redis restart without persistence does to our keys.
      const redis = redisClients[0]!;
      const keys = await redis.keys(`${prefix}*`);
      expect(keys.length, 'the tag is stored under our prefix').to.be.greaterThan(0);
      await redis.del(...keys);
    }
  });

  it('tags expire (so changes made behind the hub are seen eventually)', async () => {
    const prefix = `${uniqueName('dirtags')}:`;
    const redis = new Redis(serviceUrls().redisUrl, { maxRetriesPerRequest: 1 });
    redisClients.push(redis);
    const tags = new RedisDirectoryTags({ redis, keyPrefix: prefix, ttlMs: 60_000 });
    await tags.read('org-1', ['dr-ito']);
    await tags.bump('org-1', 'dr-okafor');
    for (const key of await redis.keys(`${prefix}*`)) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).to.be.within(1, 60_000);
    }
  });
});
