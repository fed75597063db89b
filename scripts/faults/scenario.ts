/**
 * One fault run: start the cluster and the balancer; then, round after round, connect fresh devices
 * (on a fresh database), let them send, inject faults one after another (each followed by recovery
 * and calm traffic), and check the invariants. Used by `npm run faults` (run.ts) and by
 * test/faults/cluster-faults.test.ts.
 *
 * Why rounds: FerretDB's SQLite backend answers every query that is not by _id with a scan of the
 * whole collection, so the hub gets slower with every stored envelope (and audit entry). A round
 * keeps the database small; Redis and FerretDB stay up across rounds (their restarts are faults).
 */
import { Balancer } from './balancer.js';
import { FaultCluster, sleep, type UnexpectedExit } from './cluster.js';
import { InvariantChecker, eventually, type DeviceSpec, type FaultReport } from './checker.js';

export type FaultKind = 'kill-node' | 'term-node' | 'restart-redis' | 'restart-db';
export const FAULT_KINDS: FaultKind[] = ['kill-node', 'term-node', 'restart-redis', 'restart-db'];

export interface ScenarioOptions {
  /** The faults, in order; or how many to draw at random (weights: kill-node 4, term-node 1, restart-redis 2, restart-db 2). */
  faults: FaultKind[] | number;
  /** Faults per round (each round: fresh database and devices, its own check). @default 4 */
  faultsPerRound?: number;
  /** Seed for every random choice (which node, how long down, what to send where). */
  seed?: number;
  devices?: DeviceSpec[];
  /** How long a killed node stays down. @default [500, 2500] */
  nodeDownMs?: [number, number];
  /** How long Redis or the database stays down. @default [200, 1500] */
  serviceDownMs?: [number, number];
  /** Normal traffic after recovery, before the next fault. @default [500, 2000] */
  calmMs?: [number, number];
  /** Traffic before the first fault of a round. @default 2000 */
  warmupMs?: number;
  sendPauseMs?: [number, number];
  /** Longest wait for the cluster and every client to recover after a fault (recorded, never fatal). @default 60000 */
  recoveryTimeoutMs?: number;
  /** Extra environment for the hubs. */
  hubEnv?: Record<string, string>;
  log?: (line: string) => void;
  keepDir?: boolean;
}

export interface ScenarioResult {
  /** All rounds together. */
  report: FaultReport;
  rounds: FaultReport[];
  /** Milliseconds from each fault to every node ready and every client connected again. */
  recoveryMs: number[];
  logDir: string;
}

/** mulberry32: small, seedable, good enough to pick faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  // Faults (kinds, nodes, down times) and the clients' choices draw from separate streams, so a seed
  // gives the same fault schedule however the sends interleave.
  const random = seededRandom(options.seed ?? 1);
  const sendRandom = seededRandom(((options.seed ?? 1) ^ 0x5eed1e55) >>> 0);
  const between = ([lo, hi]: [number, number]) => Math.round(lo + random() * (hi - lo));
  const t0 = Date.now();
  const log = (line: string) => options.log?.(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  const faults = typeof options.faults === 'number' ? drawFaults(options.faults, random) : options.faults;
  const perRound = Math.max(1, options.faultsPerRound ?? 4);
  const recoveryTimeoutMs = options.recoveryTimeoutMs ?? 60_000;

  const cluster = await FaultCluster.start({ log, keepDir: options.keepDir ?? false, ...(options.hubEnv ? { hubEnv: options.hubEnv } : {}) });
  const balancer = new Balancer(cluster);
  let checker: InvariantChecker | undefined;
  // A process that died by itself is a finding (the report counts it); restart it, as a supervisor would.
  cluster.on('unexpected-exit', (exit: UnexpectedExit) => {
    log(`${exit.what} died by itself (code ${exit.code}, signal ${exit.signal}); last output:\n${exit.tail}`);
    void sleep(500)
      .then(() => {
        if (exit.what === 'redis') return cluster.restartRedis();
        if (exit.what === 'db') return cluster.restartDb();
        const index = Number(exit.what.slice('hub-'.length));
        if (cluster.nodes[index]?.state === 'down') return cluster.restartNode(index);
      })
      .catch((e: unknown) => log(`restart after crash failed: ${(e as Error).message}`));
  });
  try {
    await balancer.start();
    const rounds: FaultReport[] = [];
    const recoveryMs: number[] = [];
    const roundCount = Math.max(1, Math.ceil(faults.length / perRound));
    for (let r = 0; r < roundCount; r++) {
      const roundFaults = faults.slice(r * perRound, (r + 1) * perRound);
      if (r > 0) await cluster.useFreshDatabase(`r${r + 1}`);
      const exitsBefore = cluster.unexpectedExits.length;
      const watchdogBefore = cluster.watchdogExits.length;
      const startsBefore = cluster.nodes.reduce((n, x) => n + x.starts, 0);
      checker = new InvariantChecker({ cluster, balancer, devices: options.devices, random: sendRandom, log, ...(options.sendPauseMs ? { sendPauseMs: options.sendPauseMs } : {}) });
      await checker.setup();
      checker.startSending();
      await sleep(options.warmupMs ?? 2000);

      const byKind: Record<string, number> = {};
      let slow = 0;
      for (const [i, kind] of roundFaults.entries()) {
        const started = Date.now();
        const detail = await inject(kind, cluster, random, between, options);
        byKind[kind] = (byKind[kind] ?? 0) + 1;
        checker.rebalanceDirect();
        const dropped = balancer.rebalance();
        try {
          await eventually(async () => (await allReady(cluster)) && checker!.allConnected(), 'recovery', recoveryTimeoutMs, 200);
        } catch {
          slow += 1;
          log(`NOT recovered within ${recoveryTimeoutMs} ms (nodes ${cluster.nodes.map((n) => n.state).join('/')})`);
        }
        recoveryMs.push(Date.now() - started);
        const n = r * perRound + i + 1;
        log(`fault ${n}/${faults.length} ${kind} ${detail}: recovered in ${Date.now() - started} ms; ${checker.ackedCount()} acked; ${checker.placement()}${dropped ? `; balancer dropped ${dropped}` : ''}`);
        await sleep(between(options.calmMs ?? [500, 2000]));
      }
      const report = await checker.finish({ faultsInjected: roundFaults.length, faultsByKind: byKind });
      // Crashes count in the round they happened in.
      report.nodes.unexpectedExits = cluster.unexpectedExits.length - exitsBefore;
      report.nodes.watchdogExits = cluster.watchdogExits.length - watchdogBefore;
      report.nodes.restarts = cluster.nodes.reduce((n, x) => n + x.starts, 0) - startsBefore;
      if (slow) {
        report.failures.push(`slow recovery: ${slow} faults not recovered within ${recoveryTimeoutMs} ms`);
        report.ok = false;
      }
      rounds.push(report);
      log(`round ${r + 1}/${roundCount}: ${report.ok ? 'OK' : `FAILED: ${report.failures.join('; ')}`} (${report.messages.acked} acked, ${report.deliveries.shown}/${report.deliveries.expected} deliveries)`);
      checker = undefined;
    }
    const report = mergeReports(rounds);
    // Exits between rounds (while the cluster moves to a fresh database) belong to no round.
    report.nodes.watchdogExits = cluster.watchdogExits.length;
    return { report, rounds, recoveryMs, logDir: cluster.logDir };
  } finally {
    await checker?.close().catch(() => {});
    await balancer.stop().catch(() => {});
    await cluster.stop();
  }
}

function drawFaults(n: number, random: () => number): FaultKind[] {
  const weighted: FaultKind[] = ['kill-node', 'kill-node', 'kill-node', 'kill-node', 'term-node', 'restart-redis', 'restart-redis', 'restart-db', 'restart-db'];
  return Array.from({ length: n }, () => weighted[Math.floor(random() * weighted.length)]!);
}

async function inject(
  kind: FaultKind,
  cluster: FaultCluster,
  random: () => number,
  between: (r: [number, number]) => number,
  options: ScenarioOptions,
): Promise<string> {
  switch (kind) {
    case 'kill-node':
    case 'term-node': {
      const up = cluster.upNodes();
      const node = up[Math.floor(random() * up.length)]!;
      const down = between(options.nodeDownMs ?? [500, 2500]);
      if (kind === 'kill-node') await cluster.killNode(node.index);
      else await cluster.stopNodeGracefully(node.index);
      await sleep(down);
      await cluster.restartNode(node.index);
      return `${node.id} down ${down} ms`;
    }
    case 'restart-redis': {
      const down = between(options.serviceDownMs ?? [200, 1500]);
      await cluster.restartRedis({ downMs: down });
      return `down ${down} ms`;
    }
    case 'restart-db': {
      const down = between(options.serviceDownMs ?? [200, 1500]);
      await cluster.restartDb({ downMs: down });
      return `down ${down} ms`;
    }
  }
}

async function allReady(cluster: FaultCluster): Promise<boolean> {
  if (cluster.upNodes().length !== cluster.nodes.length) return false;
  const answers = await Promise.all(
    cluster.nodes.map((n) =>
      fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      ),
    ),
  );
  return answers.every(Boolean);
}

/** Sum of the rounds' counts; samples from the first rounds that have them. */
export function mergeReports(rounds: FaultReport[]): FaultReport {
  const add = (a: Record<string, number>, b: Record<string, number>) => {
    for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
    return a;
  };
  const out = structuredClone(rounds[0]!);
  out.failures = rounds.flatMap((r, i) => r.failures.map((f) => `round ${i + 1}: ${f}`));
  for (const r of rounds.slice(1)) {
    out.durationMs += r.durationMs;
    out.faultsInjected += r.faultsInjected;
    add(out.faultsByKind, r.faultsByKind);
    for (const k of Object.keys(out.messages) as Array<keyof FaultReport['messages']>) {
      if (k === 'failedByError') add(out.messages.failedByError, r.messages.failedByError);
      else out.messages[k] += r.messages[k];
    }
    for (const k of Object.keys(out.deliveries) as Array<keyof FaultReport['deliveries']>) out.deliveries[k] += r.deliveries[k];
    out.lost += r.lost;
    out.ackedNotStored += r.ackedNotStored;
    out.gaps += r.gaps;
    out.inversions += r.inversions;
    out.duplicates.shownTwice += r.duplicates.shownTwice;
    out.duplicates.storedTwice += r.duplicates.storedTwice;
    out.ackMismatches += r.ackMismatches;
    out.decryptFailures += r.decryptFailures;
    add(out.decryptFailuresByReason, r.decryptFailuresByReason);
    out.unavailable += r.unavailable;
    out.storedUnackedMissing += r.storedUnackedMissing;
    if ('error' in r.storage) out.storage = r.storage;
    else if (!('error' in out.storage)) {
      for (const k of Object.keys(out.storage) as Array<keyof typeof r.storage>) out.storage[k] += r.storage[k];
    }
    out.clients.handovers += r.clients.handovers;
    out.clients.rebalanceMoves += r.clients.rebalanceMoves;
    out.clients.sdkGaveUp += r.clients.sdkGaveUp;
    add(out.clients.sdkGaveUpReasons, r.clients.sdkGaveUpReasons);
    out.clients.appReconnects += r.clients.appReconnects;
    add(out.clients.errorEvents, r.clients.errorEvents);
    out.clients.notConnectedAtEnd += r.clients.notConnectedAtEnd;
    out.nodes.unexpectedExits += r.nodes.unexpectedExits;
    out.nodes.restarts += r.nodes.restarts;
    out.nodes.watchdogExits += r.nodes.watchdogExits;
    for (const k of Object.keys(out.samples) as Array<keyof FaultReport['samples']>) {
      for (const s of r.samples[k]) if (out.samples[k].length < 10) out.samples[k].push(s);
    }
  }
  out.ok = rounds.every((r) => r.ok);
  return out;
}
