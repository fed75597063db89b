/**
 * Issue #23, verified credentials: the credentialing office's key pair and attestations through the
 * real `curbside-admin` CLI, checked by the hub and again by every client, which pins the office's key.
 * Tested like an attacker with the database: forged, moved, edited, expired and revoked attestations,
 * and a swapped credentialing key, never show as verified. Real Redis and the Mongo-wire DB.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { HubHarness, sharedBackend } from '../support/hub.js';
import { cli, withAdmin } from '../support/admin-cli.js';
import { withDb } from '../support/db.js';
import { loadCredentialKey, signAttestation } from '../../server/src/cli/credentials.js';

describe('verified credentials: attestations by the credentialing office, checked on every device (Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('issues, verifies, finds by specialty and revokes; refuses what the office did not sign; a key or attestation the hub edits gives no badge', async () => {
    const shared = sharedBackend();
    const node = await harness.start('real', shared, withAdmin);
    const okafor = node.client({ userId: 'dr-okafor', deviceId: 'okafor-phone' });
    const lee = node.client({ userId: 'dr-lee', deviceId: 'lee-laptop' });
    const mallory = node.client({ userId: 'dr-mallory', deviceId: 'mallory-phone' });
    await Promise.all([okafor, lee, mallory].map((c) => c.connect()));
    const dir = mkdtempSync(join(tmpdir(), 'curbside-office-'));
    const keyFile = join(dir, 'office.pem');

    expect((await lee.credentials.check('dr-okafor')).status, 'nothing before the office exists').to.equal('none');
    const keygen = await cli(node.url, ['credentials', 'keygen', '--out', keyFile]);
    expect(keygen.code, keygen.stderr).to.equal(0);
    expect((await cli(node.url, ['credentials', 'keygen', '--out', keyFile])).code, 'an existing key file is never overwritten').to.equal(64);
    const published = await cli(node.url, ['--json', 'credentials', 'publish-key', '--org', 'org-a', '--key', keyFile]);
    expect(published.code, published.stderr).to.equal(0);
    const { publicKey } = (await loadCredentialKey(keyFile));
    expect(JSON.parse(published.stdout)).to.deep.include({ orgId: 'org-a', publicKey, changed: true });

    const issue = (user: string, device: string, identityKey: string, key = keyFile) =>
      cli(node.url, ['--json', 'credentials', 'issue', '--org', 'org-a', '--key', key, '--user', user, '--device', device, '--identity-key', identityKey, '--name', 'Ada Okafor', '--specialty', 'Dermatology', '--licence', 'GMC 7654321', '--institution', 'St Elsewhere', '--days', '30']);
    const okaforKey = await okafor.credentials.myIdentityKey();
    const issued = await issue('dr-okafor', 'okafor-phone', okaforKey);
    expect(issued.code, issued.stderr).to.equal(0);
    const serial = (JSON.parse(issued.stdout) as { serial: string }).serial;

    const check = await lee.credentials.check('dr-okafor', { fresh: true });
    expect(check.status).to.equal('verified');
    expect(check.credential).to.deep.include({ userId: 'dr-okafor', deviceId: 'okafor-phone', displayName: 'Ada Okafor', specialty: 'Dermatology', licence: 'GMC 7654321', institution: 'St Elsewhere', serial });
    expect((await lee.credentials.search('derma')).map((c) => c.userId)).to.deep.equal(['dr-okafor']);
    expect(await lee.credentials.search('cardiology')).to.deep.equal([]);
    const pinned = await lee.credentials.orgKey();
    expect(pinned?.publicKey).to.equal(publicKey);
    expect(pinned?.fingerprint).to.match(/^(\d{5} ){5}\d{5}$/);
    expect(pinned?.fingerprint, 'every device shows the same fingerprint').to.equal((await okafor.credentials.orgKey())?.fingerprint);

    // What the office did not sign, or signed for another key, the hub refuses.
    const wrongKey = await issue('dr-mallory', 'mallory-phone', okaforKey);
    expect([wrongKey.code, wrongKey.stderr]).to.deep.equal([1, 'curbside-admin: INVALID_PAYLOAD: the attestation binds an identity key that is not the one this device published\n']);
    // A value may start with '-' (one base64url identity key in 64 does): it is the option's value, not another option.
    const dashed = await issue('dr-mallory', 'mallory-phone', `-${okaforKey.slice(1)}`);
    expect([dashed.code, dashed.stderr]).to.deep.equal([1, 'curbside-admin: INVALID_PAYLOAD: the attestation binds an identity key that is not the one this device published\n']);
    const rogueFile = join(dir, 'rogue.pem');
    await cli(node.url, ['credentials', 'keygen', '--out', rogueFile]);
    const rogue = await issue('dr-mallory', 'mallory-phone', await mallory.credentials.myIdentityKey(), rogueFile);
    expect([rogue.code, rogue.stderr]).to.deep.equal([1, 'curbside-admin: BAD_SIGNATURE: The signature does not verify under the organisation’s credentialing key\n']);
    expect((await cli(node.url, ['credentials', 'publish-key', '--org', 'org-a', '--key', rogueFile])).code, 'the key is set once').to.equal(1);

    // An attacker with the database: a forged attestation, one moved to another user, one edited, one expired.
    await withDb(shared.dbName, async (db) => {
      const attestations = db.collection('credentials');
      const original = (await attestations.findOne({ serial }))!;
      const { privateKey: roguePrivate } = await loadCredentialKey(rogueFile);
      const forged = signAttestation(roguePrivate, { orgId: 'org-a', userId: 'dr-mallory', deviceId: 'mallory-phone', identityKey: await mallory.credentials.myIdentityKey(), displayName: 'Dr Mallory', specialty: 'Dermatology', licence: 'X', institution: 'Nowhere', days: 30 });
      await attestations.insertOne({ ...original, _id: 'forged' as never, serial: 'forged', userId: 'dr-mallory', document: forged });
      await attestations.insertOne({ ...original, _id: 'moved' as never, serial: 'moved', userId: 'dr-mallory' });
      expect((await lee.credentials.check('dr-mallory')).status, 'forged or moved: no badge').to.equal('none');
      expect((await lee.credentials.search('derma')).map((c) => c.userId), 'search shows only what verifies').to.deep.equal(['dr-okafor']);

      const { privateKey } = await loadCredentialKey(keyFile);
      const expired = signAttestation(privateKey, { orgId: 'org-a', userId: 'dr-mallory', deviceId: 'mallory-phone', identityKey: await mallory.credentials.myIdentityKey(), displayName: 'Dr Mallory', specialty: 'Dermatology', licence: 'X', institution: 'Nowhere', days: 1, now: Date.now() - 2 * 86_400_000 });
      await attestations.insertOne({ ...original, _id: 'expired' as never, serial: 'expired', userId: 'dr-mallory', document: expired });
      expect((await lee.credentials.check('dr-mallory', { fresh: true })).status).to.equal('expired');

      // The hub binds Okafor's attestation to a key it holds: the signature no longer verifies.
      const hubKey = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64url');
      const signed = original.document as { signed: string; signature: string };
      await attestations.updateOne({ serial }, { $set: { 'document.signed': signed.signed.replace(okaforKey, hubKey) } });
      expect((await lee.credentials.check('dr-okafor', { fresh: true })).status, 'a key the hub swapped in loses the badge').to.equal('none');
      await attestations.updateOne({ serial }, { $set: { 'document.signed': signed.signed } });
      // Swapping the device's published key changes nothing: clients take keys from the user's signed device list.
      const devices = db.collection('devices');
      const realKey = (await devices.findOne({ deviceId: 'okafor-phone' }))!.identityKey as unknown;
      await devices.updateOne({ deviceId: 'okafor-phone' }, { $set: { identityKey: Buffer.from(hubKey, 'base64url') } });
      expect((await lee.credentials.check('dr-okafor', { fresh: true })).status).to.equal('verified');
      await devices.updateOne({ deviceId: 'okafor-phone' }, { $set: { identityKey: realKey } });

      // A credentialing key the hub swaps: nothing verifies until the user accepts it.
      await db.collection('credential_keys').updateOne({ _id: 'org-a' as never }, { $set: { publicKey: (await loadCredentialKey(rogueFile)).publicKey } });
      expect((await lee.credentials.check('dr-okafor', { fresh: true })).status).to.equal('org-key-changed');
      expect((await lee.credentials.orgKey())?.hubPresents).to.equal((await loadCredentialKey(rogueFile)).publicKey);
      await db.collection('credential_keys').updateOne({ _id: 'org-a' as never }, { $set: { publicKey } });
    });

    // Revoked by the office: shown as such.
    const revoked = await cli(node.url, ['credentials', 'revoke', '--org', 'org-a', '--key', keyFile, '--serial', serial, '--reason', 'left the trust']);
    expect(revoked.code, revoked.stderr).to.equal(0);
    expect((await lee.credentials.check('dr-okafor', { fresh: true })).status).to.equal('revoked');
    const shown = await cli(node.url, ['credentials', 'show', '--org', 'org-a', '--user', 'dr-okafor']);
    expect(shown.stdout).to.include(serial).and.include('Dermatology').and.include('REVOKED');
    // Renewal is a new attestation: verified again.
    expect((await issue('dr-okafor', 'okafor-phone', okaforKey)).code).to.equal(0);
    expect((await lee.credentials.check('dr-okafor', { fresh: true })).status).to.equal('verified');
  });
});
