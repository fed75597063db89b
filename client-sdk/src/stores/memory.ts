import { DeviceStoreError, type DeviceStore, type DeviceStoreOp, type Namespace, type Storable, type StoredValue } from './store.js';
import { checkKey, checkNamespace, checkOps, cloneValue, copyStored, type CheckedOp } from './value.js';

/**
 * A {@link DeviceStore} in process memory: gone when the process ends. For tests, and for sessions
 * that must leave nothing behind. Values are copied on the way in and out, so callers can never
 * mutate what is stored, exactly as with the persistent stores.
 *
 * @example
 * ```ts
 * const store = new MemoryDeviceStore();
 * await store.put('prekeys', '17', { publicKey, secretKey });
 * await store.transaction([putOp('sessions', peer, state), deleteOp('prekeys', '17')]);
 * ```
 */
export class MemoryDeviceStore implements DeviceStore {
  private readonly data = new Map<Namespace, Map<string, StoredValue>>();
  private closed = false;

  async get<T = StoredValue>(ns: Namespace, key: string): Promise<T | undefined> {
    this.checkOpen();
    checkNamespace(ns);
    checkKey(key);
    const value = this.data.get(ns)?.get(key);
    return value === undefined ? undefined : (copyStored(value) as T);
  }

  async put<T>(ns: Namespace, key: string, value: T & Storable<T>): Promise<void> {
    this.checkOpen();
    checkNamespace(ns);
    checkKey(key);
    this.apply([{ type: 'put', ns, key, value: cloneValue(value) }]);
  }

  async delete(ns: Namespace, key: string): Promise<void> {
    this.checkOpen();
    checkNamespace(ns);
    checkKey(key);
    this.apply([{ type: 'delete', ns, key }]);
  }

  async list<T = StoredValue>(ns: Namespace): Promise<Array<[key: string, value: T]>> {
    this.checkOpen();
    checkNamespace(ns);
    const entries = [...(this.data.get(ns) ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return entries.map(([k, v]) => [k, copyStored(v) as T]);
  }

  async transaction(ops: readonly DeviceStoreOp[]): Promise<void> {
    this.checkOpen();
    this.apply(checkOps(ops));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.data.clear();
  }

  private apply(ops: readonly CheckedOp[]): void {
    // Every op is already validated and copied, and nothing below can throw: all or nothing for free.
    for (const op of ops) {
      let space = this.data.get(op.ns);
      if (op.type === 'put') {
        if (!space) this.data.set(op.ns, (space = new Map()));
        space.set(op.key, op.value);
      } else {
        space?.delete(op.key);
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new DeviceStoreError('CLOSED', 'this MemoryDeviceStore is closed');
  }
}
