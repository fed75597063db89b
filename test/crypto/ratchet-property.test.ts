/**
 * Property: two devices talk through a hostile network that drops, duplicates and reorders
 * messages (and restarts from persisted state). Every message that is delivered decrypts exactly
 * once with the right plaintext, every duplicate fails as REPLAY, and nothing else ever fails,
 * except where the model predicts the documented limit: a message delayed while the receiver
 * moved more than MAX_OLD_RECEIVING_CHAINS chains ahead has lost its skipped key (REPLAY).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  CryptoError,
  MAX_OLD_RECEIVING_CHAINS,
  RatchetSession,
  acceptSession,
  decodeSessionMessage,
  decryptSessionMessage,
  encryptSessionMessage,
  sodiumReady,
  startSession,
  toHex,
} from '../../client-sdk/src/crypto/index.js';
import { device, str, text } from './helpers.js';

type Dir = 0 | 1; // 0: Alice → Bob, 1: Bob → Alice
type Action =
  | { kind: 'send'; from: Dir }
  | { kind: 'deliver'; dir: Dir; pick: number }
  | { kind: 'duplicate'; dir: Dir; pick: number }
  | { kind: 'drop'; dir: Dir; pick: number }
  | { kind: 'persist'; who: Dir };

const dir = fc.constantFrom<Dir>(0, 1);
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('send' as const), from: dir }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('deliver' as const), dir, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), dir, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), dir, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('persist' as const), who: dir }) },
);

interface Wire {
  id: string;
  /** Send order within its direction. */
  seq: number;
  bytes: Uint8Array;
  /** Index of the sender's sending chain (order of first appearance of its ratchet key). */
  epoch: number;
}

const totals = { sent: 0, decrypted: 0, replays: 0, reordered: 0, lostToLimit: 0, dropped: 0 };

async function run(actions: Action[]): Promise<void> {
  const a = await device();
  const b = await device();
  const sessions: [RatchetSession | undefined, RatchetSession | undefined] = [(await startSession(a.identity, b.bundle())).session, undefined];
  const inflight: [Wire[], Wire[]] = [[], []];
  const delivered: [Wire[], Wire[]] = [[], []];
  const chainIds: [Map<string, number>, Map<string, number>] = [new Map(), new Map()];
  const receiverEpoch = [-1, -1]; // per direction: newest sender chain the receiver has decrypted from
  const newestSeq = [-1, -1];
  const sentSeq = [0, 0];
  const decrypted = new Map<string, number>();
  let counter = 0;

  const receive = async (d: Dir, w: Wire): Promise<Uint8Array> => {
    const to = d === 0 ? 1 : 0;
    const session = sessions[to];
    if (session === undefined) {
      // Only Bob can lack a session, and only Alice's PreKeyMessages reach him then.
      const accepted = await acceptSession(b.identity, b.lookup, w.bytes);
      if (accepted.usedOneTimePrekeyId !== undefined) b.oneTime.delete(accepted.usedOneTimePrekeyId);
      sessions[to] = accepted.session;
      return accepted.plaintext;
    }
    return decryptSessionMessage(session, w.bytes);
  };

  const deliver = async (d: Dir, w: Wire, duplicate: boolean) => {
    const lost = w.epoch < receiverEpoch[d]! - MAX_OLD_RECEIVING_CHAINS;
    let plaintext: Uint8Array | undefined;
    let error: unknown;
    try {
      plaintext = await receive(d, w);
    } catch (e) {
      error = e;
    }
    if (duplicate || lost) {
      expect(error, `${w.id} ${duplicate ? 'duplicate' : 'delayed past the chain limit'}`).to.be.instanceOf(CryptoError);
      expect((error as CryptoError).code, (error as CryptoError).detail).to.equal('REPLAY');
      if (duplicate) totals.replays++;
      else totals.lostToLimit++;
      return;
    }
    if (error !== undefined) throw error;
    expect(str(plaintext!)).to.equal(w.id);
    decrypted.set(w.id, (decrypted.get(w.id) ?? 0) + 1);
    if (w.seq < newestSeq[d]!) totals.reordered++;
    newestSeq[d] = Math.max(newestSeq[d]!, w.seq);
    receiverEpoch[d] = Math.max(receiverEpoch[d]!, w.epoch);
    delivered[d].push(w);
    totals.decrypted++;
  };

  for (const act of actions) {
    if (act.kind === 'send') {
      const session = sessions[act.from];
      if (session === undefined || !session.canSend) continue; // Bob before his first message
      const id = `${act.from === 0 ? 'a' : 'b'}${counter++}`;
      const bytes = encryptSessionMessage(session, text(id));
      const ratchetKey = toHex(decodeSessionMessage(bytes).ratchetMessage.subarray(1, 33));
      const ids = chainIds[act.from];
      if (!ids.has(ratchetKey)) ids.set(ratchetKey, ids.size);
      inflight[act.from].push({ id, seq: sentSeq[act.from]!++, bytes, epoch: ids.get(ratchetKey)! });
      totals.sent++;
    } else if (act.kind === 'persist') {
      const s = sessions[act.who];
      if (s !== undefined) sessions[act.who] = RatchetSession.deserialize(s.serialize());
    } else if (act.kind === 'duplicate') {
      const list = delivered[act.dir];
      if (list.length > 0) await deliver(act.dir, list[act.pick % list.length]!, true);
    } else {
      const list = inflight[act.dir];
      if (list.length === 0) continue;
      const [w] = list.splice(act.pick % list.length, 1);
      if (act.kind === 'drop') {
        totals.dropped++;
        continue;
      }
      await deliver(act.dir, w!, false);
    }
  }
  // Flush: whatever is still in flight arrives, newest first.
  for (const d of [0, 1] as const) for (const w of inflight[d].reverse()) await deliver(d, w, false);
  for (const [id, n] of decrypted) expect(n, id).to.equal(1);
}

describe('Double Ratchet property: drop / duplicate / reorder / restart', () => {
  before(async () => {
    await sodiumReady();
  });

  it('every delivered message decrypts exactly once, duplicates are REPLAY, nothing else fails', async function () {
    this.timeout(60_000);
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 60, size: 'max' }), (actions) => run(actions)),
      { numRuns: 150 },
    );
    if (process.env.CRYPTO_PROPERTY_STATS) console.log(totals);
    // The property must actually exercise what it claims to.
    expect(totals.decrypted, JSON.stringify(totals)).to.be.greaterThan(500);
    expect(totals.replays, JSON.stringify(totals)).to.be.greaterThan(20);
    expect(totals.reordered, JSON.stringify(totals)).to.be.greaterThan(20);
    expect(totals.dropped, JSON.stringify(totals)).to.be.greaterThan(20);
  });

  it('a hand-written hostile schedule', async () => {
    const s = (from: Dir): Action => ({ kind: 'send', from });
    const dl = (d: Dir, pick = 0): Action => ({ kind: 'deliver', dir: d, pick });
    await run([s(0), s(0), s(0), dl(0, 2), { kind: 'duplicate', dir: 0, pick: 0 }, s(1), s(1), dl(1, 1), s(0), { kind: 'persist', who: 1 }, dl(0, 1), { kind: 'drop', dir: 0, pick: 0 }, dl(1), dl(0)]);
  });
});
