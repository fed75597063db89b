/**
 * Issue #21 in the widget, headless Chromium against a real hub on Redis and the Mongo-wire DB: Attach,
 * paste and drop send a real image (a PNG the browser itself encoded) with progress; a received image
 * shows its sealed preview, the metadata-removed note and, on Open, the full-size image; any other file
 * is saved; a photo whose file claims another type is still de-identified (checked with exiftool); a HEIC
 * photo, which the SDK cannot strip, carries a plain warning; a file tampered with in the database and one
 * that is too large each show a plain error.
 * Dr Lee is in the browser; Dr Patel is an SDK client. The tests run in order.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import mongoose from 'mongoose';
import type { AttachmentDescriptor, ChatMessage, CurbsideClient } from '@curbside/client-sdk';
import { axeViolations, widgetSuite } from '../support/browser.js';
import { HubHarness, eventually, sharedBackend } from '../support/hub.js';
import { withDb } from '../support/db.js';
import { SAMSUNG_PHOTO, fixtureImage, identifyingTagsIn, isoBmffFile, requireExiftool } from '../support/images.js';
import { defaultSecurityConfig } from '@curbside/server';

const WAIT = 20_000;
const LEE = { userId: 'dr-lee', deviceId: 'lee-laptop', claims: { name: 'Daniel Lee' } };
const MAX_BYTES = 3 * 1024 * 1024;

describe('<curbside-chat> attachments: attach, paste, drop, previews, full size, save, errors (Chromium)', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  const shared = sharedBackend();
  let patel: CurbsideClient;
  let directId: string;
  const patelMessages: ChatMessage[] = [];
  const s = widgetSuite({
    who: LEE,
    stop: () => harness.cleanup(),
    start: async () => {
      requireExiftool();
      const t = await harness.start('real', shared, (c) => {
        c.attachments = { maxBytes: MAX_BYTES, orgQuotaBytes: 10 * MAX_BYTES, unreferencedMs: 3_600_000 };
        // Production mode (the real backend): the test page's origin is allowed like a hospital's would be.
        c.security = { ...defaultSecurityConfig('production'), corsOrigins: 'dev-localhost' };
      });
      patel = t.client({ userId: 'dr-patel', deviceId: 'patel-desk', claims: { name: 'Anita Patel' } });
      patel.on('message', (m) => patelMessages.push(m));
      await patel.connect();
      directId = (await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' })).id;
      await patel.sendText(directId, 'Morning');
      return t;
    },
  });

  /** A real PNG, encoded by the browser from a drawn canvas. */
  async function browserPng(width: number, height: number): Promise<Buffer> {
    const base64 = await s.page.evaluate(
      async ([w, h]) => {
        const canvas = new OffscreenCanvas(w!, h!);
        const g = canvas.getContext('2d')!;
        g.fillStyle = '#c2410c';
        g.fillRect(0, 0, w!, h!);
        g.fillStyle = '#fde68a';
        g.beginPath();
        g.arc(w! / 2, h! / 2, Math.min(w!, h!) / 3, 0, Math.PI * 2);
        g.fill();
        const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
        let text = '';
        for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
      },
      [width, height],
    );
    return Buffer.from(base64, 'base64');
  }

  async function openThread(): Promise<void> {
    await s.widget.locator('button.conv', { hasText: 'Anita Patel' }).first().click();
    await s.widget.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: WAIT });
  }

  it('Attach sends an image with its caption; the recipient gets exactly its bytes', async () => {
    await openThread();
    const png = await browserPng(400, 300);
    await s.widget.getByRole('textbox', { name: 'Message' }).fill('Rash on the left forearm, day 3');
    await s.widget.locator('input.file-input').setInputFiles({ name: 'forearm.png', mimeType: 'image/png', buffer: png });
    await eventually(() => patelMessages.some((m) => m.attachment?.name === 'forearm.png'), 'Patel got the image', WAIT);
    const m = patelMessages.find((x) => x.attachment?.name === 'forearm.png')!;
    expect(m.text).to.equal('Rash on the left forearm, day 3');
    expect(m.attachment).to.include({ mediaType: 'image/png', size: png.length });
    expect(Buffer.from(await patel.attachments.download(m.attachment!).bytes()).equals(png)).to.equal(true);
    const sent = s.widget.locator('li.msg.out', { hasText: 'forearm.png' });
    await sent.locator('button.open-file').waitFor({ timeout: WAIT });
    expect(await sent.locator('progress').count(), 'no progress bar once sent').to.equal(0);
  });

  it('a phone photo is de-identified in the browser before it is encrypted: a thumbnail made there, the note, no GPS left', async () => {
    const photo = fixtureImage(SAMSUNG_PHOTO);
    await s.widget.locator('input.file-input').setInputFiles({ name: 'lesion.jpg', mimeType: 'image/jpeg', buffer: photo });
    await eventually(() => patelMessages.some((m) => m.attachment?.name === 'lesion.jpg'), 'Patel got the photo', WAIT);
    const a = patelMessages.find((m) => m.attachment?.name === 'lesion.jpg')!.attachment!;
    expect(a.removedMetadata).to.include.members(['GPS position', 'camera make and model', 'date and time']);
    expect(a.thumbnail, 'a thumbnail made in the browser').to.not.equal(undefined);
    expect(Math.max(a.thumbnail!.width, a.thumbnail!.height)).to.equal(320);
    const received = Buffer.from(await patel.attachments.download(a).bytes());
    expect(received.length).to.be.below(photo.length);
    expect(received.includes(Buffer.from('SM-N920T')), 'the camera model is gone').to.equal(false);
    const sent = s.widget.locator('li.msg.out', { hasText: 'lesion.jpg' });
    await eventually(async () => ((await sent.locator('.metadata-note').textContent()) ?? '').includes('GPS position'), 'the sender sees the note', WAIT);
  });

  it('a photo whose file says application/octet-stream is recognised by its bytes and de-identified all the same', async () => {
    const photo = fixtureImage(SAMSUNG_PHOTO);
    await s.widget.locator('input.file-input').setInputFiles({ name: 'scan.bin', mimeType: 'application/octet-stream', buffer: photo });
    await eventually(() => patelMessages.some((m) => m.attachment?.name === 'scan.bin'), 'Patel got the file', WAIT);
    const a = patelMessages.find((m) => m.attachment?.name === 'scan.bin')!.attachment!;
    expect(a.mediaType).to.equal('image/jpeg');
    expect(a.removedMetadata).to.include('GPS position');
    expect(identifyingTagsIn(await patel.attachments.download(a).bytes(), 'scan-received.jpg'), 'exiftool on what Patel decrypts').to.deep.equal([]);
    expect(await s.widget.locator('li.msg.out', { hasText: 'scan.bin' }).locator('.metadata-warning').count()).to.equal(0);
  });

  it('a HEIC photo, whose metadata the SDK cannot remove, is sent with a plain warning on it, also said by a live region; a recipient is warned too', async () => {
    const heic = isoBmffFile('heic', 'mif1', 'heic');
    await s.widget.locator('input.file-input').setInputFiles({ name: 'mole.heic', mimeType: 'image/heic', buffer: heic });
    const sent = s.widget.locator('li.msg.out', { hasText: 'mole.heic' });
    const warning = 'This HEIC photo may carry its location; metadata could not be removed.';
    await eventually(async () => ((await sent.locator('.metadata-warning').textContent()) ?? '').endsWith(warning), 'the warning on the message', WAIT);
    await eventually(() => patelMessages.some((m) => m.attachment?.name === 'mole.heic'), 'Patel got it', WAIT);
    const a = patelMessages.find((m) => m.attachment?.name === 'mole.heic')!.attachment!;
    expect(a.removedMetadata, 'no "removed" note for it').to.equal(undefined);
    expect(a.metadataKept, 'the recipient is told, sealed with the file').to.deep.equal({ format: 'heic', reason: 'format not supported' });
    expect(Buffer.from(await patel.attachments.download(a).bytes()).equals(heic), 'sent as it is').to.equal(true);
    await sent.locator('button.open-file').waitFor({ timeout: WAIT });
    expect(await sent.locator('.metadata-warning').textContent(), 'still there once sent').to.equal(`⚠ ${warning}`);
    expect(await sent.locator('.metadata-note').count()).to.equal(0);
    const announced = await s.page.evaluate("[...document.querySelector('curbside-chat').shadowRoot.querySelectorAll('[role=status]')].map((el) => el.textContent)");
    expect(announced, 'the live region says it').to.include(warning);
    const violations = (await axeViolations(s.page)).filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
    expect(violations, 'axe-core with the warning shown').to.deep.equal([]);

    // Received the other way, from an SDK that could not strip it either: the recipient's widget warns too.
    const tiff = fixtureImage('python.tiff');
    await patel.attachments.send(directId, tiff, { name: 'wound.tiff', mediaType: 'image/tiff' });
    const got = s.widget.locator('li.msg:not(.out)', { hasText: 'wound.tiff' });
    await got.locator('.metadata-warning').waitFor({ timeout: WAIT });
    expect(await got.locator('.metadata-warning').textContent()).to.equal('⚠ This TIFF image may carry its location; metadata could not be removed.');
  });

  it('paste and drop send files too', async () => {
    const pasted = await browserPng(120, 90);
    const dropped = await browserPng(90, 120);
    await s.widget.getByRole('textbox', { name: 'Message' }).focus();
    // A string, not a function: the test's transpiler would name inner functions with a helper the page lacks.
    await s.page.evaluate(`(() => {
      const root = document.querySelector('curbside-chat').shadowRoot;
      const png = (b64, name) => new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type: 'image/png' });
      const paste = new DataTransfer();
      paste.items.add(png('${pasted.toString('base64')}', 'pasted.png'));
      root.querySelector('textarea').dispatchEvent(new ClipboardEvent('paste', { clipboardData: paste, bubbles: true, cancelable: true }));
      const drop = new DataTransfer();
      drop.items.add(png('${dropped.toString('base64')}', 'dropped.png'));
      const thread = root.querySelector('section.thread');
      thread.dispatchEvent(new DragEvent('dragover', { dataTransfer: drop, bubbles: true, cancelable: true }));
      thread.dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
    })()`);
    await eventually(() => ['pasted.png', 'dropped.png'].every((n) => patelMessages.some((m) => m.attachment?.name === n)), 'both arrived', WAIT);
    const got = patelMessages.find((m) => m.attachment?.name === 'dropped.png')!;
    expect(Buffer.from(await patel.attachments.download(got.attachment!).bytes()).equals(dropped)).to.equal(true);
  });

  it('a received image shows its preview and the metadata note, and opens full size; another file is saved', async () => {
    const photo = await browserPng(640, 480);
    const thumb = await browserPng(64, 48);
    await patel.attachments.send(directId, photo, { name: 'wound.png', mediaType: 'image/png', caption: 'Wound, post-op day 2', thumbnail: { bytes: thumb, mediaType: 'image/png', width: 64, height: 48 }, removedMetadata: ['GPS position', 'camera serial number'] });
    const received = s.widget.locator('li.msg', { hasText: 'wound.png' });
    await received.locator('img.thumb').waitFor({ timeout: WAIT });
    expect(await received.locator('img.thumb').evaluate((img) => (img as HTMLImageElement).naturalWidth)).to.equal(64);
    expect(await received.locator('.metadata-note').textContent()).to.equal('Metadata removed before sending: GPS position, camera serial number.');
    await received.getByRole('button', { name: 'Open wound.png' }).click();
    const full = s.widget.getByRole('dialog', { name: 'wound.png' }).locator('img.full');
    await full.waitFor({ timeout: WAIT });
    await eventually(async () => (await full.evaluate((img) => (img as HTMLImageElement).naturalWidth)) === 640, 'the full-size image decoded', WAIT);
    const violations = (await axeViolations(s.page)).filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
    expect(violations, 'axe-core with an image open').to.deep.equal([]);
    await s.widget.getByRole('dialog', { name: 'wound.png' }).getByRole('button', { name: 'Close' }).click();

    const report = Buffer.from('Discharge summary\nNo allergies known.\n');
    await patel.attachments.send(directId, report, { name: 'summary.txt', mediaType: 'text/plain' });
    const row = s.widget.locator('li.msg', { hasText: 'summary.txt' });
    await row.getByRole('button', { name: 'Save summary.txt' }).waitFor({ timeout: WAIT });
    const [download] = await Promise.all([s.page.waitForEvent('download'), row.getByRole('button', { name: 'Save summary.txt' }).click()]);
    expect(download.suggestedFilename()).to.equal('summary.txt');
    expect(readFileSync((await download.path())!).equals(report)).to.equal(true);
  });

  it('a file tampered with in the database, and one that is too large, show a plain error', async () => {
    let tampered: AttachmentDescriptor | undefined;
    ({ attachment: tampered } = await patel.attachments.send(directId, await browserPng(300, 300), { name: 'ecg.png', mediaType: 'image/png' }));
    await withDb(shared.dbName, async (db) => {
      const file = await db.collection<{ _id: unknown; metadata: { blob: string; index: number } }>('attachment_parts.files').findOne({ 'metadata.blob': tampered!.id, 'metadata.index': 0 });
      const chunks = db.collection<{ files_id: unknown; n: number; data: mongoose.mongo.Binary }>('attachment_parts.chunks');
      const chunk = await chunks.findOne({ files_id: file!._id, n: 0 });
      const data = Buffer.from(chunk!.data.buffer);
      data[100] = data[100]! ^ 0x01;
      await chunks.updateOne({ files_id: file!._id, n: 0 }, { $set: { data: new mongoose.mongo.Binary(data) } });
    });
    const row = s.widget.locator('li.msg', { hasText: 'ecg.png' });
    await row.getByRole('button', { name: 'Open ecg.png' }).click();
    await eventually(async () => (await row.locator('.file-error').textContent()) === 'This file was altered after it was sent (or is damaged): it was not opened.', 'tampering is reported', WAIT);
    expect(await s.widget.getByRole('dialog').count(), 'nothing opened').to.equal(0);

    await s.widget.locator('input.file-input').setInputFiles({ name: 'ct-series.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(MAX_BYTES + 1, 7) });
    const big = s.widget.locator('li.msg.out', { hasText: 'ct-series.bin' });
    await eventually(async () => (await big.locator('.file-error').count()) === 1, 'the refusal is shown', WAIT);
    expect(await big.locator('.file-error').textContent()).to.equal('Not sent: this file is larger than your organisation allows.');
    expect(s.pageErrors).to.deep.equal([]);
  });
});
