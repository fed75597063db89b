import { expect } from 'chai';
import fc from 'fast-check';
import {
  CryptoError,
  ReceivedSenderKey,
  SENDER_KEY_DISTRIBUTION_BYTES,
  SENDER_KEY_HEADER_BYTES,
  SENDER_KEY_MAX_GAP,
  SENDER_KEY_MAX_SKIPPED,
  SENDER_KEY_SIGNATURE_PREFIX,
  SenderKeyState,
  aeadEncrypt,
  chainStep,
  concatBytes,
  decodeDistribution,
  encodeDistribution,
  generateIdentityKeyPair,
  messageKeyMaterial,
  parseGroupMessageHeader,
  sign,
  sodiumReady,
  toHex,
  type SenderKeyDistribution,
} from '../../client-sdk/src/crypto/index.js';
import { expectCryptoError, str, text } from './helpers.js';

const AD = text('team:t1|from:alice/phone');
const state = (r: ReceivedSenderKey) => toHex(r.serialize());

function flip(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[index < 0 ? out.length + index : index]! ^= mask;
  return out;
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** A sender, a receiver set up from its first distribution, and `count` messages "m0".."m{count-1}". */
function chain(count: number): { sender: SenderKeyState; receiver: ReceivedSenderKey; messages: Uint8Array[] } {
  const sender = SenderKeyState.create();
  const receiver = ReceivedSenderKey.fromDistribution(decodeDistribution(encodeDistribution(sender.distribution())));
  const messages = Array.from({ length: count }, (_, i) => sender.encrypt(text(`m${i}`), AD));
  return { sender, receiver, messages };
}

describe('Sender keys (care-team groups)', () => {
  before(async () => {
    await sodiumReady();
  });

  it('round trip; wire format version ‖ keyId ‖ u32 iteration ‖ ciphertext+tag ‖ signature', () => {
    const sender = SenderKeyState.create();
    const d = sender.distribution();
    expect(d.keyId).to.have.length(16);
    expect(d.chainKey).to.have.length(32);
    expect(d.signingPublicKey).to.have.length(32);
    expect(d.iteration).to.equal(0);
    const receiver = ReceivedSenderKey.fromDistribution(d);
    for (let i = 0; i < 5; i++) {
      const m = sender.encrypt(text(`hello ${i}`), AD);
      expect(m[0]).to.equal(1);
      expect(toHex(m.subarray(1, 17))).to.equal(toHex(d.keyId));
      expect(new DataView(m.buffer, m.byteOffset).getUint32(17)).to.equal(i);
      expect(m.length).to.equal(SENDER_KEY_HEADER_BYTES + `hello ${i}`.length + 16 + 64);
      expect(parseGroupMessageHeader(m)).to.deep.equal({ keyId: d.keyId, iteration: i });
      expect(str(receiver.decrypt(m, AD))).to.equal(`hello ${i}`);
    }
    expect(sender.iteration).to.equal(5);
    expect(receiver.iteration).to.equal(5);
    expect(receiver.skippedKeyCount).to.equal(0);
    expect(receiver.decrypt(sender.encrypt(new Uint8Array(0), AD), AD)).to.have.length(0);
  });

  it('message keys are the documented derivations (chainStep, messageKeyMaterial, AD ‖ header, signature input)', async () => {
    // An independent encryption from a distribution and a known signing key decrypts: the format is as documented.
    const signer = await generateIdentityKeyPair();
    const real = SenderKeyState.create();
    const d: SenderKeyDistribution = { ...real.distribution(), signingPublicKey: signer.publicKey };
    const receiver = ReceivedSenderKey.fromDistribution(d);
    const header = concatBytes(new Uint8Array([1]), d.keyId, u32(0));
    const { key, nonce } = messageKeyMaterial(chainStep(d.chainKey).messageKey);
    const ciphertext = aeadEncrypt(key, nonce, text('by hand'), concatBytes(AD, header));
    const signature = sign(signer.privateKey, concatBytes(SENDER_KEY_SIGNATURE_PREFIX, u32(AD.length), AD, header, ciphertext));
    expect(str(receiver.decrypt(concatBytes(header, ciphertext, signature), AD))).to.equal('by hand');
    expect(new TextDecoder().decode(SENDER_KEY_SIGNATURE_PREFIX)).to.equal('Curbside sender key message v1\u0000');
  });

  it('out-of-order delivery within a chain; skipped keys are used once and deleted', () => {
    const { receiver, messages } = chain(10);
    const order = [3, 0, 9, 1, 2, 8, 4, 7, 5, 6];
    expect(str(receiver.decrypt(messages[3]!, AD))).to.equal('m3');
    expect(receiver.skippedKeyCount).to.equal(3);
    for (const i of order.slice(1)) expect(str(receiver.decrypt(messages[i]!, AD))).to.equal(`m${i}`);
    expect(receiver.skippedKeyCount).to.equal(0);
    for (const i of order) expectCryptoError(() => receiver.decrypt(messages[i]!, AD), 'REPLAY');
  });

  it(`a gap of more than ${SENDER_KEY_MAX_GAP} is refused cleanly; exactly ${SENDER_KEY_MAX_GAP} is fine`, () => {
    const { receiver, messages } = chain(SENDER_KEY_MAX_GAP + 2);
    const before = state(receiver);
    const e = expectCryptoError(() => receiver.decrypt(messages[SENDER_KEY_MAX_GAP + 1]!, AD), 'GAP_TOO_LARGE');
    expect(e.detail).to.match(/skip 2001 keys/);
    expect(state(receiver)).to.equal(before);
    expect(str(receiver.decrypt(messages[SENDER_KEY_MAX_GAP]!, AD))).to.equal(`m${SENDER_KEY_MAX_GAP}`);
    expect(receiver.skippedKeyCount).to.equal(SENDER_KEY_MAX_GAP);
    // Now the other one is a gap of 0.
    expect(str(receiver.decrypt(messages[SENDER_KEY_MAX_GAP + 1]!, AD))).to.equal(`m${SENDER_KEY_MAX_GAP + 1}`);
    expect(str(receiver.decrypt(messages[0]!, AD))).to.equal('m0');
  });

  it(`at most ${SENDER_KEY_MAX_SKIPPED} skipped keys are kept, oldest evicted first`, () => {
    const { receiver, messages } = chain(3002);
    receiver.decrypt(messages[1500]!, AD); // skips 0..1499
    expect(receiver.skippedKeyCount).to.equal(1500);
    receiver.decrypt(messages[3001]!, AD); // skips 1501..3000: 3000 in all, the 1000 oldest (0..999) go
    expect(receiver.skippedKeyCount).to.equal(SENDER_KEY_MAX_SKIPPED);
    const e = expectCryptoError(() => receiver.decrypt(messages[999]!, AD), 'REPLAY');
    expect(e.detail).to.match(/already decrypted, or its key was evicted/);
    expectCryptoError(() => receiver.decrypt(messages[0]!, AD), 'REPLAY');
    expect(str(receiver.decrypt(messages[1000]!, AD))).to.equal('m1000');
    expect(str(receiver.decrypt(messages[3000]!, AD))).to.equal('m3000');
    expect(receiver.skippedKeyCount).to.equal(SENDER_KEY_MAX_SKIPPED - 2);
    // The restored state keeps exactly the same keys.
    const restored = ReceivedSenderKey.deserialize(receiver.serialize());
    expectCryptoError(() => restored.decrypt(messages[999]!, AD), 'REPLAY');
    expect(str(restored.decrypt(messages[1001]!, AD))).to.equal('m1001');
  });

  it('a replayed message is refused and changes nothing', () => {
    const { receiver, messages } = chain(3);
    receiver.decrypt(messages[0]!, AD);
    receiver.decrypt(messages[2]!, AD);
    receiver.decrypt(messages[1]!, AD);
    const before = state(receiver);
    for (const m of messages) expectCryptoError(() => receiver.decrypt(m, AD), 'REPLAY');
    expect(state(receiver)).to.equal(before);
  });

  it('tampered header, ciphertext, signature or associated data: AUTHENTICATION_FAILED, state unchanged', () => {
    const { receiver, messages } = chain(3);
    receiver.decrypt(messages[1]!, AD); // holds a skipped key for 0
    const before = state(receiver);
    for (const m of [messages[0]!, messages[2]!]) {
      const tampered = [
        flip(m, 17 + 3), // iteration
        flip(m, 5), // keyId: not this state's (BAD_MESSAGE)
        flip(m, SENDER_KEY_HEADER_BYTES), // ciphertext
        flip(m, -65), // tag (last byte before the signature)
        flip(m, -1), // signature
        flip(m, -64, 0x80),
      ];
      expectCryptoError(() => receiver.decrypt(tampered[0]!, AD), 'AUTHENTICATION_FAILED');
      expectCryptoError(() => receiver.decrypt(tampered[1]!, AD), 'BAD_MESSAGE');
      for (const t of tampered.slice(2)) expectCryptoError(() => receiver.decrypt(t, AD), 'AUTHENTICATION_FAILED');
      expectCryptoError(() => receiver.decrypt(m, text('team:t2|from:alice/phone')), 'AUTHENTICATION_FAILED');
      expectCryptoError(() => receiver.decrypt(m, new Uint8Array(0)), 'AUTHENTICATION_FAILED');
      expectCryptoError(() => receiver.decrypt(flip(m, 0, 0x02), AD), 'BAD_MESSAGE'); // version 3
      expectCryptoError(() => receiver.decrypt(m.subarray(0, 100), AD), 'BAD_MESSAGE');
      expectCryptoError(() => receiver.decrypt(m.subarray(0, m.length - 1), AD), 'AUTHENTICATION_FAILED');
      expect(state(receiver)).to.equal(before);
    }
    expect(str(receiver.decrypt(messages[0]!, AD))).to.equal('m0');
    expect(str(receiver.decrypt(messages[2]!, AD))).to.equal('m2');
  });

  it('a valid signature over a chain we do not hold: DECRYPT_FAILED, state unchanged', () => {
    const sender = SenderKeyState.create();
    const d = sender.distribution();
    const receiver = ReceivedSenderKey.fromDistribution({ ...d, chainKey: flip(d.chainKey, 0) });
    const m1 = sender.encrypt(text('a'), AD);
    sender.encrypt(text('b'), AD);
    const m3 = sender.encrypt(text('c'), AD);
    const before = state(receiver);
    expectCryptoError(() => receiver.decrypt(m3, AD), 'DECRYPT_FAILED');
    expectCryptoError(() => receiver.decrypt(m1, AD), 'DECRYPT_FAILED');
    expect(state(receiver)).to.equal(before);
  });

  it('a member holding the chain key but not the signing key cannot forge messages as the sender', async () => {
    const alice = SenderKeyState.create();
    const d = alice.distribution();
    const bob = ReceivedSenderKey.fromDistribution(d);
    const mallory = ReceivedSenderKey.fromDistribution(d); // a member: has Alice's chain key
    const real = alice.encrypt(text('real'), AD);
    expect(str(mallory.decrypt(real, AD))).to.equal('real');
    const mallorySigner = await generateIdentityKeyPair();
    // Mallory derives the key for the next iteration and writes a perfectly encrypted message.
    let ck = d.chainKey;
    ck = chainStep(ck).nextChainKey;
    const header = concatBytes(new Uint8Array([1]), d.keyId, u32(1));
    const { key, nonce } = messageKeyMaterial(chainStep(ck).messageKey);
    const ciphertext = aeadEncrypt(key, nonce, text('give 10x the dose'), concatBytes(AD, header));
    const body = concatBytes(SENDER_KEY_SIGNATURE_PREFIX, u32(AD.length), AD, header, ciphertext);
    const forged = concatBytes(header, ciphertext, sign(mallorySigner.privateKey, body));
    // Re-using Alice's signature from another message does not help either.
    const spliced = concatBytes(header, ciphertext, real.subarray(real.length - 64));
    expect(str(bob.decrypt(real, AD))).to.equal('real');
    const before = state(bob);
    expectCryptoError(() => bob.decrypt(forged, AD), 'AUTHENTICATION_FAILED');
    expectCryptoError(() => bob.decrypt(spliced, AD), 'AUTHENTICATION_FAILED');
    expect(state(bob)).to.equal(before);
    // The forgery is otherwise well-formed: with Mallory's key as the signer it would decrypt.
    const fooled = ReceivedSenderKey.fromDistribution({ ...d, signingPublicKey: mallorySigner.publicKey });
    expect(str(fooled.decrypt(forged, AD))).to.equal('give 10x the dose');
    // And Alice's real message 1 still decrypts for Bob.
    expect(str(bob.decrypt(alice.encrypt(text('next'), AD), AD))).to.equal('next');
  });

  it('a new member given the current distribution cannot decrypt earlier messages', () => {
    const { sender, receiver: early, messages } = chain(3);
    const d = sender.distribution();
    expect(d.iteration).to.equal(3);
    const late = ReceivedSenderKey.fromDistribution(decodeDistribution(encodeDistribution(d)));
    expect(late.startIteration).to.equal(3);
    const before = state(late);
    for (const m of messages) {
      const e = expectCryptoError(() => late.decrypt(m, AD), 'REPLAY');
      expect(e.detail).to.match(/precedes the distribution/);
    }
    expect(state(late)).to.equal(before);
    const m3 = sender.encrypt(text('m3'), AD);
    expect(str(late.decrypt(m3, AD))).to.equal('m3');
    for (const [i, m] of messages.entries()) expect(str(early.decrypt(m, AD))).to.equal(`m${i}`);
    expect(str(early.decrypt(m3, AD))).to.equal('m3');
  });

  it('serialize / deserialize mid-stream (sender and receiver, with skipped keys)', () => {
    const sender = SenderKeyState.create();
    const receiver = ReceivedSenderKey.fromDistribution(sender.distribution());
    const early = [0, 1, 2, 3].map((i) => sender.encrypt(text(`m${i}`), AD));
    receiver.decrypt(early[3]!, AD);
    receiver.decrypt(early[1]!, AD);
    const sender2 = SenderKeyState.deserialize(sender.serialize());
    const receiver2 = ReceivedSenderKey.deserialize(receiver.serialize());
    expect(toHex(receiver2.serialize())).to.equal(state(receiver));
    expect(toHex(sender2.serialize())).to.equal(toHex(sender.serialize()));
    expect(receiver2.skippedKeyCount).to.equal(2);
    expect(receiver2.startIteration).to.equal(0);
    expect(toHex(sender2.keyId)).to.equal(toHex(sender.keyId));
    const m4 = sender2.encrypt(text('m4'), AD);
    expect(toHex(m4.subarray(0, 17))).to.equal(toHex(early[0]!.subarray(0, 17)));
    expect(str(receiver2.decrypt(m4, AD))).to.equal('m4');
    expect(str(receiver2.decrypt(early[0]!, AD))).to.equal('m0');
    expect(str(receiver2.decrypt(early[2]!, AD))).to.equal('m2');
    expectCryptoError(() => receiver2.decrypt(early[3]!, AD), 'REPLAY');
    // The original receiver is independent of the restored one.
    expect(str(receiver.decrypt(m4, AD))).to.equal('m4');
    // Malformed states.
    const bytes = receiver.serialize();
    expectCryptoError(() => ReceivedSenderKey.deserialize(bytes.subarray(0, bytes.length - 1)), 'BAD_MESSAGE');
    expectCryptoError(() => ReceivedSenderKey.deserialize(concatBytes(bytes, new Uint8Array(1))), 'BAD_MESSAGE');
    expectCryptoError(() => ReceivedSenderKey.deserialize(flip(bytes, 0, 0x03)), 'BAD_MESSAGE');
    const sbytes = sender.serialize();
    expectCryptoError(() => SenderKeyState.deserialize(sbytes.subarray(1)), 'BAD_MESSAGE');
    expectCryptoError(() => SenderKeyState.deserialize(flip(sbytes, sbytes.length - 1)), 'BAD_MESSAGE'); // key pair mismatch
  });

  it('distribution encoding: versioned, length-checked, keys validated', () => {
    const d = SenderKeyState.create().distribution();
    const bytes = encodeDistribution(d);
    expect(bytes).to.have.length(SENDER_KEY_DISTRIBUTION_BYTES);
    expect(bytes[0]).to.equal(1);
    expect(decodeDistribution(bytes)).to.deep.equal(d);
    expectCryptoError(() => decodeDistribution(bytes.subarray(0, bytes.length - 1)), 'BAD_MESSAGE');
    expectCryptoError(() => decodeDistribution(concatBytes(bytes, new Uint8Array(1))), 'BAD_MESSAGE');
    expectCryptoError(() => decodeDistribution(flip(bytes, 0, 0x02)), 'BAD_MESSAGE');
    expectCryptoError(() => decodeDistribution(new Uint8Array(0)), 'BAD_MESSAGE');
    const maxIteration = bytes.slice();
    maxIteration.set([0xff, 0xff, 0xff, 0xff], 17);
    expectCryptoError(() => decodeDistribution(maxIteration), 'BAD_MESSAGE');
    // A low-order point (the identity element) as the signing key.
    const weak = bytes.slice();
    weak.set(concatBytes(new Uint8Array([1]), new Uint8Array(31)), SENDER_KEY_DISTRIBUTION_BYTES - 32);
    expectCryptoError(() => decodeDistribution(weak), 'WEAK_KEY');
    expectCryptoError(() => ReceivedSenderKey.fromDistribution({ ...d, chainKey: new Uint8Array(31) }), 'BAD_MESSAGE');
    expectCryptoError(() => encodeDistribution({ ...d, keyId: new Uint8Array(15) }), 'BAD_MESSAGE');
  });

  it('a message for another keyId is not this state’s (the caller routes by parseGroupMessageHeader)', () => {
    const a = SenderKeyState.create();
    const b = SenderKeyState.create();
    const ra = ReceivedSenderKey.fromDistribution(a.distribution());
    const mb = b.encrypt(text('x'), AD);
    expect(toHex(parseGroupMessageHeader(mb).keyId)).to.equal(toHex(b.keyId));
    expectCryptoError(() => ra.decrypt(mb, AD), 'BAD_MESSAGE');
    expectCryptoError(() => parseGroupMessageHeader(new Uint8Array(20)), 'BAD_MESSAGE');
  });

  it('property: reordered, duplicated and dropped messages (within the window) each decrypt exactly once', () => {
    type Action = { kind: 'send' } | { kind: 'deliver' | 'duplicate' | 'drop'; pick: number } | { kind: 'persist' };
    const action: fc.Arbitrary<Action> = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'send' as const }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'persist' as const }) },
    );
    let decryptedTotal = 0;
    let replayTotal = 0;
    fc.assert(
      fc.property(fc.array(action, { minLength: 20, maxLength: 200, size: 'max' }), fc.nat({ max: 100 }), (actions, preSent) => {
        let sender = SenderKeyState.create();
        // Some members join late: messages before the distribution are never readable for them.
        for (let i = 0; i < preSent % 3; i++) sender.encrypt(text('before'), AD);
        const start = sender.iteration;
        let receiver = ReceivedSenderKey.fromDistribution(sender.distribution());
        const inflight: { i: number; bytes: Uint8Array }[] = [];
        const sent: Uint8Array[] = [];
        const decrypted = new Set<number>();
        const deliver = (m: { i: number; bytes: Uint8Array }) => {
          if (decrypted.has(m.i)) {
            expectCryptoError(() => receiver.decrypt(m.bytes, AD), 'REPLAY');
            replayTotal++;
          } else {
            expect(str(receiver.decrypt(m.bytes, AD))).to.equal(`message ${m.i}`);
            decrypted.add(m.i);
            decryptedTotal++;
          }
        };
        for (const a of actions) {
          if (a.kind === 'send') {
            const i = start + sent.length;
            const bytes = sender.encrypt(text(`message ${i}`), AD);
            sent.push(bytes);
            inflight.push({ i, bytes });
          } else if (a.kind === 'persist') {
            sender = SenderKeyState.deserialize(sender.serialize());
            receiver = ReceivedSenderKey.deserialize(receiver.serialize());
          } else if (a.kind === 'duplicate') {
            if (sent.length > 0) {
              const k = a.pick % sent.length;
              inflight.push({ i: start + k, bytes: sent[k]!.slice() });
            }
          } else if (inflight.length > 0) {
            const [m] = inflight.splice(a.pick % inflight.length, 1);
            if (a.kind === 'deliver') deliver(m!);
          }
        }
        // Flush: everything still in flight arrives, in reverse order.
        for (const m of inflight.reverse()) deliver(m);
        expect(receiver.skippedKeyCount).to.equal(receiver.iteration - start - decrypted.size);
      }),
      { numRuns: 100 },
    );
    expect(decryptedTotal).to.be.greaterThan(1000);
    expect(replayTotal).to.be.greaterThan(0);
  });

  it('errors are CryptoErrors with a user-safe message', () => {
    const { receiver, messages } = chain(1);
    const e = expectCryptoError(() => receiver.decrypt(flip(messages[0]!, -1), AD), 'AUTHENTICATION_FAILED');
    expect(e).to.be.instanceOf(CryptoError);
    expect(e.message).to.not.include('m0');
  });
});
