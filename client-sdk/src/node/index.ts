/**
 * `@curbside/client-sdk/node`: the parts of the SDK that need Node built-ins. Everything the core
 * entry exports for storage is re-exported here too, so Node apps can import from one place.
 */
export { FileDeviceStore } from './file-store.js';
export * from '../stores/index.js';
