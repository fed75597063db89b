/**
 * One step of the hub bench, from what was measured to what is kept and printed: the generators'
 * reports merged (latency, acks, loss), the hub's CPU and event-loop delay, the counts per message and
 * the hub's own timings (counts.ts), judged against the step's limits; then the console lines and the
 * headline of a variant's steps. run.ts measures; this file only adds up and words it.
 */
import * as hdr from 'hdr-histogram-js';
import { HDR, type StepReport } from './common.js';
import { hubTimes, perMessage, type CountSample } from './counts.js';
import { r2, r3, summary, type StepResult, type VariantResult } from './report.js';
import type { StackCpu } from './stack-cpu.js';

/** Merge HDR histograms the generators sent (compressed, base64). */
export function merge(encoded: string[]) {
  const h = hdr.build(HDR);
  for (const e of encoded) h.add(hdr.decodeFromCompressedBase64(e));
  return h;
}

/** What run.ts measured around one step. */
export interface StepMeasures {
  /** Open loop: the target msg/s. Closed loop: 0, with `senders`. */
  rate: number;
  senders: number;
  reps: StepReport[];
  /** Counters before and after (D and E). */
  counts?: { before: CountSample; after: CountSample } | undefined;
  /** The hubs' CPU over the step and its drain, and the wall time of both. */
  hubCpuMs: number;
  totalWallMs: number;
  stack: StackCpu;
  eld: Array<{ p50: number; p99: number; max: number; mean: number }>;
  hubRssKb: number[];
  loadavg1: number;
  /** The database's process was measured (D and E). */
  db: boolean;
  limits: { p99Ms: number; loss: number };
}

/** Add up one step and judge it: invalid (the generators fell behind), too slow, too lossy, or refused too much. */
export function stepResult(m: StepMeasures): StepResult {
  const { reps, senders } = m;
  // The send window is what the step's rate is about; the drain after it is included in the CPU (its work).
  const wall = Math.max(...reps.map((r) => r.sendWallMs));
  const sum = (f: (r: StepReport) => number) => reps.reduce((a, r) => a + f(r), 0);
  const target = sum((r) => r.target);
  const sent = sum((r) => r.sent);
  const expected = sum((r) => r.expectedDeliveries);
  const lost = sum((r) => r.lost);
  const ackErrors: Record<string, number> = {};
  for (const r of reps) for (const [k, v] of Object.entries(r.ackErrors)) ackErrors[k] = (ackErrors[k] ?? 0) + v;
  const refused = Object.values(ackErrors).reduce((a, b) => a + b, 0);
  const latency = summary(merge(reps.map((r) => r.latency)));
  const cpuShareMax = Math.max(...reps.map((r) => r.cpuMs / r.sendWallMs));
  const valid = sent >= 0.95 * target;
  const lossRate = expected ? lost / expected : 0;
  let failure: string | undefined;
  if (!valid) failure = `generator sent ${Math.round((sent / target) * 100)}% of the target rate (< 95%): step invalid`;
  else if (!senders && (latency.p99 ?? Infinity) > m.limits.p99Ms) failure = `p99 ${latency.p99} ms > ${m.limits.p99Ms} ms`;
  else if (lossRate > m.limits.loss) failure = `loss ${(lossRate * 100).toFixed(2)}% > ${m.limits.loss * 100}%`;
  else if (refused / Math.max(1, sent) > m.limits.loss) failure = `refused ${((refused / sent) * 100).toFixed(2)}% of sends > ${m.limits.loss * 100}% (${JSON.stringify(ackErrors)})`;
  return {
    rate: senders ? Math.round((sent / wall) * 1000) : m.rate,
    ...(senders ? { senders } : {}),
    ...(m.counts ? { perMessage: perMessage(m.counts.before, m.counts.after, sent), hubTimes: hubTimes(m.counts.before, m.counts.after) } : {}),
    target,
    sent,
    sentShare: r3(sent / target),
    valid,
    passed: !failure,
    ...(failure ? { failure } : {}),
    latencyMs: latency,
    ackMs: summary(merge(reps.map((r) => r.ack))),
    expectedDeliveries: expected,
    delivered: sum((r) => r.delivered),
    lost,
    lossRate: r3(lossRate),
    duplicates: sum((r) => r.duplicates),
    unknown: sum((r) => r.unknown),
    acked: sum((r) => r.acked),
    ackErrors,
    unacked: sum((r) => r.unacked),
    deliveriesPerS: r2((sum((r) => r.delivered) / wall) * 1000),
    inboundMBps: r2(sum((r) => r.bytesSent) / wall / 1000),
    attempts: 1,
    loadavg1: r2(m.loadavg1),
    ...(m.db ? { db: { cpuShare: r3(((m.stack.msPerMsg.ferretdb ?? 0) * sent) / m.totalWallMs), cpuMsPerMsg: m.stack.msPerMsg.ferretdb ?? null } } : {}),
    hub: {
      cpuShare: r3(m.hubCpuMs / m.totalWallMs),
      cpuMsPerMsg: r3(m.hubCpuMs / sent),
      eventLoopDelayMs: m.eld.map(({ p50, p99, max, mean }) => ({ p50, p99, max, mean })),
      rssMb: m.hubRssKb.map((kb) => r2(kb / 1024)!),
    },
    generator: { cpuShareMax: r3(cpuShareMax), maxBehindMs: Math.max(...reps.map((r) => r.maxBehindMs)), saturated: cpuShareMax >= 0.9 },
    stack: m.stack,
  };
}

const pct = (share: number | null) => `${Math.round((share ?? 0) * 100)}%`;

/** The console line of an open-loop step. */
export function stepLine(s: StepResult): string {
  const eldP99 = Math.max(...s.hub.eventLoopDelayMs.map((e) => e.p99));
  return (
    `   ${String(s.rate).padStart(5)} msg/s: sent ${Math.round((s.sentShare ?? 0) * 100)}%, p50/p99/p99.9 ${s.latencyMs.p50}/${s.latencyMs.p99}/${s.latencyMs.p999} ms, ` +
    `ack p99 ${s.ackMs.p99} ms, lost ${s.lost}, dup ${s.duplicates}, hub CPU ${pct(s.hub.cpuShare)}, ELD p99 ${eldP99} ms, ` +
    `${s.db ? `DB CPU ${pct(s.db.cpuShare)}, ` : ''}generator ${pct(s.generator.cpuShareMax)}${s.generator.saturated ? ' (saturated)' : ''}, load ${s.loadavg1}${s.failure ? `  ✗ ${s.failure}` : ''}`
  );
}

/** The console lines of the closed-loop step. */
export function closedLoopLines(s: StepResult): string[] {
  return [
    `   closed loop, ${s.senders} senders: ${s.rate} msg/s, p50/p99 ${s.latencyMs.p50}/${s.latencyMs.p99} ms, ack p50/p99 ${s.ackMs.p50}/${s.ackMs.p99} ms, lost ${s.lost}, dup ${s.duplicates}, ` +
      `unacked ${s.unacked}, hub CPU ${pct(s.hub.cpuShare)}${s.db ? `, DB CPU ${pct(s.db.cpuShare)}` : ''}, load ${s.loadavg1}`,
    ...countsLines(s),
    ...(s.stack ? [`   CPU per message, every process: ${JSON.stringify(s.stack.msPerMsg)} ms; all ${s.stack.nproc} cores full at ${s.stack.coresBoundMsgPerS} msg/s`] : []),
  ];
}

const times = (t: { p50Ms: number | null; p99Ms: number | null }) => `≤ ${t.p50Ms}/${t.p99Ms} ms`;

/** D and E: what a message cost in commands, and what the latency is made of inside the hub. */
export function countsLines(s: StepResult): string[] {
  const pm = s.perMessage;
  if (!pm) return [];
  const lines = [
    `   per message: Redis ${pm.redisRoundTrips} round trips, ${pm.redisCommands} commands ${JSON.stringify(pm.redisByCommand)}; ` +
      `DB ${pm.dbCommands} commands, ${pm.dbReads} reads ${JSON.stringify(pm.dbByCommand)}; ${pm.envelopesPerInsert} envelopes per insert${pm.error ? ` (${pm.error})` : ''}`,
  ];
  const t = s.hubTimes;
  if (t) {
    lines.push(
      `   inside the hub, p50/p99: send to ack ${times(t.ack)}, of which the database append ${times(t.append)}; a Redis command ${times(t.redis)}; ` +
        `database commands: insert envelopes ${times(t.insertEnvelopes)}, insert seq_mark_sets ${times(t.insertMarks)}, find seq_mark_sets ${times(t.findMarks)} (${t.findMarks.count})`,
    );
  }
  return lines;
}

/** The highest passing open-loop rate, and what stopped the steps above it. */
export function headline(steps: StepResult[], rates: number[]): NonNullable<VariantResult['headline']> {
  let best = 0;
  let limitedBy = `passed every step (raise --rates above ${rates[rates.length - 1]})`;
  for (const s of steps) {
    if (!s.passed) {
      limitedBy = !s.valid ? 'load generator (could not send ≥ 95% of the next step)' : s.failure!.startsWith('p99') ? 'latency (p99)' : 'loss';
      if (s.valid && s.generator.saturated) limitedBy += '; the generator was saturated at that step too';
      break;
    }
    best = s.rate;
  }
  return { msgPerS: best, limitedBy };
}

/**
 * The hub's (and database's) CPU per message of a variant, at its highest valid step: at low rates the
 * per-connection background work (heartbeats, slow-consumer checks) is a large share of the CPU
 * divided among few messages.
 */
export function cpuAtTop(steps: StepResult[]): NonNullable<VariantResult['cpu']> {
  const top = steps.filter((s) => s.valid).slice(-1)[0];
  const msPerMsg = top?.hub.cpuMsPerMsg ?? NaN;
  const dbMs = top?.db?.cpuMsPerMsg ?? NaN;
  return {
    msPerMsg: r3(msPerMsg),
    oneCoreMsgPerS: Number.isFinite(msPerMsg) && msPerMsg > 0 ? Math.round(1000 / msPerMsg) : null,
    ...(Number.isFinite(dbMs) ? { dbMsPerMsg: r3(dbMs) } : {}),
  };
}
