/**
 * Issue #18: no log line carries a field twice. JSON.parse hides a duplicate (the last one wins), so
 * every captured line goes through a tokenizer that tracks the keys of each object (`duplicateKeys`).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createLogger } from '@curbside/server';
import { HubHarness, eventually, sharedBackend } from '../support/hub.js';
import { duplicateKeys } from '../support/json-keys.js';
import { bareEnv } from '../support/main-process.js';
import mongoose from 'mongoose';
import { serviceUrls, uniqueName } from '../support/services.js';

const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'dist', 'main.js');

/** Every line is one JSON object, and none has a key twice in any of its objects. */
function expectCleanLines(lines: string[]): void {
  expect(lines.length, 'some log lines').to.be.greaterThan(0);
  for (const line of lines) expect(duplicateKeys(line), line).to.deep.equal([]);
}

describe('regression: no log line carries a field twice (issue #18)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('the detector sees what JSON.parse hides', () => {
    expect(duplicateKeys('{"node":"a","msg":"x","node":"b"}')).to.deep.equal(['$.node']);
    expect(duplicateKeys('{"err":{"type":"E","type":"F"},"list":[{"a":1,"a":2}],"s":"\\"a\\":1"}')).to.deep.equal(['$.err.type', '$.list[0].a']);
    expect(duplicateKeys('{"a":{"a":1},"b":[1,2,{"a":1}]}')).to.deep.equal([]);
  });

  it('a call naming a key the line already has (node, msg, a child binding) moves it under `shadowed`', () => {
    const lines: string[] = [];
    const destination = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
    const logger = createLogger({ level: 'info', nodeId: 'node-1', destination });
    logger.info({ node: 'node-2', url: 'http://x' }, 'hub listening');
    logger.child({ org: 'org-a' }).warn({ org: 'org-b', msg: 'other', time: 1 }, 'refused');
    expectCleanLines(lines);
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).to.deep.include({ node: 'node-1', url: 'http://x', shadowed: { node: 'node-2' } });
    expect(second).to.deep.include({ node: 'node-1', org: 'org-a', msg: 'refused', shadowed: { org: 'org-b', msg: 'other', time: 1 } });
  });

  it('a realistic run on real Redis and the Mongo-wire DB at debug level: connects, messages, a revoke, disconnects', async () => {
    const t = await harness.start('real', sharedBackend());
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const leeDesk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    await lee.connect();
    await leeDesk.connect();
    await patel.connect();
    const got: string[] = [];
    patel.on('message', (m) => got.push(m.text ?? ''));
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, 'Troponin 0.42 — can you look?');
    await eventually(() => got.length === 1, 'delivered');
    await lee.revokeDevice('lee-desk');
    patel.disconnect();
    await t.hub.close();
    expectCleanLines(t.logs.lines);
  });

  it('the hub process in production mode (start, readiness, shutdown)', async function () {
    this.timeout(30_000);
    const { mongoUri, redisUrl } = serviceUrls();
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const dbName = uniqueName('loglines');
    const dropDb = async () => {
      const conn = await mongoose.createConnection(mongoUri, { dbName }).asPromise();
      await conn.dropDatabase().catch(() => {});
      await conn.close();
    };
    const env = bareEnv({
      MONGODB_URI: mongoUri,
      MONGODB_DB: dbName,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: `${uniqueName('loglines')}:`,
      JWT_PUBLIC_KEY: pem,
      JWT_ISSUER: 'https://idp.hospital.example',
      JWT_AUDIENCE: 'curbside',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      NODE_ID: 'log-test-node',
    });
    const child = spawn(process.execPath, [mainJs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await eventually(() => /"msg":"hub listening"/.test(out), `the hub listening (output so far: ${out})`, 20_000);
      const url = (/"url":"(http:[^"]+)"/.exec(out) ?? [])[1]!;
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).to.equal(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, 'graceful exit').to.equal(0);
    await dropDb();
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    expectCleanLines(lines);
    const listening = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'hub listening');
    expect(listening).to.include({ node: 'log-test-node' });
    expect(listening).to.not.have.property('shadowed');
  });
});
