import { expect } from 'chai';
import { DevTokenRequestSchema, ErrorCode, ReadyResponseSchema, RestErrorBodySchema } from '@curbside/shared';
import { HubHarness, sharedBackend } from '../support/hub.js';
import { startRedisServer } from '../support/services.js';

describe('HTTP probes and errors', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  const ADMIN_TOKEN = 'a'.repeat(24) + 'operator-only-token';
  const asAdmin = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };

  it('readyz checks storage, presence and fan-out on real services', async () => {
    const t = await harness.start('real', sharedBackend(), (c) => (c.adminToken = ADMIN_TOKEN));
    const res = await fetch(`${t.url}/readyz`, asAdmin);
    expect(res.status).to.equal(200);
    const body = ReadyResponseSchema.parse(await res.json());
    expect(body.status).to.equal('ready');
    expect(Object.keys(body.checks!).sort()).to.deep.equal(['fanout', 'presence', 'storage']);
    expect(Object.values(body.checks!).every((c) => c.ok)).to.equal(true);
  });

  it('readyz reports not_ready, naming the failing dependency, when Redis goes away', async () => {
    const redisServer = await startRedisServer();
    try {
      const t = await harness.start('real', { ...sharedBackend(), redisUrl: redisServer.url }, (c) => (c.adminToken = ADMIN_TOKEN));
      expect((await fetch(`${t.url}/readyz`, asAdmin)).status).to.equal(200);
      await redisServer.stop();
      const res = await fetch(`${t.url}/readyz`, asAdmin);
      expect(res.status).to.equal(503);
      const body = ReadyResponseSchema.parse(await res.json());
      expect(body.status).to.equal('not_ready');
      expect(body.checks?.storage?.ok).to.equal(true);
      expect(body.checks?.presence?.ok).to.equal(false);
      expect(body.checks?.presence?.error).to.be.a('string');
      // Without the admin token: the verdict only, no raw Redis error.
      const anonymous = await fetch(`${t.url}/readyz`);
      expect(anonymous.status).to.equal(503);
      expect(await anonymous.json()).to.deep.equal({ status: 'not_ready' });
    } finally {
      await redisServer.stop();
    }
  });

  it('answers unknown paths and disabled dev tokens with typed JSON errors', async () => {
    const t = await harness.start('real');
    const missing = await fetch(`${t.url}/no-such-thing`);
    expect(missing.status).to.equal(404);
    expect(RestErrorBodySchema.parse(await missing.json()).error.code).to.equal(ErrorCode.NOT_FOUND);

    const body: unknown = DevTokenRequestSchema.parse({ userId: 'dr-lee', deviceId: 'x' });
    const dev = await fetch(`${t.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(dev.status).to.equal(403);
    expect(RestErrorBodySchema.parse(await dev.json()).error.code).to.equal(ErrorCode.DISABLED);

    const huge = await fetch(`${t.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'x'.repeat(50_000) }) });
    expect(huge.status).to.equal(413);
    expect(RestErrorBodySchema.parse(await huge.json()).error.code).to.equal(ErrorCode.PAYLOAD_TOO_LARGE);
  });

  it('/ answers with a pointer (name, version, links), as JSON by default and as a small page to a browser', async () => {
    const t = await harness.start('memory');
    const res = await fetch(`${t.url}/`);
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { name: string; version: string; links: Record<string, string>; docs: string };
    expect(body.name).to.equal('Curbside hub');
    expect(body.version).to.match(/^\d+\.\d+\.\d+/);
    expect(body.links).to.include({ health: '/healthz', ready: '/readyz', widget: '/widget/curbside-chat.js' });
    expect(body.docs).to.match(/README/);
    for (const path of Object.values(body.links)) expect((await fetch(`${t.url}${path}`)).status, path).to.not.equal(404);
    const page = await fetch(`${t.url}/`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type')).to.match(/^text\/html/);
    expect(await page.text()).to.include('<a href="/healthz">health</a>');
  });
});
