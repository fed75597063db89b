import { expect } from 'chai';
import { ReceivedSenderKey, SenderKeyState, decryptSessionMessage, encryptSessionMessage, toHex, type RatchetSession } from '../../client-sdk/src/crypto/index.js';
import { ratchetPair, str, text } from './helpers.js';

/**
 * Issue #16 part 2, at the unit level: a message that fails to decrypt, whichever byte of it was
 * flipped, leaves the Double Ratchet session and the sender-key chain byte-identical, and the
 * genuine messages after it still decrypt.
 */

const ratchetState = (s: RatchetSession) => toHex(s.serialize());
const chainState = (r: ReceivedSenderKey) => toHex(r.serialize());

function flipAt(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= 0x01;
  return out;
}

describe('a failed decrypt leaves ratchet and sender-key state byte-identical', () => {
  it('Double Ratchet session messages: every byte position of a ratchet message', async () => {
    const { alice, bob } = await ratchetPair();
    expect(str(decryptSessionMessage(bob, encryptSessionMessage(alice, text('hello'))))).to.equal('hello');
    expect(str(decryptSessionMessage(alice, encryptSessionMessage(bob, text('hello back'))))).to.equal('hello back');
    const messages = ['one', 'two', 'three'].map((m) => encryptSessionMessage(alice, text(m)));
    const victim = messages[1]!;
    const before = ratchetState(bob);
    let failures = 0;
    for (let i = 0; i < victim.length; i++) {
      expect(() => decryptSessionMessage(bob, flipAt(victim, i)), `byte ${i}`).to.throw();
      failures++;
      expect(ratchetState(bob), `state after a flip at byte ${i}`).to.equal(before);
    }
    expect(failures).to.equal(victim.length);
    expect(messages.map((m) => str(decryptSessionMessage(bob, m)))).to.deep.equal(['one', 'two', 'three']);
    expect(ratchetState(bob)).to.not.equal(before);
  });

  it('sender-key chains: every byte position of a group message, and a wrong associated data', () => {
    const ad = text('curbside-group-v1\nteam\ndr-lee\nlee-phone\nmsg');
    const sender = SenderKeyState.create();
    const receiver = ReceivedSenderKey.fromDistribution(sender.distribution());
    expect(str(receiver.decrypt(sender.encrypt(text('first'), ad), ad))).to.equal('first');
    const messages = ['one', 'two', 'three'].map((m) => sender.encrypt(text(m), ad));
    const victim = messages[1]!;
    const before = chainState(receiver);
    for (let i = 0; i < victim.length; i++) {
      expect(() => receiver.decrypt(flipAt(victim, i), ad), `byte ${i}`).to.throw();
      expect(chainState(receiver), `state after a flip at byte ${i}`).to.equal(before);
    }
    expect(() => receiver.decrypt(victim, flipAt(ad, 3))).to.throw();
    expect(chainState(receiver)).to.equal(before);
    expect(messages.map((m) => str(receiver.decrypt(m, ad)))).to.deep.equal(['one', 'two', 'three']);
  });
});
