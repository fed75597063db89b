import { expect } from 'chai';
import {
  SIGNED_PREKEY_CONTEXT,
  concatBytes,
  generateIdentityKeyPair,
  generatePrekey,
  generateSignedPrekey,
  sign,
  sodiumReady,
  toHex,
  verifySignedPrekey,
  x3dhInitiate,
  x3dhRespond,
  type PrekeyBundle,
} from '../../client-sdk/src/crypto/index.js';
import { expectCryptoErrorAsync } from './helpers.js';

describe('X3DH', () => {
  before(async () => {
    await sodiumReady();
  });

  async function parties() {
    const alice = await generateIdentityKeyPair();
    const bob = await generateIdentityKeyPair();
    const spk = await generateSignedPrekey(bob, 7);
    const opk = await generatePrekey(42);
    const bundle: PrekeyBundle = {
      identityKey: bob.publicKey,
      signedPrekey: { keyId: spk.keyId, publicKey: spk.publicKey, signature: spk.signature },
      oneTimePrekey: { keyId: opk.keyId, publicKey: opk.publicKey },
    };
    return { alice, bob, spk, opk, bundle };
  }

  it('both sides derive the same key and AD = IK_A ‖ IK_B, with a one-time prekey', async () => {
    const { alice, bob, spk, opk, bundle } = await parties();
    const a = await x3dhInitiate(alice, bundle);
    expect(a.signedPrekeyId).to.equal(7);
    expect(a.oneTimePrekeyId).to.equal(42);
    expect(a.sharedKey).to.have.length(32);
    const b = await x3dhRespond(bob, spk, opk, alice.publicKey, a.ephemeralPublic);
    expect(toHex(b.sharedKey)).to.equal(toHex(a.sharedKey));
    expect(toHex(a.associatedData)).to.equal(toHex(alice.publicKey) + toHex(bob.publicKey));
    expect(toHex(b.associatedData)).to.equal(toHex(a.associatedData));
  });

  it('both sides derive the same key without a one-time prekey, and it differs from the DH4 variant', async () => {
    const { alice, bob, spk, opk, bundle } = await parties();
    const { oneTimePrekey: _unused, ...noOpk } = bundle;
    const a = await x3dhInitiate(alice, noOpk);
    expect(a.oneTimePrekeyId).to.equal(undefined);
    const b = await x3dhRespond(bob, spk, undefined, alice.publicKey, a.ephemeralPublic);
    expect(toHex(b.sharedKey)).to.equal(toHex(a.sharedKey));
    const withOpk = await x3dhRespond(bob, spk, opk, alice.publicKey, a.ephemeralPublic);
    expect(toHex(withOpk.sharedKey)).not.to.equal(toHex(a.sharedKey));
  });

  it('a fresh ephemeral key each time: two runs give different keys', async () => {
    const { alice, bundle } = await parties();
    const a1 = await x3dhInitiate(alice, bundle);
    const a2 = await x3dhInitiate(alice, bundle);
    expect(toHex(a1.sharedKey)).not.to.equal(toHex(a2.sharedKey));
    expect(toHex(a1.ephemeralPublic)).not.to.equal(toHex(a2.ephemeralPublic));
  });

  it('a bad signed-prekey signature is BAD_SIGNATURE (checked before any DH)', async () => {
    const { alice, bundle } = await parties();
    const signature = bundle.signedPrekey.signature.slice();
    signature[10]! ^= 0x01;
    await expectCryptoErrorAsync(() => x3dhInitiate(alice, { ...bundle, signedPrekey: { ...bundle.signedPrekey, signature } }), 'BAD_SIGNATURE');
    await expectCryptoErrorAsync(() => x3dhInitiate(alice, { ...bundle, signedPrekey: { ...bundle.signedPrekey, signature: signature.subarray(0, 63) } }), 'BAD_SIGNATURE');
  });

  it("a substituted identity key in the bundle fails the signature check (the hub can't swap in its own)", async () => {
    const { alice, bundle } = await parties();
    const mallory = await generateIdentityKeyPair();
    await expectCryptoErrorAsync(() => x3dhInitiate(alice, { ...bundle, identityKey: mallory.publicKey }), 'BAD_SIGNATURE');
  });

  it('a substituted signed prekey (validly signed by someone else) fails the signature check', async () => {
    const { alice, bundle } = await parties();
    const mallory = await generateIdentityKeyPair();
    const malloryPrekey = await generateSignedPrekey(mallory, 7);
    const forged = { keyId: 7, publicKey: malloryPrekey.publicKey, signature: malloryPrekey.signature };
    await expectCryptoErrorAsync(() => x3dhInitiate(alice, { ...bundle, signedPrekey: forged }), 'BAD_SIGNATURE');
  });

  it('the signature is domain separated: a bare signature over the prekey key does not verify', async () => {
    const { bob, spk } = await parties();
    const bare = sign(bob.privateKey, spk.publicKey);
    expect(verifySignedPrekey(bob.publicKey, { ...spk, signature: bare })).to.equal(false);
    const labelled = sign(bob.privateKey, concatBytes(SIGNED_PREKEY_CONTEXT, spk.publicKey));
    expect(verifySignedPrekey(bob.publicKey, { ...spk, signature: labelled })).to.equal(true);
  });

  it('a low-order signed prekey (even if signed) or one-time prekey is WEAK_KEY, not a crash', async () => {
    const { alice, bob, bundle } = await parties();
    const lowOrder = new Uint8Array(32); // the point 0
    const signature = sign(bob.privateKey, concatBytes(SIGNED_PREKEY_CONTEXT, lowOrder));
    await expectCryptoErrorAsync(() => x3dhInitiate(alice, { ...bundle, signedPrekey: { keyId: 1, publicKey: lowOrder, signature } }), 'WEAK_KEY');
    const one = new Uint8Array(32);
    one[0] = 1; // the point u = 1, also low order
    await expectCryptoErrorAsync(() => x3dhInitiate(alice, { ...bundle, oneTimePrekey: { keyId: 1, publicKey: one } }), 'WEAK_KEY');
  });

  it('responder: a low-order ephemeral key or an invalid identity key is WEAK_KEY', async () => {
    const { alice, bob, spk } = await parties();
    await expectCryptoErrorAsync(() => x3dhRespond(bob, spk, undefined, alice.publicKey, new Uint8Array(32)), 'WEAK_KEY');
    await expectCryptoErrorAsync(() => x3dhRespond(bob, spk, undefined, new Uint8Array(32), new Uint8Array(32).fill(9)), 'WEAK_KEY');
  });

  it('prekey ids must be u32', async () => {
    const bob = await generateIdentityKeyPair();
    for (const bad of [-1, 1.5, 2 ** 32]) {
      let threw = false;
      try {
        await generateSignedPrekey(bob, bad);
      } catch (e) {
        threw = e instanceof RangeError;
      }
      expect(threw, String(bad)).to.equal(true);
    }
  });
});
