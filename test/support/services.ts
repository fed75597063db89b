/**
 * Finds or starts the real services the tests talk to: Redis and a MongoDB-wire database.
 *
 * - REDIS_URL / MONGODB_URI set: use them (and fail loudly if they do not answer).
 * - Otherwise Redis: the one on 127.0.0.1:6379 if it answers, else `redis-server` on a free port.
 * - Otherwise MongoDB: FerretDB on SQLite in a temp dir, built from scripts/ferretdb.
 * - Always, for the storage contract suites: FerretDB on PostgreSQL, on a database of its own created for
 *   the run in the PostgreSQL at POSTGRESQL_URL (default postgres://postgres@127.0.0.1:5432/postgres) with
 *   `psql`, dropped at teardown.
 * Anything missing fails with a message that says what to install. Nothing passes silently.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RunningService {
  url: string;
  /** Whether this process started it (and so must stop it). */
  owned: boolean;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

function killChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Start a private redis-server on a free port (never the shared 6379). Used when no Redis runs,
 * and by fault tests that need to restart Redis.
 */
export async function startRedisServer(port?: number): Promise<RunningService & { port: number; child: ChildProcess }> {
  const bin = which('redis-server');
  if (!bin) {
    throw new Error(
      'Tests need Redis and none answers on 127.0.0.1:6379. Install it (Debian/Ubuntu: `apt-get install -y redis-server`) ' +
        'or set REDIS_URL to a running server.',
    );
  }
  const p = port ?? (await freePort());
  const child = spawn(bin, ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${p}`;
  await waitFor(() => redisAnswers(url, 300), `redis-server on port ${p}`);
  return { url, port: p, child, owned: true, stop: () => killChild(child) };
}

export async function ensureRedis(): Promise<RunningService> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    if (!(await redisAnswers(fromEnv))) throw new Error(`REDIS_URL=${fromEnv} does not answer PING. Start it or unset REDIS_URL.`);
    return { url: fromEnv, owned: false, stop: async () => {} };
  }
  const local = 'redis://127.0.0.1:6379';
  if (await redisAnswers(local)) return { url: local, owned: false, stop: async () => {} };
  return startRedisServer();
}

async function mongoAnswers(uri: string): Promise<boolean> {
  const conn = mongoose.createConnection(uri, { serverSelectionTimeoutMS: 1500 });
  try {
    await conn.asPromise();
    await conn.db!.admin().ping();
    return true;
  } catch {
    return false;
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * Start FerretDB (SQLite backend) in a temp dir. Builds the helper binary first if needed.
 * `port` and `dir` let a test restart "the same" database: same address, same files (a `dir` it
 * passes is not deleted on stop).
 */
export async function startFerretDb(options: { port?: number; dir?: string } = {}): Promise<RunningService & { child: ChildProcess }> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'curbside-ferretdb-'));
  const ferret = await runFerretDb(['-dir', dir], options.port);
  return {
    ...ferret,
    stop: async () => {
      await ferret.stop();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Build (if needed) and start our FerretDB helper with these backend flags; resolves once it answers. */
async function runFerretDb(backendArgs: string[], port = 0): Promise<RunningService & { child: ChildProcess }> {
  const build = spawnSync('bash', [join(repoRoot, 'scripts', 'build-ferretdb.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  const bin = join(repoRoot, 'scripts', 'ferretdb', 'bin', 'curbside-ferretdb');
  if (build.status !== 0 || !existsSync(bin)) {
    throw new Error(
      'Tests need a MongoDB-wire database. Building FerretDB failed (see above): install Go >= 1.24 with access to the Go module proxy, ' +
        'or set MONGODB_URI to a running MongoDB.',
    );
  }
  const child = spawn(bin, ['-listen', `127.0.0.1:${port}`, ...backendArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`FerretDB did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`FerretDB exited with ${code}: ${stderr}`));
    });
  });
  return { url, child, owned: true, stop: () => killChild(child) };
}

const POSTGRES_MISSING =
  'Install PostgreSQL and start it (Debian/Ubuntu: `apt-get install -y postgresql && pg_ctlcluster 15 main start`, trust auth for ' +
  'user postgres on 127.0.0.1), or set POSTGRESQL_URL to a running server whose user may create databases.';

/** Run one SQL statement with `psql` against the server of `adminUrl`; throws with psql's message. */
function psql(adminUrl: string, sql: string): void {
  const bin = which('psql');
  if (!bin) throw new Error(`Tests need PostgreSQL (FerretDB's PostgreSQL backend) and \`psql\` is not installed. ${POSTGRES_MISSING}`);
  const r = spawnSync(bin, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', adminUrl, '-c', sql], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`PostgreSQL at ${adminUrl} refused \`${sql}\`: ${(r.stderr || r.error?.message || '').trim()}. ${POSTGRES_MISSING}`);
}

/**
 * A fresh, empty PostgreSQL database in the server at POSTGRESQL_URL (default the local one with trust
 * auth, user postgres), created with `psql`; `drop()` removes it (and any session still on it).
 */
export function createPostgresDatabase(prefix = 'curbside_test'): { database: string; url: string; drop(): void } {
  const adminUrl = process.env.POSTGRESQL_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const database = uniqueName(prefix).toLowerCase();
  psql(adminUrl, `CREATE DATABASE ${database}`);
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return { database, url: url.toString(), drop: () => psql(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`) };
}

/** FerretDB on PostgreSQL, on a database of its own (`createPostgresDatabase`) that `stop()` drops again. */
export async function startFerretDbPostgres(prefix?: string): Promise<RunningService & { database: string; child: ChildProcess }> {
  const db = createPostgresDatabase(prefix);
  let ferret: RunningService & { child: ChildProcess };
  try {
    ferret = await runFerretDb(['-handler', 'postgresql', '-postgresql-url', db.url]);
  } catch (err) {
    db.drop();
    throw err;
  }
  return {
    url: ferret.url,
    owned: true,
    database: db.database,
    child: ferret.child,
    stop: async () => {
      await ferret.stop();
      db.drop();
    },
  };
}

export async function ensureMongo(): Promise<RunningService> {
  const fromEnv = process.env.MONGODB_URI;
  if (fromEnv) {
    if (!(await mongoAnswers(fromEnv))) throw new Error(`MONGODB_URI=${fromEnv} does not answer. Start it or unset MONGODB_URI.`);
    return { url: fromEnv, owned: false, stop: async () => {} };
  }
  return startFerretDb();
}

/** FerretDB's backends: PostgreSQL (what hospitals run, and what pushes queries down) or SQLite (no server needed). */
export type FerretDbBackend = 'postgresql' | 'sqlite';

/** The backend development scripts start FerretDB on: CURBSIDE_FERRETDB_BACKEND, else PostgreSQL. */
export function devFerretDbBackend(): FerretDbBackend {
  const v = (process.env.CURBSIDE_FERRETDB_BACKEND ?? 'postgresql').trim().toLowerCase();
  if (v !== 'postgresql' && v !== 'sqlite') throw new Error(`CURBSIDE_FERRETDB_BACKEND must be postgresql or sqlite, not ${JSON.stringify(v)}`);
  return v;
}

/**
 * The Mongo-wire database of development scripts in real mode (bench variants D and E, bench:teams,
 * bench:storage): the server at MONGODB_URI if set, else a FerretDB of their own on `backend`
 * (default `devFerretDbBackend()`: PostgreSQL, in a fresh database dropped at stop).
 */
export async function ensureDevMongo(backend: FerretDbBackend = devFerretDbBackend()): Promise<RunningService & { child?: ChildProcess; label: string }> {
  if (process.env.MONGODB_URI) return { ...(await ensureMongo()), label: 'MONGODB_URI' };
  if (backend === 'sqlite') return { ...(await startFerretDb()), label: 'FerretDB on SQLite' };
  const pg = await startFerretDbPostgres('curbside_dev');
  return { ...pg, label: `FerretDB on PostgreSQL (database ${pg.database})` };
}

/** A name no other test (or test run) uses: for database names and Redis key prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/**
 * The Mongo-wire databases every storage contract suite runs over: the run's default (FerretDB on SQLite,
 * or the server at MONGODB_URI) and FerretDB on PostgreSQL. Names are known when the test files load;
 * URIs only once the global setup has run.
 */
export function mongoBackends(): Array<{ name: string; uri: () => string }> {
  return [
    { name: process.env.MONGODB_URI ? 'MONGODB_URI' : 'FerretDB-SQLite', uri: () => serviceUrls().ferretDbSqliteUri },
    { name: 'FerretDB-PostgreSQL', uri: () => serviceUrls().ferretDbPostgresUri },
  ];
}

/**
 * Whether the tests other than the storage contract suites run on FerretDB-PostgreSQL
 * (CURBSIDE_TEST_DB=postgresql, ignored when MONGODB_URI is set) instead of FerretDB-SQLite (the default:
 * as fast or faster, since most tests set up a database of their own, and PostgreSQL's DDL is slower).
 */
export function testDbIsPostgres(): boolean {
  const v = (process.env.CURBSIDE_TEST_DB ?? 'sqlite').trim().toLowerCase();
  if (v !== 'postgresql' && v !== 'sqlite') throw new Error(`CURBSIDE_TEST_DB must be sqlite or postgresql, not ${JSON.stringify(v)}`);
  return v === 'postgresql' && !process.env.MONGODB_URI;
}

/** URLs of the services for this test run, set by the global setup. */
export function serviceUrls(): { redisUrl: string; mongoUri: string; ferretDbSqliteUri: string; ferretDbPostgresUri: string } {
  const redisUrl = process.env.CURBSIDE_TEST_REDIS_URL;
  /** The database of every test but the storage contract suites. */
  const mongoUri = process.env.CURBSIDE_TEST_MONGODB_URI;
  /** FerretDB-SQLite, or the server at MONGODB_URI when set. */
  const ferretDbSqliteUri = process.env.CURBSIDE_TEST_FERRETDB_SQLITE_URI;
  const ferretDbPostgresUri = process.env.CURBSIDE_TEST_FERRETDB_PG_URI;
  if (!redisUrl || !mongoUri || !ferretDbSqliteUri || !ferretDbPostgresUri) {
    throw new Error('test services are not set up: run the tests through `npm test` (mocha loads test/support/global-setup.ts)');
  }
  return { redisUrl, mongoUri, ferretDbSqliteUri, ferretDbPostgresUri };
}
