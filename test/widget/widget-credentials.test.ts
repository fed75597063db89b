/**
 * Issue #23 in the widget, headless Chromium against a real hub: a clinician whose credential the
 * organisation's credentialing office attested (through the real CLI) shows "✓ Verified <specialty>"
 * next to their name, with the credential on hover and focus; the new-conversation search finds
 * verified clinicians by specialty. Dr Lee is in the browser; Dr Okafor is an SDK client.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { axeViolations, widgetSuite } from '../support/browser.js';
import { HubHarness } from '../support/hub.js';
import { cli, withAdmin } from '../support/admin-cli.js';

const WAIT = 20_000;
const LEE = { userId: 'dr-lee', deviceId: 'lee-laptop', claims: { name: 'Daniel Lee', profile_role: 'Emergency physician' } };

describe('<curbside-chat> verified credentials: badges and search by specialty (Chromium)', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  const s = widgetSuite({
    who: LEE,
    stop: () => harness.cleanup(),
    start: async () => {
      const t = await harness.start('memory', undefined, withAdmin);
      const okafor = t.client({ userId: 'dr-okafor', deviceId: 'okafor-phone', claims: { name: 'Ada Okafor', profile_role: 'Consultant' } });
      await okafor.connect();
      const keyFile = join(mkdtempSync(join(tmpdir(), 'curbside-office-')), 'office.pem');
      for (const args of [
        ['credentials', 'keygen', '--out', keyFile],
        ['credentials', 'publish-key', '--org', 'org-a', '--key', keyFile],
        ['credentials', 'issue', '--org', 'org-a', '--key', keyFile, '--user', 'dr-okafor', '--device', 'okafor-phone', '--identity-key', await okafor.credentials.myIdentityKey(), '--name', 'Ada Okafor', '--specialty', 'Paediatric dermatology', '--licence', 'GMC 7654321', '--institution', 'St Elsewhere'],
      ]) {
        const run = await cli(t.url, args);
        expect(run.code, run.stderr).to.equal(0);
      }
      await okafor.createConversation({ kind: 'direct', peerUserId: 'dr-lee' });
      return t;
    },
  });

  it('shows "Verified" with the credential on hover and focus next to a verified clinician', async () => {
    await s.widget.locator('button.conv', { hasText: 'Ada Okafor' }).first().click();
    const badge = s.widget.locator('.thread-head .verified');
    await badge.waitFor({ timeout: WAIT });
    expect(await badge.textContent()).to.equal('✓ Verified Paediatric dermatology');
    expect(await badge.getAttribute('aria-label')).to.match(/^Verified Paediatric dermatology, licence GMC 7654321, St Elsewhere; attested until /);
    await badge.focus();
    const shown = await badge.evaluate((el) => getComputedStyle(el, '::after').content);
    expect(shown, 'the credential shows on focus').to.include('GMC 7654321');
    const violations = (await axeViolations(s.page)).filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
    expect(violations).to.deep.equal([]);
  });

  it('the new-conversation search finds verified clinicians by specialty', async () => {
    await s.widget.getByRole('button', { name: 'New conversation' }).click();
    await s.widget.getByRole('searchbox', { name: /Search the directory/ }).fill('dermatology');
    const result = s.widget.getByRole('list', { name: 'Directory results' }).locator('li', { hasText: 'Ada Okafor' });
    await result.waitFor({ timeout: WAIT });
    await result.locator('.verified').waitFor({ timeout: WAIT });
    expect(s.pageErrors).to.deep.equal([]);
  });
});
