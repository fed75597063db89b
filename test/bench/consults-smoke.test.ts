/**
 * Smoke test of the consult-pool benchmark (scripts/bench-consults.ts): `--smoke` runs end to end (a
 * hub child on Redis and the Mongo-wire DB, a 12-member pool against a 4-member team) and writes a
 * well-formed report. It checks the harness, not how fast anything is: no timing is asserted, only that
 * every member decrypted the case and its image.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runScript } from '../support/run-script.js';

describe('bench:consults harness (--smoke run)', function () {
  this.timeout(240_000);
  let dir: string;
  before(function () {
    if (!existsSync(join(repoRoot, 'server', 'dist', 'main.js'))) throw new Error('server/dist missing: run `npm run build` first');
    dir = mkdtempSync(join(tmpdir(), 'bench-consults-smoke-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports, for a pool and a team in the same run, when every member decrypted the case and its image, and the hub’s CPU', async () => {
    const out = join(dir, 'consults.json');
    const { code, output } = await runScript('scripts/bench-consults.ts', ['--smoke', '--out', out], 220_000);
    expect(code, output).to.equal(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>;
    expect(report.pool).to.include({ kind: 'pool', members: 12, decrypted: 11, imagesWhole: 11 });
    expect(report.team).to.include({ kind: 'team', members: 4, decrypted: 3, imagesWhole: 3 });
    for (const r of [report.pool, report.team]) {
      for (const k of ['postAckMs', 'imageMs', 'hubCpuMs']) expect(r[k], k).to.be.a('number').and.at.least(0);
      expect(r.decryptMs.last).to.be.at.least(r.decryptMs.p50);
    }
    expect(report.ratios.decryptLast).to.be.closeTo(report.pool.decryptMs.last / report.team.decryptMs.last, 1e-9);
    expect(output).to.match(/\| pool of 12 \|/);
  });
});
