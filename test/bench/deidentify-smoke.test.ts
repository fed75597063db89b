/**
 * Smoke test of the de-identification benchmark (scripts/bench-deidentify.ts): `--quick` runs end to
 * end and writes a well-formed report. It checks the harness works, not how fast anything is: no timing
 * is asserted.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScript } from '../support/run-script.js';

describe('bench:deidentify harness (--quick smoke run)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'bench-deidentify-smoke-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('strips a JPEG, a PNG and a WebP, encrypts for comparison, and writes a well-formed report', async () => {
    const out = join(dir, 'deidentify.json');
    const { code, signal, output } = await runScript('scripts/bench-deidentify.ts', ['--quick', '--out', out], 100_000);
    expect({ code, signal }, `bench-deidentify --quick failed:\n${output.slice(-4000)}`).to.deep.equal({ code: 0, signal: null });
    expect(existsSync(out), 'report written to --out').to.equal(true);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown> & { strip: Record<string, { mb: number; MBps: number }>; secretstreamEncrypt: { MBps: number } };
    expect(report.quick).to.equal(true);
    expect(report.commit).to.be.a('string');
    expect(Object.keys(report.strip)).to.deep.equal(['jpeg', 'png', 'webp']);
    for (const [format, r] of Object.entries(report.strip)) {
      expect(r.mb, format).to.be.at.least(1);
      expect(r.MBps, format).to.be.greaterThan(0);
    }
    expect(report.secretstreamEncrypt.MBps).to.be.greaterThan(0);
    expect(output).to.match(/stripping a JPEG runs at [\d.]+× the encryption's speed/);
  });
});
