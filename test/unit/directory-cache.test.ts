/**
 * `client.directory`'s cache (client-sdk/src/directory.ts): one request for concurrent lookups of the
 * same users, answers from the cache until they are five minutes old, `fresh` asks again, and a
 * user the hub knows nothing of is `{ userId }`.
 */
import { expect } from 'chai';
import { Directory, type HubApi } from '@curbside/client-sdk';
import type { DirectoryProfile } from '@curbside/shared';

function fakeHub(profiles: Record<string, DirectoryProfile>) {
  const asked: string[][] = [];
  const api = {
    directoryLookup: async (userIds: readonly string[]) => {
      asked.push([...userIds]);
      await new Promise((r) => setTimeout(r, 5));
      return userIds.flatMap((u) => (profiles[u] ? [profiles[u]] : []));
    },
  } as unknown as HubApi;
  return { api, asked };
}

describe('client.directory cache', function () {
  const patel = { userId: 'dr-patel', displayName: 'Anita Patel', role: 'Cardiology registrar' };

  it('concurrent lookups share one request; later ones answer from the cache until the profile is five minutes old', async () => {
    const { api, asked } = fakeHub({ 'dr-patel': patel });
    let now = 1_000_000;
    const directory = new Directory(api, () => now);
    const [a, b] = await Promise.all([directory.lookup(['dr-patel', 'nobody']), directory.lookup(['nobody', 'dr-patel'])]);
    expect(a).to.deep.equal([patel, { userId: 'nobody' }]);
    expect(b).to.deep.equal([{ userId: 'nobody' }, patel]);
    expect(asked).to.deep.equal([['dr-patel', 'nobody']]);
    expect(directory.cached('dr-patel')).to.deep.equal(patel);

    now += 4 * 60_000;
    expect(await directory.profile('dr-patel')).to.deep.equal(patel);
    expect(asked).to.have.length(1);
    now += 2 * 60_000;
    await directory.profile('dr-patel');
    expect(asked).to.deep.equal([['dr-patel', 'nobody'], ['dr-patel']]);
    await directory.lookup(['dr-patel'], { fresh: true });
    expect(asked).to.have.length(3);
  });

  it('a failed lookup is not cached: the next one asks again', async () => {
    let fail = true;
    const asked: string[][] = [];
    const api = {
      directoryLookup: async (userIds: readonly string[]) => {
        asked.push([...userIds]);
        if (fail) throw new Error('NOT_CONNECTED');
        return [patel];
      },
    } as unknown as HubApi;
    const directory = new Directory(api);
    let error: unknown;
    await directory.lookup(['dr-patel']).catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/NOT_CONNECTED/);
    expect(directory.cached('dr-patel')).to.equal(undefined);
    fail = false;
    expect(await directory.lookup(['dr-patel'])).to.deep.equal([patel]);
    expect(asked).to.have.length(2);
  });
});
