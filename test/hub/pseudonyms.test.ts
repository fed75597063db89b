/**
 * Issue #23, pseudonymous posting: tokens issued through the real `curbside-admin` CLI (the office's
 * token key, its blind signatures) to a clinician's SDK, verified by another clinician and spent by the
 * hub's `verifyAndSpend`. Nothing the hub stores, logs or audits before a token is spent contains it,
 * and what it stores about requests cannot be turned into the token. Forgeries, double spends, the
 * per-user cap, epoch revocation, an uncertified key and a request without a credential are refused.
 * Real Redis and the Mongo-wire DB.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { canonicalJson, pseudonymRequestMessage, verifyPseudonymToken, type PseudonymToken } from '@curbside/shared';
import type { CurbsideClient } from '@curbside/client-sdk';
import { HubHarness, sharedBackend } from '../support/hub.js';
import { cli, withAdmin } from '../support/admin-cli.js';
import { withDb } from '../support/db.js';
import { loadCredentialKey } from '../../server/src/cli/credentials.js';

async function refusal(p: Promise<unknown>): Promise<{ code?: string; details?: Record<string, unknown>; message?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; details?: Record<string, unknown> };
  }
  throw new Error('expected a refusal');
}

/** Every document of every collection, as one string. */
async function everythingStored(dbName: string): Promise<string> {
  return withDb(dbName, async (db) => {
    const parts: string[] = [];
    for (const c of await db.listCollections().toArray()) {
      if (c.type === 'view') continue;
      for (const d of await db.collection(c.name).find({}).toArray()) parts.push(JSON.stringify(d));
    }
    return parts.join('\n');
  });
}

describe('pseudonymous posting: blind-signed one-time tokens from the credentialing office (Redis + Mongo-wire DB)', function () {
  this.timeout(120_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('issues through the CLI; a token verifies, leaks to nothing stored, logged or audited, spends once; forgeries, caps, revocation and uncredentialed requests are refused', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, withAdmin);
    const okafor = node.client({ userId: 'dr-okafor', deviceId: 'okafor-phone' });
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-laptop' });
    await Promise.all([okafor, lee].map((c: CurbsideClient) => c.connect()));
    const dir = mkdtempSync(join(tmpdir(), 'curbside-office-'));
    const keyFile = join(dir, 'office.pem');
    const keysDir = mkdtempSync(join(tmpdir(), 'curbside-token-keys-'));
    const run = async (args: string[]) => {
      const r = await cli(node.url, ['--json', ...args]);
      return { ...r, json: r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined };
    };
    const ok = async (args: string[]) => {
      const r = await run(args);
      expect(r.code, r.stderr).to.equal(0);
      return r.json!;
    };
    await ok(['credentials', 'keygen', '--out', keyFile]);
    await ok(['credentials', 'publish-key', '--org', 'org-a', '--key', keyFile]);
    await ok(['credentials', 'issue', '--org', 'org-a', '--key', keyFile, '--user', 'dr-okafor', '--device', 'okafor-phone', '--identity-key', await okafor.credentials.myIdentityKey(), '--name', 'Ada Okafor', '--specialty', 'Dermatology', '--licence', 'GMC 7654321', '--institution', 'St Elsewhere', '--days', '30']);
    const office = await loadCredentialKey(keyFile);

    // No token key yet; then the office makes one (3 tokens per clinician this epoch).
    expect((await refusal(okafor.pseudonyms.request(2))).code).to.equal('NOT_FOUND');
    const made = await ok(['credentials', 'pseudonym-key', '--org', 'org-a', '--key', keyFile, '--epoch', '2026-12', '--specialty', 'Dermatology', '--per-user', '3', '--days', '30', '--out', keysDir]);
    expect(made).to.deep.include({ epoch: '2026-12', specialty: 'Dermatology', perUser: 3, changed: true });

    // A key certificate signed by another key is refused by the hub.
    const rogueFile = join(dir, 'rogue.pem');
    await ok(['credentials', 'keygen', '--out', rogueFile]);
    const rogueKey = await run(['credentials', 'pseudonym-key', '--org', 'org-a', '--key', rogueFile, '--epoch', '2026-13', '--specialty', 'Dermatology', '--out', mkdtempSync(join(tmpdir(), 'curbside-rogue-'))]);
    expect([rogueKey.code, rogueKey.stderr]).to.deep.equal([1, 'curbside-admin: BAD_SIGNATURE: The signature does not verify under the organisation’s credentialing key\n']);

    // Without a credential: the SDK does not ask, and the hub refuses a request made anyway.
    expect((await refusal(lee.pseudonyms.request(1))).code).to.equal('FORBIDDEN');
    const leeRequest = canonicalJson({ v: 1, type: 'pseudonym-request', requestId: 'lee-1', orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-laptop', epoch: '2026-12', specialty: 'Dermatology', blinded: ['A'.repeat(342)], createdAt: Date.now() });
    const leeRefused = await refusal(lee.hub.pseudonymRequest({ request: leeRequest, signature: 'A'.repeat(86) }));
    expect([leeRefused.code, leeRefused.details?.reason]).to.deep.equal(['FORBIDDEN', 'credential']);
    const wrongSize = leeRequest.replace('A'.repeat(342), 'A'.repeat(400));
    expect((await refusal(lee.hub.pseudonymRequest({ request: wrongSize, signature: 'A'.repeat(86) }))).code, 'a blinded message not the size of the modulus').to.equal('INVALID_PAYLOAD');

    // Okafor asks for two; the office checks and signs; the SDK finishes and keeps them.
    const asked = await okafor.pseudonyms.request(2);
    expect(asked).to.deep.include({ epoch: '2026-12', specialty: 'Dermatology', count: 2 });
    // A request the hub makes up in Okafor's name (it cannot sign with her device's key): the office refuses it.
    const forgedDoc = canonicalJson({ v: 1, type: 'pseudonym-request', requestId: 'hub-made', orgId: 'org-a', userId: 'dr-okafor', deviceId: 'okafor-phone', epoch: '2026-12', specialty: 'Dermatology', blinded: ['B'.repeat(342)], createdAt: Date.now() });
    const hubKey = generateKeyPairSync('ed25519').privateKey;
    await withDb(shared.dbName, (db) =>
      db.collection('pseudonym_requests').insertOne({ _id: 'org-a hub-made' as never, orgId: 'org-a', requestId: 'hub-made', userId: 'dr-okafor', deviceId: 'okafor-phone', epoch: '2026-12', specialty: 'Dermatology', count: 1, createdAt: 0, answered: false, request: { request: forgedDoc, signature: sign(null, pseudonymRequestMessage(forgedDoc), hubKey).toString('base64url') } }),
    );
    const signed = await ok(['credentials', 'sign-pseudonyms', '--org', 'org-a', '--key', keyFile, '--keys', keysDir]);
    expect(signed).to.deep.equal({ answered: [{ requestId: asked.requestId, count: 2 }], refused: [{ requestId: 'hub-made', reason: 'not signed by the identity key the attestation binds' }] });
    expect(await okafor.pseudonyms.collect()).to.equal(2);
    expect(await okafor.pseudonyms.available()).to.deep.equal([{ specialty: 'Dermatology', epoch: '2026-12', count: 2 }]);

    // The per-user cap: 2 of 3 asked, 2 more is too many (the hub counts); and the office's own ledger
    // refuses when the hub forgets its count.
    const capped = await refusal(okafor.pseudonyms.request(2));
    expect([capped.code, capped.details?.reason, capped.details?.perUser]).to.deep.equal(['FORBIDDEN', 'cap', 3]);
    await withDb(shared.dbName, (db) => db.collection('pseudonym_slots').deleteMany({}));
    const overLedger = await okafor.pseudonyms.request(2);
    const ledgerRefusal = await ok(['credentials', 'sign-pseudonyms', '--org', 'org-a', '--key', keyFile, '--keys', keysDir]);
    expect(ledgerRefusal.answered).to.deep.equal([]);
    expect(ledgerRefusal.refused).to.deep.include({ requestId: overLedger.requestId, reason: 'over the cap of 3 tokens per clinician (2 issued)' });

    // A token verifies for another clinician, who learns the specialty and the one-time key only.
    const taken = (await okafor.pseudonyms.take('Dermatology'))!;
    const token = taken.token;
    const keys = await lee.hub.pseudonymKeys();
    const v = await verifyPseudonymToken(token, keys as { keys: never[]; revocations: never[] }, office.publicKey, Date.now());
    expect(v).to.deep.include({ ok: true, orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology' });
    if (!v.ok) throw new Error('unreachable');
    const postSignature = taken.sign(new TextEncoder().encode('a case'));
    const postingKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: v.postingKey }, format: 'jwk' });
    expect(verify(null, Buffer.from('a case'), postingKey, postSignature), 'the post is signed by the token’s one-time key').to.equal(true);
    expect(verify(null, Buffer.from('another case'), postingKey, postSignature)).to.equal(false);

    // Before it is spent the token is nowhere: not in any collection (the blinded request is, and cannot be
    // turned into it), not in the hub's logs, not in the audit log (a collection too).
    const secrets = { message: token.message, prefix: token.prefix, signature: token.signature, postingKey: v.postingKey, nullifier: v.nullifier };
    await node.hub.audit.flush();
    const stored = await everythingStored(shared.dbName);
    expect(stored, 'the requests are stored').to.include(asked.requestId);
    // (An audit block's entries are one JSON text, so in the dump their quotes are escaped.)
    expect(stored, 'the audit log is in the database').to.match(/\\"action\\":\\"pseudonym:request\\"/).and.match(/\\"action\\":\\"admin:answer-pseudonym-request\\"/);
    for (const [what, value] of Object.entries(secrets)) {
      expect(stored.includes(value), `${what} at rest`).to.equal(false);
      expect(node.logs.text().includes(value), `${what} in the logs`).to.equal(false);
    }

    // The hub spends it once per scope; it keeps the nullifier, never the token or the posting key.
    const pseudonyms = node.hub.administration.pseudonyms;
    expect(await pseudonyms.verifyAndSpend('org-a', 'pool-1', token)).to.deep.equal({ epoch: '2026-12', specialty: 'Dermatology', postingKey: v.postingKey, nullifier: v.nullifier });
    expect((await refusal(pseudonyms.verifyAndSpend('org-a', 'pool-1', token))).code, 'double spend').to.equal('PSEUDONYM_SPENT');
    await taken.consume();
    expect(await okafor.pseudonyms.available(), 'a consumed token is gone from the device').to.deep.equal([{ specialty: 'Dermatology', epoch: '2026-12', count: 1 }]);
    expect((await okafor.pseudonyms.take())!.token.message).to.not.equal(token.message);
    const afterSpend = await everythingStored(shared.dbName);
    expect(afterSpend).to.include(v.nullifier);
    for (const value of [token.message, token.signature, v.postingKey]) expect(afterSpend.includes(value)).to.equal(false);

    // Forgeries: an edited message, another specialty, another organisation, another RSA key.
    const second = (await okafor.pseudonyms.take())!;
    const reason = async (t: PseudonymToken, orgId = 'org-a') => {
      const e = await refusal(pseudonyms.verifyAndSpend(orgId, 'pool-1', t));
      return [e.code, e.details?.reason];
    };
    const edit = (from: string, to: string) => ({ ...second.token, message: second.token.message.replace(from, to) });
    expect(await reason(edit('"key":"', '"key":"A'))).to.deep.equal(['BAD_SIGNATURE', 'malformed']);
    const otherKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
    expect(await reason({ ...second.token, message: canonicalJson({ ...(JSON.parse(second.token.message) as object), key: otherKey }) })).to.deep.equal(['BAD_SIGNATURE', 'bad-signature']);
    expect(await reason(edit('Dermatology', 'Cardiology'))).to.deep.equal(['BAD_SIGNATURE', 'no-key']);
    expect(await reason(second.token, 'org-b')).to.deep.equal(['BAD_SIGNATURE', 'no-key']);
    expect(await reason({ ...second.token, signature: token.signature })).to.deep.equal(['BAD_SIGNATURE', 'bad-signature']);
    // The hub swaps the certified key for one it holds: the office's signature no longer covers it.
    const forgedKeys = await withDb(shared.dbName, async (db) => {
      const k = (await db.collection('pseudonym_keys').findOne({}))!;
      const rsa = generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64url');
      const original = (k.document as { signed: string }).signed;
      const swapped = original.replace(JSON.parse(original).publicKey as string, rsa);
      await db.collection('pseudonym_keys').updateOne({ _id: k._id }, { $set: { 'document.signed': swapped } });
      return original;
    });
    expect(await reason(second.token)).to.deep.equal(['BAD_SIGNATURE', 'no-key']);
    await withDb(shared.dbName, (db) => db.collection('pseudonym_keys').updateOne({}, { $set: { 'document.signed': forgedKeys } }));

    // The office ends the epoch: no token of it is accepted any more, and no new one is asked for.
    await ok(['credentials', 'revoke-pseudonym-key', '--org', 'org-a', '--key', keyFile, '--epoch', '2026-12', '--specialty', 'Dermatology']);
    expect(await reason(second.token)).to.deep.equal(['BAD_SIGNATURE', 'revoked']);
    expect((await refusal(okafor.pseudonyms.request(1))).code).to.equal('NOT_FOUND');
  });
});
