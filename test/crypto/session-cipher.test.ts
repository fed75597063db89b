import { expect } from 'chai';
import {
  RatchetSession,
  acceptSession,
  compareScannableFingerprints,
  decodeSessionMessage,
  decryptSessionMessage,
  encodeSessionMessage,
  encryptSessionMessage,
  generateIdentityKeyPair,
  preKeyMessageMatchesSession,
  safetyNumber,
  sodiumReady,
  startSession,
  toHex,
  type IdentityKeyPair,
  type KeyPair,
  type PrekeyLookup,
} from '../../client-sdk/src/crypto/index.js';
import { device, expectCryptoError, expectCryptoErrorAsync, str, text } from './helpers.js';

describe('session cipher (X3DH + ratchet messages)', () => {
  before(async () => {
    await sodiumReady();
  });

  it('initiator sends PreKeyMessages until the first reply, then ratchet messages', async () => {
    const alice = await device();
    const bob = await device();
    const started = await startSession(alice.identity, bob.bundle());
    expect(started.oneTimePrekeyId).to.equal(100);
    const a = started.session;
    expect(a.confirmed).to.equal(false);
    const first = encryptSessionMessage(a, text('one'));
    const second = encryptSessionMessage(a, text('two'));
    const m1 = decodeSessionMessage(first);
    expect(m1.type).to.equal('prekey');
    if (m1.type !== 'prekey') return;
    expect(m1.signedPrekeyId).to.equal(1);
    expect(m1.oneTimePrekeyId).to.equal(100);
    expect(toHex(m1.identityKey)).to.equal(toHex(alice.identity.publicKey));
    expect(decodeSessionMessage(second).type).to.equal('prekey');

    const accepted = await acceptSession(bob.identity, bob.lookup, first);
    expect(str(accepted.plaintext)).to.equal('one');
    expect(accepted.usedOneTimePrekeyId).to.equal(100);
    expect(toHex(accepted.theirIdentityKey)).to.equal(toHex(alice.identity.publicKey));
    bob.oneTime.delete(accepted.usedOneTimePrekeyId!);
    const b = accepted.session;
    expect(b.confirmed).to.equal(true);
    // A repeat PreKeyMessage of the same X3DH run decrypts on the existing session (the one-time prekey is gone).
    const m2 = decodeSessionMessage(second);
    expect(m2.type === 'prekey' && preKeyMessageMatchesSession(b, m2)).to.equal(true);
    expect(str(decryptSessionMessage(b, second))).to.equal('two');
    expectCryptoError(() => decryptSessionMessage(b, first), 'REPLAY');

    const reply = encryptSessionMessage(b, text('hi alice'));
    expect(decodeSessionMessage(reply).type).to.equal('ratchet');
    expect(str(decryptSessionMessage(a, reply))).to.equal('hi alice');
    expect(a.confirmed).to.equal(true);
    expect(a.pendingPreKey).to.equal(undefined);
    const third = encryptSessionMessage(a, text('three'));
    expect(decodeSessionMessage(third).type).to.equal('ratchet');
    expect(str(decryptSessionMessage(b, third))).to.equal('three');
  });

  it('works without one-time prekeys (signed prekey only)', async () => {
    const alice = await device();
    const bob = await device();
    bob.oneTime.clear();
    const { session, oneTimePrekeyId } = await startSession(alice.identity, bob.bundle());
    expect(oneTimePrekeyId).to.equal(undefined);
    const accepted = await acceptSession(bob.identity, bob.lookup, encryptSessionMessage(session, text('no opk')));
    expect(str(accepted.plaintext)).to.equal('no opk');
    expect(accepted.usedOneTimePrekeyId).to.equal(undefined);
  });

  it('a pending PreKeyMessage survives serialize/deserialize of the initiator session', async () => {
    const alice = await device();
    const bob = await device();
    const { session } = await startSession(alice.identity, bob.bundle());
    const restored = RatchetSession.deserialize(session.serialize());
    const m = encryptSessionMessage(restored, text('after restart'));
    expect(decodeSessionMessage(m).type).to.equal('prekey');
    expect(str((await acceptSession(bob.identity, bob.lookup, m)).plaintext)).to.equal('after restart');
  });

  it('unknown signed or one-time prekey is UNKNOWN_PREKEY', async () => {
    const alice = await device();
    const bob = await device();
    const { session } = await startSession(alice.identity, bob.bundle());
    const m = encryptSessionMessage(session, text('x'));
    const noOpk: PrekeyLookup = { ...bob.lookup, oneTimePrekey: () => undefined };
    await expectCryptoErrorAsync(() => acceptSession(bob.identity, noOpk, m), 'UNKNOWN_PREKEY');
    const noSpk: PrekeyLookup = { ...bob.lookup, signedPrekey: async () => undefined };
    await expectCryptoErrorAsync(() => acceptSession(bob.identity, noSpk, m), 'UNKNOWN_PREKEY');
  });

  it('identity pinning: a changed identity key is IDENTITY_MISMATCH on both sides', async () => {
    const alice = await device();
    const bob = await device();
    const other = await generateIdentityKeyPair();
    await expectCryptoErrorAsync(() => startSession(alice.identity, bob.bundle(), { trustedIdentityKey: other.publicKey }), 'IDENTITY_MISMATCH');
    const { session } = await startSession(alice.identity, bob.bundle(), { trustedIdentityKey: bob.identity.publicKey });
    const m = encryptSessionMessage(session, text('x'));
    await expectCryptoErrorAsync(() => acceptSession(bob.identity, bob.lookup, m, { trustedIdentityKey: other.publicKey }), 'IDENTITY_MISMATCH');
    const ok = await acceptSession(bob.identity, bob.lookup, m, { trustedIdentityKey: alice.identity.publicKey });
    expect(str(ok.plaintext)).to.equal('x');
  });

  it('a PreKeyMessage whose identity key was swapped (or tampered payload) does not decrypt, and yields no session', async () => {
    const alice = await device();
    const bob = await device();
    const mallory = await generateIdentityKeyPair();
    const { session } = await startSession(alice.identity, bob.bundle());
    const bytes = encryptSessionMessage(session, text('x'));
    const m = decodeSessionMessage(bytes);
    if (m.type !== 'prekey') expect.fail('expected a prekey message');
    await expectCryptoErrorAsync(() => acceptSession(bob.identity, bob.lookup, { ...m, identityKey: mallory.publicKey }), 'DECRYPT_FAILED');
    const tampered = bytes.slice();
    tampered[tampered.length - 1]! ^= 1;
    await expectCryptoErrorAsync(() => acceptSession(bob.identity, bob.lookup, tampered), 'DECRYPT_FAILED');
    await expectCryptoErrorAsync(() => acceptSession(bob.identity, bob.lookup, { ...m, signedPrekeyId: 2 }), 'UNKNOWN_PREKEY');
    // The genuine one still works: nothing was consumed.
    expect(str((await acceptSession(bob.identity, bob.lookup, bytes)).plaintext)).to.equal('x');
  });

  it('a PreKeyMessage from a new X3DH run is not decrypted on the old session (it needs acceptSession)', async () => {
    const alice = await device();
    const bob = await device();
    const first = await startSession(alice.identity, bob.bundle());
    const accepted = await acceptSession(bob.identity, bob.lookup, encryptSessionMessage(first.session, text('1')));
    const second = await startSession(alice.identity, bob.bundle()); // e.g. Alice reinstalled
    const m = encryptSessionMessage(second.session, text('2'));
    const decoded = decodeSessionMessage(m);
    expect(decoded.type === 'prekey' && preKeyMessageMatchesSession(accepted.session, decoded)).to.equal(false);
    expectCryptoError(() => decryptSessionMessage(accepted.session, m), 'BAD_MESSAGE');
    expect(str((await acceptSession(bob.identity, bob.lookup, m)).plaintext)).to.equal('2');
  });

  it('encode/decode round-trip; malformed session messages are BAD_MESSAGE', async () => {
    const ratchetMessage = new Uint8Array(60).fill(3);
    const pre = { type: 'prekey' as const, identityKey: new Uint8Array(32).fill(1), ephemeralKey: new Uint8Array(32).fill(2), signedPrekeyId: 0xffffffff, oneTimePrekeyId: 0, ratchetMessage };
    const enc = encodeSessionMessage(pre);
    expect(enc.length).to.equal(2 + 32 + 32 + 4 + 1 + 4 + 60);
    expect(decodeSessionMessage(enc)).to.deep.equal(pre);
    const { oneTimePrekeyId: _o, ...noOpk } = pre;
    expect(decodeSessionMessage(encodeSessionMessage(noOpk))).to.deep.equal(noOpk);
    const plain = encodeSessionMessage({ type: 'ratchet', ratchetMessage });
    expect(Array.from(plain.subarray(0, 2))).to.deep.equal([1, 1]);
    expect(decodeSessionMessage(plain)).to.deep.equal({ type: 'ratchet', ratchetMessage });

    const bad = [
      new Uint8Array(0),
      new Uint8Array([1]),
      new Uint8Array([2, 1, ...ratchetMessage]), // version 2
      new Uint8Array([1, 9, ...ratchetMessage]), // type 9
      plain.subarray(0, 2 + 56), // ratchet message shorter than header + tag
      enc.subarray(0, 40), // truncated prekey message
      (() => {
        const e = enc.slice();
        e[2 + 32 + 32 + 4] = 2; // bad one-time flag
        return e;
      })(),
    ];
    for (const b of bad) expectCryptoError(() => decodeSessionMessage(b), 'BAD_MESSAGE');
    for (let len = 0; len < 2 + 32 + 32 + 4 + 1 + 4 + 57; len++) expectCryptoError(() => decodeSessionMessage(enc.subarray(0, len)), 'BAD_MESSAGE');
  });

  it('safety numbers: same 60 digits on both sides; a different key or id changes them', async () => {
    const alice: IdentityKeyPair = await generateIdentityKeyPair();
    const bob: IdentityKeyPair = await generateIdentityKeyPair();
    const mitm: KeyPair = await generateIdentityKeyPair();
    const ab = await safetyNumber({ localIdentifier: 'dr-lee', localIdentityKey: alice.publicKey, remoteIdentifier: 'dr-patel', remoteIdentityKey: bob.publicKey });
    const ba = await safetyNumber({ localIdentifier: 'dr-patel', localIdentityKey: bob.publicKey, remoteIdentifier: 'dr-lee', remoteIdentityKey: alice.publicKey });
    expect(ab.displayString).to.match(/^\d{60}$/);
    expect(ba.displayString).to.equal(ab.displayString);
    expect(compareScannableFingerprints(ab.scannable, ba.scannable)).to.equal(true);
    const attacked = await safetyNumber({ localIdentifier: 'dr-lee', localIdentityKey: alice.publicKey, remoteIdentifier: 'dr-patel', remoteIdentityKey: mitm.publicKey });
    expect(attacked.displayString).not.to.equal(ab.displayString);
    expect(compareScannableFingerprints(attacked.scannable, ba.scannable)).to.equal(false);
    const otherId = await safetyNumber({ localIdentifier: 'dr-lee', localIdentityKey: alice.publicKey, remoteIdentifier: 'dr-patel2', remoteIdentityKey: bob.publicKey });
    expect(otherId.displayString).not.to.equal(ab.displayString);
    expectCryptoError(() => compareScannableFingerprints(ab.scannable, ab.scannable.subarray(1)), 'BAD_MESSAGE');
  });
});
