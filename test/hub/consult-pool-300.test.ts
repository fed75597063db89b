/**
 * Issue #23: a consult pool of 300 credentialed clinicians (the moderator enrols most when opening it;
 * two join themselves into a pool that large); a case with a de-identified image posted to it reaches
 * every member, who decrypts it; ten download and decrypt the image. Two hub nodes on real Redis and
 * FerretDB on PostgreSQL (what hospitals run; FerretDB on SQLite serialises the 300 devices' key uploads
 * too slowly for a test).
 */
import { expect } from 'chai';
import { HubHarness, sharedBackend } from '../support/hub.js';
import { serviceUrls } from '../support/services.js';
import type { HubConfig } from '@curbside/server';
import { defaultSecurityConfig, rateLimitsOff } from '../../server/src/security/config.js';
import { withAdmin } from '../support/admin-cli.js';
import { credentialOffice } from '../support/office.js';
import { consultScenario } from '../support/consult-pool.js';

describe('a 300-member consult pool (two nodes, Redis + FerretDB-PostgreSQL)', function () {
  this.timeout(600_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('every member is in by a credential (enrolled, or joining into a pool that large), and every member decrypts a case with an image', async () => {
    const shared = { ...sharedBackend(), mongoUri: serviceUrls().ferretDbPostgresUri };
    // A load test of delivery: 300 clinicians of one organisation at once would spend its rate-limit budgets.
    const unlimited = (c: HubConfig) => {
      withAdmin(c);
      c.security = { ...(c.security ?? defaultSecurityConfig('production')), rateLimits: rateLimitsOff() };
    };
    const nodes = [await harness.start('real', shared, unlimited), await harness.start('real', shared, unlimited)];
    const office = await credentialOffice(nodes[0]!.url, 'org-a');
    let i = 0;
    const result = await consultScenario({ kind: 'pool', members: 300, prefix: 'p300', office, client: (userId, deviceId) => nodes[i++ % 2]!.client({ userId, deviceId }, { requestTimeoutMs: 30_000 }), joiners: 2, imageDownloads: 10, timeoutMs: 240_000, log: (line) => console.log(`      ${line}`) });
    console.log(`      300-member pool: setup ${Math.round(result.setupMs)} ms, joins ${Math.round(result.membershipMs)} ms, case decrypted by all in ${Math.round(result.decryptMs.last)} ms, images in ${Math.round(result.imageMs)} ms`);
    expect(result.decrypted, 'members who decrypted the case').to.equal(299);
    // Ten download the image (bench:consults has all 299 do it, and times it).
    expect(result.imagesWhole, `members who downloaded and decrypted the image whole (failures: ${result.imageErrors.join('; ') || 'none'})`).to.equal(10);
  });
});
