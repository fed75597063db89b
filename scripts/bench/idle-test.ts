/**
 * The idle test of one variant: `clients` authenticated clients that connect and then send nothing,
 * spread over the generators, against servers of their own. Measures the connect rate and its p99
 * (authentication included) and the servers' RSS per connection, each RSS read after a full GC.
 */
import { procRssKb, type ServerProcess } from './server-process.js';
import { r2, r3, summary, type VariantResult } from './report.js';
import { merge } from './step-result.js';
import type { ConnectReport } from './common.js';
import type { Worker } from './generators.js';

export async function idleTest(workers: Worker[], servers: ServerProcess[], clients: number): Promise<NonNullable<VariantResult['idle']>> {
  const pids = servers.map((s) => s.pid);
  const urls = servers.map((s) => s.url);
  const gc = async () => (await Promise.all(servers.map((s) => s.ask<{ done: boolean }>({ type: 'gc' }, 'gc')))).every((x) => x.done);
  const rssKb = () => pids.reduce((a, p) => a + procRssKb(p), 0);
  await gc();
  await new Promise((r) => setTimeout(r, 500));
  const rssBefore = rssKb();
  const per = Math.ceil(clients / workers.length);
  const t0 = performance.now();
  const reps = await Promise.all(
    workers.map((w, i) => w.ask<ConnectReport>({ type: 'idle', urls, clients: Math.max(0, Math.min(per, clients - i * per)), firstUser: i * per }, 'connected')),
  );
  const wall = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 1500));
  const didGc = await gc();
  await new Promise((r) => setTimeout(r, 500));
  const rssAfter = rssKb();
  const connected = reps.reduce((a, r) => a + r.connected, 0);
  const idle = {
    clients,
    connected,
    failed: reps.reduce((a, r) => a + r.failed, 0),
    errors: reps.flatMap((r) => r.errors).slice(0, 5),
    connectPerS: r2((connected / wall) * 1000),
    connectMs: summary(merge(reps.map((r) => r.histogram))),
    rssBeforeMb: r2(rssBefore / 1024)!,
    rssAfterMb: r2(rssAfter / 1024)!,
    rssPerConnectionKb: connected ? r2((rssAfter - rssBefore) / connected) : null,
    gc: didGc,
    generatorCpuShareMax: r3(Math.max(...reps.map((r) => r.cpuMs / r.wallMs))),
  };
  console.log(
    `   idle: ${connected}/${clients} connected at ${idle.connectPerS}/s (connect p99 ${idle.connectMs.p99} ms), ` +
      `RSS ${idle.rssBeforeMb} → ${idle.rssAfterMb} MB = ${idle.rssPerConnectionKb} KB per connection`,
  );
  await Promise.all(workers.map((w) => w.ask({ type: 'idle-close' }, 'idle-closed')));
  return idle;
}
