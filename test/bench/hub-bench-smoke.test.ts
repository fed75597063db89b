/**
 * Smoke test of the hub throughput benchmark (scripts/bench/run.ts --smoke): every variant (bare ws
 * relay, bare socket.io relay, Curbside on memory, on Redis + the Mongo-wire DB, two nodes) starts,
 * takes a tiny load from a generator process (open loop, then closed loop) and an idle test, the
 * storage ceiling S inserts documents, and the report is well formed with consistent counts. It checks that the harness works, not how fast anything is: no timing is asserted.
 * Needs the build (server/dist), as `npm test` does first.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runScript } from '../support/run-script.js';
import { serviceUrls } from '../support/services.js';

const root = repoRoot;
const CHILD_TIMEOUT_MS = 240_000;

function run(args: string[]): ReturnType<typeof runScript> {
  return runScript('scripts/bench/run.ts', args, CHILD_TIMEOUT_MS);
}

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

describe('npm run bench harness (scripts/bench/run.ts --smoke)', function () {
  this.timeout(CHILD_TIMEOUT_MS + 30_000);
  let dir: string;
  before(function () {
    if (!existsSync(join(root, 'server', 'dist', 'main.js'))) throw new Error('server/dist missing: run `npm run build` first');
    dir = mkdtempSync(join(tmpdir(), 'bench-hub-smoke-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every variant under a tiny load and writes a consistent report', async () => {
    const out = join(dir, 'bench.json');
    const docs = join(dir, 'benchmarks.md');
    const { redisUrl, mongoUri } = serviceUrls();
    const { code, signal, output } = await run(['--smoke', '--keep-going', '--out', out, '--docs', docs, '--redis-url', redisUrl, '--mongodb-uri', mongoUri]);
    expect({ code, signal }, `bench --smoke failed:\n${output.slice(-5000)}`).to.deep.equal({ code: 0, signal: null });
    expect(existsSync(out), 'report written to --out').to.equal(true);
    const md = readFileSync(docs, 'utf8');
    expect(md).to.include('## Hub throughput');
    expect(md).to.include('| variant | max msg/s (p99 ≤ 100 ms) |');
    expect(md).to.match(/Ratios \(highest passing msg\/s\): D\/B/);

    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.benchmark).to.equal('hub');
    expect(report.date).to.match(/^\d{4}-\d{2}-\d{2}$/);
    expect(report.commit).to.be.a('string').and.not.equal('');
    expect(isNumber(report.machine.nproc)).to.equal(true);
    expect(report.method.mode).to.equal('smoke');
    const { clients, rates, shape } = report.method;
    expect(report.variants.map((v: { id: string }) => v.id)).to.deep.equal(['ws', 'socketio', 'memory', 'real', 'storage', 'two-nodes']);
    for (const k of ['D/B', 'C/B', 'E/D']) expect(report.ratios).to.have.property(k);
    expect(md).to.match(/\*\*D \/ min\(B, S\) = /);

    // S: the plain driver stored documents, in batches of D's measured size.
    const s = report.variants.find((v: { id: string }) => v.id === 'storage');
    expect(s.error, 'S: error').to.equal(undefined);
    for (const m of [s.storage.inserts, s.storage.insertsAndRaise, s.storage.insertsAndMarks]) {
      expect(m.docs, 'S: documents inserted').to.be.greaterThan(0);
      expect(m.docs, 'S: whole batches').to.equal(m.batch * m.batches);
      // One insert per batch, one more (raise or marks) with seqRaise, and the marks' prune deletes.
      expect(m.commands, 'S: commands per batch').to.equal(m.batches * (m.seqRaise ? 2 : 1) + m.pruneCommands);
      expect(m.docsPerS).to.be.greaterThan(0);
    }
    expect(s.storage.batchFrom).to.match(/^D's closed loop/);
    expect(isNumber(report.ratios.D_over_min_B_S), 'D / min(B, S)').to.equal(true);
    // What a message costs D, counted from Redis INFO and the hub's driver command monitoring.
    const pm = report.perMessage;
    expect(pm.messages).to.equal(report.variants.find((v: { id: string }) => v.id === 'real').closedLoop.sent);
    for (const k of ['redisRoundTrips', 'redisCommands', 'dbCommands', 'dbReads', 'envelopesPerInsert']) expect(isNumber(pm[k]), `perMessage.${k}`).to.equal(true);
    expect(pm.dbByCommand['insert envelopes'], 'envelope inserts are database commands').to.be.greaterThan(0);
    // The hub's own timings over D's closed loop: one send-to-ack per accepted send, and the inserts, timed.
    const times = report.variants.find((v: { id: string }) => v.id === 'real').closedLoop.hubTimes;
    expect(times.ack.count, 'send-to-ack timed inside the hub').to.be.at.least(pm.messages);
    expect(times.append.count, 'appends timed').to.be.at.least(pm.messages);
    expect(times.insertEnvelopes.count, 'envelope inserts timed by the driver').to.be.greaterThan(0);
    for (const k of ['ack', 'append', 'insertEnvelopes']) expect(times[k].p50Ms <= times[k].p99Ms, `${k}: p50 ≤ p99`).to.equal(true);
    for (const k of ['throughput', 'p99At1k', 'rssPerIdleConnection']) expect(report.targets[k].target).to.be.a('string');
    // Every process's CPU per message in the closed loop (here the hub and the generators: the
    // database was named, not started), and what the stack allows D on this machine.
    for (const id of ['socketio', 'real']) {
      const stack = report.variants.find((v: { id: string }) => v.id === id).closedLoop.stack;
      expect(isNumber(stack.msPerMsg.hub) && isNumber(stack.msPerMsg.generators), `${id}: stack CPU parts`).to.equal(true);
      expect(stack.msPerMsg.generators, `${id}: the generators did work`).to.be.greaterThan(0);
      expect(stack.msPerMsg.total).to.be.closeTo(stack.msPerMsg.hub + stack.msPerMsg.generators, 0.002);
      expect(stack.nproc).to.equal(report.machine.nproc);
    }
    expect(report.stackBound.D_stack.msPerMsg.total).to.equal(report.variants.find((v: { id: string }) => v.id === 'real').closedLoop.stack.msPerMsg.total);
    expect(isNumber(report.stackBound.D_boundWithRelayHubMsgPerS), 'D with a relay-cheap hub').to.equal(true);

    for (const v of report.variants.filter((x: { id: string }) => x.id !== 'storage')) {
      const what = `${v.letter} (${v.id})`;
      expect(v.error, `${what}: error`).to.equal(undefined);
      expect(v.idle.connected, `${what}: idle clients connected`).to.equal(report.method.idleClients);
      expect(v.idle.failed, `${what}: idle connect failures`).to.equal(0);
      expect(v.idle.connectMs.n, `${what}: one connect latency per idle client`).to.equal(v.idle.connected);
      expect(isNumber(v.idle.rssPerConnectionKb), `${what}: RSS per idle connection`).to.equal(true);
      expect(v.load.clients, `${what}: load clients`).to.equal(clients);
      const rooms = clients / shape.roomSize;
      expect(v.load.conversations, `${what}: rooms plus the 1:1 pairs inside them`).to.equal(rooms + rooms * Math.floor(shape.roomSize / 2));
      // --keep-going: every rate ran, so the counts of each can be checked.
      expect(v.steps.map((s: { rate: number }) => s.rate), `${what}: steps`).to.deep.equal(rates);
      expect(v.closedLoop.senders, `${what}: closed-loop step`).to.equal(report.method.senders);
      for (const s of [...v.steps, v.closedLoop]) {
        const at = s.senders ? `${what} closed loop` : `${what} at ${s.rate} msg/s`;
        expect(s.valid, `${at}: the generator kept up with a tiny load`).to.equal(true);
        expect(s.sent, `${at}: sent`).to.be.greaterThan(0);
        expect(s.acked, `${at}: every send acked`).to.equal(s.sent);
        expect(s.ackErrors, `${at}: ack errors`).to.deep.equal({});
        expect(s.unacked, `${at}: unacked`).to.equal(0);
        expect(s.expectedDeliveries, `${at}: expected deliveries between 1 and roomSize-1 per message`).to.be.within(s.sent, s.sent * (shape.roomSize - 1));
        expect(s.delivered, `${at}: delivered == expected`).to.equal(s.expectedDeliveries);
        expect(s.lost, `${at}: lost`).to.equal(0);
        expect(s.duplicates, `${at}: duplicates`).to.equal(0);
        expect(s.unknown, `${at}: unexplained receptions`).to.equal(0);
        expect(s.latencyMs.n, `${at}: one latency sample per delivery`).to.equal(s.delivered);
        expect(s.ackMs.n, `${at}: one ack sample per ack`).to.equal(s.acked);
        expect(s.latencyMs.p99, `${at}: p99 ≥ p50`).to.be.at.least(s.latencyMs.p50);
        expect(s.hub.eventLoopDelayMs, `${at}: event-loop delay from every server process`).to.have.length(v.id === 'two-nodes' ? 2 : 1);
        expect(isNumber(s.hub.cpuShare), `${at}: hub CPU`).to.equal(true);
        expect(isNumber(s.generator.cpuShareMax), `${at}: generator CPU`).to.equal(true);
        expect(s.generator.saturated).to.be.a('boolean');
      }
      expect(v.headline.msgPerS).to.be.a('number');
      expect(v.headline.limitedBy).to.be.a('string');
    }
  });
});
