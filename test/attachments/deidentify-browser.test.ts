/**
 * De-identification and thumbnails in a real browser (Debian's headless Chromium, test/support/browser.ts):
 * the SDK strips the same bytes in the page as in Node; the stripped JPEG, PNG and WebP load as images of
 * the right size, shown the right way up (the kept orientation is applied); thumbnails are made there,
 * upright, at most 320 px, on white, and exiftool finds no metadata in them.
 */
import { expect } from 'chai';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { stripImageMetadata } from '@curbside/client-sdk';
import { bundleForBrowser, launchBrowser, requireChromium, serveStatic, type StaticSite } from '../support/browser.js';
import { HTC_PHOTO, IPHONE_PHOTO, SAMSUNG_PHOTO, exifTags, fixtureImage, identifyingTags, metadataGroups, requireExiftool, taggedPng, taggedWebp, tinyPng } from '../support/images.js';
import type { PageStrip, PageThumbnail } from './images-browser-entry.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Call `__curbsideImages.<fn>(...args)` in the page; a string expression, so no transpiled test code reaches the page. */
function call<T>(page: Page, fn: string, ...args: Array<string | number>): Promise<T> {
  return page.evaluate(`globalThis.__curbsideImages.${fn}(${args.map((a) => JSON.stringify(a)).join(', ')})`) as Promise<T>;
}
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

describe('de-identification and thumbnails in headless Chromium', function () {
  this.timeout(60_000);
  let site: StaticSite;
  let browser: Browser | undefined;
  let page: Page;
  const images: Array<{ name: string; bytes: Buffer; mediaType: string; shown: [number, number] }> = [];

  before(async () => {
    requireChromium();
    requireExiftool();
    const bundle = await bundleForBrowser(join(here, 'images-browser-entry.ts'));
    site = await serveStatic({
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>curbside images</title><script type="module" src="/entry.js"></script>'],
      '/entry.js': ['text/javascript', bundle],
    });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.goto(`${site.origin}/`);
    await page.waitForFunction('globalThis.__curbsideImages !== undefined', undefined, { timeout: 10_000, polling: 50 });
    images.push(
      { name: 'samsung.jpg', bytes: fixtureImage(SAMSUNG_PHOTO), mediaType: 'image/jpeg', shown: [920, 570] },
      { name: 'iphone.jpg', bytes: fixtureImage(IPHONE_PHOTO), mediaType: 'image/jpeg', shown: [102, 205] }, // stored 205 × 102, orientation 6
      { name: 'htc.jpg', bytes: fixtureImage(HTC_PHOTO), mediaType: 'image/jpeg', shown: [205, 102] },
      { name: 'tagged.png', bytes: taggedPng(), mediaType: 'image/png', shown: [2, 3] },
      { name: 'tagged.webp', bytes: taggedWebp(), mediaType: 'image/webp', shown: [16, 16] },
    );
  });

  after(async () => {
    await browser?.close();
    await site?.close();
  });

  it('the page strips the same bytes as Node and reports the same', async () => {
    for (const image of images) {
      const node = stripImageMetadata(image.bytes);
      const inPage = await call<PageStrip>(page, 'strip', b64(image.bytes));
      expect(inPage.b64, image.name).to.equal(b64(node.bytes));
      expect(inPage.removed, image.name).to.deep.equal(node.removed).and.to.not.be.empty;
      expect(inPage.orientation, image.name).to.equal(node.orientation);
    }
  });

  it('stripped images load in Chromium at their size, shown the same way up as the originals', async () => {
    for (const image of images) {
      const stripped = stripImageMetadata(image.bytes).bytes;
      const original = await call<{ width: number; height: number }>(page, 'display', b64(image.bytes), image.mediaType);
      const shown = await call<{ width: number; height: number }>(page, 'display', b64(stripped), image.mediaType);
      expect([original.width, original.height], `${image.name} as the browser shows the original`).to.deep.equal(image.shown);
      expect([shown.width, shown.height], `${image.name} stripped`).to.deep.equal(image.shown);
    }
  });

  it('thumbnails are made in the browser from the stripped image: upright, at most 320 px, no metadata at all', async () => {
    for (const image of images) {
      const stripped = stripImageMetadata(image.bytes).bytes;
      const t = await call<PageThumbnail | null>(page, 'thumbnail', b64(stripped), image.mediaType);
      expect(t, image.name).to.not.equal(null);
      const [w, h] = image.shown;
      const scale = Math.min(1, 320 / Math.max(w, h));
      expect([t!.width, t!.height], `${image.name}: the orientation applied, long side at most 320`).to.deep.equal([Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))]);
      expect(t!.mediaType).to.equal('image/jpeg');
      const bytes = Buffer.from(t!.b64, 'base64');
      expect(bytes.length, 'fits the sealed message').to.be.at.most(32 * 1024);
      const tags = exifTags(bytes, `thumb-${image.name}.jpg`);
      expect(identifyingTags(tags), image.name).to.deep.equal([]);
      // Chromium's encoder writes JFIF and its sRGB colour profile, nothing else.
      expect(metadataGroups(tags), `${image.name}: nothing beyond what a JPEG is`).to.satisfy((groups: string[]) => groups.every((g) => ['File', 'JFIF', 'ICC-header', 'ICC_Profile'].includes(g)));
      expect(tags['ICC_Profile:ProfileDescription'] ?? 'sRGB', image.name).to.equal('sRGB');
      expect([tags['File:ImageWidth'], tags['File:ImageHeight']], `${image.name}: stored upright`).to.deep.equal([t!.width, t!.height]);
    }
  });

  it('a transparent PNG gets its thumbnail on white, not black', async () => {
    const t = await call<PageThumbnail | null>(page, 'thumbnail', b64(tinyPng()), 'image/png');
    const [r, g, b] = await call<number[]>(page, 'pixel', t!.b64, 'image/jpeg', 0, 0); // the transparent corner
    expect(Math.min(r!, g!, b!), `pixel ${r},${g},${b}`).to.be.greaterThan(200);
  });

  it('an image the browser cannot decode gets no thumbnail, and no error', async () => {
    expect(await call<PageThumbnail | null>(page, 'thumbnail', b64(Buffer.from('not an image at all')), 'image/png')).to.equal(null);
  });
});
