/**
 * Smoke test of the attachment benchmark (scripts/bench-attachments.ts): `--smoke` runs end to end (a
 * hub child on Redis and the Mongo-wire DB, another in memory mode, tiny files) and writes a
 * well-formed report. It checks the harness, not how fast anything is: no timing is asserted, only
 * that every concurrent upload was stored whole.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runScript } from '../support/run-script.js';

describe('bench:attachments harness (--smoke run)', function () {
  this.timeout(120_000);
  let dir: string;
  before(function () {
    if (!existsSync(join(repoRoot, 'server', 'dist', 'main.js'))) throw new Error('server/dist missing: run `npm run build` first');
    dir = mkdtempSync(join(tmpdir(), 'bench-attachments-smoke-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports raw and SDK encryption, encrypt-and-upload against raw, and hub RSS under concurrent uploads', async () => {
    const out = join(dir, 'attachments.json');
    const { code, output } = await runScript('scripts/bench-attachments.ts', ['--smoke', '--out', out], 100_000);
    expect(code, output).to.equal(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>;
    for (const k of ['rawSecretstreamMBps', 'sdkEncryptMBps', 'sendMBps', 'sendVsRaw']) expect(report[k], k).to.be.a('number').and.greaterThan(0);
    expect(report.sendVsRaw).to.be.closeTo(report.sendMBps / report.rawSecretstreamMBps, 1e-9);
    expect(report.memoryHub.sendMBps).to.be.greaterThan(0);
    expect(report.concurrent).to.include({ uploads: 2, mbEach: 2, stored: 2 });
    expect(report.hubRss.peakMb).to.be.at.least(report.hubRss.idleMb);
    expect(report.hubRss.idleMb).to.be.greaterThan(10);
    expect(output).to.match(/= \d+\.\d+× raw \(target ≥ 0\.5\)/);
  });
});
