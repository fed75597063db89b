/**
 * Smoke test of the care-team benchmark harness (scripts/bench-teams.ts): `--quick` runs end to end
 * (hub and bare relay in child processes, clients in the script) and writes a well-formed report.
 * It checks the harness works, not how fast anything is: no timing is asserted.
 * Needs the build (server/dist, client-sdk/dist), as `npm test` does first.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runScript } from '../support/run-script.js';

const root = repoRoot;
const CHILD_TIMEOUT_MS = 100_000;

function run(args: string[]): ReturnType<typeof runScript> {
  return runScript('scripts/bench-teams.ts', args, CHILD_TIMEOUT_MS);
}

const isNumber = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

function expectSummary(s: unknown, n: number, what: string): void {
  expect(s, what).to.be.an('object');
  const x = s as Record<string, unknown>;
  expect(x.n, `${what}.n`).to.equal(n);
  for (const k of ['p50', 'p99', 'max', 'mean']) {
    expect(isNumber(x[k]), `${what}.${k} is a number`).to.equal(true);
    expect(x[k] as number, `${what}.${k}`).to.be.greaterThan(0);
  }
  expect(x.p99 as number, `${what}: p99 ≥ p50`).to.be.at.least(x.p50 as number);
}

describe('bench:teams harness (--quick smoke run)', function () {
  this.timeout(CHILD_TIMEOUT_MS + 20_000);
  let dir: string;
  before(function () {
    if (!existsSync(join(root, 'server', 'dist', 'main.js')) || !existsSync(join(root, 'client-sdk', 'dist', 'index.js'))) {
      throw new Error('server/dist or client-sdk/dist missing: run `npm run build` first');
    }
    dir = mkdtempSync(join(tmpdir(), 'bench-teams-smoke-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs both variants for every size and writes a well-formed JSON report', async () => {
    const out = join(dir, 'teams.json');
    const { code, signal, output } = await run(['--quick', '--out', out]);
    expect({ code, signal }, `bench-teams --quick failed:\n${output.slice(-4000)}`).to.deep.equal({ code: 0, signal: null });
    expect(existsSync(out), 'report written to --out').to.equal(true);
    expect(output).to.include('| date | machine | node | commit |');

    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(report.benchmark).to.equal('teams');
    expect(report.date).to.match(/^\d{4}-\d{2}-\d{2}$/);
    expect(report.node).to.equal(process.version);
    expect(report.commit).to.be.a('string').and.not.equal('');
    expect(report.backend).to.equal('memory');
    const machine = report.machine as Record<string, unknown>;
    expect(isNumber(machine.nproc)).to.equal(true);
    expect(machine.cpuModel).to.be.a('string');
    const method = report.method as { quick: boolean; sizes: number[]; messagesPerRound: number; rounds: number };
    expect(method.quick).to.equal(true);
    const sizes = report.sizes as Array<Record<string, unknown>>;
    expect(sizes.map((s) => s.size)).to.deep.equal(method.sizes);
    const measured = method.messagesPerRound * method.rounds;

    for (const entry of sizes) {
      const size = entry.size as number;
      const curbside = entry.curbside as Record<string, any>;
      const bare = entry.bare as Record<string, any>;
      expect(curbside.error, `team of ${size}: Curbside error`).to.equal(undefined);
      expect(bare.error, `team of ${size}: bare relay error`).to.equal(undefined);
      expect(curbside.ok && bare.ok, `team of ${size}: both variants ok`).to.equal(true);
      expect(isNumber(entry.bodyBytes) && (entry.bodyBytes as number) > 0, 'Curbside body size recorded').to.equal(true);

      expect(isNumber(curbside.firstMessage.allMs), 'first-message latency').to.equal(true);
      expectSummary(curbside.warmup, entry.senders as number, `team of ${size}: warm-up`);
      for (const [name, variant] of [['curbside', curbside], ['bare', bare]] as const) {
        expectSummary(variant.latencyMs.all, measured, `team of ${size}: ${name} send-to-all-delivered`);
        expectSummary(variant.latencyMs.ack, measured, `team of ${size}: ${name} ack`);
        expect(variant.rounds).to.have.length(method.rounds);
        for (const k of ['serverCpuMsStat', 'serverCpuMsSched', 'wireOutBytes', 'wireInBytes']) {
          const v = variant.perMessage[k];
          expect(v === null || (isNumber(v) && v >= 0), `team of ${size}: ${name} perMessage.${k} = ${v}`).to.equal(true);
        }
        expect(isNumber(variant.server.rssMbAfterSetup) && variant.server.rssMbAfterSetup > 0, `${name} server RSS`).to.equal(true);
        expect(variant.generator.limitedByGenerator).to.be.a('boolean');
        expect(isNumber(variant.generator.cpuShareMax)).to.equal(true);
      }
      expectSummary(curbside.latencyMs.allEnvelopes, measured, `team of ${size}: Curbside envelopes at all members`);
      const ratios = entry.ratios as Record<string, unknown>;
      expect(isNumber(ratios.p50) && (ratios.p50 as number) > 0, 'Curbside/bare p50 ratio').to.equal(true);
      expect(ratios).to.have.property('serverCpuPerMessage');
    }
  });
});
