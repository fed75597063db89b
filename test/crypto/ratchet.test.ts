import { expect } from 'chai';
import {
  CryptoError,
  MAX_GAP,
  MAX_OLD_RECEIVING_CHAINS,
  MAX_SKIPPED_KEYS,
  RATCHET_HEADER_BYTES,
  RatchetSession,
  hkdfExpand,
  hkdfSha256,
  messageKeyMaterial,
  rootStep,
  sodiumReady,
  toHex,
} from '../../client-sdk/src/crypto/index.js';
import { expectCryptoError, ratchetPair, str, text } from './helpers.js';

const state = (s: RatchetSession) => toHex(s.serialize());

/** Bob must receive before he can send: one message from Alice gets him there. */
async function started() {
  const { alice, bob } = await ratchetPair();
  expect(str(bob.decrypt(alice.encrypt(text('hello bob'))))).to.equal('hello bob');
  return { alice, bob };
}

function flip(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= mask;
  return out;
}

describe('Double Ratchet', () => {
  before(async () => {
    await sodiumReady();
  });

  it('key derivations are the documented ones (root step HKDF, message key HKDF-Expand)', () => {
    const rk = new Uint8Array(32).fill(1);
    const dh = new Uint8Array(32).fill(2);
    const okm = hkdfSha256(dh, rk, text('Curbside ratchet v1'), 64);
    const root = rootStep(rk, dh);
    expect(toHex(root.rootKey) + toHex(root.chainKey)).to.equal(toHex(okm));
    const mk = new Uint8Array(32).fill(3);
    const expanded = hkdfExpand(mk, text('Curbside message key v1'), 56);
    const { key, nonce } = messageKeyMaterial(mk);
    expect(toHex(key) + toHex(nonce)).to.equal(toHex(expanded));
    expect(toHex(messageKeyMaterial(mk).key)).to.equal(toHex(key)); // no state leaks between calls
  });

  it('ping-pong conversation, several messages per turn', async () => {
    const { alice, bob } = await ratchetPair();
    expect(bob.canSend).to.equal(false);
    expect(() => bob.encrypt(text('too early'))).to.throw(Error, /cannot send before/);
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < (round % 3) + 1; i++) {
        const m = `a→b ${round}.${i}`;
        expect(str(bob.decrypt(alice.encrypt(text(m))))).to.equal(m);
      }
      for (let i = 0; i < (round % 2) + 1; i++) {
        const m = `b→a ${round}.${i}`;
        expect(str(alice.decrypt(bob.encrypt(text(m))))).to.equal(m);
      }
    }
    expect(alice.skippedKeyCount).to.equal(0);
    expect(bob.skippedKeyCount).to.equal(0);
    expect(alice.confirmed && bob.confirmed).to.equal(true);
  });

  it('wire format: version 1, 41-byte header, ciphertext + 16-byte tag; empty plaintext works', async () => {
    const { alice, bob } = await started();
    const m = alice.encrypt(new Uint8Array(0));
    expect(m[0]).to.equal(1);
    expect(m.length).to.equal(RATCHET_HEADER_BYTES + 16);
    expect(bob.decrypt(m)).to.have.length(0);
    const big = alice.encrypt(new Uint8Array(100_000).fill(7));
    expect(big.length).to.equal(RATCHET_HEADER_BYTES + 100_000 + 16);
    expect(bob.decrypt(big)).to.deep.equal(new Uint8Array(100_000).fill(7));
  });

  it('out-of-order delivery within one chain', async () => {
    const { alice, bob } = await started();
    const msgs = [0, 1, 2, 3, 4].map((i) => alice.encrypt(text(`m${i}`)));
    for (const i of [3, 0, 4, 1, 2]) expect(str(bob.decrypt(msgs[i]!))).to.equal(`m${i}`);
    expect(bob.skippedKeyCount).to.equal(0);
  });

  it('out-of-order delivery across DH ratchet steps (old-chain messages after new-chain ones)', async () => {
    const { alice, bob } = await ratchetPair();
    const a0 = alice.encrypt(text('a0'));
    const a1 = alice.encrypt(text('a1'));
    const a2 = alice.encrypt(text('a2'));
    expect(str(bob.decrypt(a0))).to.equal('a0');
    const b0 = bob.encrypt(text('b0'));
    const b1 = bob.encrypt(text('b1'));
    expect(str(alice.decrypt(b1))).to.equal('b1'); // b0 still in flight
    const a3 = alice.encrypt(text('a3')); // new chain, PN = 3
    const a4 = alice.encrypt(text('a4'));
    expect(str(bob.decrypt(a4))).to.equal('a4'); // skips a1, a2 (old chain) and a3 (new chain)
    expect(bob.skippedKeyCount).to.equal(3);
    const b2 = bob.encrypt(text('b2'));
    expect(str(alice.decrypt(b2))).to.equal('b2');
    expect(str(alice.decrypt(b0))).to.equal('b0'); // from Bob's previous chain
    expect(str(bob.decrypt(a2))).to.equal('a2');
    expect(str(bob.decrypt(a3))).to.equal('a3');
    expect(str(bob.decrypt(a1))).to.equal('a1');
    expect(bob.skippedKeyCount).to.equal(0);
    expect(alice.skippedKeyCount).to.equal(0);
    expect(str(alice.decrypt(bob.encrypt(text('still fine'))))).to.equal('still fine');
  });

  it('replay is REPLAY (current chain, skipped keys, old chains) and the session keeps working', async () => {
    const { alice, bob } = await started();
    const m0 = alice.encrypt(text('m0'));
    const m1 = alice.encrypt(text('m1'));
    const m2 = alice.encrypt(text('m2'));
    bob.decrypt(m0);
    bob.decrypt(m2); // m1 skipped
    const before = state(bob);
    expectCryptoError(() => bob.decrypt(m0), 'REPLAY');
    expectCryptoError(() => bob.decrypt(m2), 'REPLAY');
    expect(state(bob)).to.equal(before);
    expect(str(bob.decrypt(m1))).to.equal('m1');
    expectCryptoError(() => bob.decrypt(m1), 'REPLAY'); // a used skipped key is deleted
    // After a ratchet step the old chain is remembered: its duplicates are still REPLAY.
    alice.decrypt(bob.encrypt(text('reply')));
    bob.decrypt(alice.encrypt(text('new chain')));
    expectCryptoError(() => bob.decrypt(m2), 'REPLAY');
    expect(str(bob.decrypt(alice.encrypt(text('after replays'))))).to.equal('after replays');
    expect(str(alice.decrypt(bob.encrypt(text('and back'))))).to.equal('and back');
  });

  it('tampered ciphertext, tag or header is DECRYPT_FAILED, malformed is BAD_MESSAGE; state unchanged; the genuine message still decrypts', async () => {
    const { alice, bob } = await started();
    bob.decrypt(alice.encrypt(text('one')));
    const genuine = alice.encrypt(text('genuine'));
    const before = state(bob);
    const tampered = [
      flip(genuine, genuine.length - 1), // tag
      flip(genuine, RATCHET_HEADER_BYTES + 2), // ciphertext
      flip(genuine, 1 + 5), // ratchet key in the header (a new ratchet key → DH step computed, then refused)
      flip(genuine, 36), // PN
      flip(genuine, 40), // N (forward by one)
      flip(genuine, 40, 0x80), // N (forward by 128)
    ];
    for (const t of tampered) expectCryptoError(() => bob.decrypt(t), 'DECRYPT_FAILED');
    const malformed = [
      new Uint8Array(0),
      genuine.subarray(0, RATCHET_HEADER_BYTES + 15),
      flip(genuine, 0, 0x02), // version 3
    ];
    for (const m of malformed) expectCryptoError(() => bob.decrypt(m), 'BAD_MESSAGE');
    expect(state(bob)).to.equal(before);
    expect(str(bob.decrypt(genuine))).to.equal('genuine');
  });

  it('a tampered first message of a new chain (DH step) leaves the state unchanged', async () => {
    const { alice, bob } = await started();
    alice.decrypt(bob.encrypt(text('turn')));
    const next = alice.encrypt(text('new chain'));
    const before = state(bob);
    expectCryptoError(() => bob.decrypt(flip(next, next.length - 3)), 'DECRYPT_FAILED');
    expectCryptoError(() => bob.decrypt(flip(next, 36, 0x02)), 'DECRYPT_FAILED'); // PN 1 → 3: would skip keys of the old chain
    expectCryptoError(() => bob.decrypt(flip(next, 34)), 'GAP_TOO_LARGE'); // PN 1 → 65537: refused before any work
    const lowOrder = next.slice();
    lowOrder.fill(0, 1, 33);
    expectCryptoError(() => bob.decrypt(lowOrder), 'WEAK_KEY');
    expect(state(bob)).to.equal(before);
    expect(str(bob.decrypt(next))).to.equal('new chain');
  });

  it('random corruption never throws anything but a CryptoError and never changes the state', async () => {
    const { alice, bob } = await started();
    const genuine = alice.encrypt(text('x'.repeat(40)));
    const before = state(bob);
    for (let i = 0; i < 300; i++) {
      const m = genuine.slice(0, Math.floor(Math.random() * (genuine.length + 1)));
      m[Math.floor(Math.random() * m.length)] = Math.floor(Math.random() * 256);
      try {
        bob.decrypt(m);
        expect.fail('a corrupted message decrypted');
      } catch (e) {
        expect(e).to.be.instanceOf(CryptoError);
      }
    }
    expect(state(bob)).to.equal(before);
    expect(str(bob.decrypt(genuine))).to.equal('x'.repeat(40));
  });

  it(`a forward gap above ${MAX_GAP} is GAP_TOO_LARGE with the state unchanged; exactly ${MAX_GAP} is accepted`, async () => {
    const { alice, bob } = await started(); // Bob has consumed n = 0
    const msgs = Array.from({ length: MAX_GAP + 2 }, (_, i) => alice.encrypt(text(`m${i + 1}`))); // n = 1 .. 2002
    const before = state(bob);
    expectCryptoError(() => bob.decrypt(msgs[MAX_GAP + 1]!), 'GAP_TOO_LARGE'); // n = 2002: skips 2001
    expect(state(bob)).to.equal(before);
    expect(str(bob.decrypt(msgs[0]!))).to.equal('m1');
    expect(str(bob.decrypt(msgs[MAX_GAP + 1]!))).to.equal(`m${MAX_GAP + 2}`); // skips exactly 2000
    expect(bob.skippedKeyCount).to.equal(MAX_GAP);
  });

  it('GAP_TOO_LARGE also guards the previous chain (PN) and a new chain (N)', async () => {
    const { alice, bob } = await started();
    for (let i = 0; i < MAX_GAP + 1; i++) alice.encrypt(text('lost')); // n = 1 .. 2001, never delivered
    alice.decrypt(bob.encrypt(text('turn')));
    const next = alice.encrypt(text('new chain')); // PN = 2002: Bob would skip 2001 keys of the old chain
    const before = state(bob);
    expectCryptoError(() => bob.decrypt(next), 'GAP_TOO_LARGE');
    expect(state(bob)).to.equal(before);

    const fresh = await started();
    fresh.alice.decrypt(fresh.bob.encrypt(text('turn')));
    const newChain = Array.from({ length: MAX_GAP + 2 }, () => fresh.alice.encrypt(text('x')));
    expectCryptoError(() => fresh.bob.decrypt(newChain[MAX_GAP + 1]!), 'GAP_TOO_LARGE'); // N = 2001 in a new chain
    expect(fresh.bob.decrypt(newChain[MAX_GAP]!)).to.deep.equal(text('x')); // N = 2000
  });

  it(`keeps at most ${MAX_SKIPPED_KEYS} skipped keys, evicting the oldest`, async () => {
    const { alice, bob } = await started();
    const first = Array.from({ length: 1500 }, (_, i) => alice.encrypt(text(`first ${i + 1}`))); // n = 1 .. 1500
    bob.decrypt(first[1499]!); // skips n = 1 .. 1499
    expect(bob.skippedKeyCount).to.equal(1499);
    alice.decrypt(bob.encrypt(text('turn')));
    const second = Array.from({ length: 1000 }, (_, i) => alice.encrypt(text(`second ${i}`)));
    bob.decrypt(second[999]!); // skips 999 more: 2498 > 2000, the 498 oldest go
    expect(bob.skippedKeyCount).to.equal(MAX_SKIPPED_KEYS);
    for (const i of [0, 100, 497]) expectCryptoError(() => bob.decrypt(first[i]!), 'REPLAY'); // evicted: key gone
    expect(str(bob.decrypt(first[498]!))).to.equal('first 499');
    expect(str(bob.decrypt(second[0]!))).to.equal('second 0');
    expect(bob.skippedKeyCount).to.equal(MAX_SKIPPED_KEYS - 2);
  });

  it(`keeps skipped keys for at most ${MAX_OLD_RECEIVING_CHAINS} old receiving chains`, async () => {
    const { alice, bob } = await ratchetPair();
    const lost = alice.encrypt(text('delayed')); // chain 1, n = 0
    bob.decrypt(alice.encrypt(text('a1'))); // skips n = 0
    const turn = () => {
      alice.decrypt(bob.encrypt(text('b')));
      bob.decrypt(alice.encrypt(text('a'))); // a new Alice chain: Bob retires his current receiving chain
    };
    for (let i = 0; i < MAX_OLD_RECEIVING_CHAINS; i++) turn();
    // Chain 1 is now the oldest of 5 old chains: its skipped key is still there.
    const copy = RatchetSession.deserialize(bob.serialize());
    expect(str(copy.decrypt(lost))).to.equal('delayed');
    turn(); // a 6th old chain: chain 1's keys are dropped
    expect(bob.skippedKeyCount).to.equal(0);
    expectCryptoError(() => bob.decrypt(lost), 'REPLAY');
  });

  it('serialize/deserialize mid-conversation keeps skipped keys and behaviour', async () => {
    const { alice, bob } = await started();
    const msgs = [0, 1, 2, 3, 4].map((i) => alice.encrypt(text(`m${i}`)));
    bob.decrypt(msgs[4]!); // 4 skipped keys pending
    const bytes = bob.serialize();
    const restored = RatchetSession.deserialize(bytes);
    expect(toHex(restored.serialize())).to.equal(toHex(bytes));
    expect(restored.skippedKeyCount).to.equal(4);
    expect(restored.confirmed).to.equal(true);
    for (const i of [2, 0, 3, 1]) expect(str(restored.decrypt(msgs[i]!))).to.equal(`m${i}`);
    expectCryptoError(() => restored.decrypt(msgs[4]!), 'REPLAY');
    // The restored session and the original one are the same session: both can answer Alice.
    const restoredAlice = RatchetSession.deserialize(alice.serialize());
    expect(str(restoredAlice.decrypt(restored.encrypt(text('from restored bob'))))).to.equal('from restored bob');
    expect(str(restored.decrypt(restoredAlice.encrypt(text('from restored alice'))))).to.equal('from restored alice');
    // An unconfirmed initiator round-trips too.
    const fresh = await ratchetPair();
    const aliceBytes = fresh.alice.serialize();
    const alice2 = RatchetSession.deserialize(aliceBytes);
    expect(alice2.confirmed).to.equal(false);
    expect(str(fresh.bob.decrypt(alice2.encrypt(text('after restore'))))).to.equal('after restore');
  });

  it('deserialize rejects malformed state with BAD_MESSAGE only', async () => {
    const { alice, bob } = await started();
    bob.decrypt(alice.encrypt(text('m1')));
    alice.encrypt(text('skipped'));
    bob.decrypt(alice.encrypt(text('m3')));
    const bytes = bob.serialize();
    for (let len = 0; len < bytes.length; len++) expectCryptoError(() => RatchetSession.deserialize(bytes.subarray(0, len)), 'BAD_MESSAGE');
    expectCryptoError(() => RatchetSession.deserialize(new Uint8Array([...bytes, 0])), 'BAD_MESSAGE');
    expectCryptoError(() => RatchetSession.deserialize(flip(bytes, 0, 0x02)), 'BAD_MESSAGE');
    expectCryptoError(() => RatchetSession.deserialize(flip(bytes, 1, 0x40)), 'BAD_MESSAGE');
  });
});
