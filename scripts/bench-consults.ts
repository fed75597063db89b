/**
 * Consult pools (issue #23, docs/benchmarks.md "Consult pools"): a case with one image posted to a
 * 300-member pool, against the same case posted to a 10-member care team, in the same run, on one hub
 * on the real backend (Redis + FerretDB on PostgreSQL unless MONGODB_URI), every client in this process.
 *
 *   npx tsx scripts/bench-consults.ts                  300-member pool, 10-member team
 *   npx tsx scripts/bench-consults.ts --smoke --out F  a 12-member pool and a 4-member team (npm test)
 *
 * Per group (test/support/consult-pool.ts): every member connected and credentialed (the office signs
 * through the admin API), the pool opened with most members enrolled and the last 3 joining themselves
 * (the team: made by its owner), then one member posts the case: a real phone photo, de-identified on the
 * device, encrypted, uploaded, and the sealed case message (the first message from that device to the
 * group, so it carries its sender key to every member device over 1:1 sessions, as a first case does).
 * Measured: the post's ack; the time until each member decrypted the case (p50, last) and until the last
 * member had downloaded and decrypted the image; the hub's CPU time over that window (/proc/<pid>/stat).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CurbsideClient, MemoryDeviceStore } from '@curbside/client-sdk';
import { uniqueName } from '../test/support/services.js';
import { ADMIN } from '../test/support/admin-cli.js';
import { credentialOffice } from '../test/support/office.js';
import { consultScenario, type ConsultScenario } from '../test/support/consult-pool.js';
import { procCpuMs, runBench } from './bench/server-process.js';
import { benchIdp } from './bench/idp.js';
import { runContext, startBenchHub, withBenchServices } from './bench/bench-hub.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags } = parseArgs({
  options: {
    pool: { type: 'string' },
    team: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log('usage: tsx scripts/bench-consults.ts [--pool 300] [--team 10] [--smoke] [--out FILE]');
  process.exit(0);
}
const POOL = Number(flags.pool ?? (flags.smoke ? 12 : 300));
const TEAM = Number(flags.team ?? (flags.smoke ? 4 : 10));
const ORG = 'bench-org';

async function main(): Promise<void> {
  await withBenchServices(run);
}

async function run(redisUrl: string, mongoUrl: string, mongoLabel: string): Promise<void> {
  const runId = uniqueName('consults');
  const idp = benchIdp();
  const hub = await startBenchHub({ root, runId, redisUrl, mongoUrl, dbName: `bench_consults_${runId}`, idp, env: { ADMIN_TOKEN: ADMIN } });
  const clients: CurbsideClient[] = [];
  let stopping = false;
  hub.proc.once('exit', (code, signal) => stopping || console.error(`the hub exited (code ${code}, signal ${signal}); its last output:\n${hub.output().slice(-4000)}`));
  try {
    const office = await credentialOffice(hub.url, ORG);
    const client = (userId: string, deviceId: string) => {
      const c = new CurbsideClient({ url: hub.url, token: () => idp.mint(userId, deviceId, ORG), store: new MemoryDeviceStore(), transports: ['websocket'], requestTimeoutMs: 60_000 });
      clients.push(c);
      return c;
    };
    const log = (line: string) => console.log(`  ${new Date().toISOString().slice(11, 19)} ${line}`);
    const results: ConsultScenario[] = [];
    // The small team first: the pool's 300 clients stay connected after, and would load its run.
    for (const [kind, members] of [['team', TEAM], ['pool', POOL]] as const) {
      log(`${kind} of ${members}`);
      results.push(await consultScenario({ kind, members, client, office, prefix: `${kind}${members}`, log, hubCpuMs: () => procCpuMs(hub.pid), timeoutMs: 300_000 }));
    }
    const [team, pool] = results as [ConsultScenario, ConsultScenario];
    const report = {
      ...runContext(root),
      database: mongoLabel,
      team,
      pool,
      ratios: {
        decryptLast: pool.decryptMs.last / team.decryptMs.last,
        imageLast: pool.imageMs / team.imageMs,
        hubCpu: pool.hubCpuMs !== undefined && team.hubCpuMs ? pool.hubCpuMs / team.hubCpuMs : null,
        hubCpuPerMember: pool.hubCpuMs !== undefined && team.hubCpuMs ? pool.hubCpuMs / (pool.members - 1) / (team.hubCpuMs / (team.members - 1)) : null,
      },
    };
    const out = flags.out ?? join(root, 'results', `consults-${report.date.slice(0, 10)}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(report, null, 2));
    const row = (r: ConsultScenario) =>
      `| ${r.kind} of ${r.members} | ${Math.round(r.postAckMs)} | ${Math.round(r.decryptMs.p50)} / ${Math.round(r.decryptMs.last)} | ${Math.round(r.imageMs)} | ${r.hubCpuMs !== undefined ? Math.round(r.hubCpuMs) : '?'} | ${r.decrypted}/${r.members - 1}, ${r.imagesWhole}/${r.members - 1} |`;
    console.log(['| group | post ack ms | decrypted p50 / last ms | image, last ms | hub CPU ms | case, image whole |', '|---|---:|---:|---:|---:|---|', row(team), row(pool)].join('\n'));
    console.log(`written ${out}`);
    if (pool.decrypted !== pool.members - 1 || team.decrypted !== team.members - 1) throw new Error('not every member decrypted the case');
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    stopping = true;
    await hub.stop();
  }
}

runBench(main);
