/**
 * The DeviceStore contract over MemoryDeviceStore and FileDeviceStore in Node, then what only the
 * file store promises: restarts, crashes (a leftover temp file; a writer SIGKILLed mid-stream),
 * permissions, locking, refusing corrupt files, and a failed write leaving the store as it was.
 * The same contract runs over IndexedDbDeviceStore in Chromium in indexeddb.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileDeviceStore } from '../../client-sdk/src/node/index.js';
import { MemoryDeviceStore, isDeviceStoreError, putOp, type DeviceStoreErrorCode } from '../../client-sdk/src/stores/index.js';
import { checkEqual, deviceStoreContract, patternBytes, sessionLike, type StoreUnderTest } from './device-store.contract.js';
import { PREKEYS, sessionAt } from './fixtures/crash-data.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function rejectsWith(promise: Promise<unknown>, code: DeviceStoreErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isDeviceStoreError(e), `expected a DeviceStoreError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'curbside-device-store-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

const memory: StoreUnderTest = {
  name: 'MemoryDeviceStore',
  persistent: false,
  open: async () => new MemoryDeviceStore(),
};

const file: StoreUnderTest = {
  name: 'FileDeviceStore',
  persistent: true,
  open: (name) => FileDeviceStore.open(join(base, name)),
  destroy: (name) => FileDeviceStore.destroy(join(base, name)),
};

for (const impl of [memory, file]) {
  describe(`DeviceStore contract: ${impl.name}`, () => {
    for (const c of deviceStoreContract(impl)) it(c.name, () => c.run());
  });
}

describe('FileDeviceStore on disk', () => {
  let n = 0;
  const freshDir = (): string => join(base, `fs-${++n}`);

  it('a new instance on the same directory sees the data (restart)', async () => {
    const dir = freshDir();
    const a = await FileDeviceStore.open(dir);
    await a.transaction([putOp('identity', 'self', { secretKey: patternBytes(64, 9) }), putOp('sessions', 'dave/2', sessionLike(2))]);
    await a.close();
    const b = await FileDeviceStore.open(dir);
    checkEqual(await b.get('identity', 'self'), { secretKey: patternBytes(64, 9) });
    checkEqual(await b.get('sessions', 'dave/2'), sessionLike(2));
    await b.close();
  });

  it('writes a readable snapshot: tagged base64 for bytes, $-keys escaped', async () => {
    const dir = freshDir();
    const s = await FileDeviceStore.open(dir);
    await s.put('meta', 'k', { bytes: new Uint8Array([1, 2, 3]), $b64: 'x' });
    await s.close();
    const doc = JSON.parse(await readFile(join(dir, 'store.json'), 'utf8')) as unknown;
    assert.deepEqual(doc, { format: 'curbside-device-store', version: 1, namespaces: { meta: [['k', { bytes: { $b64: 'AQID' }, $$b64: 'x' }]] } });
  });

  it('creates the directory 0700 and its files 0600, whatever the umask', async () => {
    const dir = join(freshDir(), 'nested', 'device');
    const old = process.umask(0o000);
    try {
      const s = await FileDeviceStore.open(dir);
      await s.put('identity', 'self', { secretKey: patternBytes(32) });
      assert.equal(await mode(dir), 0o700, 'device directory');
      assert.equal(await mode(join(dir, 'store.json')), 0o600, 'store.json');
      assert.equal(await mode(join(dir, 'LOCK')), 0o600, 'LOCK');
      await s.close();
    } finally {
      process.umask(old);
    }
  });

  it('tightens a pre-existing directory and snapshot to 0700 / 0600', async () => {
    const dir = freshDir();
    const s = await FileDeviceStore.open(dir);
    await s.put('meta', 'k', 1);
    await s.close();
    await chmod(dir, 0o755);
    await chmod(join(dir, 'store.json'), 0o644);
    const again = await FileDeviceStore.open(dir);
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(join(dir, 'store.json')), 0o600);
    await again.close();
  });

  it('a temp file left by a crash does not corrupt the store and is removed at the next open', async () => {
    const dir = freshDir();
    const s = await FileDeviceStore.open(dir);
    await s.put('sessions', 'erin/1', sessionLike(3));
    await s.close();
    const snapshot = await readFile(join(dir, 'store.json'), 'utf8');
    // A crash mid-write leaves a truncated next snapshot under a temp name (and maybe a temp lock).
    await writeFile(join(dir, 'store.json.0123456789abcdef.tmp'), snapshot.slice(0, snapshot.length / 2), { mode: 0o600 });
    await writeFile(join(dir, 'LOCK.fedcba9876543210.tmp'), '{"pid":', { mode: 0o600 });
    const again = await FileDeviceStore.open(dir);
    checkEqual(await again.get('sessions', 'erin/1'), sessionLike(3));
    assert.deepEqual((await readdir(dir)).sort(), ['LOCK', 'store.json']);
    await again.put('sessions', 'erin/1', sessionLike(4));
    checkEqual(await again.get('sessions', 'erin/1'), sessionLike(4));
    await again.close();
  });

  it('survives a writer killed mid-stream: every acknowledged commit is there, nothing is half-applied', async function () {
    this.timeout(60_000);
    const dir = freshDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'stores', 'fixtures', 'crash-writer.ts'), dir], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Kill it at a random point after at least 25 acknowledged commits.
    const killAfter = 25 + Math.floor(Math.random() * 50);
    const acknowledged = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const acks = out.split('\n').filter((l) => /^\d+$/.test(l));
        if (acks.length >= killAfter) {
          child.kill('SIGKILL');
          resolve(Number(acks[acks.length - 1]));
        }
      });
      child.once('exit', (code, signal) => {
        if (signal !== 'SIGKILL') reject(new Error(`crash-writer exited early (${code ?? signal}): ${err}\n${out}`));
      });
    });
    await exited;

    // The dead process's lock is taken over; its temp file (if the kill hit mid-write) is removed.
    const s = await FileDeviceStore.open(dir);
    try {
      const counter = await s.get<number>('meta', 'counter');
      assert.ok(counter !== undefined && counter >= acknowledged, `counter ${counter} < acknowledged ${acknowledged}`);
      // All three ops of the last commit, and nothing of the next one.
      checkEqual(await s.get('sessions', 'peer'), sessionAt(counter));
      const prekeys = (await s.list('prekeys')).map(([k]) => Number(k)).sort((a, b) => a - b);
      assert.equal(prekeys.length, PREKEYS - counter);
      assert.equal(prekeys[0], counter + 1);
      assert.ok(!(await readdir(dir)).some((f) => f.endsWith('.tmp')), 'temp files removed');
      // And it keeps working.
      await s.put('meta', 'counter', counter + 1000);
    } finally {
      await s.close();
    }
  });

  it('refuses a second open of the same directory in this process', async () => {
    const dir = freshDir();
    const a = await FileDeviceStore.open(dir);
    await rejectsWith(FileDeviceStore.open(dir), 'LOCKED', /already open in this process/);
    await rejectsWith(FileDeviceStore.open(join(dir, '..', dir.split('/').pop()!)), 'LOCKED'); // same dir, other spelling
    await a.close();
    const b = await FileDeviceStore.open(dir);
    await b.close();
  });

  it('refuses a directory locked by another live process, or another host', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: process.ppid, hostname: hostname(), token: 'theirs' }), { mode: 0o600 });
    await rejectsWith(FileDeviceStore.open(dir), 'LOCKED', new RegExp(`process ${process.ppid}`));
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 999_999_999, hostname: 'elsewhere', token: 'theirs' }), { mode: 0o600 });
    await rejectsWith(FileDeviceStore.open(dir), 'LOCKED', /elsewhere/);
    assert.equal(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).token, 'theirs', 'a refused open leaves the lock alone');
    // A lock of a pid that is not running on this host is stale and taken over.
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 999_999_999, hostname: hostname(), token: 'dead' }), { mode: 0o600 });
    const s = await FileDeviceStore.open(dir);
    assert.equal(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).pid, process.pid);
    await s.close();
    assert.ok(!(await readdir(dir)).includes('LOCK'), 'close releases the lock');
  });

  it('refuses to open a corrupt snapshot (rather than starting empty) and keeps it', async () => {
    const cases: Array<[string, string]> = [
      ['not JSON', '{"format":"curbside-device-store","vers'],
      ['another format', '{"hello":1}'],
      ['a newer version', '{"format":"curbside-device-store","version":2,"namespaces":{}}'],
      ['an unknown namespace', '{"format":"curbside-device-store","version":1,"namespaces":{"keys":[]}}'],
      ['a duplicate key', '{"format":"curbside-device-store","version":1,"namespaces":{"meta":[["a",1],["a",2]]}}'],
      ['an unknown tag', '{"format":"curbside-device-store","version":1,"namespaces":{"meta":[["a",{"$date":1}]]}}'],
      ['bad base64', '{"format":"curbside-device-store","version":1,"namespaces":{"meta":[["a",{"$b64":"AQI"}]]}}'],
    ];
    for (const [label, text] of cases) {
      const dir = freshDir();
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(join(dir, 'store.json'), text, { mode: 0o600 });
      await rejectsWith(FileDeviceStore.open(dir), 'CORRUPT', /refusing to open/);
      assert.equal(await readFile(join(dir, 'store.json'), 'utf8'), text, `${label}: file kept as it was`);
      assert.ok(!(await readdir(dir)).includes('LOCK'), `${label}: lock released after the failed open`);
    }
  });

  it('a failed write rejects and leaves the store as it was', async () => {
    const dir = freshDir();
    const s = await FileDeviceStore.open(dir);
    await s.put('sessions', 'frank/1', { n: 1 });
    // Pull the directory from under the store: creating the temp file fails with ENOENT.
    await rename(dir, `${dir}-moved`);
    await assert.rejects(s.transaction([putOp('sessions', 'frank/1', { n: 2 }), putOp('meta', 'x', 1)]), /ENOENT/);
    checkEqual(await s.get('sessions', 'frank/1'), { n: 1 }, 'memory state unchanged');
    assert.equal(await s.get('meta', 'x'), undefined);
    await rename(`${dir}-moved`, dir);
    await s.put('sessions', 'frank/1', { n: 3 }); // and it recovers
    await s.close();
    const again = await FileDeviceStore.open(dir);
    checkEqual(await again.get('sessions', 'frank/1'), { n: 3 });
    assert.equal(await again.get('meta', 'x'), undefined);
    await again.close();
  });

  it('destroy removes the store (and refuses while it is open)', async () => {
    const dir = freshDir();
    const s = await FileDeviceStore.open(dir);
    await s.put('identity', 'self', patternBytes(32));
    await rejectsWith(FileDeviceStore.destroy(dir), 'LOCKED');
    await s.close();
    await FileDeviceStore.destroy(dir);
    await assert.rejects(stat(dir), /ENOENT/);
    // A directory with files the store did not write is emptied of the store's files but kept.
    const shared = freshDir();
    const t = await FileDeviceStore.open(shared);
    await t.put('meta', 'k', 1);
    await t.close();
    await writeFile(join(shared, 'not-ours.txt'), 'x');
    await FileDeviceStore.destroy(shared);
    assert.deepEqual(await readdir(shared), ['not-ours.txt']);
    // A store too corrupt to open can still be destroyed; a missing one is already destroyed.
    const broken = freshDir();
    await mkdir(broken, { recursive: true, mode: 0o700 });
    await writeFile(join(broken, 'store.json'), '{"trunc', { mode: 0o600 });
    await rejectsWith(FileDeviceStore.open(broken), 'CORRUPT');
    await FileDeviceStore.destroy(broken);
    await assert.rejects(stat(broken), /ENOENT/);
    await FileDeviceStore.destroy(broken);
  });
});
