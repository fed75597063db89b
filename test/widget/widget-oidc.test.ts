/**
 * `<curbside-chat>` against a hub that takes tokens from a real OpenID Connect provider
 * (oidc-provider, started here): the tokens name no device and the hub maps the user from
 * `preferred_username`, so the host page says who is signed in (`user-id`) and the widget makes up
 * a device id once, keeps it in the browser, and the hub binds it to the user. Headless Chromium.
 */
import { expect } from 'chai';
import type { Locator, Page } from 'playwright-core';
import { loadConfig } from '@curbside/server';
import { hubBrowserSuite, openWidget, widgetConnected, widgetHostPage } from '../support/browser.js';
import { HubHarness } from '../support/hub.js';
import { HUB_AUDIENCE, TestOidcProvider, type Clinician } from '../support/oidc.js';

const WAIT = 20_000;
const LEE: Clinician = { clientId: 'app-lee', username: 'dr-lee', hospital: 'org-a', name: 'Dr Ana Lee', roles: ['physician'] };
const PATEL: Clinician = { clientId: 'app-patel', username: 'dr-patel', hospital: 'org-a', name: 'Dr Raj Patel', roles: ['physician'] };

describe('<curbside-chat> with an OpenID Connect provider, in headless Chromium', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  let idp: TestOidcProvider;
  const suite = hubBrowserSuite({
    start: async () => {
      idp = await new TestOidcProvider().start();
      idp.addClinician(LEE);
      idp.addClinician(PATEL);
      const oidc = loadConfig({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: HUB_AUDIENCE, OIDC_USER_CLAIM: 'preferred_username', OIDC_ORG_CLAIM: 'hospital' }).oidc;
      return harness.start('memory', undefined, (c) => {
        c.jwt = undefined;
        c.oidc = oidc;
      });
    },
    // The host page knows who signed in to it (user-id), and gets tokens from the hospital's provider.
    site: (t) => ({ '/lee': widgetHostPage(t.url, { userId: 'dr-lee' })['/']!, '/patel': widgetHostPage(t.url, { userId: 'dr-patel' })['/']! }),
    stop: async () => {
      await harness.cleanup();
      await idp?.stop();
    },
  });

  async function open(who: Clinician, path: string): Promise<{ page: Page; widget: Locator }> {
    return openWidget(suite.browser, suite.site, () => idp.token(who.clientId), [], { path });
  }

  it('two clinicians chat; each browser is one device, made up once, kept across a reload and bound to its user', async () => {
    const [lee, patel] = await Promise.all([open(LEE, '/lee'), open(PATEL, '/patel')]);
    expect(await lee.widget.locator('.me').textContent()).to.equal('Signed in as dr-lee');
    const leeDevices = await suite.t.storage.listDevices('org-a', 'dr-lee');
    expect(leeDevices.map((d) => d.deviceId)).to.have.length(1);
    expect(leeDevices[0]!.deviceId).to.match(/^web-[0-9a-f-]{36}$/);

    await lee.widget.getByRole('button', { name: 'New conversation' }).click();
    await lee.widget.getByLabel('People').fill('dr-patel');
    await lee.widget.getByRole('button', { name: 'Start' }).click();
    await lee.widget.getByRole('heading', { level: 2, name: 'dr-patel' }).waitFor({ timeout: WAIT });
    const box = lee.widget.getByRole('textbox', { name: 'Message' });
    await box.fill('Lactate 4.1, starting fluids');
    await box.press('Enter');
    await patel.widget.getByRole('button', { name: /^dr-lee/ }).first().click({ timeout: WAIT });
    await patel.widget.locator('ol.messages li.msg .bubble', { hasText: 'Lactate 4.1' }).waitFor({ timeout: WAIT });

    // A reload is the same device: same id, same keys, nothing new registered.
    await lee.page.reload();
    await widgetConnected(lee.page);
    expect((await suite.t.storage.listDevices('org-a', 'dr-lee')).map((d) => d.deviceId)).to.deep.equal([leeDevices[0]!.deviceId]);
    expect(await lee.page.evaluate("localStorage.getItem('curbside-device-id:dr-lee')")).to.equal(leeDevices[0]!.deviceId);
  });
});
