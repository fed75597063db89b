import type { CursorStore } from '../cursor-store.js';
import { DeviceStoreError, type DeviceStore } from './store.js';

/**
 * A {@link CursorStore} kept in the `cursors` namespace of a {@link DeviceStore}, so sync cursors
 * persist next to the device's keys (one entry per conversation id, the value its seq).
 * Entries that are not non-negative safe integers are skipped by `load()`: the client then resyncs
 * that conversation from the start, which is always safe.
 *
 * @example
 * ```ts
 * const store = await IndexedDbDeviceStore.open(deviceId);
 * const client = new CurbsideClient({ url, token, cursorStore: cursorStoreFrom(store) });
 * ```
 */
export function cursorStoreFrom(store: DeviceStore): CursorStore {
  return {
    async load(): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      for (const [conversationId, seq] of await store.list<unknown>('cursors')) {
        if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) {
          Object.defineProperty(out, conversationId, { value: seq, enumerable: true, writable: true, configurable: true });
        }
      }
      return out;
    },
    async save(conversationId: string, seq: number): Promise<void> {
      if (!Number.isSafeInteger(seq) || seq < 0) throw new DeviceStoreError('INVALID_ARGUMENT', `cursor seq must be a non-negative safe integer, got ${seq}`);
      await store.put('cursors', conversationId, seq);
    },
  };
}
