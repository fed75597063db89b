/**
 * Issue #23: a consult pool of 300 clinicians, each of whom joined themselves with a verified
 * credential; a case with a de-identified image posted to it reaches every member, who decrypts the
 * case and downloads and decrypts the image. Two hub nodes on real Redis and the Mongo-wire DB.
 */
import { expect } from 'chai';
import { HubHarness, sharedBackend } from '../support/hub.js';
import { withAdmin } from '../support/admin-cli.js';
import { credentialOffice } from '../support/office.js';
import { consultScenario } from '../support/consult-pool.js';

describe('a 300-member consult pool (two nodes, Redis + Mongo-wire DB)', function () {
  this.timeout(600_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('every member joins with a credential, and every member decrypts a case and its image', async () => {
    const shared = sharedBackend();
    const limits = (c: Parameters<typeof withAdmin>[0] & { security?: unknown }) => withAdmin(c);
    const nodes = [await harness.start('real', shared, limits), await harness.start('real', shared, limits)];
    const office = await credentialOffice(nodes[0]!.url, 'org-a');
    let i = 0;
    const result = await consultScenario({ kind: 'pool', members: 300, prefix: 'p300', office, client: (userId, deviceId) => nodes[i++ % 2]!.client({ userId, deviceId }, { requestTimeoutMs: 30_000 }), timeoutMs: 240_000 });
    console.log(`      300-member pool: setup ${Math.round(result.setupMs)} ms, joins ${Math.round(result.membershipMs)} ms, case decrypted by all in ${Math.round(result.decryptMs.last)} ms, images in ${Math.round(result.imageMs)} ms`);
    expect(result.decrypted, 'members who decrypted the case').to.equal(299);
    expect(result.imagesWhole, 'members who downloaded and decrypted the image whole').to.equal(299);
  });
});
