/**
 * Issue #20 in the widget, headless Chromium against a real hub: the "On call" panel lists the
 * organisation's on-call roles with who holds each now (verified by the SDK from the signed logs),
 * finds one by name, pages its holder in a thread titled with the role, and takes a role the user may
 * hold. Dr Lee is in the browser; the role's owner and Dr Bell are SDK clients.
 */
import { expect } from 'chai';
import type { ChatMessage, CurbsideClient } from '@curbside/client-sdk';
import { axeViolations, widgetSuite } from '../support/browser.js';
import { HubHarness, eventually } from '../support/hub.js';

const WAIT = 20_000;
const LEE = { userId: 'dr-lee', deviceId: 'lee-laptop', claims: { name: 'Daniel Lee', profile_role: 'Emergency physician' } };

describe('<curbside-chat> on-call roles: on call now, search, Page, Take (Chromium)', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  let chief: CurbsideClient;
  let bell: CurbsideClient;
  let roleId: string;
  const bellMessages: ChatMessage[] = [];
  const s = widgetSuite({
    who: LEE,
    stop: () => harness.cleanup(),
    start: async () => {
      const t = await harness.start('memory');
      chief = t.client({ userId: 'dr-chief', deviceId: 'chief-desk', claims: { name: 'Grace Chief' } });
      bell = t.client({ userId: 'dr-bell', deviceId: 'bell-phone', claims: { name: 'Adam Bell', profile_role: 'Cardiology registrar' } });
      bell.on('message', (m) => bellMessages.push(m));
      await Promise.all([chief.connect(), bell.connect()]);
      ({ roleId } = await chief.roles.create('Cardiology on-call', [{ userId: 'dr-bell' }, { userId: 'dr-lee' }]));
      await chief.roles.schedule(roleId, [{ userIds: ['dr-bell'], from: Date.now() - 60_000, to: Date.now() + 3_600_000 }]);
      await chief.roles.create('Rapid response', [{ userId: 'dr-bell' }]);
      return t;
    },
  });

  it('"On call" lists every role with who holds it now, and a search finds one by name', async () => {
    await s.widget.getByRole('button', { name: 'On call' }).click();
    const roles = s.widget.getByRole('list', { name: 'On call now' });
    const cardio = roles.locator('li', { hasText: 'Cardiology on-call' });
    await cardio.waitFor({ timeout: WAIT });
    await eventually(async () => (await cardio.textContent())!.includes('held by Adam Bell'), 'the holder by name', WAIT);
    expect(await roles.locator('li', { hasText: 'Rapid response' }).textContent()).to.include('held by nobody');
    expect(await roles.locator('li', { hasText: 'Rapid response' }).getByRole('button', { name: 'Page Rapid response' }).isDisabled(), 'nobody to page').to.equal(true);
    await s.widget.getByRole('searchbox', { name: 'Find a role' }).fill('rapid');
    await eventually(async () => (await roles.locator('li').count()) === 1, 'the search narrows the list', WAIT);
    expect(await roles.locator('li').first().textContent()).to.include('Rapid response');
    const violations = (await axeViolations(s.page)).filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
    expect(violations, 'axe-core with the on-call panel shown').to.deep.equal([]);
    await s.widget.getByRole('searchbox', { name: 'Find a role' }).fill('');
    await roles.locator('li', { hasText: 'Cardiology on-call' }).waitFor({ timeout: WAIT });
  });

  it('Page opens a thread titled with the role, and what is sent there reaches whoever holds it', async () => {
    await s.widget.getByRole('button', { name: 'Page Cardiology on-call' }).click();
    await s.widget.getByRole('heading', { name: 'Cardiology on-call' }).waitFor({ timeout: WAIT });
    await s.widget.getByRole('textbox', { name: 'Message' }).fill('Bed 4 chest pain, troponin rising: can you review?');
    await s.widget.getByRole('button', { name: 'Send' }).click();
    await eventually(() => bellMessages.some((m) => m.text === 'Bed 4 chest pain, troponin rising: can you review?' && m.senderUserId === 'dr-lee'), 'the holder got the page', WAIT);
    expect(await s.widget.locator('button.conv', { hasText: 'Cardiology on-call' }).count(), 'the thread is in the list').to.equal(1);
  });

  it('Take makes the user the holder, as the SDK verifies it', async () => {
    const roles = s.widget.getByRole('list', { name: 'On call now' });
    await s.widget.getByRole('button', { name: 'Take Cardiology on-call' }).click();
    await eventually(async () => (await roles.locator('li', { hasText: 'Cardiology on-call' }).textContent())!.includes('held by you'), 'the widget shows the hand-off', WAIT);
    expect((await bell.roles.get(roleId)).holders).to.deep.equal(['dr-lee']);
    expect(s.pageErrors).to.deep.equal([]);
  });
});
