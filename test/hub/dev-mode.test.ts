import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { CurbsideClient, type Envelope } from '@curbside/client-sdk';
import { DevTokenResponseSchema, ErrorCode, HealthResponseSchema, RestErrorBodySchema } from '@curbside/shared';
import { bytes, eventually, text } from '../support/hub.js';
import { bareEnv, startMain } from '../support/main-process.js';


describe('npm start with no MongoDB and no Redis (dev mode)', function () {
  let running: ChildProcess | undefined;
  afterEach(() => {
    running?.kill('SIGKILL');
    running = undefined;
  });

  it('says it is dev mode, serves /healthz, mints dev tokens and accepts SDK clients', async () => {
    const { child, output, url: urlP } = startMain(bareEnv());
    running = child;
    const url = await urlP;
    expect(output()).to.match(/DEV MODE/);
    expect(output()).to.match(/nothing is kept/);

    const health = HealthResponseSchema.parse(await (await fetch(`${url}/healthz`)).json());
    expect(health).to.deep.equal({ status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).to.equal(200);

    const mint = async (userId: string, deviceId: string) => {
      const res = await fetch(`${url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId, deviceId }) });
      expect(res.status).to.equal(200);
      return DevTokenResponseSchema.parse(await res.json()).token;
    };
    const lee = new CurbsideClient({ url, token: await mint('dr-lee', 'phone'), transports: ['websocket'] });
    const patel = new CurbsideClient({ url, token: await mint('dr-patel', 'laptop'), transports: ['websocket'] });
    const got: Envelope[] = [];
    patel.on('envelope', (e) => got.push(e));
    try {
      await Promise.all([lee.connect(), patel.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      await lee.sendEnvelope(conv.id, { body: bytes('hello from dev mode') });
      await eventually(() => got.length === 1, 'delivered');
      expect(text(got[0]!.body!)).to.equal('hello from dev mode');
    } finally {
      lee.disconnect();
      patel.disconnect();
    }

    const bad = await fetch(`${url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"userId":' });
    expect(bad.status).to.equal(400);
    expect(RestErrorBodySchema.parse(await bad.json()).error.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    const invalid = await fetch(`${url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'x' }) });
    expect(invalid.status).to.equal(400);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited, 'graceful shutdown exits 0').to.equal(0);
    running = undefined;
  });

  it('refuses a half-configured production setup with a message that says how to fix it', async () => {
    const { child, url } = startMain(bareEnv({ MONGODB_URI: 'mongodb://127.0.0.1:1/x' }));
    running = child;
    const err = await url.then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).to.match(/exited with 78/);
    expect(err).to.match(/config error: REDIS_URL: is not set/);
    expect(err).to.match(/JWT_PUBLIC_KEY/);
    expect(err).to.match(/JWT_ISSUER/);
  });
});
