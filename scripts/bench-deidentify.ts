/**
 * De-identification benchmark (SDK, in process): `stripImageMetadata` over camera-sized JPEG, PNG and
 * WebP files, against what `client.attachments.send` does to the same bytes next (libsodium secretstream
 * encryption in 64 KiB chunks), so the report says what stripping adds to a send.
 *
 *   npx tsx scripts/bench-deidentify.ts [--quick] [--out file.json]      (npm run bench:deidentify)
 *
 * The images are made here: the real Samsung photo's headers (EXIF with GPS, XMP) in front of random
 * entropy-coded data, as much as a 12-megapixel photo has; a 4000 × 3000 PNG whose IDAT chunks hold random
 * bytes, with text chunks and eXIf; a WebP with a random VP8 payload, EXIF and XMP. The strippers never
 * decode pixels, so random data costs them what real data does. Warm-up, then rounds in which every mode
 * runs in turn; medians. Writes results/deidentify-<date>.json and prints the numbers for docs/benchmarks.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { stripImageMetadata } from '../client-sdk/src/attachments/deidentify.js';
import { randomBytes, sodiumReady } from '../client-sdk/src/crypto/index.js';
import { PNG_SIGNATURE, SAMSUNG_PHOTO, fixtureImage, pngChunk, webpChunks, webpOf } from '../test/support/images.js';
import { runContext } from './bench/bench-hub.js';
import { runBench } from './bench/server-process.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outArg = args.indexOf('--out') >= 0 ? args[args.indexOf('--out') + 1] : undefined;
const MB = 1024 * 1024;
const IMAGE_BYTES = quick ? 1 * MB : 8 * MB;
const ROUNDS = quick ? 3 : 9;
const WARMUP_ROUNDS = quick ? 1 : 2;
const CHUNK = 64 * 1024;

/** Random bytes with every 0xFF followed by a stuffed zero, as in JPEG entropy-coded data. */
function entropyCoded(bytes: number): Buffer {
  const raw = Buffer.from(randomBytes(bytes));
  const out = Buffer.alloc(bytes * 2);
  let n = 0;
  for (const b of raw) {
    out[n++] = b;
    if (b === 0xff) out[n++] = 0;
  }
  return out.subarray(0, n);
}

function jpegOf(bytes: number): Buffer {
  const photo = fixtureImage(SAMSUNG_PHOTO);
  // The photo up to the end of its last scan header (the last FF DA segment before its image data).
  let sosEnd = -1;
  for (let i = 2; i + 4 <= photo.length; i += 2 + photo.readUInt16BE(i + 2)) {
    if (photo[i + 1] === 0xda) {
      sosEnd = i + 2 + photo.readUInt16BE(i + 2);
      break;
    }
  }
  if (sosEnd < 0) throw new Error('no scan in the fixture');
  return Buffer.concat([photo.subarray(0, sosEnd), entropyCoded(bytes), Buffer.from([0xff, 0xd9])]);
}

function pngOf(bytes: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(4000, 0);
  ihdr.writeUInt32BE(3000, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const text = (keyword: string, value: string) => pngChunk('tEXt', Buffer.from(`${keyword}\u0000${value}`, 'latin1'));
  const tiff = Buffer.from([0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
  const idats: Buffer[] = [];
  for (let n = 0; n < bytes; n += CHUNK) idats.push(pngChunk('IDAT', Buffer.from(randomBytes(Math.min(CHUNK, bytes - n)))));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), text('Author', 'Dr Example'), pngChunk('zTXt', Buffer.concat([Buffer.from('Comment\u0000\u0000', 'latin1'), deflateSync('MRN 0042')])), pngChunk('eXIf', tiff), ...idats, pngChunk('IEND', Buffer.alloc(0))]);
}

function webpOfSize(bytes: number): Buffer {
  const [vp8x] = webpChunks(fixtureImage('python.webp'));
  const header = Buffer.from(vp8x![1]);
  header[0] = 0x0c; // EXIF and XMP present
  return webpOf([['VP8X', header], ['VP8 ', Buffer.from(randomBytes(bytes))], ['EXIF', Buffer.from('MM\u0000*\u0000\u0000\u0000\u0008\u0000\u0000')], ['XMP ', Buffer.from('<x:xmpmeta>Dr Example</x:xmpmeta>')]]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);

async function main(): Promise<void> {
  const sodium = await sodiumReady();
  const images = { jpeg: jpegOf(IMAGE_BYTES), png: pngOf(IMAGE_BYTES), webp: webpOfSize(IMAGE_BYTES) };
  for (const [name, bytes] of Object.entries(images)) {
    const out = stripImageMetadata(bytes);
    if (!out.deidentified || out.removed.length === 0) throw new Error(`${name}: not stripped`);
  }
  const encrypt = (bytes: Uint8Array) => {
    const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
    const { state } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
    for (let at = 0; at < bytes.length; at += CHUNK) {
      const last = at + CHUNK >= bytes.length;
      const tag = last ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
      sodium.crypto_secretstream_xchacha20poly1305_push(state, bytes.subarray(at, at + CHUNK), null, tag);
    }
  };
  const modes: Record<string, { bytes: number; run: () => void }> = {
    jpeg: { bytes: images.jpeg.length, run: () => stripImageMetadata(images.jpeg) },
    png: { bytes: images.png.length, run: () => stripImageMetadata(images.png) },
    webp: { bytes: images.webp.length, run: () => stripImageMetadata(images.webp) },
    encryptJpeg: { bytes: images.jpeg.length, run: () => encrypt(images.jpeg) },
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
    for (const [name, mode] of Object.entries(modes)) {
      const t0 = performance.now();
      mode.run();
      const ms = performance.now() - t0;
      if (round >= WARMUP_ROUNDS) samples[name]!.push(mbps(mode.bytes, ms));
    }
  }
  const result = Object.fromEntries(Object.entries(modes).map(([name, mode]) => [name, { mb: mode.bytes / MB, MBps: median(samples[name]!), msPerFile: (mode.bytes / MB / median(samples[name]!)) * 1000 }]));
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const report = { ...runContext(root), quick, rounds: ROUNDS, strip: { jpeg: result.jpeg, png: result.png, webp: result.webp }, secretstreamEncrypt: result.encryptJpeg, stripJpegVsEncrypt: result.jpeg!.MBps / result.encryptJpeg!.MBps };
  const out = outArg ?? join(root, 'results', `deidentify-${report.date.slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2));
  const line = (name: string, r: { mb: number; MBps: number; msPerFile: number }) => `${name}: ${r.mb.toFixed(1)} MB in ${r.msPerFile.toFixed(1)} ms = ${r.MBps.toFixed(0)} MB/s`;
  console.log(
    [
      `strip ${line('JPEG', result.jpeg!)}`,
      `strip ${line('PNG', result.png!)}`,
      `strip ${line('WebP', result.webp!)}`,
      `secretstream encryption of the JPEG (what send does next): ${line('JPEG', result.encryptJpeg!)}`,
      `stripping a JPEG runs at ${report.stripJpegVsEncrypt.toFixed(1)}× the encryption's speed`,
      `report: ${out}`,
    ].join('\n'),
  );
}

runBench(main);
