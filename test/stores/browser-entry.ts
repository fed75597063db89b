/**
 * The page side of indexeddb.test.ts, bundled by esbuild for Chromium: the DeviceStore contract over
 * IndexedDbDeviceStore, plus helpers for the persistence tests that span tabs and browser restarts.
 * Everything is reached through `globalThis.__curbsideStores` with page.evaluate.
 */
import { IndexedDbDeviceStore } from '../../client-sdk/src/stores/indexeddb.js';
import { cursorStoreFrom } from '../../client-sdk/src/stores/cursors.js';
import { deleteOp, isDeviceStoreError, putOp, type DeviceStore } from '../../client-sdk/src/stores/store.js';
import { awkwardValue, byteCases, checkEqual, deviceStoreContract, patternBytes, runCase, sessionLike, type CaseResult, type StoreUnderTest } from './device-store.contract.js';

export const indexedDbUnderTest: StoreUnderTest = {
  name: 'IndexedDbDeviceStore',
  persistent: true,
  open: (name) => IndexedDbDeviceStore.open(name),
  destroy: (name) => IndexedDbDeviceStore.destroy(name),
};

export interface Outcome {
  ok: boolean;
  error?: string;
}

async function outcome(body: () => Promise<void>): Promise<Outcome> {
  try {
    await body();
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

let held: DeviceStore | undefined;

const harness = {
  caseNames: (): string[] => deviceStoreContract(indexedDbUnderTest).map((c) => c.name),

  async runCase(name: string): Promise<CaseResult> {
    const c = deviceStoreContract(indexedDbUnderTest).find((x) => x.name === name);
    if (!c) return { name, ok: false, error: `no contract case named ${JSON.stringify(name)} in the page`, ms: 0 };
    return runCase(c);
  },

  /** Write a known data set to the store `name` and close it. */
  seed: (name: string): Promise<Outcome> =>
    outcome(async () => {
      const store = await IndexedDbDeviceStore.open(name);
      await store.put('identity', 'self', { publicKey: patternBytes(32, 1), secretKey: patternBytes(64, 2) });
      await store.put('meta', 'awkward', awkwardValue());
      for (const [label, bytes] of byteCases()) await store.put('prekeys', label, bytes);
      await store.transaction([putOp('sessions', 'peer/1', sessionLike(9)), deleteOp('prekeys', 'empty'), putOp('cursors', 'conv-1', 41)]);
      await store.close();
    }),

  /** Check the store `name` holds exactly what `seed` wrote. */
  verify: (name: string): Promise<Outcome> =>
    outcome(async () => {
      const store = await IndexedDbDeviceStore.open(name);
      try {
        checkEqual(await store.get('identity', 'self'), { publicKey: patternBytes(32, 1), secretKey: patternBytes(64, 2) });
        checkEqual(await store.get('meta', 'awkward'), awkwardValue());
        checkEqual(await store.get('sessions', 'peer/1'), sessionLike(9));
        const prekeys = new Map(await store.list('prekeys'));
        for (const [label, bytes] of byteCases()) checkEqual(prekeys.get(label), label === 'empty' ? undefined : bytes, `prekeys/${label}`);
        checkEqual(await cursorStoreFrom(store).load(), { 'conv-1': 41 });
      } finally {
        await store.close();
      }
    }),

  /** Open `name` and keep it open in this page. */
  hold: (name: string): Promise<Outcome> =>
    outcome(async () => {
      held = await IndexedDbDeviceStore.open(name);
      await held.put('meta', 'held', true);
    }),

  /** What a read on the held store does now: `ok`, or the DeviceStoreError code. */
  async probeHeld(): Promise<string> {
    if (!held) return 'nothing held';
    try {
      await held.get('meta', 'held');
      return 'ok';
    } catch (e) {
      return isDeviceStoreError(e) ? e.code : String(e);
    }
  },

  destroy: (name: string): Promise<Outcome> => outcome(() => IndexedDbDeviceStore.destroy(name)),

  /** The database names on this origin (to check destroy really deletes). */
  async databases(): Promise<string[]> {
    return (await indexedDB.databases()).map((d) => d.name ?? '');
  },
};

export type StoresHarness = typeof harness;
(globalThis as { __curbsideStores?: StoresHarness }).__curbsideStores = harness;
