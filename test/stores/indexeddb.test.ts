/**
 * IndexedDbDeviceStore in a real browser: Debian's headless Chromium (see test/support/browser.ts)
 * loads browser-entry.ts, bundled by esbuild and served from 127.0.0.1, and runs the same contract
 * cases as the Node stores, one `it` per case. Then persistence: a new tab, and a browser restart on
 * the same profile, still see the data; another tab deleting the database closes this tab's store.
 *
 * No Chromium means the `before` hook fails with what to install: the suite never skips.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { bundleForBrowser, launchChromium, requireChromium, serveStatic, type ChromiumSession, type StaticSite } from '../support/browser.js';
import { deviceStoreContract, type CaseResult } from './device-store.contract.js';
import type { Outcome } from './browser-entry.js';

const here = dirname(fileURLToPath(import.meta.url));

// The same case list the page builds (same function, same `persistent` flag); `open` is never called here.
const caseNames = deviceStoreContract({
  name: 'IndexedDbDeviceStore',
  persistent: true,
  open: () => Promise.reject(new Error('contract cases run in the page')),
}).map((c) => c.name);

/** Call `__curbsideStores.<fn>(...args)` in the page. A string expression, so nothing of tsx's transpiled code is shipped to the page. */
function call<T>(page: Page, fn: string, ...args: string[]): Promise<T> {
  return page.evaluate(`globalThis.__curbsideStores.${fn}(${args.map((a) => JSON.stringify(a)).join(', ')})`) as Promise<T>;
}

function expectOk(outcome: Outcome, what: string): void {
  assert.ok(outcome.ok, `${what}: ${outcome.error ?? ''}`);
}

describe('IndexedDbDeviceStore in headless Chromium', function () {
  let site: StaticSite;
  let session: ChromiumSession | undefined;
  let page: Page;
  let url: string;

  const openPage = async (s: ChromiumSession): Promise<Page> => {
    const p = await s.openPage(url);
    await p.waitForFunction('globalThis.__curbsideStores !== undefined', undefined, { timeout: 10_000, polling: 50 });
    return p;
  };

  before(async function () {
    this.timeout(60_000);
    requireChromium(); // fail first, and clearly, if the browser is missing
    const bundle = await bundleForBrowser(join(here, 'browser-entry.ts'));
    site = await serveStatic({
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>curbside device store</title><script type="module" src="/entry.js"></script>'],
      '/entry.js': ['text/javascript', bundle],
    });
    url = `${site.origin}/`;
    session = await launchChromium();
    page = await openPage(session);
  });

  after(async () => {
    const errors = session?.pageErrors ?? [];
    await session?.close({ removeProfile: true });
    await site?.close();
    if (errors.length > 0) console.warn(`  page errors during the browser tests:\n    ${errors.join('\n    ')}`);
  });

  it('the page runs the same contract cases as Node', async () => {
    assert.deepEqual(await call<string[]>(page, 'caseNames'), caseNames);
  });

  describe('DeviceStore contract: IndexedDbDeviceStore', () => {
    for (const name of caseNames) {
      it(name, async () => {
        const result = await call<CaseResult>(page, 'runCase', name);
        assert.ok(result.ok, result.error);
      });
    }
  });

  describe('persistence', () => {
    it('data survives closing the tab: a new tab in the same browser sees it', async () => {
      const name = `tabs-${Date.now()}`;
      const writer = await openPage(session!);
      expectOk(await call<Outcome>(writer, 'seed', name), 'seed');
      await writer.close();
      const reader = await openPage(session!);
      expectOk(await call<Outcome>(reader, 'verify', name), 'verify in a new tab');
      expectOk(await call<Outcome>(reader, 'destroy', name), 'destroy');
      await reader.close();
    });

    it('data survives a browser restart on the same profile', async function () {
      this.timeout(60_000);
      const name = `restart-${Date.now()}`;
      expectOk(await call<Outcome>(page, 'seed', name), 'seed');
      const profile = session!.userDataDir;
      await session!.close(); // the whole browser, profile kept
      session = await launchChromium(profile);
      page = await openPage(session); // same origin (the server kept its port), so the same IndexedDB
      expectOk(await call<Outcome>(page, 'verify', name), 'verify after restart');
      expectOk(await call<Outcome>(page, 'destroy', name), 'destroy');
      assert.ok(!(await call<string[]>(page, 'databases')).includes(`curbside-device-store:${name}`), 'destroy deletes the database');
    });

    it('another tab deleting the database closes this tab’s store instead of blocking', async () => {
      const name = `versionchange-${Date.now()}`;
      const holder = await openPage(session!);
      expectOk(await call<Outcome>(holder, 'hold', name), 'hold');
      assert.equal(await call<string>(holder, 'probeHeld'), 'ok');
      const other = await openPage(session!);
      expectOk(await call<Outcome>(other, 'destroy', name), 'destroy from another tab');
      assert.equal(await call<string>(holder, 'probeHeld'), 'CLOSED');
      await Promise.all([holder.close(), other.close()]);
    });
  });
});

describe('browser test support', () => {
  it('fails with what to install when Chromium is missing', () => {
    assert.throws(() => requireChromium('/nonexistent/chromium'), /install Debian's chromium: apt-get install -y chromium/);
  });
});
