/**
 * npm run fuzz [-- --cases 100000 --rest 10000 --seed 42]
 *
 * The long version of test/security/fuzz.test.ts: arbitrary socket events (every client event and
 * unknown ones) and REST requests against a hub on memory adapters. Fails with fast-check's
 * counterexample and seed on the first violation; prints the outcome counts otherwise.
 */
import { parseArgs } from 'node:util';
import { fuzzRest, fuzzSocketEvents, startFuzzHub } from '../test/security/fuzz-kit.js';

const { values } = parseArgs({ options: { cases: { type: 'string' }, rest: { type: 'string' }, seed: { type: 'string' } } });

function arg(name: keyof typeof values, def: number): number {
  const raw = values[name];
  const v = raw === undefined ? def : Number(raw);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} must be a whole number`);
  return v;
}

const cases = arg('cases', 100_000);
const restCases = arg('rest', 10_000);
const seed = arg('seed', Date.now() % 2 ** 31);
process.stdout.write(`fuzz: ${cases} socket cases, ${restCases} REST cases, seed ${seed}\n`);

const target = await startFuzzHub();
const t0 = Date.now();
try {
  const s = await fuzzSocketEvents(target, cases, seed, (p) => process.stdout.write(`  ... ${p.cases} cases, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`));
  process.stdout.write(`socket: ${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s (${Math.round(s.cases / (s.ms / 1000))}/s), ${s.parserRefusals} frames refused by the parser\n`);
  for (const [k, v] of Object.entries(s.outcomes).sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(v).padStart(7)}  ${k}\n`);
} finally {
  await target.hub.close();
}
const r = await fuzzRest(restCases, seed);
process.stdout.write(`REST: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s\n`);
for (const [k, v] of Object.entries(r.outcomes).sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(v).padStart(7)}  ${k}\n`);
process.stdout.write(`fuzz: PASSED ${cases + restCases} cases\n`);
process.exit(0);
