import { wrap, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { DeviceStoreError, type DeviceStore, type DeviceStoreOp, type Namespace, type Storable, type StoredValue } from './store.js';
import { checkKey, checkNamespace, checkOps, cloneValue, type CheckedOp } from './value.js';

const DB_PREFIX = 'curbside-device-store:';
const DB_VERSION = 1;
/** One object store for every namespace, keyed by `[namespace, key]`: new namespaces need no schema upgrade. */
const ENTRIES = 'entries';

/** Options for {@link IndexedDbDeviceStore.open}. */
export interface IndexedDbDeviceStoreOptions {
  /** The IndexedDB to use. @default globalThis.indexedDB */
  indexedDB?: IDBFactory;
}

function factoryFrom(options: IndexedDbDeviceStoreOptions | undefined): IDBFactory {
  const factory = options?.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) throw new DeviceStoreError('CLOSED', 'IndexedDB is not available here: pass options.indexedDB, or use MemoryDeviceStore / FileDeviceStore');
  return factory;
}

function checkDeviceName(deviceName: unknown): asserts deviceName is string {
  if (typeof deviceName !== 'string' || deviceName.length === 0) throw new DeviceStoreError('INVALID_ARGUMENT', 'deviceName must be a non-empty string');
}

/** The one object store, keyed by `[namespace, key]`. */
interface Entries extends DBSchema {
  entries: { key: [string, string]; value: unknown };
}
type Db = IDBPDatabase<Entries>;
type WriteTx = IDBPTransaction<Entries, ['entries'], 'readwrite'>;

/**
 * A {@link DeviceStore} in the browser's IndexedDB, one database per device
 * (`curbside-device-store:<deviceName>`), with one object store keyed by `[namespace, key]`.
 * `Uint8Array`s are stored natively (structured clone). Every write is a `readwrite` transaction
 * with `durability: 'strict'`, so it is on disk when the promise resolves; a
 * {@link DeviceStore.transaction} is one IndexedDB transaction, so it commits or aborts as a whole.
 *
 * Browsers may evict IndexedDB under storage pressure unless the origin has persistent storage:
 * apps should call `navigator.storage.persist()` (from a user gesture where required).
 *
 * @example
 * ```ts
 * const store = await IndexedDbDeviceStore.open(deviceId);
 * await store.put('identity', 'self', identityKeyPair);
 * // on sign-out: wipe the device's keys
 * await store.close();
 * await IndexedDbDeviceStore.destroy(deviceId);
 * ```
 */
export class IndexedDbDeviceStore implements DeviceStore {
  private closedReason: string | undefined;

  private constructor(
    private readonly db: Db,
    readonly deviceName: string,
  ) {
    // Another tab deleting or upgrading the database: step aside rather than block it.
    db.addEventListener('versionchange', () => {
      this.closedReason = 'the database was deleted or upgraded by another connection';
      db.close();
    });
    // The browser closed the connection (storage cleared, disk error).
    db.addEventListener('close', () => {
      this.closedReason = 'the browser closed the database connection';
    });
  }

  /**
   * Open (creating if needed) the store for `deviceName`.
   *
   * @example
   * ```ts
   * const store = await IndexedDbDeviceStore.open('device-7f3a');
   * ```
   */
  static async open(deviceName: string, options?: IndexedDbDeviceStoreOptions): Promise<IndexedDbDeviceStore> {
    checkDeviceName(deviceName);
    // idb's openDB takes the global factory; a given one (a test's, another realm's) is wrapped as is.
    const request = factoryFrom(options).open(DB_PREFIX + deviceName, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(ENTRIES)) db.createObjectStore(ENTRIES);
    };
    // Resolves once connections from older versions close (they do so on versionchange).
    const db = (await wrap(request)) as unknown as Db;
    return new IndexedDbDeviceStore(db, deviceName);
  }

  /**
   * Delete the store for `deviceName` and everything in it (open connections to it are closed).
   *
   * @example
   * ```ts
   * await IndexedDbDeviceStore.destroy('device-7f3a');
   * ```
   */
  static async destroy(deviceName: string, options?: IndexedDbDeviceStoreOptions): Promise<void> {
    checkDeviceName(deviceName);
    await wrap(factoryFrom(options).deleteDatabase(DB_PREFIX + deviceName));
  }

  // Every method creates its IndexedDB transaction synchronously, before its first await: IndexedDB
  // runs overlapping transactions in creation order, which gives the call-order guarantee.

  get<T = StoredValue>(ns: Namespace, key: string): Promise<T | undefined> {
    return this.run(async () => {
      checkNamespace(ns);
      checkKey(key);
      const value = await this.tx('readonly').store.get([ns, key]);
      return value as T | undefined;
    });
  }

  put<T>(ns: Namespace, key: string, value: T & Storable<T>): Promise<void> {
    return this.run(() => {
      checkNamespace(ns);
      checkKey(key);
      return this.write([{ type: 'put', ns, key, value: cloneValue(value) }]);
    });
  }

  delete(ns: Namespace, key: string): Promise<void> {
    return this.run(() => {
      checkNamespace(ns);
      checkKey(key);
      return this.write([{ type: 'delete', ns, key }]);
    });
  }

  list<T = StoredValue>(ns: Namespace): Promise<Array<[key: string, value: T]>> {
    return this.run(async () => {
      checkNamespace(ns);
      const store = this.tx('readonly').store;
      // Every string sorts below every array, so [ns, []] bounds all of ns's string keys.
      const range = IDBKeyRange.bound([ns, ''], [ns, []]);
      const [keys, values] = await Promise.all([store.getAllKeys(range), store.getAll(range)]);
      if (keys.length !== values.length) throw new DeviceStoreError('CORRUPT', 'IndexedDB returned mismatched keys and values');
      return keys.map((k, i): [string, T] => [(k as [string, string])[1], values[i] as T]);
    });
  }

  transaction(ops: readonly DeviceStoreOp[]): Promise<void> {
    return this.run(() => {
      const checked = checkOps(ops);
      return checked.length === 0 ? Promise.resolve() : this.write(checked);
    });
  }

  async close(): Promise<void> {
    if (this.closedReason === undefined) this.closedReason = 'it was closed';
    // IDBDatabase.close() lets running transactions finish; it is idempotent.
    this.db.close();
  }

  /** Runs `body` synchronously up to its first await, turning synchronous throws into rejections. */
  private run<R>(body: () => Promise<R>): Promise<R> {
    try {
      if (this.closedReason !== undefined) throw new DeviceStoreError('CLOSED', `this IndexedDbDeviceStore is closed: ${this.closedReason}`);
      return body();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private tx<M extends IDBTransactionMode>(mode: M): IDBPTransaction<Entries, ['entries'], M> {
    try {
      return this.db.transaction(ENTRIES, mode, mode === 'readwrite' ? { durability: 'strict' } : undefined);
    } catch (e) {
      // InvalidStateError: the connection is closing.
      if (e instanceof DOMException && e.name === 'InvalidStateError') {
        throw new DeviceStoreError('CLOSED', `this IndexedDbDeviceStore is closed: ${this.closedReason ?? 'the connection is closing'}`);
      }
      throw e;
    }
  }

  private write(ops: readonly CheckedOp[]): Promise<void> {
    const tx: WriteTx = this.tx('readwrite');
    // Resolves when the transaction commits; rejects (with the first failed request's error) when it aborts.
    const done = tx.done.catch((e: unknown) => {
      throw e instanceof Error ? e : new DeviceStoreError('CLOSED', 'IndexedDB transaction aborted');
    });
    try {
      for (const op of ops) {
        // A failed request aborts the transaction, and `done` reports it: the request's own promise is not needed.
        const request = op.type === 'put' ? tx.store.put(op.value, [op.ns, op.key]) : tx.store.delete([op.ns, op.key]);
        request.catch(() => {});
      }
      tx.commit();
    } catch (e) {
      // A request that throws (rather than failing asynchronously) leaves the transaction active:
      // abort it so the ops queued before it are not committed on their own.
      done.catch(() => {});
      try {
        tx.abort();
      } catch {
        // already finished or aborting
      }
      throw e;
    }
    return done;
  }
}
