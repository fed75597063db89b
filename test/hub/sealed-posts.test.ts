/**
 * Issue #23, pseudonymous cases over sealed sender: a clinician posts a case to a consult pool as "a
 * verified dermatologist", with a one-time token the office signed blind (through the real CLI), over a
 * request without an access token. Members verify the token and the post's signature, thread the case,
 * and see the asker's follow-ups as the asker's; nothing stored, delivered, logged or audited names the
 * poster. Attacked like a stranger would: replays, a token spent twice, forged tokens and signatures,
 * a flipped byte, another pool, a stale device list, a reserved id. Two hub nodes, real Redis and the
 * Mongo-wire DB.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ErrorCode,
  SEALED_POST_PATH,
  SEALED_SENDER,
  encodeSealedPost,
  pseudonymNullifier,
  sealedPostRequestBody,
  sealedPostSignedBytes,
  toBase64Url,
  type SealedPostHeader,
} from '@curbside/shared';
import { consultThreads, type CurbsideClient, type PseudonymHandle } from '@curbside/client-sdk';
import { HubHarness, codeOf, eventually, sharedBackend, watchClient } from '../support/hub.js';
import { cli, withAdmin } from '../support/admin-cli.js';
import { expectNotStored } from '../support/canary.js';
import { withDb } from '../support/db.js';
import { credentialOffice } from '../support/office.js';
import mongoose from 'mongoose';
import { unpackShares } from '../../server/src/adapters/mongo/shares.js';

const QUESTION = 'SEALED-CANARY-51c9: 40s, violaceous papules on the shins after a new drug. Anyone seen this?';
const ASKER_REPLY = 'SEALED-CANARY-51c9-asker: started allopurinol 2 weeks ago';
const SUMMARY = 'SEALED-CANARY-51c9-summary: drug reaction, stopped, resolved';

const watch = watchClient;

/** POST a sealed post as anyone on the network could: no access token. */
async function post(url: string, body: unknown): Promise<{ status: number; json: { error?: { code: string }; messageId?: string; duplicate?: boolean; seq?: number } }> {
  const res = await fetch(`${url}${SEALED_POST_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as never };
}

/** A sealed post made by hand (the hub never opens the sealed part: any bytes do for its checks). */
async function handMade(input: {
  handle: Pick<PseudonymHandle, 'token' | 'sign'>;
  kind: SealedPostHeader['kind'];
  orgId: string;
  poolId: string;
  epoch: string;
  recipients: Array<{ deviceId: string; ciphertext: Uint8Array }>;
  clientMessageId?: string;
  sealed?: Uint8Array;
  sentAt?: number;
}) {
  const sealed = input.sealed ?? new Uint8Array(64).fill(7);
  const clientMessageId = input.clientMessageId ?? (input.kind === 'case' ? await pseudonymNullifier(input.handle.token) : globalThis.crypto.randomUUID());
  const sentAt = input.sentAt ?? Date.now();
  const signature = toBase64Url(input.handle.sign(await sealedPostSignedBytes({ orgId: input.orgId, poolId: input.poolId, clientMessageId, epoch: input.epoch, kind: input.kind, sentAt, sealed })));
  const body = encodeSealedPost({ v: 1, kind: input.kind, token: input.handle.token, sentAt, signature }, sealed);
  return sealedPostRequestBody({ orgId: input.orgId, poolId: input.poolId, clientMessageId, epoch: input.epoch, body, recipients: input.recipients });
}

/** Two hub nodes on one backend, the organisation's credentialing office, and Okafor, Lee, Mallory (and Patel) connected. */
async function twoNodes(harness: HubHarness, withPatel: boolean) {
  const shared = sharedBackend();
  const node1 = await harness.start('real', shared, withAdmin);
  const node2 = await harness.start('real', shared, withAdmin);
  const clients = {
    okafor: node1.client({ userId: 'dr-okafor', deviceId: 'okafor-phone' }),
    lee: node2.client({ userId: 'dr-lee', deviceId: 'lee-laptop' }),
    mallory: node2.client({ userId: 'dr-mallory', deviceId: 'mallory-phone' }),
    patel: withPatel ? node1.client({ userId: 'dr-patel', deviceId: 'patel-phone' }) : undefined,
  };
  await Promise.all(Object.values(clients).map((c) => c?.connect()));
  return { shared, node1, node2, clients: clients as typeof clients & { patel: CurbsideClient }, office: await credentialOffice(node1.url, 'org-a') };
}

describe('pseudonymous cases over sealed sender: verified, unlinkable, and refused when forged or replayed (two nodes, Redis + Mongo-wire DB)', function () {
  this.timeout(180_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('a pseudonymous case verifies for every member, threads with the asker’s follow-ups, and names the asker nowhere', async () => {
    const { shared, node1, node2, clients, office } = await twoNodes(harness, true);
    const { okafor, lee, patel, mallory } = clients;
    for (const [c, u, d] of [
      [okafor, 'dr-okafor', 'okafor-phone'],
      [lee, 'dr-lee', 'lee-laptop'],
      [patel, 'dr-patel', 'patel-phone'],
    ] as const) {
      await office.attest(c, u, d, 'Dermatology');
    }
    const seen = { okafor: watch(okafor), lee: watch(lee), patel: watch(patel), mallory: watch(mallory) };
    const { poolId } = await patel.consults.create('Dermatology curbside');
    await okafor.consults.join(poolId);
    await lee.consults.join(poolId);
    await eventually(async () => Object.keys((await patel.consults.pool(poolId)).members).length === 3, 'the pool has three members');

    // The office makes a token key through the real CLI and signs okafor's request blind.
    const keysDir = mkdtempSync(join(tmpdir(), 'curbside-token-keys-'));
    const run = async (args: string[]) => {
      const r = await cli(node1.url, ['--json', ...args]);
      expect(r.code, r.stderr).to.equal(0);
    };
    await run(['credentials', 'pseudonym-key', '--org', 'org-a', '--key', office.keyFile, '--epoch', '2026-12', '--specialty', 'Dermatology', '--per-user', '6', '--days', '30', '--out', keysDir]);
    await okafor.pseudonyms.request(6);
    await run(['credentials', 'sign-pseudonyms', '--org', 'org-a', '--key', office.keyFile, '--keys', keysDir]);
    expect(await okafor.pseudonyms.collect()).to.equal(6);

    // Without a token left, or with an image, a pseudonymous case is refused before anything is sent.
    expect(await codeOf(lee.consults.postCase(poolId, { question: 'no token', ageBand: '40-49', sex: 'female' }, { pseudonymous: true }))).to.equal(ErrorCode.FORBIDDEN);
    expect(await codeOf(okafor.consults.postCase(poolId, { question: 'with image', ageBand: '40-49', sex: 'female', image: { input: new Uint8Array([0xff, 0xd8, 0xff]) } }, { pseudonymous: true }))).to.equal(ErrorCode.INVALID_PAYLOAD);

    const ack = await okafor.consults.postCase(poolId, { question: QUESTION, ageBand: '40-49', sex: 'female' }, { pseudonymous: true });
    expect(ack.duplicate).to.equal(false);
    expect(await okafor.consults.askedPseudonymously(ack.messageId)).to.equal(true);
    expect(await lee.consults.askedPseudonymously(ack.messageId)).to.equal(false);
    const caseOf = (w: ReturnType<typeof watch>) => w.messages.find((m) => m.messageId === ack.messageId);
    await eventually(() => [seen.lee, seen.patel, seen.okafor].every((w) => caseOf(w) !== undefined), 'every member opened the case', 20_000);
    for (const w of [seen.lee, seen.patel]) {
      const m = caseOf(w)!;
      expect([m.text, m.senderUserId, m.senderDeviceId, m.outgoing]).to.deep.equal([QUESTION, SEALED_SENDER, SEALED_SENDER, false]);
      expect(m.pseudonym).to.deep.include({ specialty: 'Dermatology', epoch: '2026-12', mine: false });
    }
    expect(caseOf(seen.okafor)!.pseudonym!.mine, 'the asker’s own device knows the case is its own').to.equal(true);
    expect(caseOf(seen.okafor)!.outgoing).to.equal(true);
    expect(seen.mallory.messages, 'a non-member gets nothing').to.have.length(0);

    // Lee replies by name; the asker answers, marks it helpful and closes, all still pseudonymous.
    const leeReply = await lee.consults.reply(poolId, ack.messageId, 'Lichenoid drug eruption? Any new medication?');
    const askerReply = await okafor.consults.reply(poolId, ack.messageId, ASKER_REPLY);
    await okafor.consults.markHelpful(poolId, ack.messageId, leeReply.messageId);
    await okafor.consults.close(poolId, ack.messageId, SUMMARY);
    expect(await codeOf(okafor.consults.moveToPrivate(poolId, { caseId: ack.messageId, question: QUESTION }, 'dr-lee')), 'moving would unmask the asker').to.equal(ErrorCode.INVALID_PAYLOAD);
    await eventually(() => seen.patel.messages.some((m) => m.consult?.type === 'close'), 'patel has the summary', 20_000);
    const [thread] = consultThreads(seen.patel.messages);
    expect(thread).to.deep.include({ caseId: ack.messageId, askerUserId: SEALED_SENDER, question: QUESTION });
    expect(thread!.pseudonym!.specialty).to.equal('Dermatology');
    expect(thread!.closed?.summary).to.equal(SUMMARY);
    expect(thread!.replies.map((r) => [r.messageId, r.senderUserId, r.helpful])).to.deep.equal([
      [leeReply.messageId, 'dr-lee', true],
      [askerReply.messageId, SEALED_SENDER, false],
    ]);
    expect(thread!.replies[1]!.pseudonym!.key, 'the asker’s follow-up carries the case’s key').to.equal(thread!.pseudonym!.key);

    // A second case by the same clinician shares nothing with the first but the specialty and epoch.
    const second = await okafor.consults.postCase(poolId, { question: 'second case', ageBand: 'child', sex: 'male' }, { pseudonymous: true });
    await eventually(() => seen.lee.messages.some((m) => m.messageId === second.messageId), 'lee opened the second case', 20_000);
    const [first, again] = [caseOf(seen.lee)!, seen.lee.messages.find((m) => m.messageId === second.messageId)!];
    expect(again.pseudonym!.key).to.not.equal(first.pseudonym!.key);
    expect(again.pseudonym!.specialty).to.equal(first.pseudonym!.specialty);

    // Nothing names the asker: not the stored envelopes, not what readers receive, not the audit log, not the logs.
    const identityKey = await okafor.credentials.myIdentityKey();
    const identityForms = [identityKey, Buffer.from(identityKey, 'base64url').toString('base64'), Buffer.from(identityKey, 'base64url').toString('hex')];
    const names = ['dr-okafor', 'okafor-phone', ...identityForms];
    const sealedDocs = await withDb(shared.dbName, (db) => db.collection('envelopes').find({ senderDeviceId: SEALED_SENDER }).toArray());
    expect(sealedDocs.length, 'two cases and three follow-ups').to.equal(5);
    for (const doc of sealedDocs) {
      // Every member device gets a share (the asker's among them): the list singles out nobody.
      const { shares, deliverTo, ...rest } = doc as unknown as { shares: mongoose.mongo.Binary; deliverTo: string[] };
      const recipients = unpackShares(shares.value())!;
      expect(recipients.map((r) => r.deviceId).sort()).to.deep.equal(['lee-laptop', 'okafor-phone', 'patel-phone']);
      expect([...deliverTo].sort()).to.deep.equal(['lee-laptop', 'okafor-phone', 'patel-phone']);
      const text = JSON.stringify(rest) + JSON.stringify(recipients.map((r) => ({ ...r, deviceId: undefined })));
      for (const n of names) expect(text.includes(n), `a sealed envelope at rest holds ${n}`).to.equal(false);
      expect(doc.senderUserId).to.equal(SEALED_SENDER);
    }
    const received = seen.lee.envelopes.filter((e) => e.senderDeviceId === SEALED_SENDER);
    expect(received.length).to.be.greaterThan(0);
    for (const e of received) {
      const text = JSON.stringify({ ...e, body: e.body && Buffer.from(e.body).toString('latin1'), ciphertext: e.ciphertext && Buffer.from(e.ciphertext).toString('latin1') });
      expect(e.senderUserId).to.equal(SEALED_SENDER);
      for (const n of names) expect(text.includes(n), `what a reader receives holds ${n}`).to.equal(false);
    }
    await node1.hub.audit.flush();
    await node2.hub.audit.flush();
    const stored = await withDb(shared.dbName, (db) => db.collection('audit_log').find({}).toArray());
    // As stored: blocks of entries (one JSON text each), each entry read on its own.
    const audit = stored.flatMap((block) => JSON.parse(block.entries as string) as unknown[]);
    const postEntries = audit.filter((a) => JSON.stringify(a).includes('pool:sealed-post'));
    expect(postEntries.length, 'the posts are audited').to.be.greaterThan(0);
    for (const entry of postEntries) {
      const text = JSON.stringify(entry);
      for (const n of names) expect(text.includes(n), `an audit entry of a sealed post holds ${n}`).to.equal(false);
      expect(text, 'a sealed post’s audit entry keeps no client address').to.not.match(/"ip":/);
    }
    for (const node of [node1, node2]) {
      for (const line of node.logs.text().split('\n').filter((l) => l.includes(ack.messageId))) {
        for (const n of names) expect(line.includes(n), `a log line about the case holds ${n}`).to.equal(false);
      }
    }
    await expectNotStored(shared.dbName, [QUESTION, ASKER_REPLY, SUMMARY]);
    for (const w of Object.values(seen)) expect(w.problems).to.deep.equal([]);

    // Reading a pseudonymous case pinned the office key on Patel's device (first use; Patel never checked a
    // credential): a key the hub presents later is another key, not the one tokens are checked against.
    const swapped = Buffer.alloc(32, 9).toString('base64url');
    await withDb(shared.dbName, (db) => db.collection('credential_keys').updateOne({ _id: 'org-a' as never }, { $set: { publicKey: swapped } }));
    expect(await patel.credentials.orgKey()).to.deep.include({ publicKey: office.publicKey, hubPresents: swapped });
  });

  it('refuses replays, a spent token, forged tokens and signatures, a flipped byte, another pool or organisation, and keeps the token through a stale device list', async () => {
    const { shared, node1, node2, clients, office } = await twoNodes(harness, false);
    const { okafor, lee } = clients; // Mallory is connected: her device, of no member, makes a stale list below
    await office.attest(okafor, 'dr-okafor', 'okafor-phone', 'Dermatology');
    await office.attest(lee, 'dr-lee', 'lee-laptop', 'Dermatology');
    const { poolId } = await lee.consults.create('Dermatology curbside');
    await okafor.consults.join(poolId);
    const other = await lee.consults.create('Paediatric ID');
    const keysDir = mkdtempSync(join(tmpdir(), 'curbside-token-keys-'));
    for (const args of [
      ['credentials', 'pseudonym-key', '--org', 'org-a', '--key', office.keyFile, '--epoch', '2026-12', '--specialty', 'Dermatology', '--per-user', '8', '--days', '30', '--out', keysDir],
      ['credentials', 'sign-pseudonyms', '--org', 'org-a', '--key', office.keyFile, '--keys', keysDir],
    ]) {
      if (args[1] === 'sign-pseudonyms') await okafor.pseudonyms.request(8);
      const r = await cli(node1.url, ['--json', ...args]);
      expect(r.code, r.stderr).to.equal(0);
    }
    expect(await okafor.pseudonyms.collect()).to.equal(8);
    const seenLee = watch(lee);

    const ack = await okafor.consults.postCase(poolId, { question: 'a real case', ageBand: '60-69', sex: 'male' }, { pseudonymous: true });
    const stored = await withDb(shared.dbName, (db) => db.collection('envelopes').findOne({ senderDeviceId: SEALED_SENDER }));
    expect(stored, 'the case is stored').to.not.equal(null);
    const epoch = stored!.epoch as string;
    const share = (deviceId: string) => ({ deviceId, ciphertext: new Uint8Array(80).fill(1) });
    const recipients = [share('okafor-phone'), share('lee-laptop')];
    const asStored = {
      orgId: 'org-a',
      poolId,
      clientMessageId: stored!.clientMessageId as string,
      epoch,
      body: toBase64Url(new Uint8Array((stored!.body as { buffer: Uint8Array }).buffer)),
      recipients: unpackShares((stored!.shares as mongoose.mongo.Binary).value())!.map((r) => ({ deviceId: r.deviceId, ciphertext: toBase64Url(r.ciphertext) })),
    };

    // The same request again (a retry, or a replay): the same message, nothing new.
    const replay = await post(node2.url, asStored);
    expect([replay.status, replay.json.messageId, replay.json.duplicate]).to.deep.equal([200, ack.messageId, true]);
    // To another pool: the signature names the pool.
    expect((await post(node1.url, { ...asStored, poolId: other.poolId })).json.error?.code).to.equal(ErrorCode.BAD_SIGNATURE);
    // A flipped byte of the sealed part: the signature covers its hash.
    const flipped = Buffer.from(asStored.body, 'base64url');
    flipped[flipped.length - 1]! ^= 1;
    expect((await post(node1.url, { ...asStored, body: flipped.toString('base64url') })).json.error?.code).to.equal(ErrorCode.BAD_SIGNATURE);
    // Once the hub swept the case (an attacker deleting it does as well), the token is still spent.
    await withDb(shared.dbName, (db) => db.collection('envelopes').deleteOne({ senderDeviceId: SEALED_SENDER, clientMessageId: asStored.clientMessageId }));
    const afterSweep = await post(node1.url, asStored);
    expect(afterSweep.json.error?.code).to.equal(ErrorCode.PSEUDONYM_SPENT);
    const [replayed, placeholder] = await withDb(shared.dbName, (db) =>
      Promise.all([db.collection('envelopes').countDocuments({ senderDeviceId: SEALED_SENDER, clientMessageId: asStored.clientMessageId }), db.collection('envelopes').findOne({ senderDeviceId: SEALED_SENDER, clientMessageId: { $regex: '^withdrawn-' } })]),
    );
    expect(replayed, 'the replay was taken back before anyone heard of it').to.equal(0);
    expect(placeholder, 'its seq is kept by a placeholder').to.not.equal(null);
    expect(Object.keys(placeholder!)).to.not.include('body');

    // A stale device list (a device of a non-member) is refused, and the token is not spent by it.
    const handle = (await okafor.pseudonyms.take())!;
    const stale = await handMade({ handle, kind: 'case', orgId: 'org-a', poolId, epoch, recipients: [...recipients, share('mallory-phone')] });
    const staleAnswer = await post(node1.url, stale);
    expect(staleAnswer.json.error?.code).to.equal(ErrorCode.DEVICE_LIST_STALE);
    const fixed = await post(node1.url, await handMade({ handle, kind: 'case', orgId: 'org-a', poolId, epoch, recipients }));
    expect([fixed.status, fixed.json.duplicate]).to.deep.equal([200, false]);
    await handle.consume();

    // A case whose client message id is not its token's nullifier; a post from the past; an epoch not the pool's.
    // (take() gives the same token until it is consumed; a consumed handle still signs.)
    const next = (await okafor.pseudonyms.take())!;
    await next.consume();
    expect((await post(node1.url, await handMade({ handle: next, kind: 'case', orgId: 'org-a', poolId, epoch, recipients, clientMessageId: 'my-own-id' }))).json.error?.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect((await post(node1.url, await handMade({ handle: next, kind: 'case', orgId: 'org-a', poolId, epoch, recipients, sentAt: Date.now() - 10 * 60_000 }))).json.error?.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect((await post(node1.url, await handMade({ handle: next, kind: 'case', orgId: 'org-a', poolId, epoch: 'a'.repeat(64), recipients }))).json.error?.code).to.equal(ErrorCode.STALE_EPOCH);
    // Signed by another key than the token's; a token whose RSA signature is edited.
    const otherKey = (await okafor.pseudonyms.take())!;
    await otherKey.consume();
    expect(otherKey.token.message).to.not.equal(next.token.message);
    expect((await post(node1.url, await handMade({ handle: { token: next.token, sign: otherKey.sign }, kind: 'case', orgId: 'org-a', poolId, epoch, recipients }))).json.error?.code).to.equal(ErrorCode.BAD_SIGNATURE);
    const sig = Buffer.from(next.token.signature, 'base64url');
    sig[10]! ^= 1;
    expect((await post(node1.url, await handMade({ handle: { token: { ...next.token, signature: sig.toString('base64url') }, sign: next.sign }, kind: 'case', orgId: 'org-a', poolId, epoch, recipients }))).json.error?.code).to.equal(ErrorCode.BAD_SIGNATURE);
    // Another organisation (its office signed no such token); a pool id the organisation does not
    // have (the token is kept); malformed and oversized bodies.
    expect((await post(node1.url, await handMade({ handle: next, kind: 'case', orgId: 'org-b', poolId, epoch, recipients }))).json.error?.code).to.equal(ErrorCode.BAD_SIGNATURE);
    expect((await post(node1.url, await handMade({ handle: next, kind: 'case', orgId: 'org-a', poolId: 'no-such-pool', epoch, recipients }))).json.error?.code).to.equal(ErrorCode.NOT_FOUND);
    expect((await post(node1.url, { ...asStored, body: toBase64Url(new Uint8Array([1, 2, 3, 4, 5])) })).json.error?.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect((await post(node1.url, { orgId: 'org-a' })).json.error?.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    expect((await post(node1.url, { ...asStored, body: 'A'.repeat(700_000) })).status).to.equal(413);
    // A follow-up with a token that posted no case is refused, and that token cannot post a case afterwards.
    expect((await post(node1.url, await handMade({ handle: otherKey, kind: 'follow-up', orgId: 'org-a', poolId, epoch, recipients }))).json.error?.code).to.equal(ErrorCode.FORBIDDEN);
    expect((await post(node1.url, await handMade({ handle: otherKey, kind: 'case', orgId: 'org-a', poolId, epoch, recipients }))).json.error?.code).to.equal(ErrorCode.PSEUDONYM_SPENT);
    // The token the refusals above did not spend still posts.
    const good = await post(node2.url, await handMade({ handle: next, kind: 'case', orgId: 'org-a', poolId, epoch, recipients }));
    expect([good.status, good.json.duplicate]).to.deep.equal([200, false]);

    // Lee's device refuses what does not open (the hand-made posts carry junk shares) and shows only real cases.
    await eventually(() => seenLee.messages.some((m) => m.messageId === ack.messageId), 'lee opened the real case', 20_000);
    expect(seenLee.messages.filter((m) => m.senderUserId === SEALED_SENDER).map((m) => m.messageId)).to.deep.equal([ack.messageId]);

    // No account may take the reserved sender's id.
    const impostor = node1.client({ userId: SEALED_SENDER, deviceId: 'x-phone' });
    expect(await codeOf(impostor.connect())).to.equal(ErrorCode.AUTH_INVALID);
    const impostorDevice = node1.client({ userId: 'dr-x', deviceId: SEALED_SENDER });
    expect(await codeOf(impostorDevice.connect())).to.equal(ErrorCode.AUTH_INVALID);
  });
});
