/**
 * Issue #21, de-identification on the device: real phone photos carrying GPS (Samsung little-endian,
 * iPhone and HTC big-endian EXIF, maker notes, XMP, an orientation), and JPEG, PNG and WebP files written
 * with more (comments, IPTC, an artist, a serial number, text chunks, embedded thumbnails, C2PA), stripped
 * by the SDK and read back by an independent reader, exiftool: nothing identifying is left, the image
 * still decodes at the same size, the orientation stays, and `removed` says what was there. Formats the
 * SDK cannot strip are recognised and said to be not de-identified. Damaged input: deidentify-damage.test.ts;
 * in Chromium: deidentify-browser.test.ts.
 */
import { expect } from 'chai';
import { deflateSync } from 'node:zlib';
import { REMOVED_METADATA_CATEGORY, detectImageFormat, makeThumbnail, stripImageMetadata } from '@curbside/client-sdk';
import { HubHarness } from '../support/hub.js';
import {
  HTC_PHOTO,
  IPHONE_PHOTO,
  SAMSUNG_PHOTO,
  exifTags,
  exifThumbnail,
  fixtureImage,
  iccProfile,
  identifyingTags,
  identifyingTagsIn,
  isoBmffFile,
  jpegSegment,
  metadataGroups,
  pngChunk,
  requireExiftool,
  tinyPng,
  webpChunks,
  withSegments,
  withTags,
} from '../support/images.js';

const PHOTO = fixtureImage(SAMSUNG_PHOTO);

/** Strip `bytes` and read the result back with exiftool: nothing identifying, no warning, same size. */
function stripAndCheck(bytes: Uint8Array, name: string) {
  const before = exifTags(bytes, `before-${name}`);
  const out = stripImageMetadata(bytes);
  const after = exifTags(out.bytes, `after-${name}`);
  expect(identifyingTags(after), `${name}: exiftool still finds`).to.deep.equal([]);
  expect(after['ExifTool:Warning'], `${name}: exiftool finds the file sound`).to.equal(undefined);
  expect(after['Composite:ImageSize'], `${name}: same size`).to.equal(before['Composite:ImageSize']).and.to.be.a('string');
  return { before, out, after };
}

describe('de-identification of images on the device (checked with exiftool)', function () {
  before(requireExiftool);

  it('a real Samsung photo (little-endian EXIF): GPS, dates, camera, software, unique id, comment, XMP and the EXIF thumbnail are gone', () => {
    const { before, out, after } = stripAndCheck(PHOTO, 'samsung.jpg');
    expect(identifyingTags(before), 'the fixture does carry them').to.include.members(['GPS:GPSLatitude', 'IFD0:Model', 'ExifIFD:DateTimeOriginal', 'IFD1:ThumbnailImage', 'XMP-exif:Model']);
    expect(out).to.include({ mediaType: 'image/jpeg', format: 'jpeg', deidentified: true, orientation: 1 });
    expect(out.removed).to.have.members(['EXIF metadata', 'camera make and model', 'software', 'date and time', 'comment', 'image unique ID', 'GPS position', 'embedded thumbnail', 'XMP metadata']);
    expect(JSON.stringify(after)).to.not.match(/SM-N920T|2018:04:28/);
    expect(metadataGroups(after), 'only what decoding needs').to.deep.equal(['File', 'JFIF']);
  });

  it('a real iPhone photo (big-endian EXIF, maker notes, lens, XMP): all gone but its orientation, 90° clockwise', () => {
    const { before, out, after } = stripAndCheck(fixtureImage(IPHONE_PHOTO), 'iphone.jpg');
    expect(identifyingTags(before)).to.include.members(['GPS:GPSLatitude', 'IFD0:Model', 'ExifIFD:LensModel', 'Apple:RunTimeValue']);
    expect(before['File:ExifByteOrder']).to.match(/Big-endian/);
    expect(out.removed).to.include.members(['GPS position', 'camera make and model', 'lens make and model', 'maker notes (may hold a serial number)', 'date and time', 'XMP metadata']);
    expect(out.orientation).to.equal(6);
    expect(after['IFD0:Orientation'], 'the orientation is kept').to.equal('Rotate 90 CW');
    expect(metadataGroups(after)).to.deep.equal(['File', 'IFD0', 'JFIF']);
    expect(Object.keys(after).filter((k) => k.startsWith('IFD0:'))).to.deep.equal(['IFD0:Orientation']);
  });

  it('a real HTC photo (big-endian EXIF with GPS): nothing identifying left', () => {
    const { before, out } = stripAndCheck(fixtureImage(HTC_PHOTO), 'htc.jpg');
    expect(identifyingTags(before), 'Make and Model in the EXIF IFD').to.include.members(['GPS:GPSLatitude', 'ExifIFD:Model']);
    expect(out.removed).to.include.members(['GPS position', 'camera make and model', 'date and time']);
  });

  it('a JPEG with a comment, IPTC, artist, owner, serial numbers, a description and orientation 8 written in: all gone but the orientation', () => {
    const rich = withTags(PHOTO, 'rich.jpg', [
      '-Comment=Patient J. Smith, bed 4',
      '-IPTC:By-line=Dr Example',
      '-Artist=Dr Example',
      '-OwnerName=Dr Example',
      '-SerialNumber=SN-123456',
      '-LensSerialNumber=LSN-42',
      '-ImageDescription=MRN 0042',
      '-XPAuthor=Dr Example',
      '-XMP-dc:Creator=Dr Example',
      '-Orientation#=8',
    ]);
    const { before, out, after } = stripAndCheck(rich, 'rich.jpg');
    expect(Object.keys(before)).to.include.members(['File:Comment', 'IPTC:By-line', 'IFD0:Artist', 'ExifIFD:SerialNumber', 'ExifIFD:OwnerName', 'IFD0:XPAuthor']);
    expect(out.removed).to.include.members(['comment', 'IPTC / Photoshop metadata', 'owner or artist name', 'camera serial number', 'description', 'XMP metadata']);
    expect(JSON.stringify(after)).to.not.match(/Smith|Dr Example|SN-123456|LSN-42|MRN 0042/);
    expect(after['IFD0:Orientation']).to.equal('Rotate 270 CW');
  });

  it('a JPEG with a JFIF thumbnail, a JFXX thumbnail, MPF, Ducky, C2PA and data after the end: all gone, the JFIF header kept', () => {
    const jfif = PHOTO.subarray(4, 4 + PHOTO.readUInt16BE(4)).subarray(2); // the photo's own JFIF data
    expect(jfif.subarray(0, 5).toString('latin1')).to.equal('JFIF\u0000');
    const thumbPixels = Buffer.alloc(2 * 2 * 3, 0x7f);
    const withJfifThumb = Buffer.concat([jfif.subarray(0, 12), Buffer.from([2, 2]), thumbPixels]);
    const thumbJpeg = exifThumbnail(PHOTO);
    const marked = Buffer.concat([
      withSegments(PHOTO.subarray(0, 2), [
        jpegSegment(0xe0, withJfifThumb),
        jpegSegment(0xe0, Buffer.concat([Buffer.from('JFXX\u0000\u0010', 'latin1'), thumbJpeg])),
        jpegSegment(0xe2, Buffer.from('MPF\u0000MM\u0000*\u0000\u0000\u0000\u0008\u0000\u0000', 'latin1')),
        jpegSegment(0xec, Buffer.from('Ducky\u0000\u0001\u0000\u0004\u0000\u0000\u0000\u0050', 'latin1')),
        jpegSegment(0xeb, Buffer.from('JP\u0000\u0001\u0000\u0000\u0000\u0001\u0000\u0000\u0000\u0010jumbc2pa', 'latin1')),
      ]),
      PHOTO.subarray(4 + PHOTO.readUInt16BE(4)), // the photo after its own JFIF segment
      Buffer.from('secondary image bytes, Dr Example'),
    ]);
    const before = exifTags(marked, 'segments.jpg');
    expect(Object.keys(before)).to.include.members(['JFIF:ThumbnailTIFF', 'JFXX:ThumbnailImage', 'Ducky:Quality']);
    const out = stripImageMetadata(marked);
    expect(out.removed).to.include.members(['embedded thumbnail', 'secondary images (MPF)', 'other metadata', 'content credentials (C2PA)', 'data after the image']);
    const after = exifTags(out.bytes, 'segments-after.jpg');
    expect(identifyingTags(after)).to.deep.equal([]);
    expect(Object.keys(after).filter((k) => /Thumbnail/.test(k))).to.deep.equal([]);
    expect(after['ExifTool:Warning']).to.equal(undefined);
    expect(after['JFIF:JFIFVersion'], 'the JFIF header stays').to.equal(before['JFIF:JFIFVersion']);
    expect(Buffer.from(out.bytes).includes(Buffer.from('Dr Example'))).to.equal(false);
  });

  it('a PNG with text chunks, eXIf (GPS, artist, orientation 6), tIME, sPLT and C2PA: pixels, colour and the orientation stay, CRCs valid', () => {
    const iccp = pngChunk('iCCP', Buffer.concat([Buffer.from("Dr Example's scanner\u0000\u0000", 'latin1'), deflateSync(iccProfile())]));
    const splt = pngChunk('sPLT', Buffer.concat([Buffer.from('Patient palette\u0000\u0008', 'latin1'), Buffer.from([1, 2, 3, 4, 0, 9])]));
    const cabx = pngChunk('caBX', Buffer.from('jumb c2pa signer Dr Example'));
    const png = withTags(tinyPng([iccp, splt, cabx]), 'tiny.png', [
      '-PNG:Author=Dr Example',
      '-PNG:Comment=MRN 0042',
      '-PNG:Title=Wound, J. Smith',
      '-XMP-dc:Creator=Dr Example',
      '-EXIF:Artist=Dr Example',
      '-GPSLatitude=51.5',
      '-GPSLatitudeRef=N',
      '-Orientation#=6',
      '-PNG:ModifyDate=2026:12:01 10:00:00',
    ]);
    const { before, out, after } = stripAndCheck(png, 'tiny.png');
    expect(identifyingTags(before)).to.include.members(['PNG:Author', 'PNG:Comment', 'IFD0:Artist', 'GPS:GPSLatitude']);
    expect(out).to.include({ mediaType: 'image/png', format: 'png', deidentified: true, orientation: 6 });
    expect(out.removed).to.include.members(['owner or artist name', 'comment', 'description', 'XMP metadata', 'EXIF metadata', 'GPS position', 'date and time', 'other metadata', 'content credentials (C2PA)']);
    expect(JSON.stringify(after)).to.not.match(/Dr Example|MRN 0042|Smith|Patient/);
    expect(after['IFD0:Orientation'], 'the orientation is kept, in an eXIf of its own').to.equal('Rotate 90 CW');
    expect(after['PNG:ProfileName'], 'the colour profile stays, its free-text name replaced').to.equal('ICC profile');
    expect(metadataGroups(after)).to.deep.equal(['File', 'ICC-header', 'ICC_Profile', 'IFD0', 'PNG']);
  });

  it('a real WebP with EXIF (GPS, camera, orientation 3) and XMP written in: both gone but the orientation; VP8X flags match', () => {
    const webp = withTags(fixtureImage('python.webp'), 'python.webp', ['-EXIF:Make=Example', '-EXIF:Model=Phone 9', '-GPSLatitude=51.5', '-GPSLatitudeRef=N', '-Orientation#=3', '-XMP-dc:Creator=Dr Example', '-DateTimeOriginal=2026:12:01 10:00:00']);
    const { before, out, after } = stripAndCheck(webp, 'python.webp');
    expect(identifyingTags(before)).to.include.members(['GPS:GPSLatitude', 'IFD0:Model', 'XMP-dc:Creator']);
    expect(out).to.include({ mediaType: 'image/webp', format: 'webp', deidentified: true, orientation: 3 });
    expect(out.removed).to.include.members(['EXIF metadata', 'GPS position', 'camera make and model', 'date and time', 'XMP metadata']);
    expect(after['RIFF:WebP_Flags']).to.equal('EXIF, Alpha');
    expect(after['IFD0:Orientation']).to.equal('Rotate 180');
    expect(webpChunks(out.bytes).map(([t]) => t)).to.deep.equal(['VP8X', 'ALPH', 'VP8 ', 'EXIF']);
    const plain = stripImageMetadata(fixtureImage('python.webp'));
    expect(plain.removed, 'nothing to remove').to.deep.equal([]);
    expect(Buffer.from(plain.bytes).equals(fixtureImage('python.webp')), 'a clean WebP comes out byte for byte').to.equal(true);
  });

  it('HEIC, AVIF, GIF and TIFF are recognised by their bytes and said to be not de-identified; other files pass through', () => {
    for (const [bytes, format] of [
      [isoBmffFile('heic', 'mif1', 'heic'), 'heic'],
      [isoBmffFile('mif1', 'mif1', 'heic'), 'heic'],
      [isoBmffFile('avif', 'avif', 'mif1'), 'avif'],
      [fixtureImage('python.gif'), 'gif'],
      [fixtureImage('python.tiff'), 'tiff'],
    ] as const) {
      expect(detectImageFormat(bytes), format).to.equal(format);
      const out = stripImageMetadata(bytes, 'image/jpeg'); // what it claims does not matter
      expect(out, format).to.deep.equal({ bytes, mediaType: `image/${format}`, format, deidentified: false, removed: [], orientation: 1 });
    }
    const pdf = new TextEncoder().encode('%PDF-1.4\n% a document\n');
    expect(stripImageMetadata(pdf, 'application/pdf')).to.deep.equal({ bytes: pdf, mediaType: 'application/pdf', deidentified: false, removed: [], orientation: 1 });
    expect(detectImageFormat(isoBmffFile('isom', 'mp41'))).to.equal(undefined);
  });

  it('every removed item has a category a user can be shown', () => {
    const out = stripImageMetadata(fixtureImage(IPHONE_PHOTO));
    expect(out.removed.map((r) => REMOVED_METADATA_CATEGORY[r])).to.include.members(['location', 'time', 'device', 'metadata block']);
  });

  it('client.attachments.send strips a photo before encrypting it (Node: no thumbnail); deidentify: false sends it as it is', async () => {
    expect(await makeThumbnail(PHOTO, 'image/jpeg'), 'Node has no canvas: no thumbnail').to.equal(undefined);
    const harness = new HubHarness();
    try {
      const t = await harness.start('memory');
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-phone' });
      await Promise.all([lee.connect(), patel.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      const { attachment } = await lee.attachments.send(conv.id, PHOTO, { name: 'rash.jpg', mediaType: 'image/jpeg' });
      expect(attachment.removedMetadata).to.include('GPS position');
      expect(attachment.thumbnail, 'Node has no image decoder: no thumbnail').to.equal(undefined);
      const got = await patel.attachments.download(attachment).bytes();
      expect(identifyingTagsIn(got, 'sent.jpg')).to.deep.equal([]);
      const { attachment: raw } = await lee.attachments.send(conv.id, PHOTO, { name: 'raw.jpg', mediaType: 'image/jpeg', deidentify: false });
      expect(raw.removedMetadata).to.equal(undefined);
      expect(Buffer.from(await patel.attachments.download(raw).bytes()).equals(PHOTO)).to.equal(true);
    } finally {
      await harness.cleanup();
    }
  });
});
