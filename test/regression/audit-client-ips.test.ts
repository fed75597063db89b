/**
 * Regression (security round 2, finding 6): audit entries kept client IPs forever, with no setting.
 * AUDIT_CLIENT_IP=hash keeps a keyed hash (same address, same value; not readable back), omit keeps none.
 * On the Mongo-wire DB (the audit log as production writes it).
 */
import { expect } from 'chai';
import { io as rawIo } from 'socket.io-client';
import type { AuditEntry } from '@curbside/server';
import { wireParser } from '@curbside/shared';
import { ConfigError, loadConfig } from '@curbside/server';
import { HubHarness, eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { handshakeOutcome, onlyRateLimits } from '../security/support.js';

const KEY = 'k'.repeat(40);

async function entriesOf(t: TestHub, ...actions: string[]): Promise<AuditEntry[]> {
  t.hub.security.flushAudit();
  await t.hub.audit.flush();
  const chains = await t.hub.audit.chains();
  return (await Promise.all(chains.map((c) => t.hub.audit.entries(c, -1, 1000)))).flat().filter((e) => actions.includes(e.action));
}
const handshakeEntries = (t: TestHub) => entriesOf(t, 'handshake');

describe('regression: client addresses in the audit log follow AUDIT_CLIENT_IP (Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  for (const [mode, expectIp] of [
    ['hash', (ip: string | undefined) => expect(ip).to.match(/^hmac:[0-9a-f]{32}$/)],
    ['omit', (ip: string | undefined) => expect(ip).to.equal(undefined)],
    ['keep', (ip: string | undefined) => expect(ip).to.match(/127\.0\.0\.1$/)],
  ] as const) {
    it(`${mode}: accepted and refused handshakes`, async () => {
      const t = await harness.start('real', sharedBackend(), (c) => {
        onlyRateLimits()(c);
        c.auditClientIp = mode === 'hash' ? { mode, key: KEY } : { mode };
      });
      expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }))).to.equal('connected');
      expect(await handshakeOutcome(t.url, 'garbage')).to.equal('AUTH_INVALID');
      const entries = await handshakeEntries(t);
      expect(entries.map((e) => e.outcome).sort()).to.deep.equal(['AUTH_INVALID', 'ok']);
      for (const e of entries) expectIp(e.ip);
      if (mode === 'hash') expect(entries[0]!.ip, 'the same address hashes alike').to.equal(entries[1]!.ip);
      expect(JSON.stringify(entries).includes('127.0.0.1'), 'the address itself').to.equal(mode === 'keep');
      // The hub's own log of the refusal follows the same setting.
      const refused = t.logs.lines.filter((l) => l.includes('handshake refused'));
      expect(refused).to.have.length.greaterThan(0);
      for (const line of refused) expectIp((JSON.parse(line) as { ip?: string }).ip);
    });
  }

  it('behind a trusted proxy (TRUST_PROXY), handshake and disconnect entries name the forwarded client, not the proxy', async () => {
    const t = await harness.start('real', sharedBackend(), (c) => {
      onlyRateLimits()(c);
      c.trustProxy = 'loopback';
    });
    const socket = rawIo(t.url, {
      parser: wireParser,
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      auth: { token: t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }) },
      extraHeaders: { 'x-forwarded-for': '203.0.113.7' },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    socket.disconnect();
    let entries: AuditEntry[] = [];
    await eventually(async () => (entries = await entriesOf(t, 'handshake', 'disconnect')).length === 2, 'handshake and disconnect audited');
    expect(entries.map((e) => [e.action, e.ip]).sort()).to.deep.equal([
      ['disconnect', '203.0.113.7'],
      ['handshake', '203.0.113.7'],
    ]);
  });

  it('AUDIT_CLIENT_IP is checked at start', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ PORT: '0', ...env });
        return '';
      } catch (e) {
        return e instanceof ConfigError ? e.problems.join('\n') : String(e);
      }
    };
    expect(problems({ AUDIT_CLIENT_IP: 'hash' })).to.match(/AUDIT_IP_HASH_KEY/);
    expect(problems({ AUDIT_CLIENT_IP: 'hash', AUDIT_IP_HASH_KEY: 'short' })).to.match(/at least 32 characters/);
    expect(problems({ AUDIT_CLIENT_IP: 'sometimes' })).to.match(/keep, hash or omit/);
    expect(problems({ AUDIT_CLIENT_IP: 'hash', AUDIT_IP_HASH_KEY: KEY })).to.equal('');
  });
});
