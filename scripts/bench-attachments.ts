/**
 * Encrypted attachments (issue #21, docs/benchmarks.md "Attachments"), on one hub on the real backend
 * (Redis + FerretDB on PostgreSQL unless MONGODB_URI), against raw libsodium in the same process and run.
 *
 *   npx tsx scripts/bench-attachments.ts                 20 MB file; 10 uploads of 50 MB at once
 *   npx tsx scripts/bench-attachments.ts --smoke --out F  tiny sizes: checks the harness (npm test)
 *
 * 1. Raw: `crypto_secretstream_xchacha20poly1305_push` over the file in 64 KiB chunks (no I/O): MB/s,
 *    the fastest of 5 runs.
 * 2. SDK encryption alone (file-crypto.ts, the same stream with its hash), MB/s, the fastest of 5.
 * 3. `client.attachments.send` of the file: encrypt, upload in parts, finish, and the sealed message
 *    (median of `--repeats`): MB/s, and its ratio to raw (the target: ≥ 0.5).
 *    The storage ceiling: the same bytes written straight into GridFS by the plain driver from this
 *    process (no hub, no encryption), parts of the SDK's size one after the other.
 *    The same send to a second hub in memory mode (no database): what the SDK and HTTP path give
 *    without GridFS behind them.
 * 4. Hub RSS: idle, then sampled every 100 ms while `--uploads` clients each send `--big-mb` at once
 *    (peak against idle; the hub streams parts to GridFS, so it should stay flat), and that every
 *    upload arrived whole (its stored length).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { CurbsideClient, MemoryDeviceStore } from '@curbside/client-sdk';
import { getSodium, sodiumReady } from '../client-sdk/src/crypto/index.js';
import { CHUNK_BYTES, encryptFile } from '../client-sdk/src/attachments/file-crypto.js';
import { uniqueName } from '../test/support/services.js';
import { procRssKb, runBench, startServer } from './bench/server-process.js';
import { benchIdp } from './bench/idp.js';
import { runContext, startBenchHub, withBenchServices } from './bench/bench-hub.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags } = parseArgs({
  options: {
    'file-mb': { type: 'string' },
    'big-mb': { type: 'string' },
    uploads: { type: 'string' },
    repeats: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log('usage: tsx scripts/bench-attachments.ts [--file-mb 20] [--big-mb 50] [--uploads 10] [--repeats 3] [--smoke] [--out FILE]');
  process.exit(0);
}
const MB = 1024 * 1024;
const FILE_BYTES = Math.round(Number(flags['file-mb'] ?? (flags.smoke ? 1 : 20)) * MB);
const BIG_BYTES = Math.round(Number(flags['big-mb'] ?? (flags.smoke ? 2 : 50)) * MB);
const UPLOADS = Number(flags.uploads ?? (flags.smoke ? 2 : 10));
const REPEATS = Number(flags.repeats ?? (flags.smoke ? 1 : 3));
const ORG = 'bench-org';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function rawSecretstream(file: Uint8Array): number {
  const sodium = getSodium();
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const t0 = performance.now();
  const { state } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  for (let o = 0; o < file.length; o += CHUNK_BYTES) {
    const last = o + CHUNK_BYTES >= file.length;
    sodium.crypto_secretstream_xchacha20poly1305_push(state, file.subarray(o, o + CHUNK_BYTES), null, last ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  }
  return performance.now() - t0;
}

async function sdkEncryptOnly(file: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const { chunks } = encryptFile((async function* () { yield file; })());
  for await (const _ of chunks) void _;
  return performance.now() - t0;
}

async function main(): Promise<void> {
  await withBenchServices(run);
}

async function run(redisUrl: string, mongoUrl: string, mongoLabel: string): Promise<void> {
  await sodiumReady();
  const runId = uniqueName('attach');
  const idp = benchIdp();
  const dbName = `bench_attach_${runId}`;
  const hub = await startBenchHub({ root, runId, redisUrl, mongoUrl, dbName, idp, env: { ATTACHMENT_MAX_BYTES: String(Math.max(BIG_BYTES, FILE_BYTES) * 2) } });
  const memoryHub = await startServer('memory-hub', [join(root, 'server', 'dist', 'main.js')], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1', ...idp.hubEnv, ATTACHMENT_MAX_BYTES: String(FILE_BYTES * 2), RATE_LIMIT_ATTACHMENTS: '1000000/60' },
    timeoutMs: 60_000,
    stopGraceMs: 5_000,
  });
  const clients: CurbsideClient[] = [];
  const client = (userId: string, deviceId: string, url = hub.url) => {
    const c = new CurbsideClient({ url, token: () => idp.mint(userId, deviceId, ORG), store: new MemoryDeviceStore(), transports: ['websocket'], requestTimeoutMs: 30_000 });
    clients.push(c);
    return c;
  };
  const conn = await mongoose.createConnection(mongoUrl, { dbName }).asPromise();
  try {
    const file = new Uint8Array(randomBytes(FILE_BYTES));
    // 1 and 2: in-process encryption, a warm-up first.
    // The fastest of 5 runs each: on a shared machine a run is only ever slowed down by others.
    rawSecretstream(file);
    const rawMs = Math.min(...Array.from({ length: 5 }, () => rawSecretstream(file)));
    await sdkEncryptOnly(file);
    const sdkEncryptRuns: number[] = [];
    for (let i = 0; i < 5; i++) sdkEncryptRuns.push(await sdkEncryptOnly(file));
    const sdkEncryptMs = Math.min(...sdkEncryptRuns);

    // 3: the whole send of one file, several times.
    const senders = Array.from({ length: UPLOADS }, (_, i) => client(`dr-sender-${i}`, `sender-${i}`));
    const peer = client('dr-peer', 'peer-phone');
    await Promise.all([...senders, peer].map((c) => c.connect()));
    const convs = await Promise.all(senders.map((c) => c.createConversation({ kind: 'direct', peerUserId: 'dr-peer' })));
    await senders[0]!.attachments.send(convs[0]!.id, file.subarray(0, Math.min(FILE_BYTES, MB))); // warm-up: sessions, indexes
    const sendMs: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const t0 = performance.now();
      await senders[0]!.attachments.send(convs[0]!.id, file, { caption: 'bench' });
      sendMs.push(performance.now() - t0);
    }
    const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);
    const raw = mbps(FILE_BYTES, rawMs);
    const send = mbps(FILE_BYTES, median(sendMs));
    const [memSender, memPeer] = [client('dr-mem', 'mem-phone', memoryHub.url), client('dr-peer', 'peer-phone-2', memoryHub.url)];
    await Promise.all([memSender.connect(), memPeer.connect()]);
    const memConv = await memSender.createConversation({ kind: 'direct', peerUserId: 'dr-peer' });
    await memSender.attachments.send(memConv.id, file.subarray(0, Math.min(FILE_BYTES, MB)));
    const memSendMs: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const t0 = performance.now();
      await memSender.attachments.send(memConv.id, file, { caption: 'bench' });
      memSendMs.push(performance.now() - t0);
    }
    const memSend = mbps(FILE_BYTES, median(memSendMs));
    const gridMs: number[] = [];
    const bucket = new mongoose.mongo.GridFSBucket(conn.db!, { bucketName: 'bench_ceiling', chunkSizeBytes: 255 * 1024 });
    const partBytes = 16 * (CHUNK_BYTES + 17);
    for (let i = 0; i < REPEATS; i++) {
      const t0 = performance.now();
      for (let o = 0; o < file.length; o += partBytes) {
        const up = bucket.openUploadStream(`ceiling/${i}/${o}`);
        await new Promise<void>((resolve, reject) => up.end(Buffer.from(file.subarray(o, o + partBytes)), (err?: Error | null) => (err ? reject(err) : resolve())));
      }
      gridMs.push(performance.now() - t0);
    }
    const gridfs = mbps(FILE_BYTES, median(gridMs));

    // 4: hub RSS, idle, then while the big uploads run at once.
    await sleep(flags.smoke ? 300 : 3_000);
    const idleSamples: number[] = [];
    for (let i = 0; i < 10; i++) {
      idleSamples.push(procRssKb(hub.pid));
      await sleep(100);
    }
    const idleKb = median(idleSamples);
    const big = new Uint8Array(randomBytes(BIG_BYTES));
    let peakKb = idleKb;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakKb = Math.max(peakKb, procRssKb(hub.pid));
        await sleep(100);
      }
    })();
    const t0 = performance.now();
    const sent = await Promise.all(senders.map((c, i) => c.attachments.send(convs[i]!.id, big, { caption: `big ${i}` })));
    const concurrentMs = performance.now() - t0;
    sampling = false;
    await sampler;
    const stored = await conn.db!.collection('attachments').find({ attachmentId: { $in: sent.map((s) => s.attachment.id) } }).toArray();
    const whole = stored.filter((d) => d.finishedAt !== undefined && d.size === sent[0]!.attachment.cipherSize).length;

    const report = {
      ...runContext(root),
      database: mongoLabel,
      fileMb: FILE_BYTES / MB,
      rawSecretstreamMBps: raw,
      sdkEncryptMBps: mbps(FILE_BYTES, sdkEncryptMs),
      sendMBps: send,
      sendMs,
      sendVsRaw: send / raw,
      gridfsCeilingMBps: gridfs,
      sendVsGridfs: send / gridfs,
      memoryHub: { sendMBps: memSend, sendMs: memSendMs, sendVsRaw: memSend / raw },
      concurrent: { uploads: UPLOADS, mbEach: BIG_BYTES / MB, ms: concurrentMs, MBps: mbps(BIG_BYTES * UPLOADS, concurrentMs), stored: whole },
      hubRss: { idleMb: idleKb / 1024, peakMb: peakKb / 1024, growthMb: (peakKb - idleKb) / 1024 },
    };
    const out = flags.out ?? join(root, 'results', `attachments-${report.date.slice(0, 10)}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(report, null, 2));
    console.log(
      [
        `raw secretstream: ${raw.toFixed(1)} MB/s; SDK encryption alone: ${report.sdkEncryptMBps.toFixed(1)} MB/s`,
        `encrypt-and-upload of ${report.fileMb} MB: ${send.toFixed(1)} MB/s (median of ${REPEATS}) = ${report.sendVsRaw.toFixed(3)}× raw (target ≥ 0.5)`,
        `storage ceiling (GridFS writes by the plain driver, no hub): ${gridfs.toFixed(1)} MB/s; the send is ${(send / gridfs).toFixed(2)}× it`,
        `the same to a hub without a database (memory): ${memSend.toFixed(1)} MB/s = ${(memSend / raw).toFixed(3)}× raw`,
        `${UPLOADS} uploads of ${report.concurrent.mbEach} MB at once: ${report.concurrent.MBps.toFixed(1)} MB/s in total, ${whole}/${UPLOADS} stored whole`,
        `hub RSS: idle ${report.hubRss.idleMb.toFixed(1)} MB, peak ${report.hubRss.peakMb.toFixed(1)} MB (+${report.hubRss.growthMb.toFixed(1)} MB)`,
        `report: ${out}`,
      ].join('\n'),
    );
    if (whole !== UPLOADS) throw new Error(`only ${whole} of ${UPLOADS} uploads were stored whole`);
  } finally {
    await conn.dropDatabase().catch(() => {});
    await conn.close();
    for (const c of clients) c.disconnect();
    await Promise.all([hub.stop(), memoryHub.stop()]);
  }
}

runBench(main);
