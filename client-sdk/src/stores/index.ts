/** The SDK's device storage: keys, sessions, trust and sync cursors. Browser-safe (no Node built-ins). */
export {
  NAMESPACES,
  DeviceStoreError,
  isDeviceStoreError,
  putOp,
  deleteOp,
  type DeviceStore,
  type DeviceStoreErrorCode,
  type DeviceStoreOp,
  type Namespace,
  type Storable,
  type StoredValue,
} from './store.js';
export { MemoryDeviceStore } from './memory.js';
export { IndexedDbDeviceStore, type IndexedDbDeviceStoreOptions } from './indexeddb.js';
export { cursorStoreFrom } from './cursors.js';
