/**
 * Alert timers under load (issue #20, docs/benchmarks.md "Alerts"): N pending escalations on one hub
 * on the real backend (Redis + FerretDB on PostgreSQL unless MONGODB_URI), against the same hub with
 * none pending, in the same run.
 *
 *   npx tsx scripts/bench-alerts.ts                 1,000 pending escalations, 20 s windows
 *   npx tsx scripts/bench-alerts.ts --smoke --out F  a few seconds: checks the harness (npm test)
 *
 * 1. Baseline: the hub idles for one window with no alert pending (hub CPU and RSS).
 * 2. N urgent messages are sent (32 in flight, each lane in a direct conversation of its own), each
 *    with one escalation tier due between two and three windows later (spread evenly), so nothing
 *    fires during the next window.
 * 3. Pending: one more window with N alerts pending (hub CPU and RSS).
 * 4. Every tier activates; its lateness is the firing's time minus its due time (createdAt + afterMs),
 *    read from the database: p50 / p99 / max, and how many fired early (must be none).
 * Re-notification intervals are set far beyond the run, so only the tier timers fire.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { CurbsideClient } from '@curbside/client-sdk';
import { uniqueName } from '../test/support/services.js';
import { testDeviceKeys } from '../test/support/keys.js';
import { procCpuMs, procRssKb, runBench } from './bench/server-process.js';
import { benchIdp } from './bench/idp.js';
import { runContext, startBenchHub, withBenchServices } from './bench/bench-hub.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags } = parseArgs({
  options: { alerts: { type: 'string' }, 'window-ms': { type: 'string' }, smoke: { type: 'boolean', default: false }, out: { type: 'string' }, help: { type: 'boolean', default: false } },
});
if (flags.help) {
  console.log('usage: tsx scripts/bench-alerts.ts [--alerts N (1000)] [--window-ms MS (20000)] [--smoke] [--out FILE]');
  process.exit(0);
}
const N = Number(flags.alerts ?? (flags.smoke ? 20 : 1000));
const WINDOW_MS = Number(flags['window-ms'] ?? (flags.smoke ? 1500 : 20_000));
const SWEEP_MS = 500;
/** Messages in flight at once while the alerts are raised, each lane in a conversation of its own. */
const LANES = 32;
const ORG = 'bench-org';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

async function measure(pid: number, ms: number): Promise<{ cpuMs: number; rssKb: number }> {
  const cpu0 = procCpuMs(pid);
  await sleep(ms);
  return { cpuMs: procCpuMs(pid) - cpu0, rssKb: procRssKb(pid) };
}

async function main(): Promise<void> {
  await withBenchServices(run);
}

async function run(redisUrl: string, mongoUrl: string, mongoLabel: string): Promise<void> {
  const runId = uniqueName('alerts');
  const idp = benchIdp();
  const dbName = `bench_alerts_${runId}`;
  const hub = await startBenchHub({
    root,
    runId,
    redisUrl,
    mongoUrl,
    dbName,
    idp,
    env: { ALERT_SWEEP_MS: String(SWEEP_MS), ALERT_REPEAT_URGENT_MS: '86400000', ALERT_REPEAT_EMERGENT_MS: '86400000' },
  });
  const clients: CurbsideClient[] = [];
  const client = (userId: string, deviceId: string) => {
    const c = new CurbsideClient({ url: hub.url, token: () => idp.mint(userId, deviceId, ORG), e2ee: false, transports: ['websocket'], requestTimeoutMs: 30_000 });
    clients.push(c);
    return c;
  };
  try {
    // Conversations of their own per sending lane: appends to one conversation are sequenced one at a time.
    const lanes = Math.min(LANES, N);
    const [lee, backup] = [client('dr-lee', 'lee-phone'), client('dr-backup', 'backup-phone')];
    const peers = Array.from({ length: lanes }, (_, i) => client(`dr-peer-${i}`, `peer-${i}-phone`));
    await Promise.all([lee, backup, ...peers].map((c) => c.connect()));
    const keys = testDeviceKeys();
    await backup.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(1) });
    const convs = await Promise.all(peers.map((_, i) => lee.createConversation({ kind: 'direct', peerUserId: `dr-peer-${i}` })));
    await sleep(1_000); // settle after start-up

    console.log(`baseline: ${WINDOW_MS} ms with no alert pending`);
    const baseline = await measure(hub.pid, WINDOW_MS);

    console.log(`sending ${N} urgent messages, each escalating once between ${2 * WINDOW_MS} and ${3 * WINDOW_MS} ms later`);
    const t0 = Date.now();
    const body = new Uint8Array(1024);
    const wrapped = new Uint8Array(200);
    let next = 0;
    await Promise.all(
      convs.map(async (conv) => {
        while (next < N) {
          const i = next++;
          const afterMs = 2 * WINDOW_MS + Math.round((i / N) * WINDOW_MS) - (Date.now() - t0);
          await lee.sendEnvelope(conv.id, {
            body,
            alert: { priority: 'urgent', escalation: { body, tiers: [{ afterMs: Math.max(1_000, afterMs), userIds: ['dr-backup'], recipients: [{ deviceId: 'backup-phone', ciphertext: wrapped }] }] } },
          });
        }
      }),
    );
    const sendMs = Date.now() - t0;
    if (sendMs > WINDOW_MS) throw new Error(`sending took ${sendMs} ms, longer than a window (${WINDOW_MS} ms): the first tiers would fire during the pending window; use a longer --window-ms`);
    console.log(`sent in ${sendMs} ms; pending: ${WINDOW_MS} ms with ${N} alerts pending`);
    const pending = await measure(hub.pid, WINDOW_MS);

    // Wait for every tier to activate, then read firing times from the database.
    const conn = await mongoose.createConnection(mongoUrl, { dbName }).asPromise();
    const deadline = Date.now() + 3 * WINDOW_MS + 30_000;
    let fired = 0;
    while (Date.now() < deadline) {
      fired = await conn.db!.collection('alert_firings').countDocuments({ kind: 'tier' });
      if (fired >= N) break;
      await sleep(500);
    }
    const alerts = new Map((await conn.db!.collection('alerts').find({}).toArray()).map((a) => [String(a._id), a]));
    const late: number[] = [];
    for (const f of await conn.db!.collection('alert_firings').find({ kind: 'tier' }).toArray()) {
      const a = alerts.get(String(f.alertId)) as { createdAt: number; tiers: Array<{ afterMs: number }> } | undefined;
      if (a) late.push((f.at as number) - (a.createdAt + a.tiers[0]!.afterMs));
    }
    await conn.dropDatabase().catch(() => {});
    await conn.close();
    late.sort((a, b) => a - b);
    const report = {
      ...runContext(root),
      database: mongoLabel,
      alerts: N,
      windowMs: WINDOW_MS,
      sweepMs: SWEEP_MS,
      sendMs,
      fired,
      lateness: { n: late.length, p50: percentile(late, 50), p99: percentile(late, 99), max: late.at(-1) ?? NaN, early: late.filter((x) => x < 0).length },
      hub: {
        baseline: { cpuMsPerSec: (baseline.cpuMs * 1000) / WINDOW_MS, rssMb: baseline.rssKb / 1024 },
        pending: { cpuMsPerSec: (pending.cpuMs * 1000) / WINDOW_MS, rssMb: pending.rssKb / 1024 },
      },
    };
    const out = flags.out ?? join(root, 'results', `alerts-${report.date.slice(0, 10)}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(report, null, 2));
    console.log(
      [
        `timers: ${fired}/${N} fired; lateness p50 ${report.lateness.p50} ms, p99 ${report.lateness.p99} ms, max ${report.lateness.max} ms, early ${report.lateness.early}`,
        `hub CPU: ${report.hub.baseline.cpuMsPerSec.toFixed(1)} ms/s idle → ${report.hub.pending.cpuMsPerSec.toFixed(1)} ms/s with ${N} pending`,
        `hub RSS: ${report.hub.baseline.rssMb.toFixed(1)} MB → ${report.hub.pending.rssMb.toFixed(1)} MB`,
        `report: ${out}`,
      ].join('\n'),
    );
    if (fired < N) throw new Error(`only ${fired} of ${N} timers fired`);
  } finally {
    for (const c of clients) c.disconnect();
    await hub.stop();
  }
}

runBench(main);
