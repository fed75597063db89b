/**
 * Issue #23, consult pools: a pool is a care team whose members joined themselves with a verified
 * credential, moderated by its owner and admins. Cases, replies, helpful marks and summaries are
 * sealed in the pool's messages; a moderator's `hide` is a signed statement every member verifies.
 * Tested like an attacker: no credential, a revoked one, another organisation, a member written into
 * the database. Two hub nodes on real Redis and the Mongo-wire DB.
 */
import { expect } from 'chai';
import { ClientEvent, ErrorCode } from '@curbside/shared';
import { consultThreads } from '@curbside/client-sdk';
import { HubHarness, codeOf, eventually, sharedBackend, watchClient } from '../support/hub.js';
import { withAdmin } from '../support/admin-cli.js';
import { expectNotStored } from '../support/canary.js';
import { withDb } from '../support/db.js';
import { credentialOffice } from '../support/office.js';
import { connectRaw, errorCode } from '../security/support.js';

const QUESTION = 'CONSULT-CANARY-7d21: annular plaque on the forearm, 3 weeks, not itchy, KOH negative. Thoughts?';
const REPLY = 'CONSULT-CANARY-7d21-reply: consider granuloma annulare; biopsy if it spreads';
const SUMMARY = 'CONSULT-CANARY-7d21-summary: biopsy confirmed granuloma annulare';

const watch = watchClient;

describe('consult pools: verified clinicians join, cases are threaded and moderated, the hub sees none of it (two nodes, Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('joins with a credential only, threads a case with replies, helpful marks and a summary, hides it by a moderator, moves it to a 1:1', async () => {
    const shared = sharedBackend();
    const node1 = await harness.start('real', shared, withAdmin);
    const node2 = await harness.start('real', shared, withAdmin);
    const okafor = node1.client({ userId: 'dr-okafor', deviceId: 'okafor-phone' });
    const lee = node2.client({ userId: 'dr-lee', deviceId: 'lee-laptop' });
    const patel = node1.client({ userId: 'dr-patel', deviceId: 'patel-phone' });
    const mallory = node2.client({ userId: 'dr-mallory', deviceId: 'mallory-phone' });
    const revoked = node2.client({ userId: 'dr-gone', deviceId: 'gone-phone' });
    const kim = node2.client({ userId: 'dr-kim', deviceId: 'kim-phone' });
    const outsider = node1.client({ userId: 'dr-other', deviceId: 'other-phone', orgId: 'org-b' });
    await Promise.all([okafor, lee, patel, kim, mallory, revoked, outsider].map((c) => c.connect()));
    const office = await credentialOffice(node1.url, 'org-a');
    await office.attest(okafor, 'dr-okafor', 'okafor-phone', 'Dermatology');
    await office.attest(lee, 'dr-lee', 'lee-laptop', 'General practice');
    await office.attest(patel, 'dr-patel', 'patel-phone', 'Dermatology');
    await office.attest(kim, 'dr-kim', 'kim-phone', 'Dermatology');
    await office.revoke(await office.attest(revoked, 'dr-gone', 'gone-phone', 'Dermatology'));
    const seen = { okafor: watch(okafor), lee: watch(lee), patel: watch(patel), kim: watch(kim), mallory: watch(mallory) };

    // Opening a pool takes a credential too (its owner moderates it), and so does being enrolled in one.
    expect(await codeOf(mallory.consults.create('Fake curbside'))).to.equal(ErrorCode.FORBIDDEN);
    expect(await codeOf(okafor.consults.create('Enrolled curbside', { members: ['dr-lee', 'dr-mallory'] })), 'an enrolled member without a credential').to.equal(ErrorCode.FORBIDDEN);
    const enrolled = await okafor.consults.create('Enrolled curbside', { members: ['dr-lee'] });
    expect(Object.keys((await lee.consults.pool(enrolled.poolId)).members).sort()).to.deep.equal(['dr-lee', 'dr-okafor']);
    expect(await codeOf(okafor.teams.addMember(enrolled.poolId, 'dr-mallory')), 'nor added later').to.equal(ErrorCode.FORBIDDEN);
    const { poolId } = await okafor.consults.create('Dermatology curbside', { description: 'Rashes, lesions, photos welcome' });

    const found = await lee.consults.search('dermatology');
    expect(found).to.deep.equal([{ poolId, topic: 'Dermatology curbside', memberCount: 1, member: false }]);
    expect(await lee.consults.search('cardiology')).to.deep.equal([]);
    expect(await outsider.consults.search(), 'another organisation sees no pool of this one').to.deep.equal([]);
    expect(await codeOf(outsider.consults.join(poolId)), 'nor joins it').to.equal(ErrorCode.NOT_FOUND);

    // Two clinicians join at once: one signs on a stale head, replays the log and signs again.
    await Promise.all([lee.consults.join(poolId), patel.consults.join(poolId)]);
    await kim.consults.join(poolId);
    const pool = await okafor.consults.pool(poolId);
    expect(pool.members).to.deep.equal({ 'dr-kim': 'member', 'dr-lee': 'member', 'dr-okafor': 'owner', 'dr-patel': 'member' });
    expect((await lee.consults.search('derma'))[0]).to.deep.include({ memberCount: 4, member: true });

    // No credential, or a revoked one: refused, typed, and the pool is unchanged.
    const refused = await mallory.consults.join(poolId).catch((e: unknown) => e as { code: string; details?: { reason?: string } });
    expect(refused).to.deep.include({ code: ErrorCode.FORBIDDEN });
    expect((refused as { details?: { reason?: string } }).details?.reason).to.equal('credential-required');
    expect(await codeOf(revoked.consults.join(poolId))).to.equal(ErrorCode.FORBIDDEN);
    expect(Object.keys((await patel.consults.pool(poolId)).members)).to.have.length(4);
    expect(await codeOf(mallory.consults.postCase(poolId, { question: 'x', ageBand: '40-49', sex: 'male' })), 'a non-member posts nothing').to.equal(ErrorCode.FORBIDDEN);

    // A case, two replies, the asker's helpful mark (and a bystander's, which counts for nothing), a summary.
    const asked = await lee.consults.postCase(poolId, { question: QUESTION, ageBand: '30-39', sex: 'female' });
    await eventually(() => seen.okafor.messages.some((m) => m.messageId === asked.messageId) && seen.patel.messages.some((m) => m.messageId === asked.messageId), 'the case reaches both members');
    const r1 = await okafor.consults.reply(poolId, asked.messageId, REPLY);
    const r2 = await patel.consults.reply(poolId, asked.messageId, 'Could be tinea incognito if steroids were used');
    await eventually(() => seen.lee.messages.filter((m) => m.consult?.type === 'reply').length === 2, 'both replies reach the asker');
    await patel.consults.markHelpful(poolId, asked.messageId, r2.messageId);
    await lee.consults.markHelpful(poolId, asked.messageId, r1.messageId);
    await lee.consults.close(poolId, asked.messageId, SUMMARY);
    await eventually(() => seen.kim.messages.some((m) => m.consult?.type === 'close'), 'the summary reaches the pool');
    // Kim, a member who only reads, threads everything the others sent.
    const [thread] = consultThreads(seen.kim.messages);
    expect(thread).to.deep.include({ caseId: asked.messageId, askerUserId: 'dr-lee', question: QUESTION, ageBand: '30-39', sex: 'female' });
    expect(thread!.replies.map((r) => [r.senderUserId, r.helpful])).to.deep.equal([
      ['dr-okafor', true],
      ['dr-patel', false],
    ]);
    expect(thread!.closed?.summary).to.equal(SUMMARY);
    expect(consultThreads(seen.okafor.messages)[0]!.replies.map((r) => r.messageId), 'each member threads the replies it received').to.deep.equal([r2.messageId]);

    // Moderation: a member cannot hide; the owner can, every member's device verifies it.
    expect(await codeOf(patel.consults.hide(poolId, asked.messageId))).to.equal(ErrorCode.INVALID_STATEMENT);
    await okafor.consults.hide(poolId, asked.messageId);
    await eventually(() => seen.patel.changes.some((c) => c.op === 'hide' && c.messageId === asked.messageId), 'the hide statement reaches a member');
    const hidden = (await patel.consults.pool(poolId)).hidden;
    expect(hidden).to.deep.equal([asked.messageId]);
    expect(consultThreads(seen.patel.messages, hidden), 'a hidden case is shown to nobody').to.deep.equal([]);

    // Move a case to a private conversation with one responder.
    const second = await lee.consults.postCase(poolId, { question: 'Second case: nail dystrophy, one toe', ageBand: '60-69', sex: 'male' });
    const { conversationId } = await lee.consults.moveToPrivate(poolId, { caseId: second.messageId, question: 'Second case: nail dystrophy, one toe' }, 'dr-okafor');
    await eventually(() => seen.okafor.messages.some((m) => m.conversationId === conversationId && m.consult?.type === 'moved'), 'the case reaches the responder privately');
    await eventually(() => consultThreads(seen.patel.messages, hidden).some((c) => c.caseId === second.messageId && c.movedTo?.userId === 'dr-okafor'), 'the pool sees it moved');

    // The hub never held a word of it.
    await expectNotStored(shared.dbName, ['CONSULT-CANARY-7d21']);
    for (const s of Object.values(seen)) expect(s.problems).to.deep.equal([]);
  });

  it('a member the hub writes into the database gets no case; a forged join is refused', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, withAdmin);
    const okafor = node.client({ userId: 'dr-okafor', deviceId: 'okafor-phone' });
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-laptop' });
    const mallory = node.client({ userId: 'dr-mallory', deviceId: 'mallory-phone' });
    await Promise.all([okafor, lee, mallory].map((c) => c.connect()));
    const office = await credentialOffice(node.url, 'org-a');
    await office.attest(okafor, 'dr-okafor', 'okafor-phone', 'Dermatology');
    await office.attest(lee, 'dr-lee', 'lee-laptop', 'Dermatology');
    const { poolId } = await okafor.consults.create('Dermatology curbside');
    await lee.consults.join(poolId);
    const seen = { okafor: watch(okafor), mallory: watch(mallory) };

    // A join statement signed by another device than the caller's, over a raw socket: refused.
    const raw = await connectRaw(node.url, node.idp.mint({ userId: 'dr-mallory', deviceId: 'mallory-phone' }));
    try {
      const forged = { statement: JSON.stringify({ v: 1, teamId: poolId, index: 2, prev: 'f'.repeat(64), op: 'join', actorUserId: 'dr-lee', actorDeviceId: 'lee-laptop', issuedAt: Date.now() }), signature: new Uint8Array(64) };
      expect(errorCode(await raw.call(ClientEvent.TEAM_CHANGE, { signed: forged })), 'a statement of another device').to.equal(ErrorCode.INVALID_STATEMENT);
    } finally {
      raw.close();
    }
    expect(Object.keys((await lee.consults.pool(poolId)).members)).to.have.length(2);

    // The hub's operator adds Mallory to the pool in the database: members' devices never seal for her.
    await withDb(shared.dbName, async (db) => {
      const conversations = db.collection('conversations');
      const doc = (await conversations.findOne({ conversationId: poolId }))!;
      const team = doc.team as { members: Array<{ userId: string; role: string }> };
      await conversations.updateOne({ _id: doc._id }, { $set: { memberUserIds: [...(doc.memberUserIds as string[]), 'dr-mallory'], 'team.members': [...team.members, { userId: 'dr-mallory', role: 'member' }] } });
    });
    await node.hub.directory.conversationChanged('org-a', poolId);
    const asked = await lee.consults.postCase(poolId, { question: QUESTION, ageBand: '18-29', sex: 'male' });
    expect((await okafor.consults.pool(poolId)).members, 'the verified log does not have her').to.not.have.property('dr-mallory');
    await eventually(() => seen.okafor.messages.some((m) => m.messageId === asked.messageId), 'the case reaches the real member');
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.mallory.messages.some((m) => m.messageId === asked.messageId), 'she reads nothing').to.equal(false);
  });
});
