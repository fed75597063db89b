/**
 * Run-time checks and deep copies shared by every DeviceStore implementation, so they all accept and
 * refuse exactly the same things (see StoredValue). Browser-safe: no Node built-ins.
 */
import { DeviceStoreError, NAMESPACES, type DeviceStoreOp, type Namespace, type StoredValue } from './store.js';

const namespaceSet: ReadonlySet<string> = new Set(NAMESPACES);
const toStringTag = (v: object): string => Object.prototype.toString.call(v);

function invalid(message: string): DeviceStoreError {
  return new DeviceStoreError('INVALID_ARGUMENT', message);
}

export function checkNamespace(ns: unknown): asserts ns is Namespace {
  if (typeof ns !== 'string' || !namespaceSet.has(ns)) throw invalid(`unknown namespace ${JSON.stringify(String(ns))}: expected one of ${NAMESPACES.join(', ')}`);
}

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw invalid('key must be a non-empty string');
}

/** A Uint8Array from any realm (iframes, workers, Node Buffers). */
export function isUint8Array(value: unknown): value is Uint8Array {
  return ArrayBuffer.isView(value) && toStringTag(value) === '[object Uint8Array]';
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || (toStringTag(value) === '[object Object]' && Object.getPrototypeOf(proto) === null);
}

/** A fresh Uint8Array holding exactly the bytes `view` spans (a plain Uint8Array even for a Buffer). */
export function copyBytes(view: Uint8Array): Uint8Array {
  const out = new Uint8Array(view.byteLength);
  out.set(view);
  return out;
}

/** Set an own property, even one named `__proto__`. */
export function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' ? ctor.name : toStringTag(value);
}

/**
 * Check `value` is a StoredValue and return a deep copy sharing nothing with it. Throws
 * DeviceStoreError('INVALID_ARGUMENT') naming the path of the first bad part.
 */
export function cloneValue(value: unknown): StoredValue {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): StoredValue => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return v;
      case 'number':
        if (!Number.isFinite(v)) throw invalid(`${path} is ${v}: only finite numbers can be stored`);
        return v === 0 ? 0 : v; // -0 -> 0, as JSON would
      case 'object': {
        if (v === null) return null;
        if (isUint8Array(v)) return copyBytes(v);
        if (seen.has(v)) throw invalid(`${path} refers back to itself: cyclic values cannot be stored`);
        seen.add(v);
        try {
          if (Array.isArray(v)) {
            const out: StoredValue[] = [];
            for (let i = 0; i < v.length; i++) {
              if (!(i in v)) throw invalid(`${path}[${i}] is a hole: sparse arrays cannot be stored`);
              const item: unknown = v[i];
              if (item === undefined) throw invalid(`${path}[${i}] is undefined: arrays cannot hold undefined`);
              out.push(walk(item, `${path}[${i}]`));
            }
            return out;
          }
          if (!isPlainObject(v)) throw invalid(`${path} is a ${describe(v)}: only plain objects, arrays and Uint8Arrays can be stored`);
          if (Object.getOwnPropertySymbols(v).length > 0) throw invalid(`${path} has symbol keys, which cannot be stored`);
          const out: Record<string, StoredValue> = {};
          for (const k of Object.keys(v)) {
            const item = v[k];
            if (item === undefined) continue; // dropped, as JSON does
            defineOwn(out, k, walk(item, `${path}.${k}`));
          }
          return out;
        } finally {
          seen.delete(v);
        }
      }
      default:
        throw invalid(`${path} is a ${typeof v}: it cannot be stored`);
    }
  };
  if (value === undefined) throw invalid('value is undefined: delete the key instead');
  return walk(value, 'value');
}

/** A deep copy of a value already known to be a StoredValue (what a store hands back to callers). */
export function copyStored(value: StoredValue): StoredValue {
  if (value === null || typeof value !== 'object') return value;
  if (isUint8Array(value)) return copyBytes(value);
  if (Array.isArray(value)) return value.map(copyStored);
  const out: Record<string, StoredValue> = {};
  for (const k of Object.keys(value)) defineOwn(out, k, copyStored(value[k]!));
  return out;
}

/** A validated op whose value (for puts) is already a private copy. */
export type CheckedOp = { type: 'put'; ns: Namespace; key: string; value: StoredValue } | { type: 'delete'; ns: Namespace; key: string };

/** Check every op before any is applied, so an invalid op anywhere leaves the store untouched. */
export function checkOps(ops: readonly DeviceStoreOp[]): CheckedOp[] {
  if (!Array.isArray(ops)) throw invalid('transaction expects an array of ops');
  return ops.map((op: DeviceStoreOp | undefined, i): CheckedOp => {
    if (op === null || typeof op !== 'object') throw invalid(`op ${i} is not an object`);
    try {
      checkNamespace(op.ns);
      checkKey(op.key);
      if (op.type === 'put') return { type: 'put', ns: op.ns, key: op.key, value: cloneValue(op.value) };
      if (op.type === 'delete') return { type: 'delete', ns: op.ns, key: op.key };
      throw invalid(`type must be 'put' or 'delete', got ${JSON.stringify(String((op as { type?: unknown }).type))}`);
    } catch (e) {
      if (e instanceof DeviceStoreError) throw invalid(`op ${i}: ${e.message}`);
      throw e;
    }
  });
}
