import { expect } from 'chai';
import { MemoryDeviceStore, type ChatMessage, type CurbsideClient, type DecryptionError } from '@curbside/client-sdk';
import type { Storage } from '@curbside/server';
import { SENDER_KEY_HEADER_BYTES } from '../../client-sdk/src/crypto/index.js';
import { SESSION_MESSAGE_RATCHET } from '../../client-sdk/src/crypto/session-cipher.js';
import { evilStorage } from '../support/evil-storage.js';
import { HubHarness, eventually, type TestHub } from '../support/hub.js';

/**
 * Issue #16 part 2: one flipped byte in a 1:1 or care-team message used to cost the next messages
 * too (the session was reset; a tampered team message sent a 1:1 reset into the team). Now the
 * damaged message alone is lost, reported once per device, and everything after it arrives.
 */

type Evil = ReturnType<typeof evilStorage>['evil'];
type Stored = Parameters<NonNullable<Evil['tamper']>>[0];

interface Device {
  deviceId: string;
  client: CurbsideClient;
  messages: ChatMessage[];
  errors: DecryptionError[];
}

function device(t: TestHub, userId: string, deviceId: string): Device {
  const client = t.client({ userId, deviceId });
  const d: Device = { deviceId, client, messages: [], errors: [] };
  client.on('message', (m) => d.messages.push(m));
  client.on('decryptionError', (e) => d.errors.push(e));
  return d;
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  const i = at < 0 ? out.length + at : at;
  out[i] = out[i]! ^ 0x01;
  return out;
}

const inBody = (at: number) => (e: Stored) => ({ ...e, body: flip(e.body!, at) });
const inShares = (at: number) => (e: Stored) => ({ ...e, recipients: e.recipients!.map((r) => ({ ...r, ciphertext: flip(r.ciphertext, at) })) });
/** Where the ratchet message starts in a share: after version and type, and a prekey message's X3DH header. */
function ratchetStart(share: Uint8Array): number {
  if (share[1] === SESSION_MESSAGE_RATCHET) return 2;
  return 2 + 32 + 32 + 4 + 1 + (share[2 + 32 + 32 + 4] === 1 ? 4 : 0);
}
const inRatchetHeader = (at: number) => (e: Stored) => ({ ...e, recipients: e.recipients!.map((r) => ({ ...r, ciphertext: flip(r.ciphertext, ratchetStart(r.ciphertext) + at) })) });

async function start(harness: HubHarness): Promise<{ t: TestHub; evil: Evil }> {
  let evil: Evil | undefined;
  const t = await harness.start('memory', undefined, undefined, (s: Storage) => {
    const wrapped = evilStorage(s);
    evil = wrapped.evil;
    return wrapped.storage;
  });
  return { t, evil: evil! };
}

/**
 * Send "tampered" (its stored envelope damaged by `change`: read live by online devices, from the
 * database by the `offline` ones when they reconnect and sync) and three more; `readers` must read
 * every message but "tampered" and report it once, as tampered.
 */
async function sendThrough(
  evil: Evil,
  sender: Device,
  conversationId: string,
  readers: Device[],
  change: (e: Stored) => Stored,
  offline: Device[],
  reason = 'AUTHENTICATION_FAILED',
): Promise<void> {
  let target: string | undefined;
  // The SDK picks the client message id: learn it from the first envelope this send stores.
  let armed = true;
  evil.tamper = (e) => {
    if (armed && e.senderDeviceId === sender.deviceId && e.conversationId === conversationId && e.kind !== 'receipt' && !e.membership) {
      target = e.clientMessageId;
      armed = false;
    }
    return e.clientMessageId === target ? change(e) : e;
  };
  for (const d of offline) await d.client.disconnect();
  const baseline = readers.map((d) => d.messages.length);
  await sender.client.sendText(conversationId, 'tampered');
  expect(target, 'the tampered envelope was seen').to.be.a('string');
  for (const text of ['after 1', 'after 2', 'after 3']) await sender.client.sendText(conversationId, text);
  for (const d of offline) await d.client.connect();
  await eventually(() => readers.every((d, i) => d.messages.length - baseline[i]! === 3), 'every later message arrives on every device', 10_000);
  for (const d of readers) {
    expect(d.messages.slice(baseline[readers.indexOf(d)]!).map((m) => m.text), `${d.deviceId} reads every later message`).to.deep.equal(['after 1', 'after 2', 'after 3']);
    expect(d.errors.map((e) => [e.code, e.reason, e.messageId !== '', e.conversationId, e.senderDeviceId]), `${d.deviceId} reports the tampered one once`).to.deep.equal([
      ['DECRYPTION_FAILED', reason, true, conversationId, sender.deviceId],
    ]);
  }
}

describe('one flipped byte costs one message (issue #16 part 2)', function () {
  this.timeout(30_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  // The ratchet message in a share: version, ratchet key, PN, N, ciphertext.
  const counterHighByte = 1 + 32 + 4;
  const oneToOneParts: Array<[string, (e: Stored) => Stored, string?]> = [
    ['session message header (identity or ratchet key)', inShares(3)],
    ['session message counter (N + 256)', inRatchetHeader(counterHighByte + 2)],
    // N + 2^24: the key is too far ahead to derive, so the message cannot even be authenticated. It is
    // refused as GAP_TOO_LARGE (as libsignal does), and costs only itself: one such header is not
    // evidence that the session is lost, so nothing is reset.
    ['session message counter (high byte)', inRatchetHeader(counterHighByte), 'GAP_TOO_LARGE'],
    ['key share ciphertext', inShares(-20)],
    ['key share tag', inShares(-1)],
    ['body nonce', inBody(0)],
    ['body ciphertext', inBody(30)],
    ['body tag', inBody(-1)],
  ];
  for (const [part, change, reason] of oneToOneParts) {
    for (const where of ['on the wire', 'in the database'] as const) {
      it(`1:1: a flipped byte in the ${part}, ${where}`, async () => {
        const { t, evil } = await start(harness);
        const lee = device(t, 'dr-lee', 'lee-phone');
        const leeDesk = device(t, 'dr-lee', 'lee-desk');
        const patel = device(t, 'dr-patel', 'patel-laptop');
        await Promise.all([lee, leeDesk, patel].map((d) => d.client.connect()));
        const conv = await lee.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
        await lee.client.sendText(conv.id, 'hello');
        await patel.client.sendText(conv.id, 'hello back');
        await eventually(() => patel.messages.length === 1 && leeDesk.messages.length === 2 && lee.messages.length === 1, 'sessions set up');
        await sendThrough(evil, lee, conv.id, [patel, leeDesk], change, where === 'in the database' ? [patel, leeDesk] : [], reason);
        // The way back is untouched as well.
        await patel.client.sendText(conv.id, 'still there');
        await eventually(() => lee.messages.some((m) => m.text === 'still there'), 'the reply arrives');
        expect(lee.errors).to.deep.equal([]);
      });
    }
  }

  const teamParts: Array<[string, (e: Stored) => Stored]> = [
    ['group message header (iteration)', inBody(SENDER_KEY_HEADER_BYTES - 1)],
    ['group message body', inBody(SENDER_KEY_HEADER_BYTES + 2)],
    ['group message tag', inBody(-65)],
    ['group message signature', inBody(-1)],
  ];
  for (const [part, change] of teamParts) {
    for (const where of ['on the wire', 'in the database'] as const) {
      it(`team: a flipped byte in the ${part}, ${where}`, async () => {
        const { t, evil } = await start(harness);
        const lee = device(t, 'dr-lee', 'lee-phone');
        const leeDesk = device(t, 'dr-lee', 'lee-desk');
        const patel = device(t, 'dr-patel', 'patel-laptop');
        const ortiz = device(t, 'rn-ortiz', 'ortiz-tablet');
        const all = [lee, leeDesk, patel, ortiz];
        await Promise.all(all.map((d) => d.client.connect()));
        const { teamId } = await lee.client.createTeam('Ward 4B', [{ userId: 'dr-patel' }, { userId: 'rn-ortiz' }]);
        await eventually(async () => (await ortiz.client.teamState(teamId)) !== undefined && (await patel.client.teamState(teamId)) !== undefined, 'members verified the team');
        await lee.client.sendText(teamId, 'first');
        await eventually(() => [leeDesk, patel, ortiz].every((d) => d.messages.length === 1), 'sender key shared');
        await sendThrough(evil, lee, teamId, [leeDesk, patel, ortiz], change, where === 'in the database' ? [leeDesk, patel, ortiz] : []);
        await patel.client.sendText(teamId, 'from patel');
        await eventually(() => lee.messages.some((m) => m.text === 'from patel') && ortiz.messages.some((m) => m.text === 'from patel'), 'others still send');
        for (const d of all) expect(d.errors.filter((e) => e.senderDeviceId !== 'lee-phone'), `${d.deviceId}: no cascade`).to.deep.equal([]);
        // No 1:1 session reset went into the team.
        const stored = await t.storage.envelopesAfter('org-a', teamId, 0, 100);
        expect(stored.filter((e) => e.senderDeviceId !== 'lee-phone' && !e.membership && e.kind !== 'receipt').length).to.equal(1);
      });
    }
  }

  for (const where of ['on the wire', 'in the database'] as const) {
    it(`team: a flipped byte in the sender-key share, to other members' devices and to the sender's own other device, ${where}`, async () => {
      const { t, evil } = await start(harness);
      const lee = device(t, 'dr-lee', 'lee-phone');
      const leeDesk = device(t, 'dr-lee', 'lee-desk');
      const patel = device(t, 'dr-patel', 'patel-laptop');
      const ortiz = device(t, 'rn-ortiz', 'ortiz-tablet');
      await Promise.all([lee, leeDesk, patel, ortiz].map((d) => d.client.connect()));
      const { teamId } = await lee.client.createTeam('Ward 4B', [{ userId: 'dr-patel' }, { userId: 'rn-ortiz' }]);
      await eventually(async () => (await ortiz.client.teamState(teamId)) !== undefined && (await patel.client.teamState(teamId)) !== undefined && (await leeDesk.client.teamState(teamId)) !== undefined, 'members verified the team');
      // Sessions exist first, so the shares are ratchet messages: the team's first messages from Patel
      // and from Lee's desk.
      await patel.client.sendText(teamId, 'sessions');
      await leeDesk.client.sendText(teamId, 'desk here');
      await eventually(() => lee.messages.length === 2 && ortiz.messages.length === 2 && patel.messages.length === 1, 'patel and the desk read');
      // Lee's first team message from the phone carries the shares of its sender key: damage them all.
      await sendThrough(evil, lee, teamId, [patel, ortiz, leeDesk], inShares(-5), where === 'in the database' ? [patel, ortiz, leeDesk] : []);
      for (const d of [lee, leeDesk, patel, ortiz]) expect(d.errors.filter((e) => e.senderDeviceId !== 'lee-phone'), `${d.deviceId}: no cascade`).to.deep.equal([]);
    });
  }

  it('team: a device that lost its 1:1 session with a sender repairs it with that device alone, and reads on', async () => {
    const { t } = await start(harness);
    const leeStore = new MemoryDeviceStore();
    const leeClient = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store: leeStore });
    const lee: Device = { deviceId: 'lee-phone', client: leeClient, messages: [], errors: [] };
    leeClient.on('message', (m) => lee.messages.push(m));
    leeClient.on('decryptionError', (e) => lee.errors.push(e));
    const patelStore = new MemoryDeviceStore();
    const patelClient = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store: patelStore });
    const patel: Device = { deviceId: 'patel-laptop', client: patelClient, messages: [], errors: [] };
    patelClient.on('message', (m) => patel.messages.push(m));
    patelClient.on('decryptionError', (e) => patel.errors.push(e));
    const ortiz = device(t, 'rn-ortiz', 'ortiz-tablet');
    await Promise.all([lee, patel, ortiz].map((d) => d.client.connect()));
    const { teamId } = await lee.client.createTeam('Ward 4B', [{ userId: 'dr-patel' }, { userId: 'rn-ortiz' }]);
    await eventually(async () => (await ortiz.client.teamState(teamId)) !== undefined && (await patel.client.teamState(teamId)) !== undefined, 'members verified the team');
    await lee.client.sendText(teamId, 'first');
    await eventually(() => patel.messages.length === 1 && ortiz.messages.length === 1, 'sender key shared');
    // Patel's device loses its session with Lee's phone (a store restored from an older copy, say).
    await patelStore.delete('sessions', 'dr-lee\nlee-phone');
    // A removal makes Lee's phone hand out a new sender key, over the session Patel no longer has.
    await lee.client.removeTeamMember(teamId, 'rn-ortiz');
    await eventually(async () => (await patel.client.teamState(teamId))?.members['rn-ortiz'] === undefined, 'patel applied the removal');
    await lee.client.sendText(teamId, 'after removal');
    await eventually(() => patel.errors.length === 1, 'the unreadable share is reported');
    expect(patel.errors.map((e) => [e.reason, e.senderDeviceId])).to.deep.equal([['NO_SESSION', 'lee-phone']]);
    const stored = async () => (await t.storage.envelopesAfter('org-a', teamId, 0, 100)).filter((e) => e.senderDeviceId === 'patel-laptop' && e.kind !== 'receipt');
    await eventually(async () => (await stored()).length === 1, 'patel sent a repair');
    const [repair] = await stored();
    expect(repair!.body, 'nothing in the team stream').to.equal(undefined);
    expect(repair!.recipients!.map((r) => r.deviceId), 'addressed to the one device').to.deep.equal(['lee-phone']);
    const sessionsWithPatel = async () => (await leeStore.get<{ sessions: Uint8Array[] }>('sessions', 'dr-patel\npatel-laptop'))?.sessions.length ?? 0;
    await eventually(async () => (await sessionsWithPatel()) === 2, "Lee's phone took the new session");
    await lee.client.sendText(teamId, 'after repair');
    await eventually(() => patel.messages.some((m) => m.text === 'after repair'), 'patel reads the team again');
    expect(patel.errors.length, 'only the message sent over the lost session').to.equal(1);
    expect(lee.errors).to.deep.equal([]);
  });
});
