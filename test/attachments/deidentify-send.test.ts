/**
 * Issue #21, de-identification in `client.attachments.send`: the file is recognised by its bytes, never by
 * the media type it is sent with, so a real phone photo labelled `application/octet-stream`, `image/png`
 * or `application/pdf`, or streamed in small pieces, is still stripped (checked with exiftool on what the
 * recipient decrypts), and a PNG labelled `image/jpeg` likewise. An image the SDK cannot strip (HEIC,
 * AVIF, GIF, TIFF) goes as it is, and the result and the first upload progress report say plainly that
 * its metadata was NOT removed. A hub on the memory backend; the recipient is a second SDK client.
 */
import { expect } from 'chai';
import { isCurbsideError, type AttachmentProgress, type CurbsideClient } from '@curbside/client-sdk';
import { HubHarness } from '../support/hub.js';
import { SAMSUNG_PHOTO, fixtureImage, identifyingTagsIn, isoBmffFile, requireExiftool, taggedPng } from '../support/images.js';

describe('client.attachments.send: images recognised by their bytes, and metadata not removed said plainly', function () {
  this.timeout(60_000);
  const harness = new HubHarness();
  const photo = fixtureImage(SAMSUNG_PHOTO);
  let lee: CurbsideClient;
  let patel: CurbsideClient;
  let conversationId: string;

  before(async () => {
    requireExiftool();
    const t = await harness.start('memory');
    lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    patel = t.client({ userId: 'dr-patel', deviceId: 'patel-phone' });
    await Promise.all([lee.connect(), patel.connect()]);
    conversationId = (await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' })).id;
  });
  after(() => harness.cleanup());

  it('a JPEG sent as application/octet-stream, image/png or application/pdf is stripped all the same, and labelled image/jpeg', async () => {
    for (const [label, input, mediaType] of [
      ['application/octet-stream', photo, 'application/octet-stream'],
      ['image/png', photo, 'image/png'],
      ['application/pdf (a Blob of that type)', new Blob([photo as BlobPart], { type: 'application/pdf' }), undefined],
    ] as const) {
      const { attachment, metadata } = await lee.attachments.send(conversationId, input, { name: 'scan.bin', ...(mediaType ? { mediaType } : {}) });
      expect(metadata.status, label).to.equal('removed');
      expect(metadata).to.deep.include({ format: 'jpeg' });
      expect(attachment.mediaType, label).to.equal('image/jpeg');
      expect(attachment.removedMetadata, label).to.include.members(['GPS position', 'camera make and model', 'date and time']);
      const got = await patel.attachments.download(attachment).bytes();
      expect(got.length, label).to.be.below(photo.length);
      expect(identifyingTagsIn(got, 'received.jpg'), `${label}: exiftool on what the recipient decrypts`).to.deep.equal([]);
    }
  });

  it('a JPEG streamed in 100-byte pieces with an untrue media type is stripped (its start is read across pieces)', async () => {
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < photo.length; at += 100) yield photo.subarray(at, at + 100);
    }
    const { attachment, metadata } = await lee.attachments.send(conversationId, pieces(), { size: photo.length, mediaType: 'application/octet-stream' });
    expect(metadata).to.deep.include({ status: 'removed', format: 'jpeg' });
    expect(identifyingTagsIn(await patel.attachments.download(attachment).bytes(), 'streamed.jpg')).to.deep.equal([]);
  });

  it('a PNG sent as image/jpeg is stripped and labelled image/png', async () => {
    const png = taggedPng();
    const { attachment, metadata } = await lee.attachments.send(conversationId, png, { mediaType: 'image/jpeg' });
    expect(metadata).to.deep.include({ status: 'removed', format: 'png' });
    expect(attachment.mediaType).to.equal('image/png');
    expect(attachment.removedMetadata).to.include.members(['owner or artist name', 'GPS position']);
    expect(identifyingTagsIn(await patel.attachments.download(attachment).bytes(), 'received.png')).to.deep.equal([]);
  });

  it('HEIC, AVIF, GIF and TIFF go as they are: the result and the first progress report say the metadata was NOT removed', async () => {
    for (const [bytes, format, label] of [
      [isoBmffFile('heic', 'mif1', 'heic'), 'heic', 'image/heic'],
      [isoBmffFile('avif', 'avif', 'mif1'), 'avif', 'application/octet-stream'],
      [fixtureImage('python.gif'), 'gif', 'image/gif'],
      [fixtureImage('python.tiff'), 'tiff', 'image/jpeg'],
    ] as const) {
      const reports: AttachmentProgress[] = [];
      const { attachment, metadata } = await lee.attachments.send(conversationId, bytes, { mediaType: label, onProgress: (p) => reports.push(p) });
      expect(metadata, format).to.deep.equal({ status: 'not-removed', format, reason: 'format not supported' });
      expect(reports[0], `${format}: the first report, before any byte is uploaded`).to.deep.include({ phase: 'upload', bytes: 0, metadata });
      expect(reports.slice(1).every((r) => r.metadata === undefined), 'said once').to.equal(true);
      expect(attachment.removedMetadata, format).to.equal(undefined);
      expect(attachment.metadataKept, `${format}: sealed for the recipients`).to.deep.equal({ format, reason: 'format not supported' });
      expect(attachment.mediaType, 'the media type it was sent with').to.equal(label);
      expect(Buffer.from(await patel.attachments.download(attachment).bytes()).equals(bytes), `${format}: byte for byte`).to.equal(true);
    }
  });

  it('deidentify: false is reported as not removed; a file that is no image is reported as such', async () => {
    const raw = await lee.attachments.send(conversationId, photo, { mediaType: 'image/jpeg', deidentify: false });
    expect(raw.metadata).to.deep.equal({ status: 'not-removed', format: 'jpeg', reason: 'de-identification turned off' });
    expect(raw.attachment.metadataKept).to.deep.equal({ format: 'jpeg', reason: 'de-identification turned off' });
    expect(Buffer.from(await patel.attachments.download(raw.attachment).bytes()).equals(photo)).to.equal(true);
    const pdf = await lee.attachments.send(conversationId, new TextEncoder().encode('%PDF-1.4\n% discharge letter\n'), { mediaType: 'application/pdf' });
    expect(pdf.metadata).to.deep.equal({ status: 'not-an-image' });
    expect(pdf.attachment.metadataKept, 'no warning on a file that is no image').to.equal(undefined);
    expect(pdf.attachment.mediaType).to.equal('application/pdf');
  });

  it('a damaged JPEG labelled application/octet-stream is refused (INVALID_PAYLOAD), not sent with its metadata', async () => {
    const cut = photo.subarray(0, 5_000);
    const reports: AttachmentProgress[] = [];
    const error = await lee.attachments.send(conversationId, cut, { mediaType: 'application/octet-stream', onProgress: (p) => reports.push(p) }).catch((e: unknown) => e);
    expect(isCurbsideError(error) && error.code).to.equal('INVALID_PAYLOAD');
    expect(reports, 'nothing uploaded').to.deep.equal([]);
  });
});
