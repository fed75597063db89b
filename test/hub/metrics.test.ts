import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { CurbsideClient, type ChatMessage } from '@curbside/client-sdk';
import { ErrorCode } from '@curbside/shared';
import { Redis } from 'ioredis';
import { HubMetrics, defaultSecurityConfig, loadConfig } from '@curbside/server';
import { serviceUrls, uniqueName } from '../support/services.js';
import { HubHarness, codeOf, eventually, sharedBackend, type TestHub } from '../support/hub.js';

const TOKEN = 'metrics-token-0123456789abcdef0123456789';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text exposition, sample by sample. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

async function scrape(url: string, token?: string): Promise<{ status: number; contentType: string | null; body: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
}

/**
 * /metrics over real HTTP from a real hub on Redis and the Mongo-wire DB: values move with traffic,
 * refusals are counted by reason, the bearer token is required, the port of its own works, and the
 * Grafana dashboard only names metrics the hub exports.
 */
describe('Prometheus metrics', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('behind METRICS_TOKEN on the main port: the token is required; connections, envelopes, send-to-ack, auth failures by reason, database calls and commands and Redis calls move; no ids in any label', async () => {
    const t = await harness.start('real', sharedBackend(), (c) => (c.metrics = { token: TOKEN }));
    const url = `${t.url}/metrics`;
    expect((await scrape(url)).status).to.equal(401);
    expect((await scrape(url, `${TOKEN}x`)).status).to.equal(401);
    const before = await scrape(url, TOKEN);
    expect(before.status).to.equal(200);
    expect(before.contentType).to.match(/^text\/plain/);
    expect(total(parse(before.body), 'curbside_envelopes_in_total')).to.equal(0);

    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const got: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    for (const text of ['Sodium 128', 'Repeat in 6 h', 'Fluid restrict']) await lee.sendText(conv.id, text);
    await eventually(() => got.length === 3, 'three messages delivered');

    const refuse = async (token: string) => {
      const c = new CurbsideClient({ url: t.url, token, transports: ['websocket'], e2ee: false });
      const code = await codeOf(c.connect());
      c.disconnect();
      return code;
    };
    expect(await refuse('not.a.jwt')).to.equal(ErrorCode.AUTH_INVALID);
    expect(await refuse(t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }, { expiresInSec: -30 }))).to.equal(ErrorCode.AUTH_EXPIRED);

    const after = await scrape(url, TOKEN);
    const s = parse(after.body);
    expect(total(s, 'curbside_connections')).to.equal(2);
    const sent = total(s, 'curbside_envelopes_in_total');
    expect(sent, 'three messages, and whatever receipts the SDK sent').to.be.at.least(3);
    expect(total(s, 'curbside_send_ack_seconds_count'), 'one send-to-ack observation per accepted envelope').to.equal(sent);
    expect(total(s, 'curbside_send_ack_seconds_bucket', { le: '+Inf' })).to.equal(sent);
    expect(total(s, 'curbside_envelopes_out_total', { path: 'push' })).to.equal(sent);
    expect(total(s, 'curbside_auth_failures_total', { reason: ErrorCode.AUTH_INVALID })).to.equal(1);
    expect(total(s, 'curbside_auth_failures_total', { reason: ErrorCode.AUTH_EXPIRED })).to.equal(1);
    expect(total(s, 'curbside_db_call_seconds_count', { op: 'appendEnvelope' })).to.be.at.least(3);
    expect(total(s, 'curbside_db_call_seconds_count')).to.be.greaterThan(total(s, 'curbside_db_call_seconds_count', { op: 'appendEnvelope' }));
    // Driver command monitoring: every envelope went to the database in an insert command.
    expect(total(s, 'curbside_db_documents_inserted_total', { collection: 'envelopes' }), 'envelopes inserted').to.equal(sent);
    expect(total(s, 'curbside_db_commands_total', { command: 'insert' })).to.be.at.least(1);
    expect(total(s, 'curbside_db_commands_total', { command: 'find' }), 'reads are counted too').to.be.greaterThan(0);
    // Each command timed from sent to answered: every envelope insert was answered before its ack.
    const envelopeInserts = total(s, 'curbside_db_commands_total', { command: 'insert', collection: 'envelopes' });
    expect(envelopeInserts).to.be.at.least(1);
    expect(total(s, 'curbside_db_command_seconds_count', { command: 'insert', collection: 'envelopes' }), 'envelope inserts timed').to.equal(envelopeInserts);
    expect(total(s, 'curbside_db_command_seconds_bucket', { command: 'insert', collection: 'envelopes', le: '+Inf' })).to.equal(envelopeInserts);
    expect(total(s, 'curbside_db_command_seconds_sum', { command: 'insert', collection: 'envelopes' }), 'their time').to.be.greaterThan(0);
    expect(total(s, 'curbside_redis_command_seconds_count', { command: 'publish' }), 'fan-out publishes').to.be.greaterThan(0);
    expect(total(s, 'curbside_redis_command_seconds_count')).to.be.greaterThan(total(s, 'curbside_redis_command_seconds_count', { command: 'publish' }));
    expect(s.some((x) => x.name === 'nodejs_eventloop_lag_p99_seconds'), 'event-loop lag').to.equal(true);
    const nodes = new Set(s.map((x) => x.labels['node']));
    expect(nodes.size, 'every sample carries this node').to.equal(1);
    expect([...nodes][0]).to.match(/^test-/);

    // Labels are bounded enums: nothing names a clinician, a device, a conversation or a message.
    for (const secret of ['dr-lee', 'dr-patel', 'lee-phone', 'patel-laptop', conv.id, 'org-a', 'Sodium']) expect(after.body).to.not.include(secret);
  });

  it('counts rate-limited events by limit and database errors by operation', async () => {
    let failNext = false;
    const t = await harness.start(
      'real',
      sharedBackend(),
      (c) => {
        c.metrics = { token: TOKEN };
        c.security = { corsOrigins: [], revocationRecheckMs: 5_000, rateLimits: { ...defaultSecurityConfig('production').rateLimits, presence: { points: 1, durationSec: 600 } } };
      },
      (storage) =>
        new Proxy(storage, {
          get(target, prop, receiver) {
            const v: unknown = Reflect.get(target, prop, receiver);
            if (prop === 'listConversationsForUser' && typeof v === 'function') {
              return (...args: unknown[]) => {
                if (failNext) {
                  failNext = false;
                  return Promise.reject(new Error('injected database failure'));
                }
                return (v as (...a: unknown[]) => unknown).apply(target, args);
              };
            }
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }),
    );
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    await lee.connect();
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.presence(conv.id);
    expect(await codeOf(lee.presence(conv.id))).to.equal(ErrorCode.RATE_LIMITED);
    failNext = true;
    expect(await codeOf(lee.listConversations())).to.equal(ErrorCode.INTERNAL);

    const s = parse((await scrape(`${t.url}/metrics`, TOKEN)).body);
    expect(total(s, 'curbside_rate_limited_total', { limit: 'presence' })).to.equal(1);
    expect(total(s, 'curbside_rate_limited_total')).to.equal(1);
    expect(total(s, 'curbside_db_errors_total', { op: 'listConversationsForUser' })).to.equal(1);
    expect(total(s, 'curbside_db_errors_total')).to.equal(1);
  });

  it('on a port of its own (METRICS_PORT): not on the main port; two hubs in one process keep their own registries', async () => {
    const a = await harness.start('real', sharedBackend(), (c) => (c.metrics = { port: 0 }));
    const b = await harness.start('real', sharedBackend(), (c) => (c.metrics = { port: 0, token: TOKEN }));
    expect(a.hub.metricsUrl).to.be.a('string');
    expect((await scrape(`${a.url}/metrics`)).status, 'not on the main port').to.equal(404);
    expect((await scrape(a.hub.metricsUrl!.replace('/metrics', '/healthz'))).status, 'nothing else on the metrics port').to.equal(404);
    expect((await scrape(b.hub.metricsUrl!)).status, 'a token set is required on the own port too').to.equal(401);

    await a.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false }).connect();
    const sa = parse((await scrape(a.hub.metricsUrl!)).body);
    const sb = parse((await scrape(b.hub.metricsUrl!, TOKEN)).body);
    expect(total(sa, 'curbside_connections')).to.equal(1);
    expect(total(sb, 'curbside_connections')).to.equal(0);
    expect(sa.find((x) => x.name === 'curbside_connections')!.labels['node']).to.not.equal(sb.find((x) => x.name === 'curbside_connections')!.labels['node']);
  });

  it('times Redis commands on a real Redis and counts the ones that fail, by command', async () => {
    const metrics = new HubMetrics({ nodeId: 'redis-check', connections: () => 0 });
    const redis = new Redis(serviceUrls().redisUrl);
    try {
      metrics.instrumentRedis(redis);
      const key = uniqueName('metrics');
      await redis.set(key, 'not a number', 'EX', 60);
      await redis.get(key);
      const failed = await redis.incr(key).then(
        () => 'incremented',
        (e: Error) => e.message,
      );
      expect(failed).to.match(/not an integer/);
      const s = parse((await metrics.scrape()).body);
      expect(total(s, 'curbside_redis_command_seconds_count', { command: 'set' })).to.equal(1);
      expect(total(s, 'curbside_redis_command_seconds_count', { command: 'get' })).to.equal(1);
      expect(total(s, 'curbside_redis_errors_total', { command: 'incr' })).to.equal(1);
      expect(total(s, 'curbside_redis_errors_total')).to.equal(1);
    } finally {
      redis.disconnect();
    }
  });

  it('configuration: a short token, the main port again, or a host without a port are errors naming the setting', () => {
    const problems = (env: Record<string, string>) => {
      try {
        return JSON.stringify(loadConfig(env).metrics);
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(problems({ METRICS_TOKEN: 'short' })).to.match(/^METRICS_TOKEN: must be at least 32 characters/m);
    expect(problems({ PORT: '3000', METRICS_PORT: '3000' })).to.match(/^METRICS_PORT: \(3000\) must differ from PORT/m);
    expect(problems({ METRICS_PORT: 'nine' })).to.match(/^METRICS_PORT: must be a port number/m);
    expect(problems({ METRICS_HOST: '10.0.0.5' })).to.match(/^METRICS_HOST: is set but METRICS_PORT is not/m);
    expect(problems({})).to.equal(undefined);
    expect(JSON.parse(problems({ METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5', METRICS_TOKEN: TOKEN }))).to.deep.equal({ port: 9464, host: '10.0.0.5', token: TOKEN });
  });

  it('is off without METRICS_PORT or METRICS_TOKEN, and the startup log says so', async () => {
    const t: TestHub = await harness.start('memory');
    expect((await scrape(`${t.url}/metrics`)).status).to.equal(404);
    expect(t.hub.metricsUrl).to.equal(undefined);
    expect(t.logs.text()).to.include('metrics off');
  });

  it('the Grafana dashboard is valid JSON whose every query names only metrics the hub exports, and it shows every hub metric', async () => {
    const t = await harness.start('memory');
    const families = t.hub.metrics.exposition().getMetricsAsArray().map((m) => ({ name: m.name, type: (m as unknown as { type: string }).type }));
    const exported = new Set<string>();
    for (const f of families) {
      exported.add(f.name);
      if (f.type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(f.name + suffix);
    }
    const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/curbside-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((q) => q.expr));
    expect(exprs.length).to.be.greaterThan(10);
    const used = new Set<string>();
    for (const expr of exprs) {
      for (const m of expr.matchAll(/\b((?:curbside|nodejs|process)_[a-z0-9_]+)\b/g)) used.add(m[1]!);
    }
    for (const name of used) expect(exported.has(name), `${name} in the dashboard is exported`).to.equal(true);
    for (const f of families.filter((x) => x.name.startsWith('curbside_'))) {
      expect([...used].some((u) => u === f.name || u.startsWith(`${f.name}_`)), `${f.name} is on the dashboard`).to.equal(true);
    }
  });
});
