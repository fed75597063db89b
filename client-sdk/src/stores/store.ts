/**
 * The SDK's persistence port for everything a device keeps to itself: its identity key, prekeys,
 * ratchet sessions, the contacts it trusts and its sync cursors. Every key lives on the client, so
 * losing or corrupting this store means losing the device's ability to decrypt; hence the small,
 * strict contract below, which every implementation passes (test/stores/device-store.contract.ts).
 *
 * Implementations: {@link MemoryDeviceStore} (tests, ephemeral sessions), `IndexedDbDeviceStore`
 * (browsers), `FileDeviceStore` (Node, from `@curbside/client-sdk/node`).
 */

/**
 * What a {@link DeviceStore} keeps apart. Each namespace is its own key space: the same key in two
 * namespaces names two unrelated values.
 *
 * - `identity`: the device's long-term identity key pair and registration data.
 * - `prekeys`: one-time prekeys, deleted once a peer has used one.
 * - `signedPrekeys`: the signed prekey(s), kept a while after rotation for late messages.
 * - `sessions`: ratchet state per peer device.
 * - `trust`: identity keys of contacts the user has seen or verified.
 * - `cursors`: per-conversation sync cursors (see {@link cursorStoreFrom}).
 * - `outbox`: messages accepted by the app but not yet acknowledged by the hub.
 * - `meta`: anything else the SDK needs (schema version, device id, ...).
 * - `teams`: each care team's membership as this device verified it from the signed log.
 * - `senderKeys`: this device's sender key per team, the ones received from other members, and the
 *   team details keys that open care-team titles.
 * - `receipts`: delivery and read state of sent messages, and the senders of received ones.
 * - `deviceLists`: the signed device list this device last verified, per user.
 * - `pendingTexts`: texts the app sent that are not encrypted yet (offline): each becomes its outbox
 *   entry in one transaction.
 */
export type Namespace = 'identity' | 'prekeys' | 'signedPrekeys' | 'sessions' | 'trust' | 'cursors' | 'outbox' | 'meta' | 'teams' | 'senderKeys' | 'receipts' | 'deviceLists' | 'pendingTexts';

/** Every {@link Namespace}, in a fixed order. */
export const NAMESPACES: readonly Namespace[] = Object.freeze(['identity', 'prekeys', 'signedPrekeys', 'sessions', 'trust', 'cursors', 'outbox', 'meta', 'teams', 'senderKeys', 'receipts', 'deviceLists', 'pendingTexts'] as const);

/**
 * A value a {@link DeviceStore} can hold: JSON's values plus raw bytes, nested freely.
 *
 * Stores keep exactly the bytes of a `Uint8Array` (a view stores only the bytes it spans; a Node
 * `Buffer` comes back as a plain `Uint8Array`). Like JSON, object properties whose value is
 * `undefined` are dropped and `-0` becomes `0`. Anything else — `NaN`, `Infinity`, `undefined` at the
 * top or in an array, sparse arrays, class instances (`Date`, `Map`, other typed arrays,
 * `ArrayBuffer`), functions, symbols, bigints, cycles — is refused with `INVALID_ARGUMENT`.
 */
export type StoredValue = null | boolean | number | string | Uint8Array | StoredValue[] | { [key: string]: StoredValue };

/**
 * Compile-time check that `T` can be stored: maps `T` to the shape a store accepts, so a parameter
 * typed `T & Storable<T>` takes exactly the storable types (e.g. `Date`, `Map`, functions, bigints
 * and `undefined` fail to compile). Unlike {@link StoredValue}, whose index signature interfaces
 * never match, it accepts interface types.
 */
export type Storable<T> = T extends StoredValue
  ? T
  : T extends Uint8Array
    ? Uint8Array
    : T extends string | number | boolean | null
      ? T
      : T extends (...args: never[]) => unknown
        ? never
        : T extends readonly unknown[]
          ? { readonly [I in keyof T]: Storable<T[I]> }
          : T extends object
            ? { [K in keyof T]: K extends string | number ? StorableProperty<T[K]> : never }
            : never;

/** A property may also be `undefined` (stores drop it, as JSON does); array items may not. */
type StorableProperty<T> = T extends undefined ? undefined : Storable<T>;

/**
 * One step of a {@link DeviceStore.transaction}. Build them with {@link putOp} / {@link deleteOp}
 * to get the compile-time {@link Storable} check on values.
 */
export type DeviceStoreOp =
  | {
      readonly type: 'put';
      readonly ns: Namespace;
      readonly key: string;
      /** Checked at run time (see {@link StoredValue}); {@link putOp} also checks it at compile time. */
      readonly value: unknown;
    }
  | { readonly type: 'delete'; readonly ns: Namespace; readonly key: string };

/**
 * A `put` step for {@link DeviceStore.transaction}.
 *
 * @example
 * ```ts
 * await store.transaction([putOp('sessions', peer, state), putOp('meta', 'lastRatchetAt', Date.now())]);
 * ```
 */
export function putOp<T>(ns: Namespace, key: string, value: T & Storable<T>): DeviceStoreOp {
  return { type: 'put', ns, key, value };
}

/**
 * A `delete` step for {@link DeviceStore.transaction}.
 *
 * @example
 * ```ts
 * await store.transaction([putOp('sessions', peer, state), deleteOp('prekeys', String(prekeyId))]);
 * ```
 */
export function deleteOp(ns: Namespace, key: string): DeviceStoreOp {
  return { type: 'delete', ns, key };
}

/**
 * Why a {@link DeviceStore} call failed.
 *
 * - `INVALID_ARGUMENT`: unknown namespace, empty or non-string key, or a value that is not a
 *   {@link StoredValue}. Nothing was written.
 * - `CLOSED`: the store was closed (by the app, or by the browser / another tab deleting the database).
 * - `LOCKED`: another `FileDeviceStore` (in this or another live process) has the directory open.
 * - `CORRUPT`: what is on disk is not a store this SDK wrote. The store refuses to open rather
 *   than start empty, since starting empty would silently discard the device's keys.
 */
export type DeviceStoreErrorCode = 'INVALID_ARGUMENT' | 'CLOSED' | 'LOCKED' | 'CORRUPT';

/**
 * The error every {@link DeviceStore} rejects with for the reasons in {@link DeviceStoreErrorCode}.
 * I/O errors from the platform (disk full, quota exceeded) pass through unchanged; after one, the
 * store still holds exactly the state of its last successful write.
 *
 * @example
 * ```ts
 * try {
 *   store = await FileDeviceStore.open(dir);
 * } catch (e) {
 *   if (isDeviceStoreError(e) && e.code === 'LOCKED') exitWith('another copy of the app is running');
 *   throw e;
 * }
 * ```
 */
export class DeviceStoreError extends Error {
  override readonly name = 'DeviceStoreError';
  constructor(
    readonly code: DeviceStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Type guard for {@link DeviceStoreError}, safe across bundles that each carry a copy of the SDK. */
export function isDeviceStoreError(value: unknown): value is DeviceStoreError {
  return value instanceof DeviceStoreError || (value instanceof Error && value.name === 'DeviceStoreError' && typeof (value as { code?: unknown }).code === 'string');
}

/**
 * A device's private, namespaced key-value store. All methods are async; calls on one store apply
 * in the order they were made (a `get` issued after a `put` sees it, even without awaiting the
 * `put`). Values go in and come out as copies: mutating what you passed to `put` or got from `get`
 * never changes what is stored.
 *
 * @example
 * ```ts
 * const store: DeviceStore = new MemoryDeviceStore(); // or IndexedDbDeviceStore.open(...), FileDeviceStore.open(...)
 * await store.put('identity', 'self', { publicKey, secretKey, createdAt: Date.now() });
 * const id = await store.get<{ publicKey: Uint8Array; secretKey: Uint8Array }>('identity', 'self');
 *
 * // One ratchet step and the one-time prekey it consumed, committed together or not at all:
 * await store.transaction([
 *   putOp('sessions', `${userId}/${deviceId}`, nextSessionState),
 *   deleteOp('prekeys', String(prekeyId)),
 * ]);
 * ```
 */
export interface DeviceStore {
  /**
   * The value under `key` in `ns`, or `undefined` if there is none. `T` is not checked: it is what
   * the caller says it stored.
   *
   * @example
   * ```ts
   * const session = await store.get<SessionState>('sessions', peer);
   * if (!session) await startX3dh(peer);
   * ```
   */
  get<T = StoredValue>(ns: Namespace, key: string): Promise<T | undefined>;

  /**
   * Store `value` under `key` in `ns`, replacing what was there. Durable once the promise resolves
   * (for stores that persist at all).
   *
   * @example
   * ```ts
   * await store.put('trust', contactUserId, { identityKey, verified: false, firstSeen: Date.now() });
   * ```
   */
  put<T>(ns: Namespace, key: string, value: T & Storable<T>): Promise<void>;

  /**
   * Remove `key` from `ns`. Removing a key that is not there is not an error.
   *
   * @example
   * ```ts
   * await store.delete('prekeys', String(usedPrekeyId));
   * ```
   */
  delete(ns: Namespace, key: string): Promise<void>;

  /**
   * Every entry of `ns` as `[key, value]` pairs, sorted by key (UTF-16 code-unit order, as
   * `Array.prototype.sort` and IndexedDB order strings).
   *
   * @example
   * ```ts
   * const prekeys = new Map(await store.list<PrekeyPair>('prekeys'));
   * ```
   */
  list<T = StoredValue>(ns: Namespace): Promise<Array<[key: string, value: T]>>;

  /**
   * Apply `ops` in order, atomically: after the promise resolves all of them are stored; if it
   * rejects, none is — including when one op is invalid, which is checked before anything is written.
   * Ops may span namespaces. An empty list is a no-op.
   *
   * @example
   * ```ts
   * await store.transaction([
   *   putOp('sessions', peer, ratchet.state()),
   *   deleteOp('prekeys', String(prekeyId)),
   * ]);
   * ```
   */
  transaction(ops: readonly DeviceStoreOp[]): Promise<void>;

  /**
   * Finish pending calls and release the store (file lock, database connection). Later calls reject
   * with `CLOSED`. Closing twice is fine.
   *
   * @example
   * ```ts
   * window.addEventListener('pagehide', () => void store.close());
   * ```
   */
  close(): Promise<void>;
}
