/**
 * npm run faults — the long fault-injection run (issue 5, "Nothing lost").
 *
 *   npm run faults                         100 faults, seed 1
 *   npm run faults -- --faults 300 --seed 7
 *   npm run faults -- --only restart-redis --faults 20
 *   npm run faults -- --keep               keep the temp dir (hub, Redis and FerretDB logs; SQLite files)
 *
 * Three hubs (server/dist: run `npm run build` first), a private Redis and a private FerretDB; SDK
 * clients send 1:1 and care-team messages while nodes are killed (-9) or stopped (SIGTERM) and
 * restarted, and Redis and the database are restarted; every --per-round faults (default 4) the hubs move
 * to a fresh database with fresh devices (FerretDB/SQLite scans grow with the data). Prints the report and writes it to
 * results/tmp/faults-<date>.json (git-ignored). Exit code 0 when every invariant held, 1 when any failed, 2 when the run
 * itself could not happen. See docs/faults.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './cluster.js';
import { formatReport } from './checker.js';
import { FAULT_KINDS, runScenario, type FaultKind } from './scenario.js';

let parsed: ReturnType<typeof parseCli>;
try {
  parsed = parseCli();
} catch (e) {
  usage((e as Error).message);
}
function parseCli() {
  return parseArgs({
    options: {
      faults: { type: 'string' },
      only: { type: 'string' },
      seed: { type: 'string' },
      'per-round': { type: 'string' },
      keep: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
  }).values;
}
let faults: number | FaultKind[] = parsed.faults === undefined ? 100 : Number(parsed.faults);
const seed = parsed.seed === undefined ? 1 : Number(parsed.seed);
const keepDir = parsed.keep ?? false;
const perRound = parsed['per-round'] === undefined ? 4 : Number(parsed['per-round']);
const quiet = parsed.quiet ?? false;
const only = parsed.only === undefined ? undefined : (parsed.only.split(',') as FaultKind[]);
if (only && !only.every((k) => FAULT_KINDS.includes(k))) usage(`--only takes a list of ${FAULT_KINDS.join(', ')}`);
if (typeof faults === 'number' && !(Number.isInteger(faults) && faults >= 0)) usage('--faults takes a whole number');
if (!Number.isFinite(seed)) usage('--seed takes a number');
if (!(Number.isInteger(perRound) && perRound >= 1)) usage('--per-round takes a whole number >= 1');
if (only && typeof faults === 'number') {
  const kinds = only;
  faults = Array.from({ length: faults }, (_, j) => kinds[j % kinds.length]!);
}

function usage(problem: string): never {
  process.stderr.write(`faults: ${problem}\nusage: npm run faults -- [--faults N] [--per-round K] [--only kill-node,term-node,restart-redis,restart-db] [--seed S] [--keep] [--quiet]\n`);
  process.exit(2);
}

// Ctrl-C: exit normally, so the cluster's exit hook stops every process it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const started = Date.now();
try {
  const result = await runScenario({ faults, faultsPerRound: perRound, seed, keepDir, log: quiet ? undefined : (l) => process.stdout.write(`${l}\n`) });
  const { report } = result;
  const minutes = (Date.now() - started) / 60_000;
  const perFault = report.faultsInjected ? (Date.now() - started) / report.faultsInjected / 1000 : 0;
  const recovery = [...result.recoveryMs].sort((a, b) => a - b);
  const pct = (p: number) => recovery[Math.min(recovery.length - 1, Math.floor((p / 100) * recovery.length))] ?? 0;
  process.stdout.write(`\n=== fault run: seed ${seed}, ${result.rounds.length} rounds of up to ${perRound} faults ===\n${formatReport(report)}\n`);
  process.stdout.write(`recovery (fault to every client connected): median ${pct(50)} ms, p95 ${pct(95)} ms, max ${recovery.at(-1) ?? 0} ms\n`);
  process.stdout.write(`wall time: ${minutes.toFixed(1)} min (${perFault.toFixed(1)} s per fault)${keepDir ? `; logs in ${result.logDir}` : ''}\n`);
  const dir = join(repoRoot, 'results', 'tmp');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `faults-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify({ seed, perRound, wallMs: Date.now() - started, recoveryMs: result.recoveryMs, report, rounds: result.rounds }, null, 2)}\n`);
  process.stdout.write(`report written to ${file}\n`);
  process.exit(report.ok ? 0 : 1);
} catch (e) {
  process.stderr.write(`faults: the run could not complete: ${(e as Error).stack ?? e}\n`);
  process.exit(2);
}
