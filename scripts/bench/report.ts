/**
 * The hub benchmark's report (run.ts measures): the results' shape, the summaries of latency histograms, the
 * comparisons between variants (ratios, what the machine allows D, targets), where the report is written,
 * and the Markdown block each run adds to docs/benchmarks.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as hdr from 'hdr-histogram-js';
import type { HubTimes, PerMessage } from './counts.js';
import { boundWithHubOf, ceilingWithOneDocument, type StackCpu } from './stack-cpu.js';
import type { StorageCeilingResult } from './storage-ceiling.js';
import type { VariantId } from './common.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
export const r3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);


export function summary(h: ReturnType<typeof hdr.build>) {
  const ms = (us: number) => r3(us / 1000);
  if (h.totalCount === 0) return { n: 0, p50: null, p99: null, p999: null, max: null, mean: null };
  return { n: h.totalCount, p50: ms(h.getValueAtPercentile(50)), p99: ms(h.getValueAtPercentile(99)), p999: ms(h.getValueAtPercentile(99.9)), max: ms(h.maxValue), mean: ms(h.mean) };
}
export type Summary = ReturnType<typeof summary>;


export interface StepResult {
  rate: number;
  target: number;
  sent: number;
  sentShare: number | null;
  valid: boolean;
  passed: boolean;
  failure?: string;
  latencyMs: Summary;
  ackMs: Summary;
  expectedDeliveries: number;
  delivered: number;
  lost: number;
  lossRate: number | null;
  duplicates: number;
  unknown: number;
  acked: number;
  ackErrors: Record<string, number>;
  unacked: number;
  deliveriesPerS: number | null;
  inboundMBps: number | null;
  attempts: number;
  loadavg1: number | null;
  db?: { cpuShare: number | null; cpuMsPerMsg: number | null } | undefined;
  hub: { cpuShare: number | null; cpuMsPerMsg: number | null; eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number }[]; rssMb: number[] };
  generator: { cpuShareMax: number | null; maxBehindMs: number; saturated: boolean };
  /** Closed loop: concurrent senders (rate is then the achieved msg/s). */
  senders?: number;
  /** D and E: Redis and database counts per sent message over the step (send window + drain). */
  perMessage?: PerMessage;
  /** D and E: the hubs' own timings over the step (their histograms' bucket bounds: "at most"). */
  hubTimes?: HubTimes | null;
  /** CPU per message of every process the step's messages pass through (stack-cpu.ts). */
  stack?: StackCpu;
}

export interface VariantResult {
  id: VariantId;
  letter: string;
  title: string;
  error?: string;
  idle?: { clients: number; connected: number; failed: number; errors: string[]; connectPerS: number | null; connectMs: Summary; rssBeforeMb: number; rssAfterMb: number; rssPerConnectionKb: number | null; gc: boolean; generatorCpuShareMax: number | null };
  load?: { clients: number; conversations: number; connect: { connectPerS: number | null; connectMs: Summary }; setupMs: number };
  steps: StepResult[];
  /** The closed-loop step at --senders. */
  closedLoop?: StepResult;
  /** S only: the plain driver's insert rate, without and with a lastSeq raise per batch. */
  storage?: { inserts: StorageCeilingResult; insertsAndRaise: StorageCeilingResult; insertsAndMarks: StorageCeilingResult; batchFrom: string; dbCpuMsPerDoc?: StackCpu['msPerMsg'] };
  headline?: { msgPerS: number; limitedBy: string };
  /**
   * Hub CPU per inbound message (at the highest valid step) and the rate at which that would fill
   * one core: far less sensitive to other jobs on a shared machine than the p99-based headline.
   */
  cpu?: { msPerMsg: number | null; oneCoreMsgPerS: number | null; dbMsPerMsg?: number | null };
}


export type Report = {
  date: string;
  startedAt: string;
  label: string | null;
  machine: { nproc: number; cpuModel: string; memMb: number; loadavgStart: Array<number | null> };
  node: string;
  commit: string;
  uncommitted: string[] | string;
  method: { mode: string; clients: number; workers: number; stepS: number; idleClients: number; rates: number[] };
  variants: VariantResult[];
  ratios: Record<string, number | null>;
  stackBound?: {
    D_stack: StackCpu | null;
    B_stack: StackCpu | null;
    D_boundWithRelayHubMsgPerS: number | null;
    D_bound_over_min_B_S: number | null;
    S_dbCpuMsPerDoc: StackCpu['msPerMsg'] | null;
    D_ceilingMsgPerS: number | null;
    D_ceiling_over_min_B_S: number | null;
  };
  cpuRatios: Record<string, number | null>;
  targets: Record<string, { target: string; value: number | null; met: boolean | null }>;
  p99Crossing: { under50msUpTo: number | null; crossesAt: number | null };
  perMessage: PerMessage | null;
};

export const f = (x: number | null | undefined, d = 1) => (x == null || !Number.isFinite(x) ? '–' : x.toFixed(d));

/** The step of `v` at `rate` msg/s. */
export function stepAt(v: VariantResult | undefined, rate: number): StepResult | undefined {
  return v?.steps.find((s) => s.rate === rate);
}

export function markdown(r: Report, file: string): string {
  const rel = file.startsWith(root) ? file.slice(root.length + 1) : file;
  const lines: string[] = [];
  lines.push(
    `### ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC · commit ${r.commit}${Array.isArray(r.uncommitted) && r.uncommitted.length ? '+' : ''} · ${r.method.mode}${r.label ? ` · ${r.label}` : ''}`,
    '',
    `${r.machine.nproc} × ${r.machine.cpuModel}, ${Math.round(r.machine.memMb / 1024)} GB, Node ${r.node}, load ${r.machine.loadavgStart.join(' ')} at start; ` +
      `${r.method.clients} clients, ${r.method.workers} generator processes, ${r.method.stepS} s steps, ${r.method.idleClients} idle clients. Report: \`${rel}\`.`,
    '',
    '| variant | max msg/s (p99 ≤ 100 ms) | limited by | hub CPU ms/msg (1 core = msg/s) | @1k msg/s: p50 / p99 / p99.9 ms | ack p99 ms | loss / dup | hub CPU | ELD p99 ms | gen CPU | idle KB/conn | connect/s (p99 ms) |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const v of r.variants) {
    const s = stepAt(v, 1000);
    const at = s ? `${f(s.latencyMs.p50)} / ${f(s.latencyMs.p99)} / ${f(s.latencyMs.p999)}${s.valid ? '' : ' (invalid)'}` : '–';
    lines.push(
      `| ${v.letter} ${v.title} | ${v.error ? 'failed' : (v.headline?.msgPerS ?? '–')} | ${v.error ? v.error.slice(0, 80).replace(/\|/g, '/') : (v.headline?.limitedBy ?? '–')} | ` +
        `${f(v.cpu?.msPerMsg, 3)} (${v.cpu?.oneCoreMsgPerS ?? '–'})${v.cpu?.dbMsPerMsg != null ? ` + DB ${f(v.cpu.dbMsPerMsg, 3)}` : ''} | ${at} | ${f(s?.ackMs.p99)} | ` +
        `${s ? `${s.lost} / ${s.duplicates}` : '–'} | ${s ? `${Math.round((s.hub.cpuShare ?? 0) * 100)}%` : '–'} | ${s ? f(Math.max(...s.hub.eventLoopDelayMs.map((e) => e.p99))) : '–'} | ` +
        `${s ? `${Math.round((s.generator.cpuShareMax ?? 0) * 100)}%` : '–'} | ${f(v.idle?.rssPerConnectionKb)} | ${v.idle ? `${f(v.idle.connectPerS, 0)} (${f(v.idle.connectMs.p99)})` : '–'} |`,
    );
  }
  const t = r.targets;
  const met = (x: { met: boolean | null }) => (x.met == null ? 'not measured' : x.met ? 'met' : 'MISSED');
  const loops = r.variants.filter((v) => v.closedLoop);
  if (loops.length) {
    lines.push(
      '',
      `Closed loop, ${loops[0]!.closedLoop!.senders} senders: ` +
        loops.map((v) => `${v.letter} ${v.closedLoop!.rate} msg/s (p50/p99 ${f(v.closedLoop!.latencyMs.p50)}/${f(v.closedLoop!.latencyMs.p99)} ms, ack p99 ${f(v.closedLoop!.ackMs.p99)} ms)`).join(', ') + '.',
    );
  }
  const st = r.variants.find((v) => v.storage)?.storage;
  if (st) {
    lines.push(
      `S: ${st.inserts.concurrency} writers × insertMany of ${st.inserts.batch} (${st.batchFrom}): **${st.inserts.docsPerS} docs/s** (batch p99 ${f(st.inserts.batchMs.p99)} ms); ` +
        `the hub's pattern (envelopes, then one set of seq marks per batch, one lane) ${st.insertsAndMarks?.docsPerS ?? '–'} docs/s (D / that ${f(r.ratios['D_over_S_hubPattern'], 2)}); with the previous hub's $max raise per batch instead ${st.insertsAndRaise.docsPerS} docs/s.`,
    );
  }
  lines.push(
    `**D / min(B, S) = ${f(r.ratios['D_over_min_B_S'], 2)}** (closed loop; on the open-loop headline ${f(r.ratios['D_over_min_B_S_ladder'], 2)}); D/S ${f(r.ratios['D_over_S'], 2)}. ` +
      `D p99 ≤ 50 ms up to ${r.p99Crossing.under50msUpTo ?? '–'} msg/s${r.p99Crossing.crossesAt ? `, above 50 ms at ${r.p99Crossing.crossesAt} msg/s` : ''}.`,
  );
  const m = r.stackBound;
  if (m?.D_stack) {
    const parts = (x: StackCpu) => Object.entries(x.msPerMsg).map(([k, v]) => `${k} ${f(v, 3)}`).join(', ');
    lines.push(
      `CPU per message over every process (ms): D ${parts(m.D_stack)}${m.B_stack ? `; B ${parts(m.B_stack)}` : ''}. ` +
        `With a hub as cheap as the bare relay, D's stack would fill all ${m.D_stack.nproc} cores at **${m.D_boundWithRelayHubMsgPerS ?? '–'} msg/s**: ` +
        `${f(m.D_bound_over_min_B_S, 2)} × min(B, S): the most this machine allows D unless the database, Redis or client work per message falls too.` +
        (m.D_ceilingMsgPerS != null
          ? ` A ceiling for any hub: B's whole stack plus the database's ${f(m.S_dbCpuMsPerDoc?.total, 3)} ms per document in S fill the cores at ${m.D_ceilingMsgPerS} msg/s (${f(m.D_ceiling_over_min_B_S, 2)} × min(B, S)).`
          : ''),
    );
  }
  const pm = r.perMessage;
  if (pm) {
    const top = (o: Record<string, number>) => Object.entries(o).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ');
    lines.push(
      `D per message (closed loop, ${pm.messages} messages, receipts' \`sync:ack\`s and background work included): Redis **${f(pm.redisRoundTrips, 2)} round trips**, ${f(pm.redisCommands, 2)} commands (${top(pm.redisByCommand)}); ` +
        `database **${f(pm.dbCommands, 2)} commands, ${f(pm.dbReads, 2)} reads** (${top(pm.dbByCommand)}); ${f(pm.envelopesPerInsert, 1)} envelopes per insert.`,
    );
  }
  lines.push(
    '',
    `Ratios (highest passing msg/s): D/B (real/bare socket.io) **${f(r.ratios['D/B'], 2)}**, C/B (memory/bare socket.io) **${f(r.ratios['C/B'], 2)}**, ` +
      `E/D (two nodes/one node) **${f(r.ratios['E/D'], 2)}**, B/A (socket.io/ws) ${f(r.ratios['B/A'], 2)}. ` +
      `On hub CPU per message (bare ÷ variant): D/B ${f(r.cpuRatios['D/B'], 2)}, C/B ${f(r.cpuRatios['C/B'], 2)}, E/D ${f(r.cpuRatios['E/D'], 2)}, B/A ${f(r.cpuRatios['B/A'], 2)}.`,
    `Targets: throughput D/B ≥ 0.6 — ${met(t.throughput!)} (${f(t.throughput!.value, 2)}); D p99 at 1k ≤ 50 ms — ${met(t.p99At1k!)} (${f(t.p99At1k!.value)} ms); ` +
      `RSS per idle connection ≤ 25 KB — ${met(t.rssPerIdleConnection!)} (${f(t.rssPerIdleConnection!.value)} KB).`,
  );
  return lines.join('\n');
}

const DOCS_HEADING = '## Hub throughput: full pipeline against bare relays (`npm run bench`)';
const DOCS_MARKER = '<!-- bench:hub runs, newest first (scripts/bench/run.ts adds them) -->';

export function addToDocs(file: string, md: string): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  if (!text.includes(DOCS_MARKER)) text = `${text.trimEnd()}\n\n${DOCS_HEADING}\n\n${DOCS_MARKER}\n`;
  text = text.replace(DOCS_MARKER, `${DOCS_MARKER}\n\n${md}\n`);
  writeFileSync(file, text);
}

/**
 * What the variants of one run say side by side: the ratios (throughput and CPU), issue #19's D against
 * min(B, S), what the machine allows D (stack-cpu.ts), the open-loop p99 crossing and the targets.
 */
export function comparisons(results: VariantResult[]): Pick<Report, 'ratios' | 'cpuRatios' | 'targets' | 'p99Crossing'> & { stackBound: NonNullable<Report['stackBound']> } {
  const by = (id: VariantId) => results.find((r) => r.id === id);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? r3(a / b) : null);
  /** The variant pairs compared, on one figure of each variant. */
  const pairs = (of: (id: VariantId) => number | null | undefined) => ({
    'D/B': ratio(of('real'), of('socketio')),
    'C/B': ratio(of('memory'), of('socketio')),
    'E/D': ratio(of('two-nodes'), of('real')),
    'B/A': ratio(of('socketio'), of('ws')),
  });
  const hl = (id: VariantId) => by(id)?.headline?.msgPerS;
  const ratios = pairs(hl);
  /** The same ratios on CPU cost: bare relay's hub CPU per message ÷ the variant's (higher is better, like msg/s). */
  const cpuRatios = pairs((id) => by(id)?.cpu?.oneCoreMsgPerS);
  // The headline of issue #19: D against the lower of its two ceilings, the bare socket.io relay and
  // the database. At --senders concurrent senders (closed loop): msg/s; S: the plain driver's docs/s.
  const closed = (id: VariantId) => by(id)?.closedLoop?.rate;
  const sRate = by('storage')?.storage?.inserts.docsPerS;
  const minBS = (b: number | undefined) => (b != null && sRate != null ? Math.min(b, sRate) : (b ?? sRate));
  const ceilingRatios = {
    D_over_min_B_S: ratio(closed('real'), minBS(closed('socketio'))),
    D_over_B_closedLoop: ratio(closed('real'), closed('socketio')),
    D_over_S: ratio(closed('real'), sRate),
    // D against S written the way the hub writes (envelopes, then seq marks, one lane), and the previous way ($max raise).
    D_over_S_hubPattern: ratio(closed('real'), by('storage')?.storage?.insertsAndMarks?.docsPerS),
    D_over_S_maxRaise: ratio(closed('real'), by('storage')?.storage?.insertsAndRaise.docsPerS),
    D_over_min_B_S_ladder: ratio(hl('real'), minBS(hl('socketio'))),
  };
  // What this machine allows D at all: its closed-loop stack (generators, database, Redis) with the
  // hub's CPU replaced by the bare relay's, every core busy (stack-cpu.ts), against min(B, S).
  const dStack = by('real')?.closedLoop?.stack;
  const bHub = by('socketio')?.closedLoop?.stack?.msPerMsg.hub;
  const machineBound = dStack && bHub != null ? boundWithHubOf(dStack, bHub) : null;
  const ceiling = ceilingWithOneDocument(by('socketio')?.closedLoop?.stack, by('storage')?.storage?.dbCpuMsPerDoc?.total);
  const stackBound = {
    D_stack: dStack ?? null,
    B_stack: by('socketio')?.closedLoop?.stack ?? null,
    D_boundWithRelayHubMsgPerS: machineBound,
    D_bound_over_min_B_S: ratio(machineBound, minBS(closed('socketio'))),
    // A ceiling on D for any hub: what B's whole stack spends per message plus what the database
    // spends to store one document in S. Below 0.6 × min(B, S) here, the target is out of reach on this machine.
    S_dbCpuMsPerDoc: by('storage')?.storage?.dbCpuMsPerDoc ?? null,
    D_ceilingMsgPerS: ceiling,
    D_ceiling_over_min_B_S: ratio(ceiling, minBS(closed('socketio'))),
  };
  // D's p99 on the open-loop ladder: at 1k msg/s, and the first rate where it passes 50 ms.
  const dSteps = by('real')?.steps ?? [];
  // The highest step with p99 ≤ 50 ms, and the next step above it (a noisy machine can put one low step over 50 ms).
  const under50 = dSteps.filter((s) => s.valid && (s.latencyMs.p99 ?? Infinity) <= 50).at(-1);
  const crosses = dSteps.find((s) => s.rate > (under50?.rate ?? -1) && (s.latencyMs.p99 ?? Infinity) > 50);
  const p99Crossing = { under50msUpTo: under50?.rate ?? null, crossesAt: crosses?.rate ?? null };
  const at1k = (id: VariantId) => stepAt(by(id), 1000);
  const targets = {
    throughput: { target: 'D ≥ 0.6 × B (highest msg/s with p99 ≤ 100 ms)', value: ratios['D/B'], met: ratios['D/B'] == null ? null : ratios['D/B'] >= 0.6 },
    p99At1k: { target: 'D p99 ≤ 50 ms at 1k msg/s', value: at1k('real')?.latencyMs.p99 ?? null, met: at1k('real') ? (at1k('real')!.latencyMs.p99 ?? Infinity) <= 50 && at1k('real')!.valid : null },
    rssPerIdleConnection: { target: 'D ≤ 25 KB RSS per idle authenticated connection', value: by('real')?.idle?.rssPerConnectionKb ?? null, met: by('real')?.idle?.rssPerConnectionKb == null ? null : by('real')!.idle!.rssPerConnectionKb! <= 25 },
  };
  return { ratios: { ...ratios, ...ceilingRatios }, cpuRatios, targets, p99Crossing, stackBound };
}

/** The machine a run was on, with its load at the start and now. */
export function machine(load0: number[], nproc: number): Report['machine'] & { loadavgEnd: Array<number | null> } {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  return { nproc: nproc || cpus().length, cpuModel, memMb: Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024), loadavgStart: load0.map((x) => r2(x)), loadavgEnd: loadavg().map((x) => r2(x)) };
}

/**
 * Write the report: to --out, else results/bench[-smoke|-quick]-DATE[-N].json (a full run without --out
 * also as results/bench-latest.json), print its Markdown block and add it to --docs (default
 * docs/benchmarks.md; none for a smoke run).
 */
export function publish(report: Report & { durationS: number }, o: { out: string | undefined; docs: string | undefined; mode: 'smoke' | 'quick' | 'full' }): void {
  const outFlag = o.out;
  const smoke = o.mode === 'smoke';
  const date = report.date;
  const tag = o.mode === 'full' ? '' : `-${o.mode}`;
  let file = outFlag ? resolve(outFlag) : join(root, 'results', `bench${tag}-${date}.json`);
  if (!outFlag) for (let n = 2; existsSync(file); n++) file = join(root, 'results', `bench${tag}-${date}-${n}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${file} (${report.durationS} s)`);
  if (!smoke && !outFlag) {
    // The newest run's figures under one name (issue #19): the ratio and what a message costs.
    writeFileSync(join(root, 'results', 'bench-latest.json'), JSON.stringify({ report: file.slice(root.length + 1), ...report }, null, 2) + '\n');
    console.log('wrote results/bench-latest.json');
  }

  const md = markdown(report, file);
  console.log(`\n${md}`);
  const docs = o.docs ?? (smoke ? 'none' : join(root, 'docs', 'benchmarks.md'));
  if (docs !== 'none') {
    addToDocs(resolve(docs), md);
    console.log(`added to ${docs}`);
  }
}
