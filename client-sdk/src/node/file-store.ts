/// <reference types="node" />
/**
 * FileDeviceStore: the DeviceStore for Node (CLIs, bots, Electron main process, tests).
 *
 * On disk, in a directory the store owns (mode 0700):
 * - `store.json`: the whole store as one JSON snapshot (mode 0600), bytes in tagged base64
 *   (see stores/codec.ts). It is only ever replaced, never written in place.
 * - `LOCK`: `{ pid, hostname, token }` of the process that has the store open (mode 0600).
 * - `*.tmp`: a write in progress; one left behind by a crash is deleted at the next open.
 *
 * Every commit (put, delete, transaction) writes the complete next snapshot to a fresh temp file,
 * fsyncs it, renames it over `store.json` (atomic on POSIX file systems) and fsyncs the directory so
 * the rename itself is durable. A crash at any point leaves either the old or the new snapshot, never
 * a mix: that is what makes multi-op transactions atomic. The cost is O(store size) per commit,
 * which is fine for a device's keys and sessions (typically well under a megabyte).
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, readdir, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fromTaggedJson, toTaggedJson } from '../stores/codec.js';
import { DeviceStoreError, NAMESPACES, type DeviceStore, type DeviceStoreOp, type Namespace, type Storable, type StoredValue } from '../stores/store.js';
import { checkKey, checkNamespace, checkOps, cloneValue, copyStored, type CheckedOp } from '../stores/value.js';

const SNAPSHOT = 'store.json';
const LOCK = 'LOCK';
const FORMAT = 'curbside-device-store';
const VERSION = 1;
const TEMP_FILE = /^(store\.json|LOCK)\.[0-9a-f]+\.tmp$/;
const namespaceSet: ReadonlySet<string> = new Set(NAMESPACES);

/** Directories (real paths) with an open FileDeviceStore in this process. */
const openInProcess = new Set<string>();

interface LockInfo {
  pid: number;
  hostname: string;
  token: string;
}

type Data = ReadonlyMap<Namespace, ReadonlyMap<string, StoredValue>>;

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function corrupt(path: string, why: string): DeviceStoreError {
  return new DeviceStoreError('CORRUPT', `${path} is not a usable device store (${why}); refusing to open it rather than lose its keys`);
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `"ns":[["key",value],...]` for one namespace, entries sorted by key. */
function encodeNamespace(ns: Namespace, space: ReadonlyMap<string, StoredValue>): string {
  const entries = [...space.keys()].sort(compareKeys).map((k) => JSON.stringify([k, toTaggedJson(space.get(k)!)]));
  return `${JSON.stringify(ns)}:[${entries.join(',')}]`;
}

function renderSnapshot(fragments: ReadonlyMap<Namespace, string>): string {
  const parts = NAMESPACES.flatMap((ns) => (fragments.has(ns) ? [fragments.get(ns)!] : []));
  return `{"format":${JSON.stringify(FORMAT)},"version":${VERSION},"namespaces":{${parts.join(',')}}}\n`;
}

function parseSnapshot(path: string, text: string): Map<Namespace, Map<string, StoredValue>> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt(path, 'not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || (doc as { format?: unknown }).format !== FORMAT) throw corrupt(path, 'unknown format');
  const { version, namespaces } = doc as { version?: unknown; namespaces?: unknown };
  if (version !== VERSION) throw corrupt(path, `format version ${String(version)}, this SDK reads version ${VERSION}`);
  if (typeof namespaces !== 'object' || namespaces === null || Array.isArray(namespaces)) throw corrupt(path, 'no namespaces');
  const data = new Map<Namespace, Map<string, StoredValue>>();
  for (const [ns, entries] of Object.entries(namespaces)) {
    if (!namespaceSet.has(ns)) throw corrupt(path, `unknown namespace ${JSON.stringify(ns)}`);
    if (!Array.isArray(entries)) throw corrupt(path, `namespace ${ns} is not a list`);
    const space = new Map<string, StoredValue>();
    for (const entry of entries as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || entry[0] === '') throw corrupt(path, `bad entry in ${ns}`);
      if (space.has(entry[0])) throw corrupt(path, `duplicate key in ${ns}`);
      try {
        space.set(entry[0], fromTaggedJson(entry[1]));
      } catch (e) {
        throw corrupt(path, `bad value in ${ns}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (space.size > 0) data.set(ns as Namespace, space);
  }
  return data;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * A {@link DeviceStore} in a directory on the local file system, for Node. One directory per device;
 * the store owns it (it sets the directory to mode 0700 and its files to 0600) and only one
 * FileDeviceStore, in one process, may have it open at a time (`LOCKED` otherwise; a lock left by a
 * process that died is taken over).
 *
 * Durable: a call resolves only after its data and the directory entry are fsynced. Atomic: each
 * call, including a multi-op {@link transaction}, replaces the whole snapshot with one rename, so a
 * crash leaves the store as it was before or after the call, never in between. Calls are applied one
 * at a time, in call order. Not for network file systems (rename and fsync semantics vary there).
 *
 * @example
 * ```ts
 * import { FileDeviceStore } from '@curbside/client-sdk/node';
 *
 * const store = await FileDeviceStore.open(join(appDataDir, 'devices', deviceId));
 * await store.put('identity', 'self', identityKeyPair);
 * process.on('SIGTERM', () => void store.close());
 * ```
 */
export class FileDeviceStore implements DeviceStore {
  private data: Data;
  private fragments: Map<Namespace, string>;
  private queue: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private constructor(
    /** The store's directory (real path). */
    readonly dir: string,
    data: Map<Namespace, Map<string, StoredValue>>,
    private readonly lockToken: string,
  ) {
    this.data = data;
    this.fragments = new Map([...data].map(([ns, space]) => [ns, encodeNamespace(ns, space)]));
  }

  /**
   * Open the store in `dir`, creating the directory (mode 0700, parents as needed) if it does not
   * exist. Deletes temp files a crash left behind. Rejects with `LOCKED` if another store has `dir`
   * open, and with `CORRUPT` if `store.json` is not a store this SDK wrote.
   *
   * @example
   * ```ts
   * const store = await FileDeviceStore.open('/var/lib/my-bot/device');
   * ```
   */
  static async open(dir: string): Promise<FileDeviceStore> {
    if (typeof dir !== 'string' || dir.length === 0) throw new DeviceStoreError('INVALID_ARGUMENT', 'dir must be a non-empty path');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (process.platform !== 'win32') await chmod(dir, 0o700);
    const real = await realpath(dir);
    if (openInProcess.has(real)) throw new DeviceStoreError('LOCKED', `${real} is already open in this process: close that FileDeviceStore first`);
    openInProcess.add(real);
    let token: string | undefined;
    try {
      token = await acquireLock(real);
      for (const name of await readdir(real)) {
        if (TEMP_FILE.test(name)) await unlink(join(real, name)).catch(() => {});
      }
      const path = join(real, SNAPSHOT);
      let text: string | undefined;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if (errCode(e) !== 'ENOENT') throw e;
      }
      if (text !== undefined && process.platform !== 'win32') await chmod(path, 0o600);
      return new FileDeviceStore(real, text === undefined ? new Map() : parseSnapshot(path, text), token);
    } catch (e) {
      if (token !== undefined) await releaseLock(real, token);
      openInProcess.delete(real);
      throw e;
    }
  }

  /**
   * Delete the store in `dir`: its snapshot, lock and temp files, then the directory if nothing else
   * is in it. Works on a store too corrupt to open; a `dir` that does not exist is already deleted.
   * Rejects with `LOCKED` if the store is open. (Files are unlinked, not overwritten: use full-disk
   * encryption if deleted keys must be unrecoverable from the disk.)
   *
   * @example
   * ```ts
   * await store.close();
   * await FileDeviceStore.destroy(dir); // sign-out: forget this device's keys
   * ```
   */
  static async destroy(dir: string): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) throw new DeviceStoreError('INVALID_ARGUMENT', 'dir must be a non-empty path');
    let real: string;
    try {
      real = await realpath(dir);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return;
      throw e;
    }
    if (openInProcess.has(real)) throw new DeviceStoreError('LOCKED', `${real} is open in this process: close that FileDeviceStore first`);
    openInProcess.add(real);
    try {
      const token = await acquireLock(real);
      try {
        for (const name of await readdir(real)) {
          if (name === SNAPSHOT || TEMP_FILE.test(name)) await unlink(join(real, name)).catch((e: unknown) => (errCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
        }
      } finally {
        await releaseLock(real, token);
      }
      await rmdir(real).catch((e: unknown) => (errCode(e) === 'ENOTEMPTY' || errCode(e) === 'EEXIST' ? undefined : Promise.reject(e)));
    } finally {
      openInProcess.delete(real);
    }
  }

  get<T = StoredValue>(ns: Namespace, key: string): Promise<T | undefined> {
    return this.call(
      () => {
        checkNamespace(ns);
        checkKey(key);
      },
      async () => {
        const value = this.data.get(ns)?.get(key);
        return value === undefined ? undefined : (copyStored(value) as T);
      },
    );
  }

  put<T>(ns: Namespace, key: string, value: T & Storable<T>): Promise<void> {
    return this.call(
      (): CheckedOp[] => {
        checkNamespace(ns);
        checkKey(key);
        return [{ type: 'put', ns, key, value: cloneValue(value) }];
      },
      (ops) => this.commit(ops),
    );
  }

  delete(ns: Namespace, key: string): Promise<void> {
    return this.call(
      (): CheckedOp[] => {
        checkNamespace(ns);
        checkKey(key);
        return [{ type: 'delete', ns, key }];
      },
      (ops) => this.commit(ops),
    );
  }

  list<T = StoredValue>(ns: Namespace): Promise<Array<[key: string, value: T]>> {
    return this.call(
      () => checkNamespace(ns),
      async () => {
        const space = this.data.get(ns);
        if (!space) return [];
        return [...space.keys()].sort(compareKeys).map((k): [string, T] => [k, copyStored(space.get(k)!) as T]);
      },
    );
  }

  transaction(ops: readonly DeviceStoreOp[]): Promise<void> {
    return this.call(
      () => checkOps(ops),
      (checked) => this.commit(checked),
    );
  }

  /** Waits for pending calls, then releases the lock. */
  close(): Promise<void> {
    this.closing ??= this.queue.then(async () => {
      try {
        await releaseLock(this.dir, this.lockToken);
      } finally {
        openInProcess.delete(this.dir);
      }
    });
    return this.closing;
  }

  /**
   * Check arguments now (so an invalid call fails at once and its values are copied before the
   * caller can mutate them), then run `body` after every earlier call has finished.
   */
  private call<A, R>(check: () => A, body: (checked: A) => Promise<R>): Promise<R> {
    let checked: A;
    try {
      if (this.closing) throw new DeviceStoreError('CLOSED', `the FileDeviceStore in ${this.dir} is closed`);
      checked = check();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const result = this.queue.then(() => body(checked));
    this.queue = result.catch(() => {});
    return result;
  }

  private async commit(ops: readonly CheckedOp[]): Promise<void> {
    const next = new Map(this.data);
    const touched = new Map<Namespace, Map<string, StoredValue>>();
    let changed = false;
    for (const op of ops) {
      let space = touched.get(op.ns);
      if (!space) {
        space = new Map(next.get(op.ns));
        touched.set(op.ns, space);
        next.set(op.ns, space);
      }
      if (op.type === 'put') {
        space.set(op.key, op.value);
        changed = true;
      } else if (space.delete(op.key)) {
        changed = true;
      }
    }
    if (!changed) return;
    const fragments = new Map(this.fragments);
    for (const [ns, space] of touched) {
      if (space.size === 0) {
        next.delete(ns);
        fragments.delete(ns);
      } else {
        fragments.set(ns, encodeNamespace(ns, space));
      }
    }
    await this.replaceSnapshot(renderSnapshot(fragments));
    // The rename happened: store.json now holds `next`, so memory must too, even if the directory
    // fsync below fails (then the call rejects, and the change may or may not survive a power cut).
    this.data = next;
    this.fragments = fragments;
    await syncDir(this.dir);
  }

  /** Write `text` to a temp file, fsync it, rename it over store.json. */
  private async replaceSnapshot(text: string): Promise<void> {
    const target = join(this.dir, SNAPSHOT);
    const temp = `${target}.${randomBytes(8).toString('hex')}.tmp`;
    try {
      const fh = await open(temp, 'wx', 0o600);
      try {
        if (process.platform !== 'win32') await fh.chmod(0o600); // exact mode whatever the umask
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, target);
    } catch (e) {
      await unlink(temp).catch(() => {});
      throw e;
    }
  }
}

/** fsync a directory, so renames and creations in it survive a power cut. No-op on Windows. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(path, 'utf8')) as Partial<LockInfo>;
    if (typeof info.pid === 'number' && typeof info.hostname === 'string' && typeof info.token === 'string') return info as LockInfo;
    return undefined;
  } catch (e) {
    if (errCode(e) === 'ENOENT') throw e;
    return undefined; // unreadable: not a lock this SDK wrote in full
  }
}

/**
 * Take `dir`'s lock. The lock file is written in full under a temp name and hard-linked to `LOCK`,
 * which fails if `LOCK` exists: no one ever sees a half-written lock. A lock whose process is gone
 * (same host, pid not running, or this very process, which the in-process registry already cleared)
 * is taken over. Returns the token that identifies this holder.
 */
async function acquireLock(dir: string): Promise<string> {
  const lockPath = join(dir, LOCK);
  const info: LockInfo = { pid: process.pid, hostname: hostname(), token: randomBytes(16).toString('hex') };
  const temp = `${lockPath}.${randomBytes(8).toString('hex')}.tmp`;
  const fh = await open(temp, 'wx', 0o600);
  try {
    if (process.platform !== 'win32') await fh.chmod(0o600);
    await fh.writeFile(JSON.stringify(info));
  } finally {
    await fh.close();
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(temp, lockPath);
        return info.token;
      } catch (e) {
        // ENOENT: our temp lock file is gone, which only a process that holds the lock does (it
        // clears leftover temp files at open).
        if (errCode(e) === 'ENOENT') throw new DeviceStoreError('LOCKED', `${dir} was just opened by another process`);
        if (errCode(e) !== 'EEXIST') throw e;
      }
      let holder: LockInfo | undefined;
      try {
        holder = await readLock(lockPath);
      } catch {
        continue; // vanished between link and read: try again
      }
      const stale = holder === undefined || (holder.hostname === info.hostname && (holder.pid === process.pid || !isAlive(holder.pid)));
      if (!stale) {
        throw new DeviceStoreError('LOCKED', `${dir} is open in process ${holder!.pid} on ${holder!.hostname}: one device store, one process`);
      }
      await unlink(lockPath).catch((e: unknown) => (errCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
    }
    throw new DeviceStoreError('LOCKED', `${dir}: could not take the lock (another process keeps taking it)`);
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/** Remove `dir`'s lock if it is still the one `token` took. */
async function releaseLock(dir: string, token: string): Promise<void> {
  const lockPath = join(dir, LOCK);
  try {
    const holder = await readLock(lockPath);
    if (holder?.token === token) await unlink(lockPath);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') throw e;
  }
}
