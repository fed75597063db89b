/**
 * Regressions (security round 2, findings 4 and 5):
 * - With HOST=0.0.0.0, dev mode served /dev/token to the network: anyone could mint a token for any
 *   user and org; a page on any other localhost port could mint tokens cross-origin; the banner and
 *   logs said "dev tokens enabled" when they were off.
 * - Responses had no security headers; a bad Content-Encoding answered 500; /readyz showed latencies
 *   and raw Redis errors to anyone; /healthz named the node and mode.
 */
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ErrorCode, RestErrorBodySchema } from '@curbside/shared';
import { ConfigError, loadConfig } from '@curbside/server';
import { HubHarness, sharedBackend } from '../support/hub.js';
import { bareEnv, startMain } from '../support/main-process.js';

const publicKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

const devEnv = bareEnv;

function configProblems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe('regression: dev mode cannot be exposed by accident', function () {
  const running: ChildProcess[] = [];
  afterEach(() => {
    for (const c of running.splice(0)) c.kill('SIGKILL');
  });

  function start(env: NodeJS.ProcessEnv): { output: () => string; url: Promise<string> } {
    const started = startMain(env);
    running.push(started.child);
    return started;
  }

  it('a non-loopback HOST with dev tokens on is a configuration error naming the setting; the loud switch or an identity provider key lets it through', () => {
    const refused = configProblems(devEnv({ HOST: '0.0.0.0' }));
    expect(refused.join('\n')).to.match(/HOST: 0\.0\.0\.0 in dev mode/).and.match(/DANGEROUSLY_EXPOSE_DEV_MODE_TO_NETWORK=yes/);
    expect(configProblems(devEnv({ HOST: '10.1.2.3' })).length).to.equal(1);
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) expect(configProblems(devEnv({ HOST: host })), host).to.deep.equal([]);
    expect(configProblems(devEnv({ HOST: '0.0.0.0', DANGEROUSLY_EXPOSE_DEV_MODE_TO_NETWORK: 'yes' }))).to.deep.equal([]);
    expect(configProblems(devEnv({ HOST: '0.0.0.0', DANGEROUSLY_EXPOSE_DEV_MODE_TO_NETWORK: 'true' })).join('\n')).to.match(/must be "yes" or unset/);
    expect(configProblems(devEnv({ HOST: '0.0.0.0', JWT_PUBLIC_KEY: publicKeyPem }))).to.deep.equal([]);
  });

  it('npm start refuses HOST=0.0.0.0 in dev mode (exit 78) and says which setting', async () => {
    const { url } = start(devEnv({ HOST: '0.0.0.0' }));
    const err = await url.then(
      () => 'started',
      (e: Error) => e.message,
    );
    expect(err).to.match(/exited with 78/).and.match(/DANGEROUSLY_EXPOSE_DEV_MODE_TO_NETWORK/);
  });

  it('the token endpoint refuses cross-origin callers (another localhost port too) and serves the hub’s own pages', async () => {
    const { url: urlP } = start(devEnv());
    const url = await urlP;
    const mint = (origin?: string) =>
      fetch(`${url}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) },
        body: JSON.stringify({ userId: 'dr-lee', deviceId: 'laptop' }),
      });
    for (const origin of ['http://localhost:8080', 'http://127.0.0.1:1', 'https://evil.example']) {
      const res = await mint(origin);
      expect(res.status, origin).to.equal(403);
      expect(RestErrorBodySchema.parse(await res.json()).error.code).to.equal(ErrorCode.FORBIDDEN);
    }
    expect((await mint(url)).status, 'same origin (the demo page)').to.equal(200);
    expect((await mint()).status, 'no Origin: curl, scripts, the Node SDK').to.equal(200);
  });

  it('the banner and logs say dev tokens are off when an identity provider key is set', async () => {
    const { output, url } = start(devEnv({ JWT_PUBLIC_KEY: publicKeyPem, LOG_LEVEL: 'info' }));
    const base = await url;
    expect(output()).to.match(/Dev tokens are OFF/);
    expect(output()).to.not.match(/Mint a token/);
    expect((await fetch(`${base}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).to.equal(403);
    await new Promise((r) => setTimeout(r, 100));
    expect(output()).to.match(/dev tokens off/);
    expect(output()).to.not.match(/dev tokens enabled/);
  });
});

describe('regression: HTTP hygiene', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());
  const ADMIN = 'operator-'.padEnd(40, 'x');

  it('security headers on every response; HSTS only behind TLS', async () => {
    const t = await harness.start('memory', sharedBackend(), (c) => {
      c.trustProxy = 'loopback';
    });
    const responses = await Promise.all([
      fetch(`${t.url}/healthz`),
      fetch(`${t.url}/readyz`),
      fetch(`${t.url}/no-such-thing`),
      fetch(`${t.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }),
    ]);
    for (const res of responses) {
      expect(res.headers.get('x-content-type-options'), res.url).to.equal('nosniff');
      expect(res.headers.get('content-security-policy'), res.url).to.match(/frame-ancestors 'none'/).and.match(/default-src 'none'/);
      expect(res.headers.get('referrer-policy'), res.url).to.equal('no-referrer');
      expect(res.headers.get('x-powered-by'), res.url).to.equal(null);
      expect(res.headers.get('strict-transport-security'), `${res.url} over plain HTTP`).to.equal(null);
    }
    const viaTls = await fetch(`${t.url}/healthz`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(viaTls.headers.get('strict-transport-security')).to.match(/max-age=31536000/);
  });

  it('a forwarded protocol from an untrusted hop does not turn HSTS on', async () => {
    const t = await harness.start('memory');
    const res = await fetch(`${t.url}/healthz`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(res.headers.get('strict-transport-security')).to.equal(null);
  });

  it('a bad Content-Encoding is 415 and a body that does not decompress is 400, never 500', async () => {
    const t = await harness.start('memory');
    const post = (encoding: string, body: Blob | string) =>
      fetch(`${t.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': encoding }, body });
    const unknown = await post('x-curbside', '{}');
    expect(unknown.status).to.equal(415);
    expect(RestErrorBodySchema.parse(await unknown.json()).error.code).to.equal(ErrorCode.UNSUPPORTED_MEDIA_TYPE);
    const broken = await post('gzip', 'not gzip at all');
    expect(broken.status).to.equal(400);
    expect(RestErrorBodySchema.parse(await broken.json()).error.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    // A well-formed gzip body is parsed and reaches the endpoint (which is off on this hub: DISABLED).
    const fine = await post('gzip', new Blob([new Uint8Array(gzipSync(JSON.stringify({ userId: 'dr-lee', deviceId: 'laptop' })))]));
    expect(RestErrorBodySchema.parse(await fine.json()).error.code).to.equal(ErrorCode.DISABLED);
  });

  it('/healthz says only ok; /readyz details only with the admin token', async () => {
    const t = await harness.start('memory', sharedBackend(), (c) => {
      c.adminToken = ADMIN;
    });
    expect(await (await fetch(`${t.url}/healthz`)).json()).to.deep.equal({ status: 'ok' });
    expect(await (await fetch(`${t.url}/readyz`)).json()).to.deep.equal({ status: 'ready' });
    for (const wrong of ['Bearer nope', `Bearer ${ADMIN}x`, ADMIN, `Basic ${ADMIN}`]) {
      expect(await (await fetch(`${t.url}/readyz`, { headers: { authorization: wrong } })).json(), wrong).to.deep.equal({ status: 'ready' });
    }
    const admin = (await (await fetch(`${t.url}/readyz`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { checks?: Record<string, { ok: boolean; latencyMs?: number }> };
    expect(Object.keys(admin.checks ?? {}).sort()).to.deep.equal(['presence', 'storage']);
    expect(admin.checks!.storage!.latencyMs).to.be.a('number');
  });

  it('a short ADMIN_TOKEN is a configuration error', () => {
    expect(configProblems(devEnv({ ADMIN_TOKEN: 'short' })).join('\n')).to.match(/ADMIN_TOKEN: must be at least 32 characters/);
  });
});
