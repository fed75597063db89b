/**
 * De-identification of damaged images: truncated, malformed or randomly corrupted JPEG, PNG and WebP
 * files are a typed error (INVALID_PAYLOAD with the format and a reason), never a hang, an untyped
 * throw, or a half-stripped image returned as a success. A damaged marker must not make a metadata
 * block pass for something decoding needs; whatever does come out as a success carries nothing
 * identifying (checked in process for every case, and with exiftool for a sample).
 */
import { expect } from 'chai';
import { isCurbsideError, stripImageMetadata } from '@curbside/client-sdk';
import {
  IPHONE_PHOTO,
  SAMSUNG_PHOTO,
  fixtureImage,
  iccProfile,
  identifyingBytes,
  identifyingTagsIn,
  jpegSegment,
  markerAt,
  pngChunk,
  requireExiftool,
  taggedPng,
  taggedWebp,
  tinyPng,
  webpChunks,
  webpOf,
  withSegments,
} from '../support/images.js';

type Outcome = { ok: Uint8Array; deidentified: boolean } | { code: string; details?: Record<string, unknown> };

function attempt(bytes: Uint8Array): Outcome {
  try {
    const out = stripImageMetadata(bytes);
    return { ok: out.bytes, deidentified: out.deidentified };
  } catch (e) {
    if (!isCurbsideError(e)) return { code: `untyped: ${String(e)}` };
    return { code: e.code, ...(e.details ? { details: e.details } : {}) };
  }
}

function expectRefused(bytes: Uint8Array, format: string, reason: RegExp): void {
  const outcome = attempt(bytes);
  expect(outcome).to.not.have.property('ok');
  expect(outcome).to.deep.include({ code: 'INVALID_PAYLOAD' });
  const details = (outcome as { details?: { format?: string; reason?: string } }).details;
  expect(details?.format).to.equal(format);
  expect(details?.reason).to.match(reason);
}

describe('de-identification of damaged images: typed errors, never a half-stripped success', function () {
  before(requireExiftool);
  const samsung = fixtureImage(SAMSUNG_PHOTO);
  const iphone = fixtureImage(IPHONE_PHOTO);
  let png: Buffer;
  let webp: Buffer;
  before(() => {
    png = taggedPng();
    webp = taggedWebp();
  });

  it('a truncated JPEG, PNG or WebP is refused wherever it is cut', () => {
    for (const [name, source, format] of [
      ['samsung', samsung, 'JPEG'],
      ['iphone', iphone, 'JPEG'],
      ['png', png, 'PNG'],
      ['webp', webp, 'WebP'],
    ] as const) {
      const cuts = new Set([12, 20, 100, source.length - 2, source.length - 1]); // 12: enough to be recognised
      for (let i = 1; i < 40; i++) cuts.add(Math.max(12, Math.floor((source.length * i) / 40)));
      for (const cut of cuts) {
        const outcome = attempt(source.subarray(0, cut));
        expect(outcome, `${name} cut at ${cut} of ${source.length}`).to.deep.include({ code: 'INVALID_PAYLOAD' });
        expect((outcome as { details?: { format?: string } }).details?.format, `${name} cut at ${cut}`).to.equal(format);
      }
    }
  });

  it('an EXIF segment whose marker is damaged into a table, frame, restart or scan marker is refused, never kept', () => {
    const app1 = markerAt(samsung, 0xe1);
    for (const marker of [0xc0, 0xc2, 0xc4, 0xcc, 0xdb, 0xdd, 0xdc, 0xde, 0xdf, 0xf7, 0xda, 0xd0, 0xd8, 0x01]) {
      const damaged = Buffer.from(samsung);
      damaged[app1 + 1] = marker;
      const outcome = attempt(damaged);
      expect(outcome, `APP1 turned into ${marker.toString(16)}`).to.deep.include({ code: 'INVALID_PAYLOAD' });
    }
    // Into another APPn or a comment: still dropped, and nothing identifying left.
    for (const marker of [0xe0, 0xe2, 0xed, 0xef, 0xfe]) {
      const damaged = Buffer.from(samsung);
      damaged[app1 + 1] = marker;
      const out = stripImageMetadata(damaged);
      expect(identifyingBytes(out.bytes), `APP1 turned into ${marker.toString(16)}`).to.deep.equal([]);
      expect(identifyingTagsIn(out.bytes, `marker-${marker}.jpg`)).to.deep.equal([]);
    }
  });

  it('malformed JPEG structures are refused with a reason', () => {
    const sos = markerAt(samsung, 0xda);
    const sof = markerAt(samsung, 0xc2); // a progressive JPEG
    expectRefused(Buffer.concat([samsung.subarray(0, sos), Buffer.from([0xff, 0xd9])]), 'JPEG', /no image data/);
    expectRefused(Buffer.concat([samsung.subarray(0, sof), samsung.subarray(sof + 2 + samsung.readUInt16BE(sof + 2))]), 'JPEG', /before its frame/);
    expectRefused(withSegments(samsung, [jpegSegment(0xdb, Buffer.from([0x00, 1, 2, 3]))]), 'JPEG', /quantisation/);
    expectRefused(withSegments(samsung, [jpegSegment(0xc4, Buffer.concat([Buffer.from([0x00]), Buffer.alloc(16, 200)]))]), 'JPEG', /Huffman/);
    expectRefused(withSegments(samsung, [jpegSegment(0xdd, Buffer.from([0, 1, 2]))]), 'JPEG', /restart interval/);
    expectRefused(withSegments(samsung, [jpegSegment(0xe0, Buffer.from('JFIF\u0000\u0001', 'latin1'))]), 'JPEG', /JFIF/);
    expectRefused(withSegments(samsung, [jpegSegment(0xe2, Buffer.from('ICC_PROFILE\u0000\u0003\u0001', 'latin1'))]), 'JPEG', /ICC/);
    const badLength = Buffer.from(samsung);
    badLength.writeUInt16BE(0xffff, markerAt(samsung, 0xe1) + 2);
    expectRefused(badLength, 'JPEG', /no marker|runs past|malformed/);
  });

  it('a damaged length that would make a kept segment or chunk swallow the metadata after it is refused', () => {
    const xmp = jpegSegment(0xe1, Buffer.from('http://ns.adobe.com/xap/1.0/\u0000<x:xmpmeta>Dr Example</x:xmpmeta>', 'latin1'));
    const icc = jpegSegment(0xe2, Buffer.concat([Buffer.from('ICC_PROFILE\u0000\u0001\u0001', 'latin1'), iccProfile()]));
    const sound = withSegments(samsung, [icc, xmp]);
    expect(identifyingBytes(stripImageMetadata(sound).bytes), 'the profile alone is kept').to.deep.equal([]);
    const grown = Buffer.from(sound);
    grown.writeUInt16BE(icc.length - 2 + xmp.length, 4); // the ICC segment now covers the XMP segment
    expectRefused(grown, 'JPEG', /ICC profile of another size/);
    const [vp8x, alph, vp8] = webpChunks(fixtureImage('python.webp'));
    const exif = webpOf([['EXIF', Buffer.from('MM\u0000*Dr Example')]]).subarray(12);
    expectRefused(webpOf([vp8x!, alph!, ['VP8 ', Buffer.concat([vp8![1], exif])]]), 'WebP', /swallows a EXIF chunk/);
  });

  it('malformed PNG structures are refused with a reason', () => {
    const png = tinyPng();
    const badCrc = Buffer.from(png);
    badCrc[20] = badCrc[20]! ^ 1; // inside IHDR's data
    expectRefused(badCrc, 'PNG', /CRC/);
    expectRefused(Buffer.concat([png.subarray(0, 8), pngChunk('tEXt', Buffer.from('Comment\u0000x')), png.subarray(8)]), 'PNG', /IHDR/);
    expectRefused(tinyPng([pngChunk('QQQQ', Buffer.from('hidden'))]), 'PNG', /unknown critical chunk/);
    const ihdrEnd = 8 + 12 + 13;
    const noIdat = Buffer.concat([png.subarray(0, ihdrEnd), pngChunk('IEND', Buffer.alloc(0))]);
    expectRefused(noIdat, 'PNG', /no image data/);
    expectRefused(tinyPng([pngChunk('iCCP', Buffer.from('no terminator'))]), 'PNG', /ICC/);
    const hugeLength = Buffer.from(png);
    hugeLength.writeUInt32BE(0xfffffff0, 8);
    expectRefused(hugeLength, 'PNG', /runs past/);
  });

  it('malformed WebP structures are refused with a reason', () => {
    const chunks = webpChunks(fixtureImage('python.webp'));
    expect(chunks.map(([t]) => t)).to.deep.equal(['VP8X', 'ALPH', 'VP8 ']);
    const oversize = Buffer.from(fixtureImage('python.webp'));
    oversize.writeUInt32LE(oversize.length, 4);
    expectRefused(oversize, 'WebP', /RIFF size/);
    expectRefused(webpOf(chunks.filter(([t]) => t !== 'VP8 ')), 'WebP', /no image data/);
    expectRefused(webpOf([chunks[1]!, chunks[0]!, chunks[2]!]), 'WebP', /VP8X/);
    expectRefused(webpOf([['VP8X', Buffer.alloc(4)], chunks[2]!]), 'WebP', /VP8X/);
  });

  it('random damage never hangs or throws untyped, and what comes out as a success carries nothing identifying', () => {
    let seed = 21;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const sources = [samsung, iphone, png, webp];
    const counts = { ok: 0, refused: 0, unrecognised: 0 };
    let checkedWithExiftool = 0;
    for (let i = 0; i < 800; i++) {
      const source = sources[i % sources.length]!;
      const head = Math.min(source.length, 40_000); // where the metadata is
      const damaged = Buffer.from(source);
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips; k++) damaged[Math.floor(rand() * head)] = Math.floor(rand() * 256);
      const input = rand() < 0.2 ? damaged.subarray(0, Math.floor(rand() * damaged.length)) : damaged;
      const outcome = attempt(input);
      if ('ok' in outcome && !outcome.deidentified) {
        counts.unrecognised++; // a damaged signature: no longer an image, passed through and said so
        expect(outcome.ok, `case ${i}`).to.equal(input);
      } else if ('ok' in outcome) {
        counts.ok++;
        expect(identifyingBytes(outcome.ok), `case ${i}`).to.deep.equal([]);
        if (counts.ok % 40 === 1) {
          checkedWithExiftool++;
          expect(identifyingTagsIn(outcome.ok, `fuzz-${i}.bin`), `case ${i}`).to.deep.equal([]);
        }
      } else {
        expect(outcome.code, `case ${i}`).to.equal('INVALID_PAYLOAD');
        counts.refused++;
      }
    }
    expect(counts.ok, 'some damage (inside metadata or pixels) still strips').to.be.greaterThan(50);
    expect(counts.refused, 'some damage is refused').to.be.greaterThan(50);
    expect(checkedWithExiftool).to.be.greaterThan(2);
  });
});
