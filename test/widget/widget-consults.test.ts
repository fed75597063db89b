/**
 * Issue #23 in the widget, headless Chromium against a real hub on Redis and the Mongo-wire DB: the
 * "Consults" tab. Dr Okafor (credentialed, in the browser) opens a pool with "New pool"; Dr Lee
 * (credentialed, another browser context) joins it from the widget and posts a case with a real phone
 * photo through the form; Okafor replies from the widget; Lee marks the reply helpful, closes the case
 * with a summary and takes a second case to a private chat; Okafor, the pool's moderator, hides a case
 * and it disappears in Lee's page; Dr Moss (no credential) is refused at Join in the hub's words.
 * The credentialing office attests the browsers' devices by the identity keys they published. axe-core
 * checks the Consults views; the case's text never reaches the database. The tests run in order.
 */
import { expect } from 'chai';
import type { Locator, Page } from 'playwright-core';
import { widgetConnected } from '../support/browser.js';
import { eventually } from '../support/hub.js';
import { expectNotStored } from '../support/canary.js';
import { caseCard as card, closeOnCard, consultWidgetSuite, identityKeyOf, replyOnCard, seriousViolations } from '../support/consult-widget.js';
import { fixtureImage, isoBmffFile } from '../support/images.js';
import { credentialOffice } from '../support/office.js';

const WAIT = 20_000;
const OKAFOR = { userId: 'dr-okafor', deviceId: 'okafor-browser', claims: { name: 'Ada Okafor', profile_role: 'Consultant dermatologist' } };
const LEE = { userId: 'dr-lee', deviceId: 'lee-browser', claims: { name: 'Daniel Lee', profile_role: 'General practitioner' } };
const MOSS = { userId: 'dr-moss', deviceId: 'moss-browser', claims: { name: 'Mallory Moss' } };
const CANARY = 'WIDGET-CONSULT-CANARY-41c9';
const QUESTION = `${CANARY}: annular plaque on the forearm, 3 weeks, not itchy, KOH negative. Thoughts?`;
const REPLY = `${CANARY}-reply: looks like granuloma annulare; biopsy if it spreads`;
const SUMMARY = `${CANARY}-summary: biopsy confirmed granuloma annulare`;
const SECOND = `${CANARY}-second: nail dystrophy, one toe, 6 months`;
const POOL = 'Dermatology curbside';

/** What has the focus inside a page's widget: its tag, id and text. */
async function focused(page: Page): Promise<{ tag: string; id: string; text: string }> {
  return page.evaluate(() => {
    const el = document.querySelector('curbside-chat')!.shadowRoot!.activeElement;
    return { tag: el?.tagName.toLowerCase() ?? '', id: el?.id ?? '', text: el?.textContent ?? '' };
  });
}

describe('<curbside-chat> Consults: pools, cases, replies, helpful, summary, moderation (Chromium, real backend)', function () {
  this.timeout(180_000);
  const { s, shared } = consultWidgetSuite(OKAFOR);
  let lee: { page: Page; widget: Locator };
  let moss: { page: Page; widget: Locator };

  before(async function () {
    this.timeout(90_000);
    lee = await s.openAs(LEE);
    moss = await s.openAs(MOSS);
    const office = await credentialOffice(s.t.url, 'org-a');
    await office.attestKey(await identityKeyOf(shared.dbName, OKAFOR.deviceId), OKAFOR.userId, OKAFOR.deviceId, 'Dermatology', 'Ada Okafor');
    await office.attestKey(await identityKeyOf(shared.dbName, LEE.deviceId), LEE.userId, LEE.deviceId, 'General practice', 'Daniel Lee');
  });

  it('a credentialed clinician opens a pool with "New pool"; axe-core finds nothing in the Consults panel', async () => {
    await s.widget.getByRole('button', { name: 'Consults' }).click();
    const panel = s.widget.getByRole('region', { name: 'Consult pools' });
    await panel.getByRole('button', { name: 'New pool' }).waitFor({ timeout: WAIT });
    await panel.getByRole('button', { name: 'New pool' }).click();
    await panel.getByRole('textbox', { name: /^Topic/ }).fill(POOL);
    await panel.getByRole('button', { name: 'Open pool' }).click();
    await s.widget.getByRole('heading', { name: POOL }).waitFor({ timeout: WAIT });
    await eventually(async () => (await s.widget.locator('.pool-head .detail').textContent()) === '1 member · you moderate this pool', 'the pool, verified from its log', WAIT);
    await panel.getByRole('button', { name: `Open ${POOL}` }).waitFor({ timeout: WAIT });
    expect(await seriousViolations(s.page), 'axe-core: Consults panel and pool view').to.deep.equal([]);
  });

  it("Join without a verified credential shows the hub's refusal, and changes nothing", async () => {
    await moss.widget.getByRole('button', { name: 'Consults' }).click();
    const panel = moss.widget.getByRole('region', { name: 'Consult pools' });
    await panel.getByRole('searchbox', { name: 'Find a pool by topic' }).fill('derma');
    const row = panel.getByRole('listitem').filter({ hasText: POOL });
    await row.waitFor({ timeout: WAIT });
    expect(await row.textContent()).to.include('1 member');
    expect(await panel.getByRole('button', { name: 'New pool' }).isVisible(), 'no "New pool" without a credential').to.equal(false);
    await panel.getByRole('button', { name: `Join ${POOL}` }).click();
    const refusal = panel.getByRole('alert');
    await eventually(async () => /Joining a consult pool takes a verified credential/.test((await refusal.textContent()) ?? ''), 'the refusal, in the hub’s words', WAIT);
    expect(await panel.getByRole('button', { name: `Join ${POOL}` }).isEnabled(), 'still a Join').to.equal(true);
    expect(await moss.widget.locator('.pool-view').isVisible(), 'no pool view opened').to.equal(false);
  });

  it('a credentialed clinician joins from the widget and posts a case with a real photo; both see it with its preview and the metadata-removed note', async () => {
    await lee.widget.getByRole('button', { name: 'Consults' }).click();
    await lee.widget.getByRole('button', { name: `Join ${POOL}` }).click();
    await lee.widget.getByRole('heading', { name: POOL }).waitFor({ timeout: WAIT });
    await eventually(async () => (await lee.widget.locator('.pool-head .detail').textContent()) === '2 members', 'Lee is a member', WAIT);
    await eventually(async () => (await s.widget.locator('.pool-head .detail').textContent())!.startsWith('2 members'), 'the owner sees the join', WAIT);
    const ownersRow = s.widget.getByRole('list', { name: 'Consult pools' }).getByRole('listitem').filter({ hasText: POOL });
    await eventually(async () => (await ownersRow.textContent())!.includes('2 members'), 'and the count in the pool list', WAIT);

    await lee.widget.getByRole('button', { name: 'Post a case' }).click();
    const form = lee.widget.getByRole('form', { name: 'Post a case' });
    expect(await form.textContent()).to.include('the hub never sees it');
    expect(await seriousViolations(lee.page), 'axe-core: the Post a case form').to.deep.equal([]);
    await form.getByRole('textbox', { name: 'Question' }).fill(QUESTION);
    await form.getByRole('combobox', { name: 'Age band' }).selectOption({ label: '30–39 years' });
    await form.getByRole('combobox', { name: 'Sex' }).selectOption({ label: 'Female' });
    // A HEIC photo keeps its metadata (the SDK cannot strip it): refused before anything is sent.
    await form.locator('input[type=file]').setInputFiles({ name: 'forearm.heic', mimeType: 'image/heic', buffer: isoBmffFile('heic', 'mif1', 'heic') });
    await form.getByRole('button', { name: 'Post case' }).click();
    await eventually(async () => ((await form.getByRole('alert').textContent()) ?? '').startsWith('Not posted: the metadata of this HEIC image'), 'the HEIC photo refused', WAIT);
    expect(await lee.widget.locator('li.case-card').count(), 'nothing posted').to.equal(0);
    expect(await form.getByRole('textbox', { name: 'Question' }).inputValue(), 'the form keeps what was typed').to.equal(QUESTION);
    await form.locator('input[type=file]').setInputFiles({ name: 'forearm.jpg', mimeType: 'image/jpeg', buffer: fixtureImage('phone-gps-scaled.jpg') });
    await form.getByRole('button', { name: 'Post case' }).click();
    const posted = lee.widget.locator('.pool-status');
    await eventually(async () => ((await posted.textContent()) ?? '').startsWith('Case posted.'), 'posted', WAIT);
    expect(await posted.textContent()).to.include('GPS position');
    expect(await focused(lee.page), 'the focus returns to "Post a case"').to.deep.include({ tag: 'button', text: 'Post a case' });

    for (const widget of [lee.widget, s.widget]) {
      const c = card(widget, QUESTION);
      await c.waitFor({ timeout: WAIT });
      expect(await c.locator('.case-meta').textContent()).to.equal('Age band: 30–39 years · Sex: Female');
      await c.locator('img.thumb').waitFor({ timeout: WAIT });
      expect(await c.locator('.metadata-note').textContent()).to.include('GPS position');
    }
    expect(await s.widget.locator('li.case-card').count(), 'one case reached the pool: the HEIC photo never left').to.equal(1);
    // The asker's name with the verified badge, as the owner's device checked it.
    const seen = card(s.widget, QUESTION);
    await eventually(async () => (await seen.locator('.asker').textContent())!.includes('Daniel Lee'), 'the asker by name', WAIT);
    await seen.locator('.asker .verified').waitFor({ timeout: WAIT });
    expect(await seen.locator('.asker .verified').textContent()).to.equal('✓ Verified General practice');
    // Full size, decrypted and checked in the browser.
    await seen.getByRole('button', { name: 'Open forearm.jpg' }).click();
    await s.widget.locator('.image-view img.full').waitFor({ timeout: WAIT });
    await s.widget.locator('.image-view').getByRole('button', { name: 'Close' }).click();
    expect(await seriousViolations(s.page), 'axe-core: a case card with its image').to.deep.equal([]);
  });

  it('the owner replies from the widget; the asker marks it helpful and closes the case with a summary', async () => {
    const okaforCard = card(s.widget, QUESTION);
    await replyOnCard(okaforCard, REPLY);
    const leeCard = card(lee.widget, QUESTION);
    const reply = leeCard.locator('li.reply', { hasText: REPLY });
    await reply.waitFor({ timeout: WAIT });
    await eventually(async () => (await reply.locator('.reply-meta').textContent())!.includes('Ada Okafor'), 'the responder by name', WAIT);
    await reply.locator('.verified').waitFor({ timeout: WAIT });
    expect(await reply.locator('.verified').textContent()).to.equal('✓ Verified Dermatology');
    // Announced to screen readers (a status region), by name once the directory has answered.
    expect(await lee.widget.locator('.pool-status').textContent()).to.be.oneOf([`New reply from Ada Okafor: ${REPLY}`, `New reply from dr-okafor: ${REPLY}`]);
    expect(await okaforCard.getByRole('button', { name: /^Mark helpful/ }).count(), 'only the asker marks').to.equal(0);

    await leeCard.getByRole('button', { name: 'Mark helpful: Ada Okafor’s reply' }).click();
    for (const widget of [lee.widget, s.widget]) {
      await card(widget, QUESTION).locator('li.reply.is-helpful .helpful').waitFor({ timeout: WAIT });
    }
    await closeOnCard(leeCard, SUMMARY);
    for (const widget of [lee.widget, s.widget]) {
      const c = card(widget, QUESTION);
      await eventually(async () => (await c.locator('.summary-text').textContent().catch(() => '')) === SUMMARY, 'the summary shows', WAIT);
      expect(await c.locator('form.reply-form').isVisible(), 'a closed case takes no replies').to.equal(false);
    }
    expect(await focused(lee.page), 'the focus moves to the closed case, not lost with the summary box').to.deep.include({ tag: 'h3', text: QUESTION });
    expect(await seriousViolations(lee.page), 'axe-core: a closed case with a helpful reply').to.deep.equal([]);
  });

  it('the asker takes a case to a private chat; a moderator hides a case and it disappears for the other member', async () => {
    await lee.widget.getByRole('button', { name: 'Post a case' }).click();
    const form = lee.widget.getByRole('form', { name: 'Post a case' });
    await form.getByRole('textbox', { name: 'Question' }).fill(SECOND);
    await form.getByRole('combobox', { name: 'Age band' }).selectOption({ label: '60–69 years' });
    await form.getByRole('combobox', { name: 'Sex' }).selectOption({ label: 'Male' });
    await form.getByRole('button', { name: 'Post case' }).click();
    const second = card(s.widget, SECOND);
    await second.waitFor({ timeout: WAIT });
    // From the keyboard: type, Tab to "Reply", Enter.
    await second.getByRole('textbox', { name: /^Your reply/ }).fill('Happy to look at photos privately');
    await second.getByRole('textbox', { name: /^Your reply/ }).press('Tab');
    await s.page.keyboard.press('Enter');

    // Move to private chat opens the 1:1 thread with the responder, the question in it.
    const leeSecond = card(lee.widget, SECOND);
    await leeSecond.getByRole('button', { name: 'Move to private chat with Ada Okafor' }).click({ timeout: WAIT });
    await lee.widget.locator('.thread-head h2', { hasText: 'Ada Okafor' }).waitFor({ timeout: WAIT });
    await lee.widget.locator('ol.messages li', { hasText: SECOND }).locator('.consult-tag', { hasText: 'Case moved to a private chat' }).waitFor({ timeout: WAIT });
    await eventually(async () => ((await second.locator('.moved').textContent().catch(() => '')) ?? '').includes('private chat with you'), 'the pool shows it moved', WAIT);

    // Back in the pool, Lee sees both cases; Okafor hides the second.
    await lee.widget.getByRole('button', { name: `Open ${POOL}` }).click();
    await card(lee.widget, SECOND).waitFor({ timeout: WAIT });
    expect(await card(lee.widget, QUESTION).count()).to.equal(1);
    expect(await card(lee.widget, SECOND).getByRole('button', { name: /^Hide for everyone/ }).count(), 'a member cannot hide').to.equal(0);
    await second.getByRole('button', { name: /^Hide for everyone/ }).click();
    await card(s.widget, SECOND).waitFor({ state: 'detached', timeout: WAIT });
    expect(await focused(s.page), 'the focus goes to the pool, not lost with the card').to.deep.include({ tag: 'h2', text: POOL });
    await card(lee.widget, SECOND).waitFor({ state: 'detached', timeout: WAIT });
    expect(await card(lee.widget, QUESTION).count(), 'the other case stays').to.equal(1);
  });

  it('after a reload, the pool view shows the cases this browser kept (its history in IndexedDB), still without the hidden one', async () => {
    await lee.page.reload();
    await widgetConnected(lee.page);
    await lee.widget.getByRole('button', { name: 'Consults' }).click();
    await lee.widget.getByRole('button', { name: `Open ${POOL}` }).click();
    const c = card(lee.widget, QUESTION);
    await c.waitFor({ timeout: WAIT });
    await c.locator('img.thumb').waitFor({ timeout: WAIT });
    expect(await c.locator('.summary-text').textContent()).to.equal(SUMMARY);
    expect(await c.locator('li.reply.is-helpful .reply-text').textContent()).to.equal(REPLY);
    await eventually(async () => (await lee.widget.locator('.pool-head .detail').textContent()) === '2 members', 'the pool verified again', WAIT);
    expect(await card(lee.widget, SECOND).count(), 'the hidden case stays hidden').to.equal(0);
  });

  it('the hub never held a word of the cases, and no page threw', async () => {
    const scanned = await expectNotStored(shared.dbName, [CANARY]);
    expect(scanned.collections).to.include('envelopes');
    expect(scanned.documents).to.be.greaterThan(0);
    expect(s.pageErrors).to.deep.equal([]);
  });
});
