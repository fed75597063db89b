/**
 * Issue #23 in the widget, headless Chromium against a real hub on Redis and the Mongo-wire DB: the
 * "Post pseudonymously" toggle. Dr Okafor (Dermatology, in the browser) finds no token, asks the office
 * for some from the form, and once the office has signed them through the real CLI the form shows how
 * many are left. With the toggle on, an image is refused in the form; the case then posts as "a verified
 * Dermatology". Dr Lee (General practice, another browser context) sees it without a name or a badge,
 * replies by name; the asker marks the reply helpful, answers and closes the case, all pseudonymously,
 * and is never offered "Move to private chat". Neither browser keeps anything naming Okafor on these
 * posts, nor a second copy of them; a reload keeps the case as the asker's own; axe-core finds no
 * serious violation; the case's text never reaches the database. The tests run in order.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { widgetConnected } from '../support/browser.js';
import { eventually } from '../support/hub.js';
import { cli } from '../support/admin-cli.js';
import { expectNotStored } from '../support/canary.js';
import { caseCard as card, closeOnCard, consultWidgetSuite, identityKeyOf, replyOnCard, seriousViolations } from '../support/consult-widget.js';
import { fixtureImage } from '../support/images.js';
import { credentialOffice, type Office } from '../support/office.js';

const WAIT = 20_000;
const OKAFOR = { userId: 'dr-okafor', deviceId: 'okafor-browser', claims: { name: 'Ada Okafor', profile_role: 'Consultant dermatologist' } };
const LEE = { userId: 'dr-lee', deviceId: 'lee-browser', claims: { name: 'Daniel Lee', profile_role: 'General practitioner' } };
/** What would name the asker on a pseudonymous post. */
const OKAFOR_NAMES = ['dr-okafor', 'okafor-browser', 'Ada Okafor', 'Okafor'];
const CANARY = 'WIDGET-PSEUDONYM-CANARY-7d2e';
const QUESTION = `${CANARY}: violaceous papules on both shins, 2 weeks after a new drug. Anyone seen this?`;
const REPLY = `${CANARY}-reply: lichenoid drug eruption? Which drug?`;
const ASKER_REPLY = `${CANARY}-asker: allopurinol, started 3 weeks ago`;
const SUMMARY = `${CANARY}-summary: lichenoid drug eruption, stopped allopurinol, resolving`;
const POOL = 'Dermatology curbside';
const AS = 'A verified Dermatology';

/** A history item as the widget keeps it in IndexedDB. */
interface KeptItem {
  conversationId: string;
  messageId?: string;
  senderUserId: string;
  outgoing: boolean;
  consult?: { type: string };
  pseudonym?: { specialty: string; mine: boolean };
}

/** Every history item a page's widget keeps in IndexedDB (read from the page, as another script of the origin could). */
async function keptItems(page: Page): Promise<KeptItem[]> {
  // A string, so nothing the test compiler adds reaches the page.
  return (await page.evaluate(`(async () => {
    const out = [];
    for (const d of await indexedDB.databases()) {
      if (!d.name || !d.name.startsWith('curbside-widget-history:')) continue;
      const db = await new Promise((resolve, reject) => { const r = indexedDB.open(d.name); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
      const items = await new Promise((resolve, reject) => { const r = db.transaction('items').objectStore('items').getAll(); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
      db.close();
      out.push(...items);
    }
    return out;
  })()`)) as KeptItem[];
}

describe('<curbside-chat> Consults: a pseudonymous case from the form, as "a verified Dermatology" (Chromium, real backend)', function () {
  this.timeout(180_000);
  const { s, shared } = consultWidgetSuite(OKAFOR);
  let lee: { page: Page; widget: Locator };
  let office: Office;
  let keysDir: string;

  /** The office's own tool, the real CLI. */
  async function officeCli(args: string[]): Promise<void> {
    const r = await cli(s.t.url, ['--json', ...args]);
    expect(r.code, r.stderr).to.equal(0);
  }

  const form = (widget: Locator) => widget.getByRole('form', { name: 'Post a case' });

  /** Open "Post a case" (closing it first if it is open), so that it picks up tokens again. */
  async function openForm(widget: Locator): Promise<Locator> {
    if (await form(widget).isVisible()) await form(widget).getByRole('button', { name: 'Cancel' }).click();
    await widget.getByRole('button', { name: 'Post a case' }).click();
    return form(widget);
  }

  before(async function () {
    this.timeout(90_000);
    lee = await s.openAs(LEE);
    office = await credentialOffice(s.t.url, 'org-a');
    await office.attestKey(await identityKeyOf(shared.dbName, OKAFOR.deviceId), OKAFOR.userId, OKAFOR.deviceId, 'Dermatology', 'Ada Okafor');
    await office.attestKey(await identityKeyOf(shared.dbName, LEE.deviceId), LEE.userId, LEE.deviceId, 'General practice', 'Daniel Lee');
    keysDir = mkdtempSync(join(tmpdir(), 'curbside-token-keys-'));
    await officeCli(['credentials', 'pseudonym-key', '--org', 'org-a', '--key', office.keyFile, '--epoch', '2026-12', '--specialty', 'Dermatology', '--per-user', '10', '--days', '30', '--out', keysDir]);

    // Lee opens the pool from the widget; Okafor joins it.
    await lee.widget.getByRole('button', { name: 'Consults' }).click();
    const leePanel = lee.widget.getByRole('region', { name: 'Consult pools' });
    await leePanel.getByRole('button', { name: 'New pool' }).click({ timeout: WAIT });
    await leePanel.getByRole('textbox', { name: /^Topic/ }).fill(POOL);
    await leePanel.getByRole('button', { name: 'Open pool' }).click();
    await lee.widget.getByRole('heading', { name: POOL }).waitFor({ timeout: WAIT });
    await s.widget.getByRole('button', { name: 'Consults' }).click();
    await s.widget.getByRole('button', { name: `Join ${POOL}` }).click({ timeout: WAIT });
    await s.widget.getByRole('heading', { name: POOL }).waitFor({ timeout: WAIT });
    await eventually(async () => (await s.widget.locator('.pool-head .detail').textContent()) === '2 members', 'Okafor is a member', WAIT);
  });

  it('without a token the toggle is off and the form asks the office; once the office signed, the form shows the tokens left', async () => {
    let f = await openForm(s.widget);
    const toggle = f.getByRole('checkbox', { name: /^Post pseudonymously/ });
    await eventually(async () => (await f.locator('.token-status').textContent()) === 'No pseudonymous tokens on this device.', 'no token yet', WAIT);
    expect(await toggle.isDisabled(), 'nothing to post with').to.equal(true);
    expect(await f.textContent(), 'what it means, in plain words').to.include('The hub records no account for the post, but it does see your network address');
    await f.getByRole('button', { name: 'Ask the office for tokens' }).click();
    await eventually(async () => ((await f.locator('.token-status').textContent()) ?? '').startsWith('Asked the credentialing office for 10 Dermatology tokens. They arrive once the office signs them'), 'asked', WAIT);
    expect(await toggle.isDisabled(), 'still nothing to post with until the office signs').to.equal(true);
    expect(await seriousViolations(s.page), 'axe-core: the form with its pseudonymous toggle').to.deep.equal([]);
    // Opened again before the office signed (as after a reload): the request is waiting, not asked twice.
    f = await openForm(s.widget);
    await eventually(async () => (await f.locator('.token-status').textContent()) === '10 pseudonymous tokens asked for, waiting for the credentialing office to sign them.', 'the request waits', WAIT);
    expect(await f.getByRole('button', { name: 'Ask the office for tokens' }).isVisible(), 'not offered while a request waits').to.equal(false);

    await officeCli(['credentials', 'sign-pseudonyms', '--org', 'org-a', '--key', office.keyFile, '--keys', keysDir]);
    f = await openForm(s.widget);
    await eventually(async () => (await f.locator('.token-status').textContent()) === '10 pseudonymous tokens left on this device.', 'the tokens picked up', WAIT);
    expect(await toggle.isEnabled()).to.equal(true);
    expect(await f.getByRole('checkbox', { name: 'Post pseudonymously — as “a verified Dermatology”' }).count(), 'named after the tokens’ specialty').to.equal(1);
    expect(await f.getByRole('button', { name: 'Ask the office for tokens' }).isVisible(), 'no asking while tokens are left').to.equal(false);
  });

  it('with the toggle on an image is refused in the form; the case posts as "a verified Dermatology" and the other member sees no name', async () => {
    const f = form(s.widget);
    await f.getByRole('textbox', { name: 'Question' }).fill(QUESTION);
    await f.getByRole('combobox', { name: 'Age band' }).selectOption({ label: '40–49 years' });
    await f.getByRole('combobox', { name: 'Sex' }).selectOption({ label: 'Female' });
    await f.getByRole('checkbox', { name: /^Post pseudonymously/ }).check();
    await f.locator('input[type=file]').setInputFiles({ name: 'shins.jpg', mimeType: 'image/jpeg', buffer: fixtureImage('phone-gps-scaled.jpg') });
    await f.getByRole('button', { name: 'Post case' }).click();
    await eventually(async () => ((await f.getByRole('alert').textContent()) ?? '').startsWith('Not posted: a pseudonymous case takes no image'), 'the image refused', WAIT);
    expect(await s.widget.locator('li.case-card').count(), 'nothing posted').to.equal(0);
    expect(await f.getByRole('checkbox', { name: /^Post pseudonymously/ }).isChecked(), 'the form keeps the choice').to.equal(true);

    await f.locator('input[type=file]').setInputFiles([]);
    await f.getByRole('button', { name: 'Post case' }).click();
    await eventually(async () => (await s.widget.locator('.pool-status').textContent()) === 'Case posted as “a verified Dermatology”.', 'posted', WAIT);

    const own = card(s.widget, QUESTION);
    await own.waitFor({ timeout: WAIT });
    expect(await own.locator('.asker .name').textContent()).to.equal(`${AS} (you)`);
    const seen = card(lee.widget, QUESTION);
    await seen.waitFor({ timeout: WAIT });
    expect(await seen.locator('.asker .name').textContent()).to.equal(AS);
    expect(await seen.locator('.asker .verified').count(), 'no badge links the case to a person').to.equal(0);
    for (const n of OKAFOR_NAMES) expect(await seen.textContent(), `the card names ${n}`).to.not.include(n);
    expect(await s.widget.locator('li.case-card').count(), 'one case: the asker’s own copy is the hub’s, not a second one').to.equal(1);
    expect(await seriousViolations(lee.page), 'axe-core: a pseudonymous case card').to.deep.equal([]);
  });

  it('the asker marks a reply helpful, answers and closes, all pseudonymously; no "Move to private chat"; nothing kept names the asker', async () => {
    const leeCard = card(lee.widget, QUESTION);
    await replyOnCard(leeCard, REPLY);
    const okaforCard = card(s.widget, QUESTION);
    await okaforCard.locator('li.reply', { hasText: REPLY }).waitFor({ timeout: WAIT });
    await eventually(async () => (await okaforCard.locator('li.reply .reply-meta .name').first().textContent()) === 'Daniel Lee', 'the responder by name', WAIT);
    expect(await okaforCard.getByRole('button', { name: /^Move to private chat/ }).count(), 'moving would say who asked').to.equal(0);
    expect(await leeCard.getByRole('button', { name: /^Mark helpful/ }).count(), 'only the asker marks').to.equal(0);
    expect(await leeCard.getByRole('button', { name: 'Close with summary' }).count(), 'only the asker closes').to.equal(0);

    await okaforCard.getByRole('button', { name: 'Mark helpful: Daniel Lee’s reply' }).click();
    await replyOnCard(okaforCard, ASKER_REPLY);
    const askerReply = leeCard.locator('li.reply', { hasText: ASKER_REPLY });
    await askerReply.waitFor({ timeout: WAIT });
    expect(await askerReply.locator('.reply-meta .name').textContent()).to.equal(AS);
    expect(await askerReply.locator('.verified').count()).to.equal(0);
    expect(await okaforCard.locator('li.reply', { hasText: ASKER_REPLY }).locator('.reply-meta .name').textContent()).to.equal(`${AS} (you)`);
    await leeCard.locator('li.reply.is-helpful', { hasText: REPLY }).waitFor({ timeout: WAIT });

    await closeOnCard(okaforCard, SUMMARY);
    for (const widget of [lee.widget, s.widget]) {
      const c = card(widget, QUESTION);
      await eventually(async () => (await c.locator('.summary-text').textContent().catch(() => '')) === SUMMARY, 'the summary shows', WAIT);
      expect(await c.locator('li.reply').count(), 'two replies, each once').to.equal(2);
      expect(await c.locator('form.reply-form').isVisible(), 'a closed case takes no replies').to.equal(false);
    }
    for (const n of OKAFOR_NAMES) expect(await leeCard.textContent(), `the card names ${n}`).to.not.include(n);
    expect(await seriousViolations(s.page), 'axe-core: the asker’s closed pseudonymous case').to.deep.equal([]);

    // What each browser keeps: the case and the asker's three follow-ups once each, from `~sealed`, naming nobody.
    const poolId = (await keptItems(s.page)).find((i) => i.consult?.type === 'case')!.conversationId;
    for (const [page, mine] of [
      [s.page, true],
      [lee.page, false],
    ] as const) {
      await eventually(async () => (await keptItems(page)).filter((i) => i.conversationId === poolId && i.pseudonym).length === 4, 'the four pseudonymous posts kept', WAIT);
      const inPool = (await keptItems(page)).filter((i) => i.conversationId === poolId);
      const sealed = inPool.filter((i) => i.pseudonym);
      expect(sealed.map((i) => i.consult?.type).sort()).to.deep.equal(['case', 'close', 'helpful', 'reply']);
      expect(new Set(sealed.map((i) => i.messageId)).size, 'no post kept twice').to.equal(4);
      for (const i of sealed) {
        expect([i.senderUserId, i.pseudonym!.specialty, i.pseudonym!.mine, i.outgoing]).to.deep.equal(['~sealed', 'Dermatology', mine, mine]);
        for (const n of OKAFOR_NAMES) expect(JSON.stringify(i), `a kept pseudonymous post names ${n}`).to.not.include(n);
      }
      expect(inPool.filter((i) => i.senderUserId === OKAFOR.userId), 'no item by name for what the asker posted pseudonymously').to.deep.equal([]);
      expect(inPool.filter((i) => !i.pseudonym).map((i) => [i.senderUserId, i.consult?.type]), 'the only post by name is Lee’s reply').to.deep.equal([[LEE.userId, 'reply']]);
    }
  });

  it('after a reload, the asking browser still shows the case as its own, closed, with the helpful reply', async () => {
    await s.page.reload();
    await widgetConnected(s.page);
    await s.widget.getByRole('button', { name: 'Consults' }).click();
    await s.widget.getByRole('button', { name: `Open ${POOL}` }).click({ timeout: WAIT });
    const c = card(s.widget, QUESTION);
    await c.waitFor({ timeout: WAIT });
    expect(await c.locator('.asker .name').textContent()).to.equal(`${AS} (you)`);
    expect(await c.locator('.summary-text').textContent()).to.equal(SUMMARY);
    expect(await c.locator('li.reply.is-helpful .reply-text').textContent()).to.equal(REPLY);
    expect(await c.locator('li.reply', { hasText: ASKER_REPLY }).locator('.reply-meta .name').textContent()).to.equal(`${AS} (you)`);
    // One token spent: the form picks up what is left.
    const f = await openForm(s.widget);
    await eventually(async () => (await f.locator('.token-status').textContent()) === '9 pseudonymous tokens left on this device.', 'nine left', WAIT);
  });

  it('the hub never held a word of the case, and no page threw', async () => {
    const scanned = await expectNotStored(shared.dbName, [CANARY]);
    expect(scanned.collections).to.include('envelopes');
    expect(scanned.documents).to.be.greaterThan(0);
    expect(s.pageErrors).to.deep.equal([]);
  });
});
