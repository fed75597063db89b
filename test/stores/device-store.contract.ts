/**
 * One contract for every DeviceStore. The cases are plain async functions (no mocha, no Node
 * built-ins), so the same code runs in Node over MemoryDeviceStore and FileDeviceStore
 * (device-store.test.ts wraps each case in `it`) and in headless Chromium over IndexedDbDeviceStore
 * (browser-entry.ts bundles this file; indexeddb.test.ts runs each case in the page).
 *
 * A case throws to fail. Every case works on its own freshly opened store (its own name), and
 * closes it when done.
 */
import fc from 'fast-check';
import { cursorStoreFrom } from '../../client-sdk/src/stores/cursors.js';
import {
  NAMESPACES,
  deleteOp,
  isDeviceStoreError,
  putOp,
  type DeviceStore,
  type DeviceStoreErrorCode,
  type DeviceStoreOp,
  type StoredValue,
} from '../../client-sdk/src/stores/store.js';

/** How the contract reaches one implementation. */
export interface StoreUnderTest {
  /** Shown in test titles. */
  name: string;
  /** Open the store called `name` (a fresh name is empty). */
  open(name: string): Promise<DeviceStore>;
  /** Whether closing and opening the same name again keeps the data: enables the persistence cases. */
  persistent: boolean;
  /** Remove what `open(name)` created, after a case. */
  destroy?(name: string): Promise<void>;
}

export interface ContractCase {
  name: string;
  run(): Promise<void>;
}

export interface CaseResult {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

// ---------------------------------------------------------------------------------------------
// Assertions (tiny, so the page bundle needs no assertion library)

export class ContractFailure extends Error {
  override readonly name = 'ContractFailure';
}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ContractFailure(message);
}

function show(value: unknown): string {
  if (value instanceof Uint8Array) return `Uint8Array(${value.byteLength})`;
  try {
    return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `<Uint8Array(${v.byteLength})>` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Deep equality that is strict about bytes: an expected Uint8Array must come back as a plain
 * Uint8Array that owns exactly its bytes (offset 0, buffer no larger than the view).
 */
export function checkEqual(actual: unknown, expected: unknown, path = 'value'): void {
  if (expected instanceof Uint8Array) {
    check(actual instanceof Uint8Array, `${path}: expected a Uint8Array, got ${show(actual)}`);
    check(actual.constructor === Uint8Array, `${path}: expected a plain Uint8Array, got a ${actual.constructor.name}`);
    check(actual.byteOffset === 0 && actual.buffer.byteLength === actual.byteLength, `${path}: the Uint8Array should own exactly its bytes`);
    check(actual.byteLength === expected.byteLength, `${path}: expected ${expected.byteLength} bytes, got ${actual.byteLength}`);
    for (let i = 0; i < expected.byteLength; i++) check(actual[i] === expected[i], `${path}: bytes differ at offset ${i}`);
    return;
  }
  if (Array.isArray(expected)) {
    check(Array.isArray(actual), `${path}: expected an array, got ${show(actual)}`);
    check(actual.length === expected.length, `${path}: expected length ${expected.length}, got ${actual.length}`);
    expected.forEach((item, i) => checkEqual(actual[i], item, `${path}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    check(actual !== null && typeof actual === 'object' && !Array.isArray(actual) && !(actual instanceof Uint8Array), `${path}: expected an object, got ${show(actual)}`);
    const ak = Object.keys(actual).sort();
    const ek = Object.keys(expected).sort();
    check(show(ak) === show(ek), `${path}: expected keys ${show(ek)}, got ${show(ak)}`);
    for (const k of ek) {
      checkEqual((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`);
    }
    return;
  }
  check(Object.is(actual, expected), `${path}: expected ${show(expected)}, got ${show(actual)}`);
}

export async function checkRejects(promise: Promise<unknown>, code: DeviceStoreErrorCode, what: string): Promise<void> {
  let settled: { ok: true } | { ok: false; error: unknown };
  try {
    await promise;
    settled = { ok: true };
  } catch (error) {
    settled = { ok: false, error };
  }
  check(!settled.ok, `${what}: expected a ${code} rejection, but it resolved`);
  check(isDeviceStoreError(settled.error) && settled.error.code === code, `${what}: expected DeviceStoreError ${code}, got ${String(settled.error)}`);
}

// ---------------------------------------------------------------------------------------------
// Data

/** Deterministic pseudo-random bytes (xorshift32), the same in Node and the browser. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

const KIB_64 = 64 * 1024;

/** Awkward JSON: every kind of value, keys that look like tags or prototype names, lone surrogates. */
export function awkwardValue(): { [key: string]: StoredValue } {
  const value: { [key: string]: StoredValue } = {
    str: 'plain',
    empty: '',
    unicode: 'héllo 👩‍⚕️ 中文 \u0000 \u2028 "quoted" \\ back',
    loneSurrogates: '\ud800 x \udfff',
    ints: [0, 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
    floats: [0.1, -1e300, 5e-324, 1.7976931348623157e308, 2 ** -1074, 1 / 3],
    bools: [true, false],
    nil: null,
    nested: { deeper: { deepest: [[[]], {}, [{}]] } },
    $b64: 'not bytes, just a key that looks like the tag',
    $$b64: 'two dollars',
    $: 'just a dollar',
    constructor: 'not the constructor',
    toString: 'not a function',
    '': 'empty key',
    bytesInside: [new Uint8Array([1, 2, 3]), { b: new Uint8Array(0) }],
  };
  Object.defineProperty(value, '__proto__', { value: { own: 'property named __proto__' }, enumerable: true, writable: true, configurable: true });
  return value;
}

/** A value that is awkward for byte handling: every tail length for base64 padding, every byte value. */
export function byteCases(): Array<[name: string, bytes: Uint8Array]> {
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  return [
    ['empty', new Uint8Array(0)],
    ['1 byte', new Uint8Array([0xff])],
    ['2 bytes', new Uint8Array([0, 0xfe])],
    ['3 bytes', new Uint8Array([0xfb, 0xef, 0xbe])],
    ['4 bytes', new Uint8Array([1, 2, 3, 4])],
    ['all 256 values', all],
    ['64 KiB', patternBytes(KIB_64, 7)],
    ['64 KiB + 1', patternBytes(KIB_64 + 1, 8)],
  ];
}

/** A 64 KiB + odd-length value as a ratchet session might look, for persistence checks. */
export function sessionLike(seed: number): { [key: string]: StoredValue } {
  return {
    rootKey: patternBytes(32, seed),
    chain: { send: { key: patternBytes(32, seed + 1), n: seed }, recv: [{ key: patternBytes(32, seed + 2), n: 0 }] },
    skipped: [],
    blob: patternBytes(KIB_64, seed + 3),
    note: `session ${seed}`,
  };
}

// Arbitrary StoredValues for the property case: -0 is normalised to 0, as the stores do.
const keyArb = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', '$b64', '$$b64', '$', 'constructor', 'toString', ''));
// Any UTF-16 code unit (so lone surrogates too) and any code point. (Not `unit: 'binary'`: building
// that arbitrary takes ~0.7 s in Chromium, on every page load.)
const stringArb = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) }),
);
const storedArb: fc.Arbitrary<StoredValue> = fc.letrec<{ value: StoredValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (d === 0 ? 0 : d)),
    fc.integer(),
    stringArb,
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(keyArb, tie('value'), { maxKeys: 4 }),
  ),
})).value;

// ---------------------------------------------------------------------------------------------
// Cases

let counter = 0;
function freshName(impl: StoreUnderTest, label: string): string {
  const rand = Math.floor(Math.random() * 2 ** 32).toString(36);
  return `${impl.name}-${label}-${Date.now().toString(36)}-${rand}-${++counter}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Open a fresh store, run `body`, close and destroy it whatever happens. */
async function withStore(impl: StoreUnderTest, label: string, body: (store: DeviceStore, name: string) => Promise<void>): Promise<void> {
  const name = freshName(impl, label);
  const store = await impl.open(name);
  try {
    await body(store, name);
  } finally {
    await store.close().catch(() => {});
    await impl.destroy?.(name);
  }
}

/** The contract cases for `impl`, in a fixed order. Case names are the same for every implementation. */
export function deviceStoreContract(impl: StoreUnderTest): ContractCase[] {
  const cases: ContractCase[] = [];
  const add = (name: string, body: (store: DeviceStore, name: string) => Promise<void>): void => {
    cases.push({ name, run: () => withStore(impl, name.slice(0, 24), body) });
  };

  add('a missing key reads as undefined and an empty namespace lists nothing', async (store) => {
    check((await store.get('identity', 'self')) === undefined, 'get of a missing key');
    checkEqual(await store.list('prekeys'), []);
    await store.delete('sessions', 'nobody'); // deleting a missing key is fine
  });

  add('round-trips JSON values exactly, including awkward keys and strings', async (store) => {
    const value = awkwardValue();
    await store.put('meta', 'awkward', value);
    const back = await store.get<Record<string, unknown>>('meta', 'awkward');
    checkEqual(back, value);
    check(Object.getPrototypeOf(back) === Object.prototype, 'objects come back with the ordinary prototype');
    check(Object.prototype.hasOwnProperty.call(back, '__proto__'), 'a key named __proto__ stays an own property');
    for (const scalar of ['s', 0, 42.5, -7, true, false, null, '']) {
      await store.put('meta', 'scalar', scalar);
      checkEqual(await store.get('meta', 'scalar'), scalar, `scalar ${show(scalar)}`);
    }
  });

  add('round-trips Uint8Arrays exactly: empty, every padding length, every byte value, 64 KiB', async (store) => {
    for (const [label, bytes] of byteCases()) {
      await store.put('prekeys', label, bytes);
      await store.put('sessions', label, { nested: { bytes }, list: [bytes, bytes] });
    }
    for (const [label, bytes] of byteCases()) {
      checkEqual(await store.get('prekeys', label), bytes, `top-level ${label}`);
      checkEqual(await store.get('sessions', label), { nested: { bytes }, list: [bytes, bytes] }, `nested ${label}`);
    }
  });

  add('stores only the bytes a view spans, and returns subclasses as plain Uint8Arrays', async (store) => {
    const backing = patternBytes(100, 3);
    const view = backing.subarray(10, 42);
    await store.put('identity', 'view', { key: view });
    const back = await store.get<{ key: Uint8Array }>('identity', 'view');
    checkEqual(back?.key, backing.slice(10, 42));
    class TaggedBytes extends Uint8Array {}
    const tagged = new TaggedBytes([9, 8, 7]);
    await store.put('identity', 'subclass', tagged);
    checkEqual(await store.get('identity', 'subclass'), new Uint8Array([9, 8, 7]));
  });

  add('normalises like JSON: -0 becomes 0, undefined properties are dropped', async (store) => {
    await store.put('meta', 'norm', { zero: -0, gone: undefined, kept: 1, list: [-0] });
    const back = await store.get<Record<string, unknown>>('meta', 'norm');
    checkEqual(back, { zero: 0, kept: 1, list: [0] });
    check(Object.is(back?.zero, 0), '-0 is stored as 0');
  });

  add('refuses values that are not StoredValues, and writes nothing', async (store) => {
    await store.put('meta', 'k', 'before');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const sparse: unknown[] = [1, 2];
    sparse[4] = 5;
    class Point {
      x = 1;
    }
    const bad: Array<[string, unknown]> = [
      ['undefined', undefined],
      ['NaN', NaN],
      ['Infinity', { x: Infinity }],
      ['-Infinity', [-Infinity]],
      ['a function', { f: () => 1 }],
      ['a symbol', Symbol('s')],
      ['a bigint', { n: 1n }],
      ['a Date', new Date(0)],
      ['a Map', new Map()],
      ['a Set', { s: new Set() }],
      ['an ArrayBuffer', new ArrayBuffer(4)],
      ['a Uint16Array', new Uint16Array(2)],
      ['a Uint8ClampedArray', new Uint8ClampedArray(2)],
      ['a DataView', new DataView(new ArrayBuffer(2))],
      ['a class instance', new Point()],
      ['a cycle', cyclic],
      ['a sparse array', sparse],
      ['undefined in an array', [1, undefined]],
      ['a symbol key', { [Symbol('k')]: 1 }],
    ];
    for (const [label, value] of bad) {
      await checkRejects(store.put('meta', 'k', value as any), 'INVALID_ARGUMENT', `put of ${label}`);
    }
    checkEqual(await store.get('meta', 'k'), 'before', 'the old value is untouched');
    const shared = { leaf: new Uint8Array([1]) };
    await store.put('meta', 'dag', { a: shared, b: shared }); // shared (non-cyclic) references are fine
    checkEqual(await store.get('meta', 'dag'), { a: shared, b: shared });
  });

  add('refuses unknown namespaces and bad keys', async (store) => {
    const anyStore = store as any;
    await checkRejects(anyStore.put('bogus', 'k', 1), 'INVALID_ARGUMENT', 'put in an unknown namespace');
    await checkRejects(anyStore.get('bogus', 'k'), 'INVALID_ARGUMENT', 'get in an unknown namespace');
    await checkRejects(anyStore.list('__proto__'), 'INVALID_ARGUMENT', 'list of an unknown namespace');
    await checkRejects(anyStore.delete('Identity', 'k'), 'INVALID_ARGUMENT', 'namespaces are case-sensitive');
    await checkRejects(store.put('meta', '', 1), 'INVALID_ARGUMENT', 'empty key');
    await checkRejects(anyStore.put('meta', 7, 1), 'INVALID_ARGUMENT', 'non-string key');
    await checkRejects(anyStore.get('meta', undefined), 'INVALID_ARGUMENT', 'undefined key');
  });

  add('put replaces, delete removes', async (store) => {
    await store.put('trust', 'alice', { identityKey: new Uint8Array([1]), verified: false });
    await store.put('trust', 'alice', { identityKey: new Uint8Array([2]), verified: true });
    checkEqual(await store.get('trust', 'alice'), { identityKey: new Uint8Array([2]), verified: true });
    await store.delete('trust', 'alice');
    check((await store.get('trust', 'alice')) === undefined, 'deleted');
    checkEqual(await store.list('trust'), []);
  });

  add('keys can be any non-empty string; list sorts them by UTF-16 code units', async (store) => {
    const keys = ['b', 'a', 'B', 'user/device:1', '__proto__', 'constructor', 'ä', '😀', '\uffff', 'k'.repeat(1000), ' ', '10', '9', '$b64'];
    for (const [i, key] of keys.entries()) await store.put('sessions', key, i);
    const listed = await store.list<number>('sessions');
    const sorted = [...keys].sort();
    checkEqual(
      listed.map(([k]) => k),
      sorted,
      'list order',
    );
    for (const [key, value] of listed) checkEqual(value, keys.indexOf(key), `value of ${key.slice(0, 20)}`);
    for (const [i, key] of keys.entries()) checkEqual(await store.get('sessions', key), i, `get ${key.slice(0, 20)}`);
  });

  add('namespaces are isolated from each other', async (store) => {
    for (const ns of NAMESPACES) await store.put(ns, 'same-key', { ns, bytes: new Uint8Array([NAMESPACES.indexOf(ns)]) });
    await store.put('prekeys', 'only-in-prekeys', 1);
    await store.delete('sessions', 'same-key');
    for (const ns of NAMESPACES) {
      const expected = ns === 'sessions' ? undefined : { ns, bytes: new Uint8Array([NAMESPACES.indexOf(ns)]) };
      checkEqual(await store.get(ns, 'same-key'), expected, `get in ${ns}`);
      const keys = (await store.list(ns)).map(([k]) => k);
      const expectedKeys = ns === 'sessions' ? [] : ns === 'prekeys' ? ['only-in-prekeys', 'same-key'] : ['same-key'];
      checkEqual(keys, expectedKeys, `keys of ${ns}`);
    }
  });

  add('values are copies: mutating what was put or read never changes the store', async (store) => {
    const bytes = new Uint8Array([1, 2, 3]);
    const value = { bytes, nested: { n: 1, list: [1] } };
    const pending = store.put('sessions', 'peer', value);
    // Mutate before the put has even settled: the store copied at call time.
    bytes[0] = 99;
    value.nested.n = 2;
    value.nested.list.push(2);
    await pending;
    const expected = { bytes: new Uint8Array([1, 2, 3]), nested: { n: 1, list: [1] } };
    checkEqual(await store.get('sessions', 'peer'), expected, 'after mutating the input');

    const read = await store.get<typeof value>('sessions', 'peer');
    check(read !== undefined, 'read back');
    read.bytes[1] = 99;
    read.nested.n = 3;
    read.nested.list.length = 0;
    checkEqual(await store.get('sessions', 'peer'), expected, 'after mutating a get result');

    const [[, listed] = ['', undefined]] = await store.list<typeof value>('sessions');
    check(listed !== undefined, 'listed');
    listed.bytes[2] = 99;
    listed.nested.list.push(5);
    checkEqual(await store.get('sessions', 'peer'), expected, 'after mutating a list result');

    const raw = new Uint8Array([5, 6]);
    await store.put('prekeys', 'raw', raw);
    raw[0] = 0;
    const a = await store.get<Uint8Array>('prekeys', 'raw');
    const b = await store.get<Uint8Array>('prekeys', 'raw');
    check(a !== b && a?.buffer !== b?.buffer, 'two reads return two copies');
    checkEqual(a, new Uint8Array([5, 6]), 'top-level bytes copied');
  });

  add('a transaction applies every op, across namespaces, in order', async (store) => {
    await store.put('prekeys', '1', { pub: new Uint8Array([1]) });
    await store.put('prekeys', '2', { pub: new Uint8Array([2]) });
    await store.put('meta', 'gone-then-back', 'old');
    await store.transaction([
      putOp('sessions', 'alice/1', sessionLike(1)),
      deleteOp('prekeys', '1'),
      putOp('trust', 'alice', { identityKey: new Uint8Array([7]) }),
      putOp('meta', 'twice', 1),
      putOp('meta', 'twice', 2),
      putOp('meta', 'put-then-delete', 1),
      deleteOp('meta', 'put-then-delete'),
      deleteOp('meta', 'gone-then-back'),
      putOp('meta', 'gone-then-back', 'new'),
      deleteOp('outbox', 'never-existed'),
    ]);
    checkEqual(await store.get('sessions', 'alice/1'), sessionLike(1));
    check((await store.get('prekeys', '1')) === undefined, 'used prekey deleted');
    checkEqual(await store.get('prekeys', '2'), { pub: new Uint8Array([2]) }, 'other prekey kept');
    checkEqual(await store.get('trust', 'alice'), { identityKey: new Uint8Array([7]) });
    checkEqual(await store.get('meta', 'twice'), 2, 'last put wins');
    check((await store.get('meta', 'put-then-delete')) === undefined, 'put then delete');
    checkEqual(await store.get('meta', 'gone-then-back'), 'new', 'delete then put');
    await store.transaction([]); // empty: a no-op
    checkEqual(await store.get('meta', 'twice'), 2);
  });

  add('a transaction is all or nothing when any op is invalid', async (store) => {
    await store.put('prekeys', '5', { pub: new Uint8Array([5]) });
    await store.put('sessions', 'bob/1', { n: 1 });
    const good: DeviceStoreOp[] = [putOp('sessions', 'bob/1', { n: 2 }), deleteOp('prekeys', '5'), putOp('trust', 'bob', 1)];
    const invalid: Array<[string, DeviceStoreOp]> = [
      ['a NaN value', { type: 'put', ns: 'meta', key: 'x', value: NaN }],
      ['a Date value', { type: 'put', ns: 'meta', key: 'x', value: new Date() }],
      ['an undefined value', { type: 'put', ns: 'meta', key: 'x', value: undefined }],
      ['an unknown namespace', { type: 'put', ns: 'nope' as any, key: 'x', value: 1 }],
      ['an empty key', { type: 'delete', ns: 'meta', key: '' }],
      ['an unknown op type', { type: 'upsert', ns: 'meta', key: 'x', value: 1 } as any],
    ];
    for (const [label, op] of invalid) {
      await checkRejects(store.transaction([...good, op]), 'INVALID_ARGUMENT', `transaction with ${label} last`);
      await checkRejects(store.transaction([op, ...good]), 'INVALID_ARGUMENT', `transaction with ${label} first`);
    }
    await checkRejects(store.transaction([...good, null as any]), 'INVALID_ARGUMENT', 'transaction with a null op');
    await checkRejects(store.transaction('not ops' as any), 'INVALID_ARGUMENT', 'transaction with a non-array');
    checkEqual(await store.get('sessions', 'bob/1'), { n: 1 }, 'session untouched');
    checkEqual(await store.get('prekeys', '5'), { pub: new Uint8Array([5]) }, 'prekey not deleted');
    check((await store.get('trust', 'bob')) === undefined, 'trust not written');
    check((await store.get('meta', 'x')) === undefined, 'nothing under meta/x');
  });

  add('calls apply in call order, even without awaiting each one', async (store) => {
    const p1 = store.put('meta', 'order', 1);
    const g1 = store.get('meta', 'order');
    const p2 = store.delete('meta', 'order');
    const g2 = store.get('meta', 'order');
    const p3 = store.transaction([putOp('meta', 'order', 3)]);
    const g3 = store.get('meta', 'order');
    const l3 = store.list('meta');
    await Promise.all([p1, p2, p3]);
    checkEqual(await g1, 1, 'get after put');
    checkEqual(await g2, undefined, 'get after delete');
    checkEqual(await g3, 3, 'get after transaction');
    checkEqual(await l3, [['order', 3]], 'list after transaction');
  });

  add('many concurrent writes all land', async (store) => {
    const n = 60;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 3 === 0 ? store.transaction([putOp('prekeys', `k${i}`, i), putOp('meta', `k${i}`, new Uint8Array([i]))]) : store.put('prekeys', `k${i}`, i),
      ),
    );
    const listed = await store.list<number>('prekeys');
    check(listed.length === n, `expected ${n} prekeys, got ${listed.length}`);
    for (const [k, v] of listed) checkEqual(v, Number(k.slice(1)), `prekeys/${k}`);
    check((await store.list('meta')).length === n / 3, 'transaction entries');
  });

  add('arbitrary values round-trip exactly (property)', async (store) => {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(storedArb, async (value) => {
        const key = `p${i++}`;
        await store.put('outbox', key, value);
        checkEqual(await store.get('outbox', key), value);
      }),
      { numRuns: 60, seed: 20260301 },
    );
  });

  add('after close, calls reject with CLOSED; closing twice is fine', async (store) => {
    await store.put('meta', 'k', 1);
    await store.close();
    await store.close();
    await checkRejects(store.get('meta', 'k'), 'CLOSED', 'get after close');
    await checkRejects(store.put('meta', 'k', 2), 'CLOSED', 'put after close');
    await checkRejects(store.delete('meta', 'k'), 'CLOSED', 'delete after close');
    await checkRejects(store.list('meta'), 'CLOSED', 'list after close');
    await checkRejects(store.transaction([putOp('meta', 'k', 3)]), 'CLOSED', 'transaction after close');
  });

  add('cursorStoreFrom keeps sync cursors in the cursors namespace', async (store) => {
    const cursors = cursorStoreFrom(store);
    checkEqual(await cursors.load(), {});
    await cursors.save('conv-a', 5);
    await cursors.save('conv-b', 0);
    await cursors.save('conv-a', 9);
    await cursors.save('__proto__', 3);
    const loaded = await cursors.load();
    checkEqual(loaded, Object.defineProperty({ 'conv-a': 9, 'conv-b': 0 }, '__proto__', { value: 3, enumerable: true }));
    checkEqual(await store.get('cursors', 'conv-a'), 9, 'stored under cursors/<conversationId>');
    await store.put('cursors', 'garbage', { not: 'a number' });
    await store.put('cursors', 'negative', -1);
    check(!('garbage' in (await cursors.load())) && !('negative' in (await cursors.load())), 'load skips entries that are not cursors');
    await checkRejects(cursors.save('conv-c', -1), 'INVALID_ARGUMENT', 'negative seq');
    await checkRejects(cursors.save('conv-c', 1.5), 'INVALID_ARGUMENT', 'fractional seq');
  });

  if (impl.persistent) {
    add('closing and reopening keeps every committed value', async (store, name) => {
      await store.put('identity', 'self', { publicKey: patternBytes(32, 1), secretKey: patternBytes(64, 2) });
      await store.put('meta', 'awkward', awkwardValue());
      for (const [label, bytes] of byteCases()) await store.put('prekeys', label, bytes);
      await store.transaction([putOp('sessions', 'carol/1', sessionLike(5)), deleteOp('prekeys', 'empty'), putOp('cursors', 'conv', 17)]);
      await store.put('meta', 'deleted', 1);
      await store.delete('meta', 'deleted');
      await store.close();

      const again = await impl.open(name);
      try {
        checkEqual(await again.get('identity', 'self'), { publicKey: patternBytes(32, 1), secretKey: patternBytes(64, 2) });
        checkEqual(await again.get('meta', 'awkward'), awkwardValue());
        check((await again.get('meta', 'deleted')) === undefined, 'a deleted key stays deleted');
        checkEqual(await again.get('sessions', 'carol/1'), sessionLike(5));
        const prekeys = new Map(await again.list('prekeys'));
        for (const [label, bytes] of byteCases()) checkEqual(prekeys.get(label), label === 'empty' ? undefined : bytes, `prekeys/${label}`);
        checkEqual(await cursorStoreFrom(again).load(), { conv: 17 });
        // And it keeps working after the reopen.
        await again.put('meta', 'after-reopen', true);
        checkEqual(await again.get('meta', 'after-reopen'), true);
      } finally {
        await again.close();
      }
    });
  }

  return cases;
}

/** Run cases one after another, collecting results instead of throwing (for the browser harness). */
export async function runCase(c: ContractCase): Promise<CaseResult> {
  const start = Date.now();
  try {
    await c.run();
    return { name: c.name, ok: true, ms: Date.now() - start };
  } catch (e) {
    const error = e instanceof Error ? `${e.name}: ${e.message}${e instanceof ContractFailure ? '' : `\n${e.stack ?? ''}`}` : String(e);
    return { name: c.name, ok: false, error, ms: Date.now() - start };
  }
}
