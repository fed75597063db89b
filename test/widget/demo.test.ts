/**
 * The dev-mode demo page (`npm start`, then /demo): a hub started from configuration exactly as
 * `npm start` does (dev mode, dev tokens), two clinicians side by side in one page, each widget
 * fetching its token from POST /dev/token. Under the page's Content-Security-Policy, nothing may be
 * blocked: the widget runs with scripts from the hub only (plus WebAssembly for libsodium).
 */
import { expect } from 'chai';
import { join, resolve, dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { createHubFromConfig, createLogger, loadConfig, type Hub } from '@curbside/server';
import { launchBrowser, requireChromium } from '../support/browser.js';
import { eventually } from '../support/hub.js';

const outputDir = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'test-output');
const WAIT = 20_000;

describe('dev-mode demo page (/demo)', function () {
  this.timeout(120_000);
  let hub: Hub;
  let url: string;
  let browser: Browser;

  before(async function () {
    this.timeout(90_000);
    requireChromium();
    const config = loadConfig({ PORT: '0', LOG_LEVEL: 'silent' });
    expect(config.mode).to.equal('dev');
    hub = createHubFromConfig(config, { logger: createLogger({ level: 'silent', nodeId: 'demo-test' }) });
    ({ url } = await hub.listen(0, '127.0.0.1'));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('serves the demo with a strict CSP', async () => {
    const res = await fetch(`${url}/demo`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).to.include("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).to.include("frame-ancestors 'none'");
    expect(await res.text()).to.include('<script src="/widget/curbside-chat.js"');
  });

  it('shows two clinicians side by side who can talk to each other, with nothing blocked by the CSP', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content.Security.Policy/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.goto(`${url}/demo`);
    const lee = page.locator('#lee curbside-chat');
    const patel = page.locator('#patel curbside-chat');
    // Polled from here: waitForFunction evaluates strings in the page, which the demo's CSP (rightly) forbids.
    await eventually(async () => (await page.evaluate("[...document.querySelectorAll('curbside-chat')].every((el) => el.connected)")) === true, 'both widgets connected', WAIT);
    // Dev tokens carry the demo's directory profile: names and roles, not ids.
    await lee.locator('.me', { hasText: 'Signed in as Daniel Lee (Emergency physician)' }).waitFor({ timeout: 20_000 });
    await patel.locator('.me', { hasText: 'Signed in as Anita Patel (Cardiology registrar)' }).waitFor({ timeout: 20_000 });

    await lee.getByRole('button', { name: 'New conversation' }).click();
    await lee.getByLabel('People').fill('dr-patel');
    await lee.getByRole('button', { name: 'Start' }).click();
    const box = lee.getByRole('textbox', { name: 'Message' });
    await box.fill('Hello from the demo');
    await box.press('Enter');
    await patel.getByRole('button', { name: /^Daniel Lee/ }).click({ timeout: WAIT });
    await patel.locator('ol.messages .bubble', { hasText: 'Hello from the demo' }).waitFor({ timeout: WAIT });
    await eventually(async () => (await lee.locator('ol.messages .status').last().textContent()) === 'Read', 'read status on the left', WAIT);

    mkdirSync(outputDir, { recursive: true });
    const path = join(outputDir, 'widget-demo.png');
    await page.screenshot({ path });
    console.log(`      screenshot: ${path}`);
    expect(problems).to.deep.equal([]);
    await context.close();
  });

  it('text in the widget meets WCAG AA contrast (4.5:1) with the default theme', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}/demo`);
    await eventually(async () => (await page.evaluate("document.querySelector('#lee curbside-chat').connected")) === true, 'widget connected', WAIT);
    // Every element with its own text in the left widget: its color against the nearest opaque background.
    const worst = (await page.evaluate(`(() => {
      const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
      const bg = (el) => { for (let e = el; e; e = e.parentElement || e.getRootNode().host) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || c[3] > 0.9) return c; } return [255, 255, 255]; };
      const root = document.querySelector('#lee curbside-chat').shadowRoot;
      const out = [];
      for (const el of root.querySelectorAll('*')) {
        if (!el.checkVisibility || !el.checkVisibility()) continue;
        if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
        const fg = rgb(getComputedStyle(el).color), b = bg(el);
        const [l1, l2] = [lum(fg), lum(b)].sort((x, y) => y - x);
        out.push({ text: el.textContent.trim().slice(0, 30), ratio: Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100 });
      }
      return out.sort((a, b) => a.ratio - b.ratio);
    })()`)) as Array<{ text: string; ratio: number }>;
    expect(worst.length).to.be.greaterThan(3);
    expect(worst[0]!.ratio, `lowest contrast: ${JSON.stringify(worst[0])}`).to.be.at.least(4.5);
    await context.close();
  });
});
