import { expect } from 'chai';
import {
  CryptoError,
  RatchetSession,
  generateIdentityKeyPair,
  generatePrekeys,
  generateSignedPrekey,
  x3dhInitiate,
  x3dhRespond,
  type CryptoErrorCode,
  type PrekeyBundle,
  type PrekeyLookup,
} from '../../client-sdk/src/crypto/index.js';

/** Runs `fn`, expects a CryptoError with `code` (and nothing else), returns it. */
export function expectCryptoError(fn: () => unknown, code: CryptoErrorCode): CryptoError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) expect.fail(`expected CryptoError ${code}, nothing was thrown`);
  expect(thrown, String(thrown)).to.be.instanceOf(CryptoError);
  expect((thrown as CryptoError).code, (thrown as CryptoError).detail).to.equal(code);
  return thrown as CryptoError;
}

export async function expectCryptoErrorAsync(fn: () => Promise<unknown>, code: CryptoErrorCode): Promise<CryptoError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  return expectCryptoError(() => {
    if (thrown !== undefined) throw thrown;
  }, code);
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Alice (initiator) and Bob (responder) after a real X3DH, as the session layer would set them up. */
export async function ratchetPair(): Promise<{ alice: RatchetSession; bob: RatchetSession }> {
  const aliceId = await generateIdentityKeyPair();
  const bobId = await generateIdentityKeyPair();
  const spk = await generateSignedPrekey(bobId, 1);
  const a = await x3dhInitiate(aliceId, { identityKey: bobId.publicKey, signedPrekey: spk });
  const b = await x3dhRespond(bobId, spk, undefined, aliceId.publicKey, a.ephemeralPublic);
  return {
    alice: RatchetSession.initiator(a.sharedKey, spk.publicKey, a.associatedData),
    bob: RatchetSession.responder(b.sharedKey, spk, b.associatedData),
  };
}

/** A device with an identity, a signed prekey and one-time prekeys, and a hub-like bundle handout. */
export async function device(firstPrekeyId = 100) {
  const identity = await generateIdentityKeyPair();
  const signedPrekey = await generateSignedPrekey(identity, 1);
  const oneTime = new Map((await generatePrekeys(firstPrekeyId, 3)).map((p) => [p.keyId, p] as const));
  const lookup: PrekeyLookup = {
    signedPrekey: (id) => (id === signedPrekey.keyId ? signedPrekey : undefined),
    oneTimePrekey: async (id) => oneTime.get(id),
  };
  /** The hub hands out each one-time prekey once, then the signed prekey alone. */
  const bundle = (): PrekeyBundle => {
    const next = oneTime.values().next().value;
    const b: PrekeyBundle = {
      identityKey: identity.publicKey,
      signedPrekey: { keyId: signedPrekey.keyId, publicKey: signedPrekey.publicKey, signature: signedPrekey.signature },
    };
    if (next) b.oneTimePrekey = { keyId: next.keyId, publicKey: next.publicKey };
    return b;
  };
  return { identity, signedPrekey, oneTime, lookup, bundle };
}
