/**
 * `<curbside-chat>` end to end: a real hub (memory backend, behind a switchable hostile-storage
 * wrapper), the bundle the hub serves, and Debian's headless Chromium with one browser context per
 * clinician. A host page on another origin embeds the widget with one script tag and hands it a
 * token through a `getToken` callback, as an EHR page would.
 *
 * The tests in the first block run in order and share the clinicians' pages (a reload, an offline
 * spell and the care team build on the 1:1 conversation before them).
 */
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { hubBrowserSuite, openWidget, widgetConnected, widgetHostPage } from '../support/browser.js';
import { HubHarness, eventually } from '../support/hub.js';
import { evilStorage } from '../support/evil-storage.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outputDir = join(repoRoot, 'test-output');

interface Clinician {
  userId: string;
  context: BrowserContext;
  page: Page;
  widget: Locator;
  errors: string[];
}

const WAIT = 20_000;

describe('<curbside-chat> in headless Chromium', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  let evil: ReturnType<typeof evilStorage>['evil'];
  const clinicians: Clinician[] = [];
  const suite = hubBrowserSuite({
    stop: () => harness.cleanup(),
    start: async () => {
      let captured: ReturnType<typeof evilStorage>['evil'] | undefined;
      const t = await harness.start('memory', undefined, undefined, (s) => {
        const wrapped = evilStorage(s);
        captured = wrapped.evil;
        return wrapped.storage;
      });
      evil = captured!;
      mkdirSync(outputDir, { recursive: true });
      return t;
    },
    // The host page lives on another origin than the hub, like an EHR page embedding the widget.
    site: (t) => ({
      ...widgetHostPage(t.url),
      // The other way in: the host page puts the token in an attribute (the widget reads it again on every reconnect).
      '/attribute': ['text/html', `<!doctype html><html lang="en"><meta charset="utf-8"><link rel="icon" href="data:,"><title>EHR</title>
<script src="${t.url}/widget/curbside-chat.js"></script>
<curbside-chat hub="${t.url}"></curbside-chat>`],
    }),
  });

  after(() => {
    for (const c of clinicians) if (c.errors.length) console.warn(`  page errors for ${c.userId}:\n    ${c.errors.join('\n    ')}`);
  });

  /** A clinician in a browser context of their own, the widget connected and synced. */
  async function clinician(userId: string, deviceId: string, viewport = { width: 1000, height: 640 }): Promise<Clinician> {
    const errors: string[] = [];
    const opened = await openWidget(suite.browser, suite.site, () => suite.t.idp.mint({ userId, deviceId }), errors, { viewport });
    const c: Clinician = { userId, ...opened, errors };
    clinicians.push(c);
    return c;
  }

  async function connected(c: Clinician): Promise<void> {
    await widgetConnected(c.page);
  }

  async function startConversation(c: Clinician, people: string, title = ''): Promise<void> {
    await c.widget.getByRole('button', { name: 'New conversation' }).click();
    await c.widget.getByLabel('People').fill(people);
    if (title) await c.widget.getByLabel('Care team name').fill(title);
    await c.widget.getByRole('button', { name: 'Start' }).click();
    await c.widget.getByRole('heading', { level: 2, name: title || people }).waitFor({ timeout: WAIT });
  }

  async function openConversation(c: Clinician, name: string | RegExp): Promise<void> {
    await c.widget.getByRole('button', { name }).first().click({ timeout: WAIT });
  }

  async function send(c: Clinician, text: string): Promise<void> {
    const box = c.widget.getByRole('textbox', { name: 'Message' });
    await box.fill(text);
    await box.press('Enter');
  }

  function message(c: Clinician, text: string): Locator {
    return c.widget.locator('ol.messages li.msg').filter({ has: c.page.locator('.bubble', { hasText: text }) });
  }

  async function bubbles(c: Clinician): Promise<string[]> {
    return c.widget.locator('ol.messages li.msg .bubble').allTextContents();
  }

  async function statusOf(c: Clinician, text: string): Promise<string> {
    return (await message(c, text).locator('.status').textContent()) ?? '';
  }

  /** An attribute (or the text) of the element focused inside the widget. A string expression: no transpiled code goes to the page. */
  async function focused(c: Clinician, what: string): Promise<string | null | undefined> {
    const el = "document.querySelector('curbside-chat').shadowRoot.activeElement";
    return c.page.evaluate(what === 'text' ? `${el}?.textContent` : `${el}?.getAttribute(${JSON.stringify(what)})`) as Promise<string | null | undefined>;
  }

  async function screenshot(c: Clinician, name: string): Promise<void> {
    const path = join(outputDir, `widget-${name}.png`);
    await c.page.screenshot({ path });
    console.log(`      screenshot: ${path}`);
  }

  describe('serving', () => {
    it('serves the bundle as JavaScript with a short cache, an ETag and revalidation', async () => {
      const res = await fetch(`${suite.t.url}/widget/curbside-chat.js`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
      expect(res.headers.get('cache-control')).to.match(/max-age=\d+/);
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
      const body = await res.text();
      expect(body).to.include('curbside-chat');
      expect(body.length).to.be.greaterThan(100_000); // the SDK inside
      // libsodium is not: the widget imports it from next to itself when it starts.
      expect(body).to.not.include('libsodium was not correctly initialized');
      const etag = res.headers.get('etag');
      expect(etag).to.be.a('string');
      const again = await fetch(`${suite.t.url}/widget/curbside-chat.js`, { headers: { 'if-none-match': etag! } });
      expect(again.status).to.equal(304);
    });

    it('serves libsodium apart, as a module any host page may import (CORS), which the bundle loads from next to itself', async () => {
      const res = await fetch(`${suite.t.url}/widget/curbside-sodium.js`, { headers: { origin: suite.site.origin } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      const body = await res.text();
      expect(body).to.include('libsodium was not correctly initialized');
      expect(body).to.match(/export\s*\{[^}]*as default/);
      expect(await (await fetch(`${suite.t.url}/widget/curbside-chat.js`)).text()).to.include('curbside-sodium.js');
    });

    it('answers 503 with a JSON error saying how to build it when the bundle is missing, and has no demo page outside dev tokens', async () => {
      const other = await harness.start('memory', undefined, (c) => {
        c.widgetBundlePath = join(repoRoot, 'widget', 'dist', 'not-built.js');
      });
      const res = await fetch(`${other.url}/widget/curbside-chat.js`);
      expect(res.status).to.equal(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).to.equal('UNAVAILABLE');
      expect(body.error.message).to.match(/npm run build/);
      expect((await fetch(`${other.url}/demo`)).status).to.equal(404);
    });
  });

  it('takes the token from the token attribute, and waits for one until the host page sets it', async () => {
    const context = await suite.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${suite.site.origin}/attribute`);
    const widget = page.locator('curbside-chat');
    await widget.getByText('Waiting for sign-in…').waitFor({ timeout: WAIT });
    const token = suite.t.idp.mint({ userId: 'dr-attr', deviceId: 'attr-kiosk' });
    await page.evaluate(`document.querySelector('curbside-chat').setAttribute('token', ${JSON.stringify(token)})`);
    await page.waitForFunction("document.querySelector('curbside-chat')?.connected === true", undefined, { timeout: WAIT, polling: 50 });
    expect(await widget.locator('.me').textContent()).to.equal('Signed in as dr-attr');
    expect(await widget.getByRole('region', { name: 'Curbside chat' }).count()).to.equal(1);
    await context.close();
  });

  describe('two clinicians, then three', () => {
    let lee: Clinician;
    let patel: Clinician;

    it('1:1: send and receive, unread count, delivery and read status, typing, presence; text is never markup', async () => {
      [lee, patel] = await Promise.all([clinician('dr-lee', 'lee-laptop'), clinician('dr-patel', 'patel-desk')]);
      await startConversation(lee, 'dr-patel');
      // The composer has focus after opening a thread: keyboard users type right away.
      expect(await focused(lee, 'aria-label')).to.equal('Message');

      const xss = '<img src=x onerror="window.__pwned=1"> Troponin 0.42 at 14:05';
      await send(lee, xss);
      await eventually(async () => (await statusOf(lee, 'Troponin')) === 'Delivered' || (await statusOf(lee, 'Troponin')) === 'Read', "lee's message delivered", WAIT);

      // Patel has not opened it yet: the list says one unread.
      await patel.widget.getByRole('button', { name: 'dr-lee, 1 unread' }).waitFor({ timeout: WAIT });
      await openConversation(patel, /^dr-lee/);
      await message(patel, 'Troponin').waitFor({ timeout: WAIT });
      expect(await bubbles(patel)).to.deep.equal([xss]);
      expect(await patel.widget.locator('img').count()).to.equal(0);
      expect(await patel.page.evaluate('typeof window.__pwned')).to.equal('undefined');
      await eventually(async () => (await statusOf(lee, 'Troponin')) === 'Read', 'read receipt reaches lee', WAIT);
      expect(await patel.widget.getByRole('button', { name: /unread/ }).count()).to.equal(0);

      // Typing: lee starts typing, patel sees it.
      await lee.widget.getByRole('textbox', { name: 'Message' }).fill('Looking');
      await patel.widget.getByText('dr-lee is typing…').waitFor({ timeout: WAIT });
      await lee.widget.getByRole('textbox', { name: 'Message' }).fill('');

      // Shift+Enter is a new line, Enter sends.
      const box = patel.widget.getByRole('textbox', { name: 'Message' });
      await box.pressSequentially('On my way.');
      await box.press('Shift+Enter');
      await box.pressSequentially('Bed 12?');
      await box.press('Enter');
      await message(lee, 'Bed 12?').waitFor({ timeout: WAIT });
      expect(await bubbles(lee)).to.deep.equal([xss, 'On my way.\nBed 12?']);
      expect(await message(lee, 'Bed 12?').getAttribute('aria-label')).to.equal('dr-patel said');

      // Presence: each sees the other online.
      await eventually(async () => (await lee.widget.locator('.thread-head .presence').textContent()) === 'Online', 'patel online for lee', WAIT);
      await screenshot(lee, '1to1-lee');
    });

    it('safety numbers: both see the same 60 digits and can mark the contact verified', async () => {
      const digits = async (c: Clinician): Promise<string> => {
        await c.widget.getByRole('button', { name: 'Safety number', exact: true }).click();
        const dialog = c.widget.getByRole('dialog', { name: /Safety number with/ });
        await dialog.locator('.digits').waitFor({ timeout: WAIT });
        return (await dialog.locator('.digits span').allTextContents()).join('');
      };
      const [a, b] = await Promise.all([digits(lee), digits(patel)]);
      expect(a).to.match(/^\d{60}$/);
      expect(a).to.equal(b);
      await lee.widget.getByRole('button', { name: 'Mark as verified' }).click();
      await lee.widget.getByText('✓ dr-patel verified').waitFor({ timeout: WAIT });
      await lee.page.keyboard.press('Escape');
      await patel.widget.getByRole('button', { name: 'Close' }).click();
      expect(await lee.widget.getByRole('dialog').count()).to.equal(0);
    });

    it('a reload keeps the keys and the history: old messages are still shown and new ones still decrypt', async () => {
      await patel.page.reload();
      await connected(patel);
      await openConversation(patel, /^dr-lee/);
      expect(await bubbles(patel)).to.deep.equal(['<img src=x onerror="window.__pwned=1"> Troponin 0.42 at 14:05', 'On my way.\nBed 12?']);
      await send(lee, 'After your reload: K+ 5.9');
      await message(patel, 'K+ 5.9').waitFor({ timeout: WAIT });
      const dbs = (await patel.page.evaluate('indexedDB.databases().then((list) => list.map((d) => d.name))')) as string[];
      expect(dbs).to.include('curbside-device-store:dr-patel/patel-desk');
    });

    it('offline, then back: messages sent meanwhile arrive in order', async () => {
      await patel.context.setOffline(true);
      await patel.widget.getByText(/^Offline\./).waitFor({ timeout: WAIT });
      expect(await patel.page.evaluate("document.querySelector('curbside-chat').connected")).to.equal(false);
      // Not a stale "Online": while the hub cannot be asked, presence is unknown.
      expect(await patel.widget.locator('.presence').textContent()).to.equal('Presence unknown while offline');
      for (const text of ['While offline 1', 'While offline 2', 'While offline 3']) await send(lee, text);
      await eventually(async () => (await statusOf(lee, 'While offline 3')) === 'Sent', 'the hub stored the last one', WAIT);
      expect(await message(patel, 'While offline 1').count()).to.equal(0);
      await patel.context.setOffline(false);
      await connected(patel);
      await eventually(async () => (await patel.widget.locator('.presence').textContent()) === 'Online', 'presence asked again once back', WAIT);
      await message(patel, 'While offline 3').waitFor({ timeout: WAIT });
      const texts = await bubbles(patel);
      expect(texts.slice(-3)).to.deep.equal(['While offline 1', 'While offline 2', 'While offline 3']);
      await eventually(async () => (await statusOf(lee, 'While offline 3')) === 'Read', 'read after the resync', WAIT);
    });

    it('a care team of three: everyone reads everyone, with per-member read status', async () => {
      const ortiz = await clinician('rn-ortiz', 'ortiz-tablet');
      await startConversation(lee, 'dr-patel, rn-ortiz', 'Ward 4B discharge');
      await send(lee, 'Bed 12 ready for discharge at 15:00');
      for (const c of [patel, ortiz]) {
        await openConversation(c, /^Ward 4B discharge/);
        await message(c, 'Bed 12 ready').waitFor({ timeout: WAIT });
      }
      await send(patel, 'Meds reconciled');
      await send(ortiz, 'Transport booked');
      for (const c of [lee, patel, ortiz]) {
        await message(c, 'Meds reconciled').waitFor({ timeout: WAIT });
        await message(c, 'Transport booked').waitFor({ timeout: WAIT });
        expect((await bubbles(c)).sort()).to.deep.equal(['Bed 12 ready for discharge at 15:00', 'Meds reconciled', 'Transport booked']);
      }
      await eventually(async () => (await statusOf(lee, 'Bed 12 ready')) === 'Read by all', 'both read it', WAIT);
      await eventually(async () => (await lee.widget.locator('.thread-head .presence').textContent()) === '2 of 2 online', 'team presence', WAIT);
      await lee.widget.getByRole('button', { name: 'Members & safety numbers' }).click();
      const members = lee.widget.getByRole('dialog', { name: /members/ });
      expect(await members.getByRole('listitem').allTextContents()).to.have.length(2);
      await lee.page.keyboard.press('Escape');
      await screenshot(lee, 'care-team-lee');
    });

    it('a member added later sees "not available to you" for what came before, then reads what follows', async () => {
      const owner = suite.t.client({ userId: 'rn-charge', deviceId: 'charge-phone' });
      await owner.connect();
      const { teamId } = await owner.teams.create('Night shift', [{ userId: 'dr-patel' }]);
      await owner.sendText(teamId, 'Handover list is on the board');
      const kim = await clinician('dr-kim', 'kim-laptop');
      await owner.teams.addMember(teamId, 'dr-kim');
      await owner.sendText(teamId, 'Welcome, Dr Kim');
      await openConversation(kim, /^Night shift/);
      await message(kim, 'Welcome, Dr Kim').waitFor({ timeout: WAIT });
      expect(await bubbles(kim)).to.deep.equal(['Welcome, Dr Kim']);
      const notice = kim.widget.locator('ol.messages li.notice');
      expect(await notice.allTextContents()).to.deep.equal(['Messages sent before you joined this care team are not available to you.']);
      owner.disconnect();
    });

    it('a message that cannot be decrypted is shown in plain words, and the conversation goes on', async () => {
      evil.tamper = (e) =>
        e.senderUserId === 'dr-patel' && e.kind !== 'receipt'
          ? { ...e, recipients: e.recipients?.map((r) => (r.deviceId === 'lee-laptop' ? { ...r, ciphertext: flip(r.ciphertext) } : r)) }
          : e;
      try {
        await openConversation(patel, /^dr-lee/);
        await openConversation(lee, /^dr-patel/);
        await send(patel, 'Tampered on the way');
        const problem = lee.widget.locator('ol.messages li.notice.problem').first();
        await problem.waitFor({ timeout: WAIT });
        const text = (await problem.textContent()) ?? '';
        expect(text).to.match(/^Message from dr-patel could not be shown\. /);
        expect(text).to.not.match(/Error|DECRYPT|stack|at \w+ \(/);
        expect(await message(lee, 'Tampered on the way').count()).to.equal(0);
      } finally {
        evil.tamper = undefined;
      }
      await send(patel, 'This one is fine');
      await message(lee, 'This one is fine').waitFor({ timeout: WAIT });
      // Lee's receipts have gone out (the next test changes what the hub says about Patel's keys).
      await eventually(async () => (await statusOf(patel, 'This one is fine')) === 'Read', 'lee read it', WAIT);
    });

    it('a key the hub substitutes reaches nobody: the genuine device reads the message, and the sender sees a security warning', async () => {
      // Two clinicians of their own. Their signed device lists name each device's key: a key the hub
      // presents instead is ignored, and the widget says the hub tried.
      const [ng, okafor] = await Promise.all([clinician('dr-ng', 'ng-laptop'), clinician('dr-okafor', 'okafor-desk')]);
      await startConversation(ng, 'dr-okafor');
      await send(ng, 'Trust on first use');
      await openConversation(okafor, /^dr-ng/);
      await eventually(async () => (await statusOf(ng, 'Trust on first use')) === 'Read', 'okafor read it', WAIT);

      const mallory = new Uint8Array(32).fill(7);
      evil.rewriteIdentity = (userId, _d, key) => (userId === 'dr-okafor' ? mallory : key);
      try {
        await send(ng, 'Are you there?');
        await message(okafor, 'Are you there?').waitFor({ timeout: WAIT });
        const warning = ng.widget.getByRole('status').filter({ hasText: 'Security warning: the hub presented a device or key for dr-okafor' });
        await warning.waitFor({ timeout: WAIT });
        expect(await ng.widget.getByRole('alertdialog').count(), 'nothing for the user to accept: the signed list decides').to.equal(0);
        await screenshot(ng, 'substituted-key-warning');
      } finally {
        evil.rewriteIdentity = undefined;
      }
    });

    it('narrow hosts show one pane at a time, with a back button that returns focus to the list', async () => {
      await patel.page.setViewportSize({ width: 420, height: 640 });
      await patel.page.evaluate("document.querySelector('curbside-chat').style.width = '400px'");
      const list = patel.widget.getByRole('list', { name: 'Conversations' });
      const thread = patel.widget.getByRole('textbox', { name: 'Message' });
      expect(await thread.isVisible()).to.equal(true);
      expect(await list.isVisible()).to.equal(false);
      await patel.widget.getByRole('button', { name: 'Back to conversations' }).click();
      expect(await list.isVisible()).to.equal(true);
      expect(await thread.isVisible()).to.equal(false);
      expect(await focused(patel, 'data-id')).to.be.a('string');
      await patel.page.keyboard.press('Enter');
      expect(await thread.isVisible()).to.equal(true);
      await screenshot(patel, 'narrow');
    });
  });
});

function flip(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes);
  out[out.length - 5]! ^= 0x40;
  return out;
}
