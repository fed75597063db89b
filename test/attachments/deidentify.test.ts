/**
 * Issue #21, de-identification on the device: real phone photos carrying GPS, dates, camera model and XMP,
 * plus JPEG and PNG files written with more (comments, IPTC, an artist, a serial number, text chunks, an
 * orientation), stripped by the SDK and read back by an independent reader, exiftool: nothing
 * identifying is left, the image still decodes at the same size, the orientation stays, and `removed`
 * says what was there. Malformed input is a typed error, never a hang or a half-stripped success.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { isCurbsideError, stripImageMetadata } from '@curbside/client-sdk';
import { HubHarness } from '../support/hub.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'images');
const PHOTO = readFileSync(join(fixtures, 'phone-gps.jpg'));
const work = mkdtempSync(join(tmpdir(), 'curbside-deid-'));

function requireExiftool(): void {
  if (spawnSync('exiftool', ['-ver']).status !== 0) {
    throw new Error('exiftool is needed to check de-identification independently: install it (Debian: apt-get install libimage-exiftool-perl)');
  }
}

/** Every tag exiftool reads in a file, grouped ("GPS:GPSLatitude", "XMP-dc:Creator", …). */
function tags(bytes: Uint8Array, name: string): Record<string, unknown> {
  const file = join(work, name);
  writeFileSync(file, bytes);
  return (JSON.parse(execFileSync('exiftool', ['-j', '-G1', '-a', file], { encoding: 'utf8' })) as Array<Record<string, unknown>>)[0]!;
}

/** Write tags into a copy of `bytes` with exiftool. */
function withTags(bytes: Uint8Array, name: string, args: string[]): Uint8Array {
  const file = join(work, name);
  writeFileSync(file, bytes);
  execFileSync('exiftool', ['-q', '-q', '-m', '-overwrite_original', ...args, file]);
  return readFileSync(file);
}

const IDENTIFYING = /^(GPS|XMP|IPTC|Photoshop|MPF|ExifIFD|IFD1|MakerNotes|Samsung|Canon|PNG:(Author|Comment|Copyright|CreationTime|Description))|:(Comment|Artist|Creator|SerialNumber|Copyright|OwnerName|Model|Make|DateTimeOriginal|ModifyDate|CreateDate)$/;
function identifying(t: Record<string, unknown>): string[] {
  return Object.keys(t).filter((k) => IDENTIFYING.test(k));
}

describe('de-identification of images on the device (JPEG, PNG; checked with exiftool)', function () {
  before(requireExiftool);

  it('a real phone photo: GPS, dates, camera model and XMP are gone; it decodes at the same size', () => {
    const before = tags(PHOTO, 'before.jpg');
    expect(identifying(before), 'the fixture does carry them').to.include.members(['GPS:GPSLatitudeRef', 'IFD0:Model', 'ExifIFD:DateTimeOriginal']);
    const out = stripImageMetadata(PHOTO, 'image/jpeg');
    expect(out).to.include({ mediaType: 'image/jpeg', deidentified: true });
    expect(out.removed).to.include.members(['EXIF metadata', 'GPS position', 'camera make and model', 'date and time', 'XMP metadata']);
    const after = tags(out.bytes, 'after.jpg');
    expect(identifying(after)).to.deep.equal([]);
    expect(JSON.stringify(after)).to.not.match(/SM-N920T|2018:04:28/);
    expect([after['File:ImageWidth'], after['File:ImageHeight']]).to.deep.equal([before['File:ImageWidth'], before['File:ImageHeight']]);
    expect(after['ExifTool:Warning'], 'exiftool finds the file sound').to.equal(undefined);
  });

  it('a JPEG with a comment, IPTC, an artist, a serial number and orientation 6: all gone but the orientation', () => {
    const rich = withTags(PHOTO, 'rich.jpg', ['-Comment=Patient J. Smith, bed 4', '-IPTC:By-line=Dr Example', '-Artist=Dr Example', '-SerialNumber=SN-123456', '-XMP-dc:Creator=Dr Example', '-Orientation#=6']);
    expect(Object.keys(tags(rich, 'rich-before.jpg'))).to.include.members(['File:Comment', 'IPTC:By-line', 'IFD0:Artist', 'ExifIFD:SerialNumber']);
    const out = stripImageMetadata(rich);
    expect(out.removed).to.include.members(['comment', 'IPTC / Photoshop metadata', 'owner or artist name', 'camera serial number', 'XMP metadata']);
    const after = tags(out.bytes, 'rich-after.jpg');
    expect(identifying(after)).to.deep.equal([]);
    expect(JSON.stringify(after)).to.not.match(/Smith|Dr Example|SN-123456/);
    expect(after['IFD0:Orientation'], 'the orientation is kept').to.equal('Rotate 90 CW');
    expect(after['ExifTool:Warning']).to.equal(undefined);
  });

  it('a PNG with text chunks (XMP, author, comment), eXIf and tIME: only pixels and colour stay, CRCs valid', () => {
    const png = withTags(tinyPng(), 'tiny.png', ['-PNG:Author=Dr Example', '-PNG:Comment=MRN 0042', '-XMP-dc:Creator=Dr Example', '-EXIF:Artist=Dr Example', '-PNG:ModifyDate=2026:12:01 10:00:00']);
    expect(identifying(tags(png, 'png-before.png')).length).to.be.greaterThan(2);
    const out = stripImageMetadata(png);
    expect(out).to.include({ mediaType: 'image/png', deidentified: true });
    expect(out.removed).to.include.members(['owner or artist name', 'comment', 'XMP metadata', 'date and time']);
    const after = tags(out.bytes, 'png-after.png');
    expect(identifying(after)).to.deep.equal([]);
    expect(JSON.stringify(after)).to.not.match(/Dr Example|MRN 0042/);
    expect([after['PNG:ImageWidth'], after['PNG:ImageHeight']]).to.deep.equal([3, 2]);
    expect(after['ExifTool:Warning']).to.equal(undefined);
  });

  it('client.attachments.send strips a photo before encrypting it (Node: no thumbnail); deidentify: false sends it as it is', async () => {
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
      expect(identifying(tags(got, 'sent.jpg'))).to.deep.equal([]);
      const { attachment: raw } = await lee.attachments.send(conv.id, PHOTO, { name: 'raw.jpg', mediaType: 'image/jpeg', deidentify: false });
      expect(raw.removedMetadata).to.equal(undefined);
      expect(Buffer.from(await patel.attachments.download(raw).bytes()).equals(PHOTO)).to.equal(true);
    } finally {
      await harness.cleanup();
    }
  });

  it('other formats pass through, said not de-identified', () => {
    const pdf = new TextEncoder().encode('%PDF-1.4\n% a document\n');
    expect(stripImageMetadata(pdf, 'application/pdf')).to.deep.equal({ bytes: pdf, mediaType: 'application/pdf', deidentified: false, removed: [] });
  });

  it('malformed, truncated or corrupted images are typed errors, and random damage never hangs', () => {
    const code = (b: Uint8Array) => {
      try {
        stripImageMetadata(b);
        return 'ok';
      } catch (e) {
        return isCurbsideError(e) ? e.code : `untyped: ${String(e)}`;
      }
    };
    expect(code(PHOTO.subarray(0, PHOTO.length / 2))).to.equal('INVALID_PAYLOAD');
    expect(code(PHOTO.subarray(0, 20))).to.equal('INVALID_PAYLOAD');
    const png = tinyPng();
    const badCrc = Uint8Array.from(png);
    badCrc[20] = badCrc[20]! ^ 1; // inside IHDR's data
    expect(code(badCrc)).to.equal('INVALID_PAYLOAD');
    expect(code(png.subarray(0, png.length - 6))).to.equal('INVALID_PAYLOAD');
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 300; i++) {
      const source = i % 2 ? PHOTO : png;
      const damaged = Uint8Array.from(source.subarray(0, Math.min(source.length, 40_000)));
      for (let k = 0; k < 3; k++) damaged[Math.floor(rand() * damaged.length)] = Math.floor(rand() * 256);
      expect(['ok', 'INVALID_PAYLOAD']).to.include(code(damaged));
    }
  });
});

/** A 3 × 2 RGB PNG written by hand (IHDR, IDAT, IEND), for exiftool to add chunks to. */
function tinyPng(): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(3, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 200, 200, 200, 100, 100, 100, 0, 0, 0]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}
