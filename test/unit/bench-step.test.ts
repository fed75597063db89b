/**
 * The hub bench's arithmetic (scripts/bench/step-result.ts, counts.ts): how a step is judged from the
 * generators' reports, and the hub's own timings read from its histograms' buckets.
 */
import { expect } from 'chai';
import * as hdr from 'hdr-histogram-js';
import { HDR, type StepReport } from '../../scripts/bench/common.js';
import { hubTimes, type CountSample, type HubSample } from '../../scripts/bench/counts.js';
import { cpuAtTop, headline, stepResult, type StepMeasures } from '../../scripts/bench/step-result.js';

/** A histogram of these latencies (ms), encoded as a generator sends it (µs). */
function encoded(ms: number[]): string {
  const h = hdr.build(HDR);
  for (const v of ms) h.recordValue(v * 1000);
  return hdr.encodeIntoCompressedBase64(h);
}

function report(over: Partial<StepReport> = {}): StepReport {
  const latencies = Array.from({ length: 100 }, (_, i) => 5 + i / 10);
  return {
    type: 'step-done',
    step: 1,
    target: 1000,
    sent: 1000,
    skipped: 0,
    sendWallMs: 10_000,
    acked: 1000,
    ackErrors: {},
    unacked: 0,
    expectedDeliveries: 4000,
    delivered: 4000,
    lost: 0,
    duplicates: 0,
    unknown: 0,
    latency: encoded(latencies),
    ack: encoded(latencies),
    cpuMs: 1000,
    maxBehindMs: 3,
    bytesSent: 1_000_000,
    ...over,
  };
}

function measures(reps: StepReport[], over: Partial<StepMeasures> = {}): StepMeasures {
  return {
    rate: 200,
    senders: 0,
    reps,
    hubCpuMs: 5000,
    totalWallMs: 10_000,
    stack: { msPerMsg: { hub: 2.5, generators: 0.5, total: 3 }, nproc: 2, coresBoundMsgPerS: 666 },
    eld: [{ p50: 1, p99: 4, max: 9, mean: 1.2 }],
    hubRssKb: [102_400],
    loadavg1: 1.5,
    db: false,
    limits: { p99Ms: 100, loss: 0.001 },
    ...over,
  };
}

/** A hub's /metrics sample with these cumulative bucket counts for send-to-ack (upper bound s → count). */
function sample(ack: Array<[number, number]>): CountSample {
  const hub: HubSample = {
    dbCommands: {},
    envelopeInserts: 0,
    envelopeDocs: 0,
    envelopesIn: 0,
    timed: { ack: new Map(ack), append: new Map(), redis: new Map(), insertEnvelopes: new Map(), insertMarks: new Map(), findMarks: new Map() },
  };
  return { at: 0, redis: { error: 'none' }, hubs: [hub] };
}

describe('hub bench arithmetic (logic)', () => {
  it('adds up the generators of a step and passes it within its limits', () => {
    const s = stepResult(measures([report(), report()]));
    expect(s.passed).to.equal(true);
    expect(s).to.include({ sent: 2000, target: 2000, delivered: 8000, lost: 0, rate: 200, deliveriesPerS: 800 });
    expect(s.hub).to.include({ cpuShare: 0.5, cpuMsPerMsg: 2.5 });
    expect(s.hub.rssMb).to.deep.equal([100]);
    expect(s.latencyMs.p99).to.be.within(14, 15.1);
  });

  it('judges a step: generators behind, p99 over the limit, loss, refused sends; a closed loop has no latency limit', () => {
    expect(stepResult(measures([report({ sent: 900 })])).failure).to.match(/generator sent 90% .* step invalid/);
    expect(stepResult(measures([report()], { limits: { p99Ms: 10, loss: 0.001 } })).failure).to.match(/^p99 .* > 10 ms$/);
    expect(stepResult(measures([report({ lost: 40 })])).failure).to.equal('loss 1.00% > 0.1%');
    expect(stepResult(measures([report({ ackErrors: { UNAVAILABLE: 20 } })])).failure).to.match(/^refused 2\.00% of sends > 0\.1%/);
    const closed = stepResult(measures([report()], { senders: 64, rate: 0, limits: { p99Ms: 10, loss: 0.001 } }));
    expect(closed.passed, 'closed loop: throughput, not latency').to.equal(true);
    expect(closed.rate, 'the achieved rate').to.equal(100);
  });

  it('the headline is the last rate before the first failed step, and says what stopped it', () => {
    const ok = (rate: number) => stepResult(measures([report()], { rate }));
    const slow = stepResult(measures([report()], { rate: 400, limits: { p99Ms: 10, loss: 0.001 } }));
    expect(headline([ok(100), ok(200), slow, ok(800)], [100, 200, 400, 800])).to.deep.equal({ msgPerS: 200, limitedBy: 'latency (p99)' });
    expect(headline([ok(100)], [100])).to.deep.equal({ msgPerS: 100, limitedBy: 'passed every step (raise --rates above 100)' });
  });

  it("a variant's CPU per message is its highest valid step's; with no valid step there is none", () => {
    const at = (hubCpuMs: number, over: Partial<StepReport> = {}) => stepResult(measures([report(over)], { hubCpuMs, db: true, stack: { msPerMsg: { hub: 2, generators: 0.5, total: 3, ferretdb: 0.4 }, nproc: 2, coresBoundMsgPerS: 666 } }));
    const behind = at(9000, { sent: 100 }); // the generators sent 10% of the target: not valid
    expect(behind.valid).to.equal(false);
    expect(cpuAtTop([at(5000), at(2000), behind])).to.deep.equal({ msPerMsg: 2, oneCoreMsgPerS: 500, dbMsPerMsg: 0.4 });
    expect(cpuAtTop([behind])).to.deep.equal({ msPerMsg: null, oneCoreMsgPerS: null });
  });

  it("reads the hub's timings from the buckets a step added: the bound of the bucket holding the quantile", () => {
    const before = sample([
      [0.005, 10],
      [0.01, 10],
      [0.05, 10],
      [Infinity, 10],
    ]);
    // The step added 100: 60 within 5 ms, 39 more within 10 ms, 1 within 50 ms.
    const after = sample([
      [0.005, 70],
      [0.01, 109],
      [0.05, 110],
      [Infinity, 110],
    ]);
    const t = hubTimes(before, after)!;
    expect(t.ack).to.deep.equal({ count: 100, p50Ms: 5, p99Ms: 10 });
    expect(t.append, 'nothing observed').to.deep.equal({ count: 0, p50Ms: null, p99Ms: null });
    const slowest = sample([
      [0.005, 10],
      [0.01, 10],
      [0.05, 10],
      [Infinity, 20],
    ]);
    expect(hubTimes(before, slowest)!.ack, 'beyond the last bound').to.deep.equal({ count: 10, p50Ms: Infinity, p99Ms: Infinity });
    expect(hubTimes(before, { ...after, hubs: [{ error: 'down' }] }), 'a hub that did not answer').to.equal(null);
  });
});
