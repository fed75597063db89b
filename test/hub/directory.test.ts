/**
 * Issue #17: the directory. Profiles (display name, role or specialty, department) come from the
 * identity provider's token claims at sign-in, or from an operator (`POST /admin/users/profile`, which
 * wins field by field), and are answered by `directory:lookup` / `directory:search` within the caller's
 * organisation only, through the SDK's `client.directory`. Real Redis and the Mongo-wire DB.
 */
import { expect } from 'chai';
import { ClientEvent, ErrorCode, Limits, type DirectoryResult } from '@curbside/shared';
import { codeOf, sharedBackend } from '../support/hub.js';
import { connectRaw, errorCode, rawHubs } from '../security/support.js';

const ADMIN = 'directory-operator-secret-'.padEnd(40, 'z');
const patelClaims = { name: 'Anita Patel', profile_role: 'Cardiology registrar', department: 'Cardiology' };

describe('directory: names, roles and departments instead of user ids (Redis + Mongo-wire DB)', function () {
  const { harness, open } = rawHubs();

  it('a profile stated by a sign-in token is found by others of the organisation, by id and by search; never by another organisation', async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const patel = node1.client({ userId: 'dr-patel', deviceId: 'patel-phone', claims: patelClaims }, { e2ee: false });
    await patel.connect();
    const ortiz = node2.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' }, { e2ee: false });
    await ortiz.connect();

    expect(await ortiz.directory.lookup(['dr-patel', 'rn-ortiz', 'nobody'])).to.deep.equal([
      { userId: 'dr-patel', displayName: 'Anita Patel', role: 'Cardiology registrar', department: 'Cardiology' },
      { userId: 'rn-ortiz' },
      { userId: 'nobody' },
    ]);
    expect(ortiz.directory.cached('dr-patel')?.displayName).to.equal('Anita Patel');
    expect((await ortiz.directory.search('cardiology REG')).map((p) => p.userId)).to.deep.equal(['dr-patel']);
    expect(await ortiz.directory.search('neurology')).to.deep.equal([]);

    // The same user id in another organisation is another person; org-a's profile is not theirs to see.
    const outsider = node1.client({ userId: 'dr-other', deviceId: 'other-phone', orgId: 'org-b' }, { e2ee: false });
    await outsider.connect();
    expect(await outsider.directory.lookup(['dr-patel'])).to.deep.equal([{ userId: 'dr-patel' }]);
    expect(await outsider.directory.search('patel')).to.deep.equal([]);
  });

  it('a later token restates the profile; one with no profile claims changes nothing; claims with control characters are not stored', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared);
    const first = node.client({ userId: 'dr-patel', deviceId: 'patel-phone', claims: patelClaims }, { e2ee: false });
    await first.connect();
    first.disconnect();
    const promoted = node.client({ userId: 'dr-patel', deviceId: 'patel-laptop', claims: { ...patelClaims, profile_role: 'Cardiology consultant', department: 'Bad\u0000Dept' } }, { e2ee: false });
    await promoted.connect();
    const bare = node.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { e2ee: false });
    await bare.connect();
    expect(await bare.directory.profile('dr-patel')).to.deep.equal({ userId: 'dr-patel', displayName: 'Anita Patel', role: 'Cardiology consultant' });
  });

  it("an operator's profile wins over the token's, field by field, and '' hands the field back to the token; every call is audited", async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, (c) => (c.adminToken = ADMIN));
    const patel = node.client({ userId: 'dr-patel', deviceId: 'patel-phone', claims: patelClaims }, { e2ee: false });
    await patel.connect();
    const post = async (body: unknown) => {
      const res = await fetch(`${node.url}/admin/users/profile`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const set = await post({ orgId: 'org-a', userId: 'dr-patel', role: 'Interventional cardiology fellow', by: 'helpdesk-7' });
    expect(set).to.deep.equal({
      status: 200,
      body: { orgId: 'org-a', profile: { userId: 'dr-patel', displayName: 'Anita Patel', role: 'Interventional cardiology fellow', department: 'Cardiology' } },
    });
    expect((await patel.directory.profile('dr-patel')).role).to.equal('Interventional cardiology fellow');
    const cleared = await post({ orgId: 'org-a', userId: 'dr-patel', role: '' });
    expect((cleared.body.profile as { role?: string }).role).to.equal('Cardiology registrar');
    expect((await patel.directory.lookup(['dr-patel'], { fresh: true }))[0]?.role).to.equal('Cardiology registrar');

    // Bad input changes nothing and says why.
    expect((await post({ orgId: 'org-a', userId: 'dr-patel' })).body.error).to.include({ code: ErrorCode.INVALID_PAYLOAD });
    expect((await post({ orgId: 'org-a', userId: 'dr-patel', displayName: 'x'.repeat(Limits.MAX_PROFILE_FIELD_LENGTH + 1) })).body.error).to.include({ code: ErrorCode.PAYLOAD_TOO_LARGE });
    expect((await post({ orgId: 'org-a', userId: 'dr-patel', displayName: 'Line\nbreak' })).body.error).to.include({ code: ErrorCode.INVALID_PAYLOAD });
    const noToken = await fetch(`${node.url}/admin/users/profile`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orgId: 'org-a', userId: 'dr-patel', role: 'Janitor' }) });
    expect(noToken.status).to.equal(401);
    expect((await patel.directory.lookup(['dr-patel'], { fresh: true }))[0]).to.deep.equal({ userId: 'dr-patel', ...{ displayName: 'Anita Patel', role: 'Cardiology registrar', department: 'Cardiology' } });

    node.hub.security.flushAudit();
    await node.hub.audit.flush();
    const entries = (await Promise.all((await node.hub.audit.chains()).map((c) => node.hub.audit.entries(c, -1, 10_000)))).flat();
    const profileCalls = entries.filter((e) => e.action === 'admin:set-user-profile').map((e) => e.outcome);
    expect(profileCalls).to.have.members(['ok', 'ok', ErrorCode.INVALID_PAYLOAD, ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.INVALID_PAYLOAD, ErrorCode.AUTH_REQUIRED]);
  });

  it('malformed directory requests get typed errors', async () => {
    const node = await harness.start('real');
    const raw = await connectRaw(node.url, node.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    open.push(raw);
    const codes = async (event: string, payload: unknown) => errorCode(await raw.call<DirectoryResult>(event, payload));
    expect(await codes(ClientEvent.DIRECTORY_SEARCH, { query: '' })).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await codes(ClientEvent.DIRECTORY_SEARCH, { query: 'x'.repeat(Limits.MAX_DIRECTORY_QUERY_LENGTH + 1) })).to.be.oneOf([ErrorCode.INVALID_PAYLOAD, ErrorCode.PAYLOAD_TOO_LARGE]);
    expect(await codes(ClientEvent.DIRECTORY_SEARCH, { query: 'lee', limit: Limits.MAX_DIRECTORY_RESULTS + 1 })).to.be.oneOf([ErrorCode.INVALID_PAYLOAD, ErrorCode.PAYLOAD_TOO_LARGE]);
    expect(await codes(ClientEvent.DIRECTORY_SEARCH, { query: 'lee', orgId: 'org-b' })).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await codes(ClientEvent.DIRECTORY_LOOKUP, { userIds: [] })).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(await codes(ClientEvent.DIRECTORY_LOOKUP, { userIds: Array.from({ length: Limits.MAX_KEY_QUERY_USERS + 1 }, (_, i) => `u${i}`) })).to.be.oneOf([ErrorCode.INVALID_PAYLOAD, ErrorCode.PAYLOAD_TOO_LARGE]);
    expect(await codes(ClientEvent.DIRECTORY_LOOKUP, { userIds: ['a:b\u0000'] })).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect(errorCode(await raw.call(ClientEvent.DIRECTORY_SEARCH, { query: 'lee' }))).to.equal('ok');
    const sdk = node.client({ userId: 'dr-lee', deviceId: 'lee-laptop' }, { e2ee: false });
    await sdk.connect();
    expect(await codeOf(sdk.directory.search('   '))).to.equal(ErrorCode.INVALID_PAYLOAD);
  });
});
