/**
 * Issue #23, pseudonymous posting: the token rule shared by hub and clients (`verifyPseudonymToken`),
 * against keys certified with the office CLI's own functions and blind signatures made with
 * `@cloudflare/blindrsa-ts` (RFC 9474) as the SDK makes them. Every forgery is refused with its reason.
 */
import { expect } from 'chai';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { RSABSSA } from '@cloudflare/blindrsa-ts';
import { canonicalJson, importPseudonymPublicKey, pseudonymNullifier, toBase64Url, fromBase64Url, verifyPseudonymToken, type PseudonymKey, type PseudonymToken, type SignedCredential } from '@curbside/shared';
import { blindSignAll, createPseudonymKey, loadPseudonymKeys, signPseudonymKeyRevocation, type HeldPseudonymKey } from '../../server/src/cli/pseudonyms.js';
import { generateCredentialKey, loadCredentialKey } from '../../server/src/cli/credentials.js';

const suite = () => RSABSSA.SHA384.PSS.Randomized();

async function office(dir: string) {
  const file = join(dir, 'office.pem');
  await generateCredentialKey(file);
  return loadCredentialKey(file);
}

/** A token as a client gets one: a message with a fresh key, prepared, blinded, signed blind by the office, finalized. */
async function tokenFor(held: HeldPseudonymKey, fields: Partial<{ orgId: string; epoch: string; specialty: string }> = {}): Promise<PseudonymToken> {
  const postingKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
  const message = canonicalJson({ v: 1, type: 'pseudonym', orgId: held.key.orgId, epoch: held.key.epoch, specialty: held.key.specialty, key: postingKey, ...fields });
  const publicKey = (await importPseudonymPublicKey(held.key.publicKey))!;
  const prepared = suite().prepare(new TextEncoder().encode(message));
  const { blindedMsg, inv } = await suite().blind(publicKey, prepared);
  const [blindSig] = await blindSignAll(held, [toBase64Url(blindedMsg)]);
  const signature = await suite().finalize(publicKey, prepared, fromBase64Url(blindSig!)!, inv);
  return { message, prefix: toBase64Url(prepared.subarray(0, 32)), signature: toBase64Url(signature) };
}

describe('pseudonym tokens: RSA blind signatures certified by the credentialing office (shared rule)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'curbside-pseudonyms-'));
  const now = Date.now();
  let officePublic: string;
  let held: HeldPseudonymKey;
  let docs: { keys: SignedCredential[]; revocations: SignedCredential[] };
  let officeKey: Awaited<ReturnType<typeof office>>;

  before(async () => {
    officeKey = await office(dir);
    officePublic = officeKey.publicKey;
    const made = await createPseudonymKey(officeKey.privateKey, dir, { orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology', perUser: 5, days: 30, now });
    expect(statSync(made.files.privateKey).mode & 0o777, 'the RSA private key is for the office only').to.equal(0o600);
    held = (await loadPseudonymKeys(officeKey.privateKey, dir))[0]!;
    docs = { keys: [made.certificate], revocations: [] };
  });

  it('a blind-signed token verifies, and says only org, epoch, specialty and the one-time posting key', async () => {
    const token = await tokenFor(held);
    const v = await verifyPseudonymToken(token, docs, officePublic, now + 1000);
    expect(v).to.deep.include({ ok: true, orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology' });
    if (!v.ok) throw new Error('unreachable');
    expect(v.postingKey).to.equal((JSON.parse(token.message) as { key: string }).key);
    expect(v.nullifier).to.match(/^[0-9a-f]{64}$/).and.equal(await pseudonymNullifier(token));
    expect(await pseudonymNullifier(await tokenFor(held)), 'each token has its own nullifier').to.not.equal(v.nullifier);
  });

  it('the office refuses to sign a blinded value outside the key’s range (RFC 9474 BlindSign), rather than sign garbage', async () => {
    const tooLarge = toBase64Url(new Uint8Array(256).fill(0xff));
    let error: unknown;
    await blindSignAll(held, [tooLarge]).catch((e: unknown) => (error = e));
    expect((error as Error | undefined)?.message).to.match(/out of range/);
  });

  it('refuses an edited message, a moved signature, another specialty or organisation, and malformed tokens', async () => {
    const token = await tokenFor(held);
    const edited = { ...token, message: token.message.replace('Dermatology', 'Cardiology') };
    expect(await verifyPseudonymToken(edited, docs, officePublic, now)).to.deep.equal({ ok: false, reason: 'no-key' });
    const otherKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
    const swapped = { ...token, message: canonicalJson({ ...(JSON.parse(token.message) as object), key: otherKey }) };
    expect(await verifyPseudonymToken(swapped, docs, officePublic, now), 'a posting key swapped in').to.deep.equal({ ok: false, reason: 'bad-signature' });
    expect(await verifyPseudonymToken({ ...token, prefix: toBase64Url(new Uint8Array(32)) }, docs, officePublic, now)).to.deep.equal({ ok: false, reason: 'bad-signature' });
    expect(await verifyPseudonymToken(await tokenFor(held, { specialty: 'Cardiology' }), docs, officePublic, now), 'signed by the dermatology key, claiming cardiology').to.deep.equal({ ok: false, reason: 'no-key' });
    expect(await verifyPseudonymToken(await tokenFor(held, { orgId: 'org-b' }), docs, officePublic, now)).to.deep.equal({ ok: false, reason: 'no-key' });
    const spaced = { ...token, message: JSON.stringify(JSON.parse(token.message), null, 1) };
    expect(await verifyPseudonymToken(spaced, docs, officePublic, now), 'not canonical').to.deep.equal({ ok: false, reason: 'malformed' });
    expect(await verifyPseudonymToken({ ...token, signature: 'x' }, docs, officePublic, now)).to.deep.equal({ ok: false, reason: 'malformed' });
  });

  it('refuses a token signed by a key the office did not certify, or certified by another office key', async () => {
    const rogueDir = mkdtempSync(join(tmpdir(), 'curbside-rogue-'));
    const rogue = await office(rogueDir);
    const made = await createPseudonymKey(rogue.privateKey, rogueDir, { orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology', perUser: 5, days: 30, now });
    const [rogueHeld] = await loadPseudonymKeys(rogue.privateKey, rogueDir);
    const token = await tokenFor(rogueHeld!);
    expect(await verifyPseudonymToken(token, { keys: [made.certificate], revocations: [] }, officePublic, now), 'certified by another key').to.deep.equal({ ok: false, reason: 'no-key' });
    expect(await verifyPseudonymToken(token, docs, officePublic, now), 'RSA key not the certified one').to.deep.equal({ ok: false, reason: 'bad-signature' });
    // The hub re-labels the office's certificate with its own RSA key: the office signature breaks.
    const relabelled = { ...docs.keys[0]!, signed: docs.keys[0]!.signed.replace(held.key.publicKey, rogueHeld!.key.publicKey) };
    expect(await verifyPseudonymToken(token, { keys: [relabelled], revocations: [] }, officePublic, now)).to.deep.equal({ ok: false, reason: 'no-key' });
    // Two certified keys for one epoch could sort clinicians by key: refused as ambiguous.
    const second = await createPseudonymKey(officeKey.privateKey, mkdtempSync(join(tmpdir(), 'curbside-second-')), { orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology', perUser: 5, days: 30, now });
    expect(await verifyPseudonymToken(await tokenFor(held), { keys: [...docs.keys, second.certificate], revocations: [] }, officePublic, now)).to.deep.equal({ ok: false, reason: 'ambiguous-key' });
  });

  it('an epoch revocation ends its tokens from revokedAt on; outside notBefore..notAfter nothing verifies', async () => {
    const token = await tokenFor(held);
    const revocation = signPseudonymKeyRevocation(officeKey.privateKey, { orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology', now: now + 10_000 });
    const withRevocation = { keys: docs.keys, revocations: [revocation] };
    expect(await verifyPseudonymToken(token, withRevocation, officePublic, now + 10_000)).to.deep.equal({ ok: false, reason: 'revoked' });
    expect((await verifyPseudonymToken(token, withRevocation, officePublic, now + 5_000)).ok, 'a post made before the revocation stays verified').to.equal(true);
    const rogue = await office(mkdtempSync(join(tmpdir(), 'curbside-rogue-')));
    const forgedRevocation = signPseudonymKeyRevocation(rogue.privateKey, { orgId: 'org-a', epoch: '2026-12', specialty: 'Dermatology', now });
    expect((await verifyPseudonymToken(token, { keys: docs.keys, revocations: [forgedRevocation] }, officePublic, now + 10_000)).ok, 'a revocation the office did not sign counts for nothing').to.equal(true);
    const key = JSON.parse(docs.keys[0]!.signed) as PseudonymKey;
    expect(await verifyPseudonymToken(token, docs, officePublic, key.notBefore - 1)).to.deep.equal({ ok: false, reason: 'not-yet-valid' });
    expect(await verifyPseudonymToken(token, docs, officePublic, key.notAfter)).to.deep.equal({ ok: false, reason: 'expired' });
  });
});
