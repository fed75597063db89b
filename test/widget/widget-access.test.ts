/**
 * `<curbside-chat>` as a nurse or a registrar meets it (issue #17), in headless Chromium against a real
 * hub: people by name and role from the directory (token claims), care-team titles shown in full at
 * the default and a narrow size, the identity-change warning focusing the safe choice after a contact
 * really reinstalled, an axe-core run with no serious or critical violation in the main states, and
 * the whole round (open, send, back, dialogs) from the keyboard alone.
 *
 * The browser clinician is Dr Lee; the others are SDK clients in this process. The tests run in order
 * and build on each other.
 */
import { expect } from 'chai';
import type { CurbsideClient } from '@curbside/client-sdk';
import { axeViolations, widgetSuite } from '../support/browser.js';
import { HubHarness, eventually } from '../support/hub.js';

const WAIT = 20_000;
const ADMIN = 'widget-access-operator-token-0123456789abcdef';
const TEAM_TITLE = 'Ward 4B cardiology step-down: discharge planning, transport and pharmacy reconciliation';

const LEE = { userId: 'dr-lee', deviceId: 'lee-laptop', claims: { name: 'Daniel Lee', profile_role: 'Emergency physician', department: 'Emergency' } };
const PATEL_CLAIMS = { name: 'Anita Patel', profile_role: 'Cardiology registrar', department: 'Cardiology' };
const ORTIZ_CLAIMS = { name: 'Rosa Ortiz', profile_role: 'Charge nurse', department: 'Ward 4B' };

describe('<curbside-chat> for the people using it: names, full titles, the safe choice, axe-core, keyboard only', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  let patelDesk: CurbsideClient;
  let patelPhone: CurbsideClient;
  let ortiz: CurbsideClient;
  let directId: string;
  const s = widgetSuite({
    who: LEE,
    host: { heading: 'Ward 4B' },
    viewport: { width: 1000, height: 640 },
    stop: () => harness.cleanup(),
    start: async () => {
      const t = await harness.start('memory', undefined, (c) => (c.adminToken = ADMIN));
      patelDesk = t.client({ userId: 'dr-patel', deviceId: 'patel-desk', claims: PATEL_CLAIMS });
      await patelDesk.connect();
      patelPhone = t.client({ userId: 'dr-patel', deviceId: 'patel-phone', claims: PATEL_CLAIMS });
      await patelPhone.connect(); // linked by the desk (the harness enters the code)
      ortiz = t.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet', claims: ORTIZ_CLAIMS });
      await ortiz.connect();
      return t;
    },
  });

  /** The element focused inside the widget: a property of it, read in the page. */
  async function focused(what: 'text' | 'label' | 'outline' | 'inDialog'): Promise<string> {
    const el = "document.querySelector('curbside-chat').shadowRoot.activeElement";
    const expr = {
      text: `${el}?.textContent ?? ''`,
      label: `${el}?.getAttribute('aria-label') ?? ''`,
      // A visible focus ring: the outline :focus-visible draws.
      outline: `(() => { const s = getComputedStyle(${el}); return s.outlineStyle + ' ' + s.outlineWidth; })()`,
      inDialog: `String(!!${el}?.closest('.dialog'))`,
    }[what];
    return (await s.page.evaluate(expr)) as string;
  }

  /** Tab (or Shift+Tab) until the focused element's text or label matches; fails after `max` presses. */
  async function tabTo(match: RegExp, options: { back?: boolean; max?: number } = {}): Promise<void> {
    for (let i = 0; i < (options.max ?? 15); i++) {
      await s.page.keyboard.press(options.back ? 'Shift+Tab' : 'Tab');
      if (match.test(await focused('label')) || match.test(await focused('text'))) return;
    }
    throw new Error(`focus never reached ${match}`);
  }

  async function expectVisibleFocus(): Promise<void> {
    expect(await focused('outline')).to.match(/^solid [23]px$/);
  }

  async function axe(state: string): Promise<void> {
    const violations = await axeViolations(s.page);
    const severe = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    if (violations.length) console.log(`      axe, ${state}: ${violations.map((v) => `${v.id} (${v.impact})`).join(', ')}`);
    expect(severe, `serious or critical axe-core violations with ${state}`).to.deep.equal([]);
  }

  /** Whether every element showing `text` under `selector` shows all of it, inside the widget, nothing cut off. */
  async function shownInFull(selector: string, text: string): Promise<{ count: number; problems: string[] }> {
    return (await s.page.evaluate(`(() => {
      const host = document.querySelector('curbside-chat');
      const root = host.shadowRoot;
      const box = host.getBoundingClientRect();
      const found = [...root.querySelectorAll(${JSON.stringify(selector)})].filter((el) => el.textContent === ${JSON.stringify(text)} && el.getClientRects().length > 0);
      const problems = [];
      for (const el of found) {
        const r = el.getBoundingClientRect();
        if (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight) problems.push('overflows itself');
        if (r.left < box.left - 0.5 || r.right > box.right + 0.5) problems.push('sticks out of the widget');
        for (let p = el.parentElement; p; p = p.parentElement) {
          const s = getComputedStyle(p);
          if (s.overflowX !== 'visible' && p.scrollWidth > p.clientWidth) problems.push('cut by ' + p.className);
        }
      }
      return { count: found.length, problems };
    })()`)) as { count: number; problems: string[] };
  }

  it('shows people by name with role and department, from the directory, wherever it showed user ids', async () => {
    await s.widget.locator('.me', { hasText: 'Signed in as Daniel Lee (Emergency physician)' }).waitFor({ timeout: WAIT });
    const conv = await patelDesk.createConversation({ kind: 'direct', peerUserId: 'dr-lee' });
    directId = conv.id;
    await patelDesk.sendText(directId, 'Troponin 0.42 at 14:05');
    const row = s.widget.getByRole('button', { name: 'Anita Patel, Cardiology registrar · Cardiology, 1 unread' });
    await row.waitFor({ timeout: WAIT });
    await row.click();
    await s.widget.getByRole('heading', { level: 2, name: 'Anita Patel' }).waitFor({ timeout: WAIT });
    expect(await s.widget.locator('.thread-head:not(.pool-head) .detail').textContent()).to.equal('Cardiology registrar · Cardiology');
    const incoming = s.widget.locator('ol.messages li.msg').first();
    expect(await incoming.getAttribute('aria-label')).to.equal('Anita Patel said');
    expect(await incoming.locator('.meta').textContent()).to.match(/^Anita Patel · /);
    await patelDesk.setTyping(directId, true);
    await s.widget.getByText('Anita Patel is typing…').waitFor({ timeout: WAIT });
    await patelDesk.setTyping(directId, false);

    await s.widget.getByRole('button', { name: 'Safety number', exact: true }).click();
    const dialog = s.widget.getByRole('dialog', { name: 'Safety number with Anita Patel' });
    await dialog.locator('.digits').waitFor({ timeout: WAIT });
    expect(await dialog.locator('.who').textContent()).to.equal('dr-patel · Cardiology registrar · Cardiology');
    await s.page.keyboard.press('Escape');
  });

  it('starts a care team from a directory search by name or role, and shows its long title in full in the list and the header, wide and narrow', async () => {
    await s.widget.getByRole('button', { name: 'New conversation' }).click();
    const search = s.widget.getByLabel('Search the directory');
    await search.fill('charge nurse');
    await s.widget.getByRole('button', { name: 'Add Rosa Ortiz, Charge nurse · Ward 4B' }).click({ timeout: WAIT });
    await search.fill('cardiology');
    await s.widget.getByRole('button', { name: 'Add Anita Patel, Cardiology registrar · Cardiology' }).click({ timeout: WAIT });
    expect(await s.widget.getByLabel('People').inputValue()).to.equal('rn-ortiz, dr-patel');
    await s.widget.getByLabel('Care team name').fill(TEAM_TITLE);
    await s.widget.getByRole('button', { name: 'Start' }).click();
    await s.widget.getByRole('heading', { level: 2, name: TEAM_TITLE }).waitFor({ timeout: WAIT });
    await s.widget.getByRole('button', { name: 'Members & safety numbers' }).click();
    const members = s.widget.getByRole('dialog', { name: `${TEAM_TITLE}: members` });
    expect((await members.locator('.member .name').allTextContents()).sort()).to.deep.equal(['Anita Patel', 'Rosa Ortiz']);
    expect(await members.getByRole('button', { name: 'Safety number with Rosa Ortiz' }).count()).to.equal(1);
    await s.page.keyboard.press('Escape');

    // Default size: the sidebar and the thread side by side.
    for (const selector of ['.conv .name', '.thread-head h2']) {
      const shown = await shownInFull(selector, TEAM_TITLE);
      expect(shown, `${selector} at 1000 px`).to.deep.equal({ count: 1, problems: [] });
    }
    // Narrow: one pane at a time.
    await s.page.setViewportSize({ width: 420, height: 640 });
    await s.page.evaluate("document.querySelector('curbside-chat').style.width = '400px'");
    expect(await shownInFull('.thread-head h2', TEAM_TITLE), 'header at 400 px').to.deep.equal({ count: 1, problems: [] });
    await s.widget.getByRole('button', { name: 'Back to conversations' }).click();
    expect(await shownInFull('.conv .name', TEAM_TITLE), 'list at 400 px').to.deep.equal({ count: 1, problems: [] });
    await s.page.screenshot({ path: 'test-output/widget-long-title-narrow.png' });
    await s.page.evaluate("document.querySelector('curbside-chat').style.width = ''");
    await s.page.setViewportSize({ width: 1000, height: 640 });
  });

  it('axe-core finds no serious or critical violation: list, 1:1 thread, care-team thread, new-conversation form, dialogs', async () => {
    await axe('the conversation list');
    await s.widget.getByRole('button', { name: 'New conversation' }).click();
    await s.widget.getByLabel('Search the directory').fill('patel');
    await s.widget.getByRole('button', { name: /^Add Anita Patel/ }).waitFor({ timeout: WAIT });
    await axe('the new-conversation form and directory results');
    await s.widget.getByRole('button', { name: 'New conversation' }).click();
    await s.widget.getByRole('button', { name: /^Anita Patel/ }).click();
    await axe('a 1:1 thread open');
    await s.widget.getByRole('button', { name: 'Safety number', exact: true }).click();
    await s.widget.getByRole('dialog').locator('.digits').waitFor({ timeout: WAIT });
    await axe('the safety-number dialog open');
    await s.page.keyboard.press('Escape');
    await s.widget.getByRole('button', { name: new RegExp(`^${TEAM_TITLE}`) }).click();
    await ortiz.sendText((await ortiz.listConversations()).find((c) => c.kind === 'group')!.id, 'Transport booked for 15:00');
    await s.widget.locator('ol.messages li.msg', { hasText: 'Transport booked' }).waitFor({ timeout: WAIT });
    await axe('a care-team thread open');
    await s.widget.getByRole('button', { name: 'Members & safety numbers' }).click();
    await axe('the members dialog open');
    await s.page.keyboard.press('Escape');
  });

  it('works from the keyboard alone: open a conversation, send, go back, open and close the dialogs, with focus visible, trapped and returned', async () => {
    await s.page.setViewportSize({ width: 420, height: 640 });
    await s.page.evaluate("document.querySelector('curbside-chat').style.width = '400px'");
    const back = s.widget.getByRole('button', { name: 'Back to conversations' });
    if (await back.isVisible()) await back.click();
    await s.page.evaluate('document.activeElement?.blur()');

    // Into the widget and to Dr Patel's conversation.
    await tabTo(/^Anita Patel/);
    await expectVisibleFocus();
    await s.page.keyboard.press('Enter');
    expect(await focused('label'), 'opening a thread focuses the composer').to.equal('Message');
    await s.page.keyboard.type('Repeat ECG in 30 minutes');
    await s.page.keyboard.press('Enter');
    await s.widget.locator('ol.messages li.msg.out', { hasText: 'Repeat ECG in 30 minutes' }).locator('.status', { hasText: /^(Sent|Delivered|Read)$/ }).waitFor({ timeout: WAIT });

    // The safety-number dialog: focus moves in, Tab and Shift+Tab stay inside, Escape closes, focus comes back.
    await tabTo(/^Safety number$/, { back: true });
    await expectVisibleFocus();
    await s.page.keyboard.press('Enter');
    await s.widget.getByRole('dialog').locator('.digits').waitFor({ timeout: WAIT });
    expect(await focused('inDialog')).to.equal('true');
    for (const key of ['Tab', 'Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab']) {
      await s.page.keyboard.press(key);
      expect(await focused('inDialog'), `after ${key}`).to.equal('true');
      await expectVisibleFocus();
    }
    await s.page.keyboard.press('Escape');
    expect(await s.widget.getByRole('dialog').count()).to.equal(0);
    expect(await focused('text'), 'focus back on the button that opened it').to.equal('Safety number');

    // Back to the list, focus on the conversation; then the care team and its members dialog.
    await tabTo(/^Back to conversations$/, { back: true });
    await s.page.keyboard.press('Enter');
    expect(await focused('label')).to.match(/^Anita Patel/);
    await tabTo(new RegExp(`^${TEAM_TITLE}`));
    await s.page.keyboard.press('ArrowDown'); // arrow keys do nothing harmful on a row
    await s.page.keyboard.press('Enter');
    expect(await focused('label')).to.equal('Message');
    await tabTo(/^Members & safety numbers$/, { back: true });
    await s.page.keyboard.press('Enter');
    expect(await focused('inDialog')).to.equal('true');
    await tabTo(/^Safety number with Rosa Ortiz$/);
    await s.page.keyboard.press('Enter');
    await s.widget.getByRole('dialog', { name: 'Safety number with Rosa Ortiz' }).locator('.digits').waitFor({ timeout: WAIT });
    await s.page.keyboard.press('Escape');
    expect(await s.widget.getByRole('dialog').count()).to.equal(0);
    expect(await focused('text')).to.equal('Members & safety numbers');
    await s.page.evaluate("document.querySelector('curbside-chat').style.width = ''");
    await s.page.setViewportSize({ width: 1000, height: 640 });
  });

  it("when a contact reinstalls, the identity warning focuses 'Compare safety number', not 'Accept', and is answered from the keyboard", async () => {
    // Dr Patel's desk reinstalls: it signs itself out, an operator restores the device id, and the fresh
    // install (new keys) is linked by the phone. Lee's device pinned the desk's old key.
    await patelDesk.devices.revoke('patel-desk').catch(() => {}); // the answer may not arrive: the socket closes
    patelDesk.disconnect();
    const restored = await fetch(`${s.t.url}/admin/devices/restore`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ orgId: 'org-a', deviceId: 'patel-desk', by: 'reinstall' }),
    });
    expect(await restored.json()).to.deep.equal({ restored: true });
    const reinstalled = s.t.client({ userId: 'dr-patel', deviceId: 'patel-desk', claims: PATEL_CLAIMS });
    await reinstalled.connect();
    expect(reinstalled.devices.linkState).to.equal('linked');

    // Lee's device may notice on its own (the signed device list names a new key for the desk), or when sending.
    await s.page.evaluate(`document.querySelector('curbside-chat').open(${JSON.stringify(directId)})`);
    const box = s.widget.getByRole('textbox', { name: 'Message' });
    const warning = s.widget.getByRole('alertdialog', { name: 'Anita Patel’s safety number changed' });
    if ((await warning.count()) === 0) {
      await box.fill('Are you still on call?');
      await box.press('Enter');
    }
    await warning.waitFor({ timeout: WAIT });
    expect(await focused('text'), 'the safe choice has focus').to.equal('Compare safety number');
    await expectVisibleFocus();
    await axe('the identity-change warning open');
    await s.page.screenshot({ path: 'test-output/widget-identity-warning.png' });

    // Escape does not dismiss it (it needs an answer); Tab stays inside it.
    await s.page.keyboard.press('Escape');
    expect(await warning.count()).to.equal(1);
    await s.page.keyboard.press('Tab');
    expect(await focused('inDialog')).to.equal('true');
    await s.page.keyboard.press('Shift+Tab');
    expect(await focused('text')).to.equal('Compare safety number');

    // Enter, as a habit: compares. The new number is shown; closing it asks again.
    await s.page.keyboard.press('Enter');
    const safety = s.widget.getByRole('dialog', { name: 'Safety number with Anita Patel' });
    await safety.getByText('Anita Patel’s safety key changed').waitFor({ timeout: WAIT });
    await s.page.keyboard.press('Escape');
    await warning.waitFor({ timeout: WAIT });
    expect(await focused('text')).to.equal('Compare safety number');
    await tabTo(/^Accept the new safety number$/);
    await s.page.keyboard.press('Enter');
    await warning.waitFor({ state: 'detached', timeout: WAIT });
    expect(await focused('label'), 'focus back where it was').to.equal('Message');

    // Accepted: the next message reaches the reinstalled desk.
    const got: string[] = [];
    reinstalled.on('message', (m) => got.push(m.text));
    await box.fill('Thanks, accepted your new key');
    await box.press('Enter');
    await eventually(() => got.includes('Thanks, accepted your new key'), 'the reinstalled desk reads it', WAIT);
  });
});
