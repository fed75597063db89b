/**
 * Real-browser tests without downloading a browser: Debian's Chromium (`apt-get install -y chromium`)
 * driven by playwright-core, code bundled for the page by esbuild, served from 127.0.0.1 (IndexedDB
 * and other storage need a real origin, which `about:blank` / `setContent` pages do not have).
 *
 * A missing Chromium fails the test with a message that says what to install. Nothing is skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium. CURBSIDE_CHROMIUM overrides the path (another local Chromium build); nothing is ever downloaded. */
export const CHROMIUM_PATH = process.env.CURBSIDE_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** The Chromium executable, or an error saying how to get it. */
export function requireChromium(path: string = CHROMIUM_PATH): string {
  if (!existsSync(path)) {
    throw new Error(
      `Browser tests need Chromium at ${path}, and it is not there. ` +
        "To fix: install Debian's chromium: apt-get install -y chromium (or set CURBSIDE_CHROMIUM to a local Chromium executable).",
    );
  }
  return path;
}

/** Bundle `entry` (TypeScript is fine) into one ES module for the page. */
export async function bundleForBrowser(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: false, // Error.stack in the page would not use it, and parsing it slows every page load
    write: false,
    logLevel: 'silent',
  });
  const [out] = result.outputFiles;
  if (!out) throw new Error(`esbuild produced no output for ${entry}`);
  return out.text;
}

export interface StaticSite {
  /** e.g. `http://127.0.0.1:41234` */
  origin: string;
  close(): Promise<void>;
}

/** Serve a fixed set of files (path -> [content type, body]) from 127.0.0.1 on a free port. */
export async function serveStatic(files: Record<string, [contentType: string, body: string]>): Promise<StaticSite> {
  const server: Server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': `${file[0]}; charset=utf-8`, 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('static server has no address');
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ChromiumSession {
  context: BrowserContext;
  /** The profile directory; pass it to the next launch to simulate a browser restart. */
  userDataDir: string;
  /** Errors thrown in any page of this session (uncaught exceptions, console.error). */
  pageErrors: string[];
  /** A new tab at `url`. */
  openPage(url: string): Promise<Page>;
  /** Close the browser. Keeps the profile unless `removeProfile`. */
  close(options?: { removeProfile?: boolean }): Promise<void>;
}

/**
 * Launch headless Chromium with an on-disk profile: a new empty one, or `userDataDir` from an
 * earlier session (a browser restart keeps IndexedDB, as a real user's browser does).
 */
export async function launchChromium(userDataDir?: string): Promise<ChromiumSession> {
  const executablePath = requireChromium();
  const profile = userDataDir ?? (await mkdtemp(join(tmpdir(), 'curbside-chromium-')));
  const context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  const pageErrors: string[] = [];
  const watch = (page: Page): void => {
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`);
    });
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    userDataDir: profile,
    pageErrors,
    async openPage(url) {
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'load' });
      return page;
    },
    async close(options) {
      await context.close();
      if (options?.removeProfile) await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Launch headless Chromium without a profile on disk: for tests that want several independent
 * browser contexts (one per clinician), each with its own IndexedDB that lives as long as the context.
 */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: requireChromium(), headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** One axe-core finding in the widget, with up to three of its elements and why. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

let axeSource: string | undefined;

/** Run axe-core (injected once per page) over the `<curbside-chat>` element; every violation it finds. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  if ((await page.evaluate('typeof window.axe')) === 'undefined') await page.addScriptTag({ content: axeSource });
  return (await page.evaluate(`axe.run({ include: [['curbside-chat']] }, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target) + ' ' + JSON.stringify(n.any.concat(n.all, n.none).map((c) => c.message))) })))`)) as AxeViolation[];
}

/** A host page (an "EHR") that loads the widget from the hub and gets its tokens from `window.curbsideTestToken`. */
export function widgetHostPage(hubUrl: string, options: WidgetHostOptions = {}): Record<string, [string, string]> {
  return {
    '/': [
      'text/html',
      `<!doctype html><html lang="en"><meta charset="utf-8"><link rel="icon" href="data:,"><title>EHR</title>
<main>${options.heading ? `<h1>${options.heading}</h1>\n` : ''}<script src="${hubUrl}/widget/curbside-chat.js"></script>
<curbside-chat hub="${hubUrl}" label="Curbside chat"${options.userId ? ` user-id="${options.userId}"` : ''}></curbside-chat></main>
<script>${options.script ?? ''}document.querySelector('curbside-chat').getToken = () => window.curbsideTestToken();</script>`,
    ],
  };
}

/** What the host page around the widget has besides it. */
export interface WidgetHostOptions {
  /** An `<h1>` above the widget. */
  heading?: string;
  /** Script run before the widget is given its `getToken`. */
  script?: string;
  /** The `user-id` attribute (who signed in to the host page; for tokens that name no device). */
  userId?: string;
}

/**
 * Open the host page (at `path`, default `/`) in a new browser context whose tokens `mint` makes, and
 * wait until the widget is connected. Page errors are collected into `pageErrors`.
 */
export async function openWidget(
  browser: Browser,
  site: StaticSite,
  mint: () => string | Promise<string>,
  pageErrors: string[],
  options: { viewport?: { width: number; height: number }; path?: string } = {},
): Promise<{ context: BrowserContext; page: Page; widget: Locator }> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1000, height: 700 } });
  await context.exposeFunction('curbsideTestToken', mint);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(site.origin + (options.path ?? '/'));
  const widget = page.locator('curbside-chat');
  await widgetConnected(page);
  return { context, page, widget };
}

/** Wait until the page's widget is connected (after a load, a reload or coming back online). */
export async function widgetConnected(page: Page): Promise<void> {
  await page.waitForFunction("document.querySelector('curbside-chat')?.connected === true", undefined, { timeout: 20_000, polling: 50 });
}

/** What a hub-and-browser suite set up: the hub, the site serving the host pages, Chromium (filled in before the tests). */
export interface HubBrowserSuite<T> {
  t: T;
  site: StaticSite;
  browser: Browser;
}

/**
 * Mocha hooks for a suite with a hub and a browser: before the tests, `start` brings up the hub and
 * what the suite needs, `site` names the host pages (served from 127.0.0.1) and headless Chromium is
 * launched (without a profile: the suite opens a context per clinician); after them everything closes
 * (`stop` for the hub). Requires Chromium (the suite fails, with what to install, without it).
 */
export function hubBrowserSuite<T>(o: { start: () => Promise<T>; stop: () => Promise<void>; site: (t: T) => Record<string, [string, string]> }): HubBrowserSuite<T> {
  const suite = {} as HubBrowserSuite<T>;
  let site: StaticSite | undefined;
  let browser: Browser | undefined;
  before(async function () {
    this.timeout(90_000);
    requireChromium(); // fails first, saying what to install
    suite.t = await o.start();
    suite.site = site = await serveStatic(o.site(suite.t));
    suite.browser = browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await o.stop();
  });
  return suite;
}

/** What a widget suite set up: the hub, the browser and the signed-in widget (filled in before the tests). */
export interface WidgetSuite {
  t: TestHubLike;
  page: Page;
  widget: Locator;
  pageErrors: string[];
  /** Another clinician's widget in its own browser context (its own IndexedDB), closed after the suite. */
  openAs(who: { userId: string; deviceId: string; claims?: Record<string, unknown> }): Promise<{ page: Page; widget: Locator }>;
}
interface TestHubLike {
  url: string;
  idp: { mint(who: { userId: string; deviceId: string; claims?: Record<string, unknown> }): string };
}

/**
 * Mocha hooks for a widget suite: before the tests, `start` brings up a hub and what the suite needs
 * (SDK clients, roles, …), then Chromium opens the host page (`host`) signed in as `who`; after them
 * everything closes (`stop` for the hub). Requires Chromium (the suite fails, with what to install, without it).
 */
export function widgetSuite<T extends TestHubLike>(o: {
  who: { userId: string; deviceId: string; claims?: Record<string, unknown> };
  start: () => Promise<T>;
  stop: () => Promise<void>;
  host?: WidgetHostOptions;
  viewport?: { width: number; height: number };
}): WidgetSuite & { t: T } {
  const suite = { pageErrors: [] as string[] } as WidgetSuite & { t: T };
  const base = hubBrowserSuite({ start: o.start, stop: o.stop, site: (t) => widgetHostPage(t.url, o.host) });
  suite.openAs = async (who) => {
    if (!base.browser || !base.site) throw new Error('openAs: the suite has not started');
    const { page, widget } = await openWidget(base.browser, base.site, () => suite.t.idp.mint(who), suite.pageErrors, { viewport: o.viewport });
    return { page, widget };
  };
  before(async function () {
    this.timeout(90_000);
    suite.t = base.t;
    Object.assign(suite, await openWidget(base.browser, base.site, () => suite.t.idp.mint(o.who), suite.pageErrors, { viewport: o.viewport }));
  });
  after(() => {
    if (suite.pageErrors.length) console.warn(`  page errors:\n    ${suite.pageErrors.join('\n    ')}`);
  });
  return suite;
}
