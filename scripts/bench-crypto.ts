/**
 * Crypto (SDK) benchmark: Double Ratchet encrypt+decrypt of 1 KB messages vs raw libsodium
 * XChaCha20-Poly1305 encrypt+decrypt of the same payload, in the same process.
 *
 *   npx tsx scripts/bench-crypto.ts            (npm run bench:crypto)
 *
 * One op = one encrypt + one decrypt. Modes:
 *   raw          crypto_aead_xchacha20poly1305_ietf_encrypt + _decrypt, fixed key and nonce, 105-byte AD
 *                (the ratchet's AD: 64-byte X3DH AD + 41-byte header)
 *   one-way      Alice → Bob only: symmetric chain steps (the steady state of a burst)
 *   burst-10     10 messages one way, then 10 the other: a DH ratchet step every 10 messages
 *   alternating  strict turn-taking: a DH ratchet step (3 X25519 operations) on every message
 *
 * Warm-up, then several rounds in which every mode runs in turn; reports the median ops/s per mode and
 * the median of the per-round ratios to raw (robust against load from other processes).
 * Writes results/crypto-<date>.json and prints a Markdown table row for docs/benchmarks.md.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  RatchetSession,
  generateIdentityKeyPair,
  generateSignedPrekey,
  randomBytes,
  sodiumReady,
  x3dhInitiate,
  x3dhRespond,
} from '../client-sdk/src/crypto/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 500);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000);
const PAYLOAD_BYTES = 1024;

const sodium = await sodiumReady();
const payload = randomBytes(PAYLOAD_BYTES);

async function pair(): Promise<{ alice: RatchetSession; bob: RatchetSession }> {
  const aliceId = await generateIdentityKeyPair();
  const bobId = await generateIdentityKeyPair();
  const spk = await generateSignedPrekey(bobId, 1);
  const a = await x3dhInitiate(aliceId, { identityKey: bobId.publicKey, signedPrekey: spk });
  const b = await x3dhRespond(bobId, spk, undefined, aliceId.publicKey, a.ephemeralPublic);
  const alice = RatchetSession.initiator(a.sharedKey, spk.publicKey, a.associatedData);
  const bob = RatchetSession.responder(b.sharedKey, spk, b.associatedData);
  bob.decrypt(alice.encrypt(payload)); // Bob can send from now on
  return { alice, bob };
}

function check(a: Uint8Array, b: Uint8Array): void {
  if (a.length !== b.length || a[0] !== b[0] || a[a.length - 1] !== b[b.length - 1]) throw new Error('round trip mismatch');
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** Runs `op` for ~ms milliseconds; returns ops/s. */
function timed(op: () => void, ms: number): number {
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 50; i++) op();
    ops += 50;
    now = performance.now();
  }
  return Math.round((ops * 1000) / (now - start));
}

/**
 * Warm-up, then ROUNDS rounds; in each round every mode runs for ROUND_MS, one after the other, so
 * that load from other processes hits all modes alike. Ratios are computed per round (against the
 * raw AEAD of the same round) and the median taken.
 */
function measureAll<K extends string>(modes: Record<K, () => void>): Record<K, { median: number; rounds: number[] }> {
  const names = Object.keys(modes) as K[];
  for (const name of names) timed(modes[name], WARMUP_MS / names.length);
  const rounds = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < ROUNDS; r++) for (const name of names) rounds[name].push(timed(modes[name], ROUND_MS));
  return Object.fromEntries(names.map((n) => [n, { median: median(rounds[n]), rounds: rounds[n] }])) as Record<K, { median: number; rounds: number[] }>;
}

const key = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
const nonce = randomBytes(24);
const ad = randomBytes(64 + 41);
const raw = () => {
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, ad, null, nonce, key);
  check(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ct, ad, nonce, key), payload);
};

const oneWayPair = await pair();
const oneWay = () => {
  check(oneWayPair.bob.decrypt(oneWayPair.alice.encrypt(payload)), payload);
};

const burstPair = await pair();
let burstCount = 0;
const burst = () => {
  const aliceSends = Math.floor(burstCount++ / 10) % 2 === 0;
  const [from, to] = aliceSends ? [burstPair.alice, burstPair.bob] : [burstPair.bob, burstPair.alice];
  check(to.decrypt(from.encrypt(payload)), payload);
};

const altPair = await pair();
let altCount = 0;
const alternating = () => {
  const [from, to] = altCount++ % 2 === 0 ? [altPair.alice, altPair.bob] : [altPair.bob, altPair.alice];
  check(to.decrypt(from.encrypt(payload)), payload);
};

const results = measureAll({ raw, oneWay, burst10: burst, alternating });
const pairedRatio = (mode: 'oneWay' | 'burst10' | 'alternating') =>
  Math.round(median(results[mode].rounds.map((x, i) => x / results.raw.rounds[i]!)) * 1000) / 1000;
const rawMedian = results.raw.median;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sh = (cmd: string) => {
  try {
    return execSync(cmd, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};
let cpuModel = cpus()[0]?.model ?? 'unknown';
try {
  cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
} catch {
  // not Linux: keep os.cpus()
}
const date = new Date().toISOString().slice(0, 10);
const report = {
  date,
  machine: { nproc: Number(sh('nproc')) || cpus().length, cpuModel },
  node: process.version,
  commit: sh('git rev-parse --short HEAD'),
  libsodium: sodium.sodium_version_string(),
  payloadBytes: PAYLOAD_BYTES,
  method: { rounds: ROUNDS, roundMs: ROUND_MS, warmupMs: WARMUP_MS, op: 'one encrypt + one decrypt' },
  opsPerSecond: {
    raw: results.raw,
    ratchetOneWay: results.oneWay,
    ratchetBurst10: results.burst10,
    ratchetAlternating: results.alternating,
  },
  /** Median over rounds of (mode ops/s ÷ raw ops/s in the same round). */
  ratioToRaw: { oneWay: pairedRatio('oneWay'), burst10: pairedRatio('burst10'), alternating: pairedRatio('alternating') },
  target: { ratioOneWay: 0.3 },
};

mkdirSync(join(root, 'results'), { recursive: true });
const file = join(root, 'results', `crypto-${date}.json`);
writeFileSync(file, JSON.stringify(report, null, 2) + '\n');

const n = (x: number) => x.toLocaleString('en-US');
console.log(JSON.stringify(report.opsPerSecond, null, 2));
console.log(`\nwrote ${file}\n`);
console.log('| date | machine | node | commit | raw AEAD ops/s | ratchet one-way ops/s (ratio) | burst-10 ops/s (ratio) | alternating ops/s (ratio) |');
console.log('| --- | --- | --- | --- | ---: | ---: | ---: | ---: |');
console.log(
  `| ${date} | ${report.machine.nproc} × ${cpuModel} | ${process.version} | ${report.commit} | ${n(rawMedian)} | ` +
    `${n(results.oneWay.median)} (${report.ratioToRaw.oneWay}×) | ${n(results.burst10.median)} (${report.ratioToRaw.burst10}×) | ` +
    `${n(results.alternating.median)} (${report.ratioToRaw.alternating}×) |`,
);
