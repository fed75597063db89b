/**
 * Smoke test of the alert-timer benchmark (scripts/bench-alerts.ts): `--smoke` runs end to end (a hub
 * child on Redis and the Mongo-wire DB, a few pending escalations) and writes a well-formed report. It
 * checks the harness, not how fast anything is: no timing is asserted, except that no timer fired
 * before it was due (a correctness property, not a speed).
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runScript } from '../support/run-script.js';

describe('bench:alerts harness (--smoke run)', function () {
  this.timeout(120_000);
  let dir: string;
  before(function () {
    if (!existsSync(join(repoRoot, 'server', 'dist', 'main.js'))) throw new Error('server/dist missing: run `npm run build` first');
    dir = mkdtempSync(join(tmpdir(), 'bench-alerts-smoke-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fires every pending escalation once and reports lateness and the hub’s cost', async () => {
    const out = join(dir, 'alerts.json');
    const { code, output } = await runScript('scripts/bench-alerts.ts', ['--smoke', '--out', out], 100_000);
    expect(code, output).to.equal(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>;
    expect(report.alerts).to.equal(20);
    expect(report.fired, 'every timer fired, once').to.equal(20);
    expect(report.lateness.n).to.equal(20);
    expect(report.lateness.early, 'none before it was due').to.equal(0);
    expect(report.lateness.p99).to.be.at.least(report.lateness.p50);
    for (const w of ['baseline', 'pending']) {
      expect(report.hub[w].cpuMsPerSec, w).to.be.a('number').and.at.least(0);
      expect(report.hub[w].rssMb, w).to.be.greaterThan(10);
    }
    expect(output).to.match(/lateness p50 -?\d+ ms, p99 -?\d+ ms/);
  });
});
