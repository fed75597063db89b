/**
 * Issue #18, administration: the `curbside-admin` CLI (the real bin, as a child process) against the
 * admin HTTP API of hub nodes on real Redis and the Mongo-wire DB. Every action is audited.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloseCode, ErrorCode, type AdminUsersResponse, type AdminTeamsResponse, type AdminKeysResponse } from '@curbside/shared';
import { rateLimitsOff, type AuditEntry, type Hub } from '@curbside/server';
import { TestIdp, sharedBackend, type TestHub } from '../support/hub.js';
import { connectRaw, errorCode, handshakeOutcome, sleep, type RawClient, rawHubs } from './support.js';
import { ADMIN, cli, withAdmin } from '../support/admin-cli.js';

async function auditEntries(hub: Hub): Promise<AuditEntry[]> {
  hub.security.flushAudit();
  await hub.audit.flush();
  return (await Promise.all((await hub.audit.chains()).map((c) => hub.audit.entries(c, -1, 10_000)))).flat();
}

describe('administration: curbside-admin and the admin API (real Redis + Mongo-wire DB)', function () {
  const { harness, open } = rawHubs();
  const connect = async (t: TestHub, userId: string, deviceId: string) => {
    const c = await connectRaw(t.url, t.idp.mint({ userId, deviceId }));
    open.push(c);
    return c;
  };
  const stillConnected = (c: RawClient, ms = 5000) => Promise.race([c.disconnected, sleep(ms).then(() => 'still connected')]);

  it('disabling a user closes their sockets on both nodes within seconds, refuses their handshakes (USER_DISABLED); enabling lets them back', async () => {
    const shared = sharedBackend();
    const [n1, n2] = [await harness.start('real', shared, withAdmin), await harness.start('real', shared, withAdmin)];
    const leePhone = await connect(n1, 'dr-lee', 'lee-phone');
    const leeDesk = await connect(n2, 'dr-lee', 'lee-desk');
    const patel = await connect(n2, 'dr-patel', 'patel-laptop');

    const disabled = await cli(n1.url, ['users', 'disable', '--org', 'org-a', '--user', 'dr-lee']);
    expect(disabled, disabled.stderr).to.include({ code: 0 });
    expect(disabled.stdout).to.match(/dr-lee \(org-a\): disabled/);
    expect(await stillConnected(leePhone), 'lee on node 1').to.equal('io server disconnect');
    expect(await stillConnected(leeDesk), 'lee on node 2').to.equal('io server disconnect');
    expect(leePhone.closings.map((c) => c.code)).to.deep.equal([CloseCode.REVOKED]);
    expect(leeDesk.closings.map((c) => c.message)).to.deep.equal(['User disabled by an operator']);
    expect(errorCode(await patel.call('conversation:list', {})), 'another user is untouched').to.equal('ok');
    for (const t of [n1, n2]) {
      expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }))).to.equal(ErrorCode.USER_DISABLED);
      expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'a-new-device' })), 'any device of theirs').to.equal(ErrorCode.USER_DISABLED);
    }
    expect((await cli(n2.url, ['users', 'disable', '--org', 'org-a', '--user', 'dr-lee'])).stdout, 'twice').to.match(/already/);

    const enabled = await cli(n2.url, ['users', 'enable', '--org', 'org-a', '--user', 'dr-lee']);
    expect(enabled, enabled.stderr).to.include({ code: 0 });
    expect(enabled.stdout).to.match(/enabled/);
    expect(await handshakeOutcome(n1.url, n1.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }))).to.equal('connected');
    expect(await handshakeOutcome(n2.url, n2.idp.mint({ userId: 'dr-lee', deviceId: 'lee-desk' }))).to.equal('connected');

    const audited = (await auditEntries(n1.hub)).filter((e) => e.action.startsWith('admin:'));
    expect(audited.map((e) => [e.action, e.outcome, e.userId, e.targetUserIds, e.note])).to.deep.include.members([
      ['admin:disable-user', 'ok', 'helpdesk-7', ['dr-lee'], 'disabled'],
      ['admin:disable-user', 'ok', 'helpdesk-7', ['dr-lee'], 'already'],
      ['admin:enable-user', 'ok', 'helpdesk-7', ['dr-lee'], 'enabled'],
    ]);
  });

  it('a disabled user whose broadcast a node missed is cut off at their next event (the send path re-checks), and the database flag outlives Redis', async () => {
    const t = await harness.start('real', sharedBackend(), (c) => {
      withAdmin(c);
      c.security = { corsOrigins: [], rateLimits: rateLimitsOff(), revocationRecheckMs: 100 };
    });
    const lee = await connect(t, 'dr-lee', 'lee-phone');
    expect(errorCode(await lee.call('conversation:list', {}))).to.equal('ok');
    // Only the Redis flag, no broadcast: the socket learns at its next event.
    await t.hub.security.revocations.disableUser('org-a', 'dr-lee');
    await sleep(150);
    expect(errorCode(await lee.call('conversation:list', {}))).to.equal(ErrorCode.USER_DISABLED);
    expect(await stillConnected(lee)).to.equal('io server disconnect');
    await t.hub.security.revocations.enableUser('org-a', 'dr-lee');
    // Only the database flag (as after a Redis flush): still refused at the handshake.
    await t.storage.disableUser({ orgId: 'org-a', userId: 'dr-lee', now: Date.now() });
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }))).to.equal(ErrorCode.USER_DISABLED);
  });

  it('lists users and devices (revoked, disabled, pages), revokes a device; bad input is a typed error that changes nothing', async () => {
    const t = await harness.start('real', sharedBackend(), withAdmin);
    await connect(t, 'dr-lee', 'lee-phone');
    const leeTablet = await connect(t, 'dr-lee', 'lee-tablet');
    await connect(t, 'dr-patel', 'patel-laptop');
    await connect(t, 'rn-ortiz', 'ortiz-phone');

    const revoked = await cli(t.url, ['devices', 'revoke', '--org', 'org-a', '--user', 'dr-lee', '--device', 'lee-tablet']);
    expect(revoked, revoked.stderr).to.include({ code: 0 });
    expect(await stillConnected(leeTablet)).to.equal('io server disconnect');
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-tablet' }))).to.equal(ErrorCode.AUTH_REVOKED);
    expect((await cli(t.url, ['users', 'disable', '--org', 'org-a', '--user', 'rn-ortiz'])).code).to.equal(0);

    const listed = await cli(t.url, ['--json', 'users', 'list', '--org', 'org-a']);
    expect(listed, listed.stderr).to.include({ code: 0 });
    const body = JSON.parse(listed.stdout) as AdminUsersResponse;
    expect(body.users.map((u) => u.userId)).to.deep.equal(['dr-lee', 'dr-patel', 'rn-ortiz']);
    const lee = body.users[0]!;
    expect(lee.devices.map((d) => [d.deviceId, d.revokedAt !== undefined])).to.deep.equal([
      ['lee-phone', false],
      ['lee-tablet', true],
    ]);
    expect(body.users[2]!.disabledAt).to.be.a('number');
    expect(body.users[0]!.disabledAt).to.equal(undefined);
    const human = await cli(t.url, ['users', 'list', '--org', 'org-a']);
    expect(human.stdout).to.match(/lee-tablet {2}revoked/).and.match(/rn-ortiz {2}DISABLED since/);

    const page1 = JSON.parse((await cli(t.url, ['--json', 'users', 'list', '--org', 'org-a', '--limit', '2'])).stdout) as AdminUsersResponse;
    expect([page1.users.map((u) => u.userId), page1.next]).to.deep.equal([['dr-lee', 'dr-patel'], 'dr-patel']);
    const page2 = JSON.parse((await cli(t.url, ['--json', 'users', 'list', '--org', 'org-a', '--limit', '2', '--after', 'dr-patel'])).stdout) as AdminUsersResponse;
    expect([page2.users.map((u) => u.userId), page2.next]).to.deep.equal([['rn-ortiz'], undefined]);
    expect(JSON.parse((await cli(t.url, ['--json', 'users', 'list', '--org', 'org-b'])).stdout)).to.deep.equal({ orgId: 'org-b', users: [] });

    // Refusals: typed, nothing changed, audited.
    const unknown = await cli(t.url, ['users', 'disable', '--org', 'org-a', '--user', 'dr-nobody']);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(/^curbside-admin: NOT_FOUND: /);
    const otherUsersDevice = await cli(t.url, ['devices', 'revoke', '--org', 'org-a', '--user', 'dr-patel', '--device', 'lee-phone']);
    expect(otherUsersDevice.stderr).to.match(/NOT_FOUND/);
    expect(await handshakeOutcome(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' })), 'lee-phone untouched').to.equal('connected');
    const badId = await fetch(`${t.url}/admin/users/disable`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ orgId: 'org-a', userId: { $ne: 1 } }) });
    expect([badId.status, ((await badId.json()) as { error: { code: string } }).error.code]).to.deep.equal([400, ErrorCode.INVALID_PAYLOAD]);
    const noToken = await cli(t.url, ['users', 'list', '--org', 'org-a'], { ADMIN_TOKEN: 'wrong'.padEnd(40, 'y') });
    expect([noToken.code, noToken.stderr]).to.deep.equal([1, 'curbside-admin: AUTH_REQUIRED: Operator endpoint: send Authorization: Bearer <ADMIN_TOKEN>\n']);
    const usage = await cli(t.url, ['users', 'disable', '--org', 'org-a']);
    expect([usage.code, usage.stderr.split('\n')[0]]).to.deep.equal([64, 'curbside-admin: users disable needs --user']);
    expect((await cli('http://127.0.0.1:1', ['users', 'list', '--org', 'org-a'])).code, 'unreachable hub').to.equal(69);

    const audited = (await auditEntries(t.hub)).filter((e) => e.action.startsWith('admin:'));
    expect(audited.map((e) => [e.action, e.outcome])).to.deep.include.members([
      ['admin:revoke-device', 'ok'],
      ['admin:list-users', 'ok'],
      ['admin:disable-user', ErrorCode.NOT_FOUND],
      ['admin:revoke-device', ErrorCode.NOT_FOUND],
      ['admin:disable-user', ErrorCode.INVALID_PAYLOAD],
      ['admin:list-users', ErrorCode.AUTH_REQUIRED],
    ]);
    expect(audited.find((e) => e.action === 'admin:revoke-device' && e.outcome === 'ok')).to.include({ userId: 'helpdesk-7', targetDeviceId: 'lee-tablet', orgId: 'org-a' });
  });

  it("sets a user's directory profile (the operator's value wins over the token's; '' clears it); needs at least one field", async () => {
    const t = await harness.start('real', sharedBackend(), withAdmin);
    const set = await cli(t.url, ['users', 'profile', '--org', 'org-a', '--user', 'dr-lee', '--name', 'Min Lee', '--role', 'Paediatric ID consultant']);
    expect(set, set.stderr).to.include({ code: 0 });
    expect(set.stdout).to.equal('dr-lee (org-a): Min Lee · Paediatric ID consultant\n');
    const cleared = await cli(t.url, ['--json', 'users', 'profile', '--org', 'org-a', '--user', 'dr-lee', '--role', '']);
    expect(JSON.parse(cleared.stdout)).to.deep.equal({ orgId: 'org-a', profile: { userId: 'dr-lee', displayName: 'Min Lee' } });
    expect(await t.storage.lookupProfiles('org-a', ['dr-lee'])).to.deep.equal([{ userId: 'dr-lee', displayName: 'Min Lee' }]);
    const none = await cli(t.url, ['users', 'profile', '--org', 'org-a', '--user', 'dr-lee']);
    expect(none.code).to.equal(64);
    expect(none.stderr).to.match(/^curbside-admin: users profile needs at least one of --name, --role and --department\n/);
  });

  it("shows and sets an organisation's alert intervals; the defaults are marked as such", async () => {
    const t = await harness.start('real', sharedBackend(), withAdmin);
    const shown = await cli(t.url, ['alerts', 'show', '--org', 'org-a']);
    expect(shown, shown.stderr).to.include({ code: 0 });
    expect(shown.stdout).to.equal('org-a: urgent every 120 s (default), emergent every 30 s (default), at most 30 times (default)\n');
    const set = await cli(t.url, ['alerts', 'set', '--org', 'org-a', '--urgent-ms', '60000', '--emergent-ms', '15000']);
    expect(set, set.stderr).to.include({ code: 0 });
    expect(set.stdout).to.equal('org-a: urgent every 60 s, emergent every 15 s, at most 30 times (default)\n');
    expect(await t.storage.getAlertSettings('org-a')).to.deep.equal({ urgentMs: 60_000, emergentMs: 15_000 });
    const refused = await cli(t.url, ['alerts', 'set', '--org', 'org-a', '--emergent-ms', '600000']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/INVALID_PAYLOAD: An emergent message must be re-notified at least as often as an urgent one/);
    expect(await t.storage.getAlertSettings('org-a'), 'unchanged').to.deep.equal({ urgentMs: 60_000, emergentMs: 15_000 });
    expect((await cli(t.url, ['alerts', 'set', '--org', 'org-a', '--max-repeats', 'many'])).code).to.equal(64);
    const one = await cli(t.url, ['alerts', 'set', '--org', 'org-a', '--max-repeats', '5', '--urgent-ms', 'default']);
    expect(one.stdout, 'only the fields given change').to.equal('org-a: urgent every 120 s (default), emergent every 15 s, at most 5 times\n');
  });

  it('shows care-team membership metadata (ids, roles, epoch, counts, times), never the title or messages', async () => {
    const t = await harness.start('real', sharedBackend(), withAdmin);
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const ortiz = t.client({ userId: 'rn-ortiz', deviceId: 'ortiz-phone' });
    await Promise.all([lee.connect(), patel.connect(), ortiz.connect()]);
    const title = 'Ward 4B discharge - Mr J. Smith bed 12';
    const { teamId } = await lee.teams.create(title, [{ userId: 'dr-patel', role: 'admin' }, { userId: 'rn-ortiz' }]);
    await lee.sendText(teamId, 'Potassium 6.1, repeat at 16:00');

    const shown = await cli(t.url, ['--json', 'teams', 'show', '--org', 'org-a', '--team', teamId]);
    expect(shown, shown.stderr).to.include({ code: 0 });
    const body = JSON.parse(shown.stdout) as AdminTeamsResponse;
    const team = body.teams[0]!;
    expect(team).to.include({ teamId, createdBy: 'dr-lee', statements: 1 });
    expect(team.members).to.deep.equal([
      { userId: 'dr-lee', role: 'owner' },
      { userId: 'dr-patel', role: 'admin' },
      { userId: 'rn-ortiz', role: 'member' },
    ]);
    expect(team.counts).to.deep.equal({ members: 3, owners: 1, admins: 1 });
    expect(team.epoch).to.match(/^[0-9a-f]{64}$/);
    expect(team.lastSeq).to.be.greaterThan(1);
    const byUser = await cli(t.url, ['teams', 'show', '--org', 'org-a', '--user', 'rn-ortiz']);
    expect(byUser.stdout).to.include(teamId).and.match(/3 members \(1 owner, 1 admins\)/);
    for (const out of [shown.stdout, byUser.stdout]) {
      expect(out).to.not.include('Ward 4B');
      expect(out).to.not.include('Potassium');
    }
    const missing = await cli(t.url, ['teams', 'show', '--org', 'org-b', '--team', teamId]);
    expect(missing.stderr, 'another organisation sees no such team').to.match(/NOT_FOUND/);
  });

  it('exports the audit log as NDJSON and verifies its hash chains, on the hub and offline; a changed line fails verification', async () => {
    const t = await harness.start('real', sharedBackend(), withAdmin);
    await connect(t, 'dr-lee', 'lee-phone');
    await connect(t, 'dr-patel', 'patel-laptop');
    await cli(t.url, ['users', 'list', '--org', 'org-a']);
    const dir = mkdtempSync(join(tmpdir(), 'curbside-audit-'));
    const file = join(dir, 'audit.ndjson');

    const exported = await cli(t.url, ['audit', 'export', '--out', file]);
    expect(exported, exported.stderr).to.include({ code: 0, stdout: '' });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const entries = lines.map((l) => JSON.parse(l) as AuditEntry);
    expect(entries.map((e) => e.action)).to.include.members(['handshake', 'admin:list-users']);
    for (const e of entries) expect(e).to.include.keys('chain', 'index', 'hash', 'prevHash', 'at', 'action', 'outcome');
    const orgChain = entries.find((e) => e.chain.startsWith('org-a'))!.chain;
    const oneChain = (await cli(t.url, ['audit', 'export', '--chain', orgChain])).stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEntry);
    expect(oneChain.map((e) => [e.chain, e.index])).to.deep.equal(entries.filter((e) => e.chain === orgChain).map((e, i) => [orgChain, i]));

    const onHub = await cli(t.url, ['audit', 'verify']);
    expect(onHub, onHub.stderr).to.include({ code: 0 });
    expect(onHub.stdout).to.match(/^AUDIT LOG INTACT/);
    const offline = await cli(t.url, ['audit', 'verify', '--file', file]);
    expect(offline, offline.stderr).to.include({ code: 0 });
    expect(offline.stdout).to.match(/^AUDIT LOG INTACT/);

    const tampered = lines.map((l) => l.replace('"userId":"dr-patel"', '"userId":"dr-lee"'));
    expect(tampered).to.not.deep.equal(lines);
    writeFileSync(join(dir, 'tampered.ndjson'), `${tampered.join('\n')}\n`);
    const caught = await cli(t.url, ['audit', 'verify', '--file', join(dir, 'tampered.ndjson')]);
    expect(caught.code).to.equal(1);
    expect(caught.stdout).to.match(/^AUDIT LOG TAMPERED/).and.match(/content does not match its hash/);

    const audited = (await auditEntries(t.hub)).filter((e) => e.action.startsWith('admin:'));
    expect(audited.map((e) => e.action)).to.include.members(['admin:export-audit', 'admin:verify-audit']);
  });

  it('rotates the identity provider key: old and new are accepted on every node during the window, then only the new one; a bad key file changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'curbside-keys-'));
    const keyFile = join(dir, 'idp.pem');
    const shared = sharedBackend();
    const oldIdp = shared.idp;
    const newIdp = new TestIdp();
    writeFileSync(keyFile, oldIdp.publicKeyPem);
    const useFile = (c: Parameters<typeof withAdmin>[0] & { jwt?: { keyFile?: string | undefined } | undefined }) => {
      withAdmin(c);
      c.jwt!.keyFile = keyFile;
    };
    const [n1, n2] = [await harness.start('real', shared, useFile), await harness.start('real', shared, useFile)];
    const tokenBy = (idp: TestIdp) => idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });
    expect(await handshakeOutcome(n2.url, tokenBy(newIdp)), 'the new key before the rotation').to.equal(ErrorCode.AUTH_INVALID);

    writeFileSync(keyFile, `${oldIdp.publicKeyPem}${newIdp.publicKeyPem}`);
    const reloaded = await cli(n1.url, ['--json', 'keys', 'reload']);
    expect(reloaded, reloaded.stderr).to.include({ code: 0 });
    const nodes = (JSON.parse(reloaded.stdout) as AdminKeysResponse).nodes;
    expect(nodes.map((n) => n.fingerprints.length), 'both nodes answered with two keys').to.deep.equal([2, 2]);
    for (const t of [n1, n2]) for (const idp of [oldIdp, newIdp]) expect(await handshakeOutcome(t.url, tokenBy(idp))).to.equal('connected');

    writeFileSync(keyFile, 'not a key at all');
    const refused = await cli(n2.url, ['keys', 'reload']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/INVALID_PAYLOAD: JWT_PUBLIC_KEY_FILE must be a PEM public key.*unchanged/);
    for (const idp of [oldIdp, newIdp]) expect(await handshakeOutcome(n2.url, tokenBy(idp)), 'keys unchanged').to.equal('connected');

    writeFileSync(keyFile, newIdp.publicKeyPem);
    expect((await cli(n2.url, ['keys', 'reload'])).code).to.equal(0);
    for (const t of [n1, n2]) {
      expect(await handshakeOutcome(t.url, tokenBy(oldIdp)), 'the retired key').to.equal(ErrorCode.AUTH_INVALID);
      expect(await handshakeOutcome(t.url, tokenBy(newIdp))).to.equal('connected');
    }
    const shown = await cli(n1.url, ['keys', 'show']);
    expect(shown.stdout).to.match(/file {2}RS256 {2}sha256:[0-9a-f]{32}$/m);
    // Both nodes write to the same database: one read sees every node's chains.
    await auditEntries(n2.hub);
    const audited = (await auditEntries(n1.hub)).filter((e) => e.action === 'admin:reload-keys');
    expect(audited.map((e) => e.outcome).sort()).to.deep.equal([ErrorCode.INVALID_PAYLOAD, 'ok', 'ok']);
  });
});
