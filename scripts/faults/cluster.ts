/**
 * Long file: one cluster harness (processes, ports, restarts, kills), read top to bottom.
 *
 * A fault-injection cluster: THREE (by default) hub processes (`node server/dist/main.js` in production
 * mode) on a private redis-server and a private FerretDB, each a child process this module owns.
 *
 * - Hubs: MONGODB_URI/MONGODB_DB, REDIS_URL with a per-run REDIS_KEY_PREFIX, PORT=0 on first start (the
 *   port is read from the hub's `hub listening` JSON log line and reused on restart), NODE_ID, and
 *   JWT_PUBLIC_KEY/JWT_ISSUER/JWT_AUDIENCE of an RSA key pair generated here (`cluster.mint`).
 * - Redis: its own `redis-server` on its own port (never the shared 127.0.0.1:6379), no persistence;
 *   a restart comes back empty on the same port.
 * - FerretDB: its own instance, on PostgreSQL (a database of its own in the PostgreSQL at POSTGRESQL_URL,
 *   dropped at stop) unless `db: 'sqlite'` or CURBSIDE_FERRETDB_BACKEND=sqlite (a temp directory); a restart
 *   keeps the port and the PostgreSQL database or SQLite directory, so what was stored survives.
 *
 * Ports are picked below the kernel's ephemeral range, so no outgoing connection takes one while its
 * service is down. Every child's output goes to a log file in `cluster.logDir`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import { createPostgresDatabase, devFerretDbBackend, type FerretDbBackend } from '../../test/support/services.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ClusterOptions {
  /** Hub processes. @default 3 */
  nodes?: number;
  /** Extra environment for every hub (e.g. `{ LOG_LEVEL: 'debug' }`). */
  hubEnv?: Record<string, string>;
  /** How long a (re)start may take before it counts as failed. @default 60000 */
  startTimeoutMs?: number;
  /** Progress lines (fault log). @default nothing */
  log?: (line: string) => void;
  /** Keep the temp dir (logs, SQLite files) after `stop()`. @default false */
  keepDir?: boolean;
  /** FerretDB's backend. @default CURBSIDE_FERRETDB_BACKEND, else 'postgresql' */
  db?: FerretDbBackend;
}

export type NodeState = 'starting' | 'up' | 'down';

/** One hub process, by index. */
export interface HubNode {
  index: number;
  id: string;
  port: number;
  url: string;
  state: NodeState;
  pid: number | undefined;
  starts: number;
}

/** A process that exited without being told to. */
export interface UnexpectedExit {
  what: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  /** The last lines it wrote. */
  tail: string;
}

interface Owned {
  child: ChildProcess;
  /** Set before we stop it ourselves; an exit without it (once ready) is unexpected. */
  expectExit: boolean;
  /** Came up: exits before that are failed starts, retried by `withRetries`. */
  ready: boolean;
  exited: Promise<void>;
  tail: string[];
}

/** main.ts exits with EX_UNAVAILABLE when the storage watchdog gives up. */
const WATCHDOG_EXIT_CODE = 69;

const ISSUER = 'https://idp.fault-cluster.example';
const AUDIENCE = 'curbside';

import { sleep } from '@curbside/shared';

export { sleep };

/** Events: `node-down` (index), `node-up` (index), `unexpected-exit` (UnexpectedExit). */
export class FaultCluster extends EventEmitter {
  readonly runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  readonly dir: string;
  readonly logDir: string;
  readonly dbDir: string;
  /** Database of the hubs; `useFreshDatabase` moves them to a new one. */
  dbName: string;
  /** Redis key prefix of the hubs (changes with the database). */
  keyPrefix: string;
  readonly nodes: HubNode[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];
  /**
   * Hub exits the node asked for (code 69: its storage watchdog gave up). The cluster restarts
   * them as a supervisor (systemd, Kubernetes) would; they are counted, not failures.
   */
  readonly watchdogExits: UnexpectedExit[] = [];
  readonly issuer = ISSUER;
  readonly audience = AUDIENCE;
  redisPort = 0;
  dbPort = 0;
  readonly dbBackend: FerretDbBackend;
  /** The PostgreSQL database under FerretDB (PostgreSQL backend), created at the first start. */
  private postgres: ReturnType<typeof createPostgresDatabase> | undefined;

  private readonly privateKey: KeyObject;
  private readonly publicKeyPem: string;
  private readonly procs = new Map<string, Owned>();
  private readonly startTimeoutMs: number;
  private readonly log: (line: string) => void;
  private readonly usedPorts = new Set<number>();
  private stopped = false;

  private constructor(private readonly options: ClusterOptions) {
    super();
    this.dir = mkdtempSync(join(tmpdir(), 'curbside-faults-'));
    this.logDir = join(this.dir, 'logs');
    this.dbDir = join(this.dir, 'sqlite');
    mkdirSync(this.logDir, { recursive: true });
    mkdirSync(this.dbDir, { recursive: true });
    this.dbBackend = options.db ?? devFerretDbBackend();
    this.dbName = `faults_${this.runId}`;
    this.keyPrefix = `curbside-faults-${this.runId}:`;
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.publicKeyPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    this.log = options.log ?? (() => {});
    // Children must not outlive the process that owns them (an aborted run, a failed test).
    this.killAllSync = this.killAllSync.bind(this);
    process.once('exit', this.killAllSync);
  }

  private killAllSync(): void {
    for (const owned of this.procs.values()) {
      owned.expectExit = true;
      owned.child.kill('SIGKILL');
    }
    try {
      this.postgres?.drop();
    } catch {
      // exiting anyway: a database left behind is named curbside_faults_*
    }
  }

  /** Start Redis, FerretDB and the hubs; resolves when every hub logged `hub listening`. */
  static async start(options: ClusterOptions = {}): Promise<FaultCluster> {
    const cluster = new FaultCluster(options);
    try {
      const hubMain = join(repoRoot, 'server', 'dist', 'main.js');
      if (!existsSync(hubMain)) throw new Error(`${hubMain} is missing: run \`npm run build\` first`);
      await Promise.all([cluster.startRedis(), cluster.startDb()]);
      const n = options.nodes ?? 3;
      for (let i = 0; i < n; i++) {
        cluster.nodes.push({ index: i, id: `node-${i + 1}`, port: 0, url: '', state: 'down', pid: undefined, starts: 0 });
      }
      // One after the other: the first creates the collections and indexes.
      for (let i = 0; i < n; i++) await cluster.startNode(i);
      return cluster;
    } catch (e) {
      await cluster.stop();
      throw e;
    }
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }
  /** FAULTS_MONGO_OPTIONS (e.g. `heartbeatFrequencyMS=2000`) is appended as the URI's query: driver settings to compare. */
  get mongoUri(): string {
    const extra = process.env.FAULTS_MONGO_OPTIONS;
    return `mongodb://127.0.0.1:${this.dbPort}/${extra ? `?${extra}` : ''}`;
  }

  /**
   * An access token for this cluster's hubs (RS256, signed with the run's private key), from a sign-in
   * just now (`auth_time`): linking a sibling device needs a recent one (RECENT_AUTH_SEC).
   */
  mint(who: { userId: string; deviceId: string; orgId?: string }, expiresInSec = 3600): string {
    // A sign-in just now (auth_time), as an identity provider's fresh token says: linking devices needs one.
    return jwt.sign({ sub: who.userId, org: who.orgId ?? 'org-faults', dev: who.deviceId, auth_time: Math.floor(Date.now() / 1000) }, this.privateKey, {
      algorithm: 'RS256',
      issuer: ISSUER,
      audience: AUDIENCE,
      expiresIn: expiresInSec,
      jwtid: randomUUID(),
    });
  }

  isUp(index: number): boolean {
    return this.nodes[index]?.state === 'up';
  }

  upNodes(): HubNode[] {
    return this.nodes.filter((n) => n.state === 'up');
  }

  // --- faults ---------------------------------------------------------------------------------

  /** kill -9 a hub. Marked down before the signal, so clients that notice see it dead. */
  async killNode(index: number): Promise<void> {
    await this.stopProc(`hub-${index}`, 'SIGKILL', () => this.markDown(index));
  }

  /** SIGTERM a hub: it tells its clients to reconnect elsewhere and closes cleanly. */
  async stopNodeGracefully(index: number): Promise<void> {
    await this.stopProc(`hub-${index}`, 'SIGTERM', () => this.markDown(index));
  }

  /** (Re)start a hub on its port; retried while the database or the port is not ready. */
  async restartNode(index: number): Promise<void> {
    const node = this.nodes[index]!;
    if (node.state !== 'down') await this.killNode(index);
    await this.startNode(index);
  }

  /** Stop Redis (SIGKILL by default: no persistence, so it comes back empty) and start it on the same port. */
  async restartRedis(options: { downMs?: number; signal?: NodeJS.Signals } = {}): Promise<void> {
    await this.stopProc('redis', options.signal ?? 'SIGKILL');
    if (options.downMs) await sleep(options.downMs);
    await this.startRedis();
  }

  /** Stop FerretDB (SIGKILL by default) and start it on the same port over the same PostgreSQL database or SQLite directory. */
  async restartDb(options: { downMs?: number; signal?: NodeJS.Signals } = {}): Promise<void> {
    await this.stopProc('db', options.signal ?? 'SIGKILL');
    if (options.downMs) await sleep(options.downMs);
    await this.startDb();
  }

  /**
   * Point every hub at a new, empty database and Redis key prefix (stopped with SIGTERM and started
   * again; not a fault). FerretDB's SQLite backend scans a whole collection for any query that is not
   * by _id, so a long run starts afresh every few faults to keep the hub's latency from growing.
   */
  async useFreshDatabase(tag: string): Promise<void> {
    this.dbName = `faults_${this.runId}_${tag}`;
    this.keyPrefix = `curbside-faults-${this.runId}-${tag}:`;
    for (const node of this.nodes) {
      await this.stopNodeGracefully(node.index);
      await this.startNode(node.index);
    }
  }

  /** Stop every process (hubs first), then remove the temp dir unless `keepDir`. */
  async stop(): Promise<void> {
    this.stopped = true;
    const hubs = [...this.procs.keys()].filter((k) => k.startsWith('hub-'));
    await Promise.all(hubs.map((k) => this.stopProc(k, 'SIGKILL')));
    await Promise.all(['redis', 'db'].map((k) => this.stopProc(k, 'SIGKILL')));
    this.postgres?.drop();
    this.postgres = undefined;
    process.off('exit', this.killAllSync);
    if (!this.options.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last `lines` lines a process wrote (from its log file). */
  logTail(what: string, lines = 40): string {
    const file = join(this.logDir, `${what}.log`);
    if (!existsSync(file)) return '';
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  }

  // --- processes ------------------------------------------------------------------------------

  private markDown(index: number): void {
    const node = this.nodes[index];
    if (!node || node.state === 'down') return;
    node.state = 'down';
    node.pid = undefined;
    this.emit('node-down', index);
  }

  private async startRedis(): Promise<void> {
    const bin = which('redis-server');
    if (!bin) throw new Error('redis-server is not installed (Debian: apt-get install -y redis-server)');
    if (!this.redisPort) this.redisPort = await this.pickPort();
    const port = this.redisPort;
    await this.withRetries('redis', async () => {
      const owned = this.spawnOwned('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitUntil(() => redisPing(port), `redis-server on ${port}`, 15_000, owned);
      owned.ready = true;
    });
    this.log(`redis up on ${port}`);
  }

  private async startDb(): Promise<void> {
    const bin = join(repoRoot, 'scripts', 'ferretdb', 'bin', 'curbside-ferretdb');
    const build = spawnSync('bash', [join(repoRoot, 'scripts', 'build-ferretdb.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (build.status !== 0 || !existsSync(bin)) throw new Error('Building FerretDB failed (scripts/build-ferretdb.sh): install Go >= 1.24 with the Go module proxy');
    if (!this.dbPort) this.dbPort = await this.pickPort();
    const port = this.dbPort;
    if (this.dbBackend === 'postgresql') this.postgres ??= createPostgresDatabase('curbside_faults');
    const backendArgs = this.postgres ? ['-handler', 'postgresql', '-postgresql-url', this.postgres.url] : ['-dir', this.dbDir];
    await this.withRetries('db', async () => {
      const owned = this.spawnOwned('db', bin, ['-listen', `127.0.0.1:${port}`, ...backendArgs]);
      await waitForLine(owned, /READY mongodb:\/\//, 'FerretDB', 30_000);
      owned.ready = true;
    });
    this.log(`ferretdb up on ${port} (${this.postgres ? `PostgreSQL database ${this.postgres.database}` : 'SQLite'})`);
  }

  private async startNode(index: number): Promise<void> {
    const node = this.nodes[index]!;
    node.state = 'starting';
    const key = `hub-${index}`;
    await this.withRetries(key, async () => {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        MONGODB_URI: this.mongoUri,
        MONGODB_DB: this.dbName,
        REDIS_URL: this.redisUrl,
        REDIS_KEY_PREFIX: this.keyPrefix,
        PORT: String(node.port),
        HOST: '127.0.0.1',
        NODE_ID: node.id,
        JWT_PUBLIC_KEY: this.publicKeyPem,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        LOG_LEVEL: 'info',
        // The checker reads every stored envelope at the end: keep them (a sweeper would delete delivered ones).
        SWEEP_INTERVAL_MS: '0',
        // Every test client comes from 127.0.0.1; the per-IP handshake limit is meant for the internet.
        RATE_LIMIT_HANDSHAKE: '100000/60',
        // A node stuck without its database (docs/faults.md, bug 3) gives up well within a round.
        STORAGE_WATCHDOG_MS: '20000',
        ...this.options.hubEnv,
      };
      const owned = this.spawnOwned(key, process.execPath, [join(repoRoot, 'server', 'dist', 'main.js')], env);
      const line = await waitForLine(owned, /"msg":"hub listening"/, `hub ${node.id}`, this.startTimeoutMs);
      const url = (JSON.parse(line) as { url?: string }).url;
      if (!url) throw new Error(`hub ${node.id} logged no url: ${line}`);
      node.url = url;
      node.port = Number(new URL(url).port);
      node.pid = owned.child.pid;
      owned.ready = true;
    });
    node.state = 'up';
    node.starts += 1;
    this.usedPorts.add(node.port);
    this.log(`${node.id} up on ${node.url} (start ${node.starts})`);
    this.emit('node-up', index);
  }

  /** A start that fails (database still coming up, port briefly busy) is tried again, within the start timeout. */
  private async withRetries(key: string, attempt: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (let n = 1; ; n++) {
      try {
        await attempt();
        return;
      } catch (e) {
        const tail = this.logTail(key, 10);
        await this.stopProc(key, 'SIGKILL');
        // A hub's port taken while it was down (an outgoing connection got it): come back on a new one.
        if (key.startsWith('hub-') && /EADDRINUSE/.test(tail)) {
          const node = this.nodes[Number(key.slice(4))]!;
          this.log(`${node.id}: port ${node.port} is taken, restarting on a new port`);
          node.port = 0;
        }
        if (this.stopped || Date.now() > deadline) throw new Error(`${key} did not start: ${(e as Error).message}\n${this.logTail(key, 20)}`);
        this.log(`${key} start attempt ${n} failed (${(e as Error).message.split('\n')[0]}); retrying`);
        await sleep(Math.min(2000, 250 * n));
      }
    }
  }

  private spawnOwned(key: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Owned {
    const out: WriteStream = createWriteStream(join(this.logDir, `${key}.log`), { flags: 'a' });
    out.write(`--- ${new Date().toISOString()} start ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const owned: Owned = {
      child,
      expectExit: false,
      ready: false,
      tail: [],
      exited: new Promise<void>((resolve) => child.once('exit', () => resolve())),
    };
    const onData = (d: Buffer) => {
      out.write(d);
      const lines = d.toString().split('\n').filter(Boolean);
      owned.tail.push(...lines);
      if (owned.tail.length > 200) owned.tail.splice(0, owned.tail.length - 200);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      out.end(`--- ${new Date().toISOString()} exit code=${code} signal=${signal}\n`);
      if (this.procs.get(key) === owned) this.procs.delete(key);
      if (owned.expectExit || !owned.ready || this.stopped) return;
      const exit: UnexpectedExit = { what: key, code, signal, at: Date.now(), tail: owned.tail.slice(-15).join('\n') };
      if (key.startsWith('hub-') && code === WATCHDOG_EXIT_CODE) {
        const index = Number(key.slice(4));
        this.watchdogExits.push(exit);
        this.log(`${key} exited on its storage watchdog (code ${code}); restarting it as a supervisor would`);
        this.markDown(index);
        void this.startNode(index).catch((e: unknown) => this.log(`restart of ${key} after its watchdog exit failed: ${(e as Error).message}`));
        return;
      }
      this.unexpectedExits.push(exit);
      this.log(`UNEXPECTED EXIT of ${key}: code=${code} signal=${signal}`);
      if (key.startsWith('hub-')) this.markDown(Number(key.slice(4)));
      this.emit('unexpected-exit', exit);
    });
    this.procs.set(key, owned);
    return owned;
  }

  private async stopProc(key: string, signal: NodeJS.Signals, beforeSignal: () => void = () => {}): Promise<void> {
    const owned = this.procs.get(key);
    beforeSignal();
    if (!owned) return;
    owned.expectExit = true;
    const { child } = owned;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await owned.exited;
      clearTimeout(timer);
    }
    if (this.procs.get(key) === owned) this.procs.delete(key);
  }

  /** A free port below the ephemeral range (see the file comment), never one this cluster uses already. */
  private async pickPort(): Promise<number> {
    for (let i = 0; i < 200; i++) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (this.usedPorts.has(port)) continue;
      if (await portFree(port)) {
        this.usedPorts.add(port);
        return port;
      }
    }
    throw new Error('no free port found in 20000-32000');
  }
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** PING over a raw socket: no client library, no reconnect logic. */
export function redisPing(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs: number, owned: Owned): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (owned.child.exitCode !== null || owned.child.signalCode !== null) throw new Error(`${what} exited: ${owned.tail.slice(-5).join(' | ')}`);
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms`);
}

function waitForLine(owned: Owned, pattern: RegExp, what: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let buffered = '';
    const { child } = owned;
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    const onData = (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) {
        cleanup();
        resolve(hit);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`${what} exited (code=${code} signal=${signal}) before it was ready: ${owned.tail.slice(-3).join(' | ')}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}
