import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDeviceStore, type ChatMessage, type CurbsideClient, type DecryptionError } from '@curbside/client-sdk';
import { FileDeviceStore } from '@curbside/client-sdk/node';
import { ErrorCode } from '@curbside/shared';
import { HubHarness, codeOf, eventually, type TestHub } from '../support/hub.js';
import { evilStorage } from '../support/evil-storage.js';
import { testDeviceKeys } from '../support/keys.js';

interface Watched {
  client: CurbsideClient;
  messages: ChatMessage[];
  errors: DecryptionError[];
  identityChanges: string[];
}

function watch(client: CurbsideClient): Watched {
  const w: Watched = { client, messages: [], errors: [], identityChanges: [] };
  client.on('message', (m) => w.messages.push(m));
  client.on('decryptionError', (e) => w.errors.push(e));
  client.on('identityChanged', (c) => w.identityChanges.push(c.userId));
  return w;
}

describe('end-to-end encrypted 1:1 messaging', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('two clinicians with two devices each: every other device reads every message once', async () => {
    const t = await harness.start('memory');
    const lee1 = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    const lee2 = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-desk' }));
    const patel1 = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }));
    const patel2 = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }));
    const all = [lee1, lee2, patel1, patel2];
    await Promise.all(all.map((w) => w.client.connect()));
    const conv = await lee1.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    await lee1.client.sendText(conv.id, 'Troponin 0.42 at 14:05 — can you look?');
    await patel2.client.sendText(conv.id, 'On my way');
    await lee2.client.sendText(conv.id, 'Thanks');
    await eventually(() => lee1.messages.length === 2 && lee2.messages.length === 2 && patel1.messages.length === 3 && patel2.messages.length === 2, 'all delivered');
    expect(patel1.messages.map((m) => m.text)).to.deep.equal(['Troponin 0.42 at 14:05 — can you look?', 'On my way', 'Thanks']);
    expect(patel1.messages.map((m) => m.outgoing)).to.deep.equal([false, true, false]);
    expect(lee2.messages.map((m) => [m.text, m.outgoing])).to.deep.equal([
      ['Troponin 0.42 at 14:05 — can you look?', true],
      ['On my way', false],
    ]);
    for (const w of all) expect(w.errors, 'no decryption errors').to.deep.equal([]);

    // The hub stored one body per message and, for each device, only a ciphertext it cannot read.
    const stored = await t.storage.envelopesAfter('org-a', conv.id, 0, 10);
    expect(stored.map((e) => e.recipients?.map((r) => r.deviceId).sort())).to.deep.equal([
      ['lee-desk', 'patel-laptop', 'patel-tablet'],
      ['lee-desk', 'lee-phone', 'patel-laptop'],
      ['lee-phone', 'patel-laptop', 'patel-tablet'],
    ]);
  });

  it('sessions and keys survive a restart with the file store', async () => {
    const t = await harness.start('memory');
    const dir = mkdtempSync(join(tmpdir(), 'curbside-device-'));
    try {
      const lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }));
      let store = await FileDeviceStore.open(dir);
      const patel = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store }));
      await Promise.all([lee.client.connect(), patel.client.connect()]);
      const conv = await lee.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      await lee.client.sendText(conv.id, 'before restart');
      await eventually(() => patel.messages.length === 1, 'first');
      const identityBefore = await patel.client.trust.identityKey();
      patel.client.disconnect();
      await store.close();

      await lee.client.sendText(conv.id, 'while offline');
      store = await FileDeviceStore.open(dir);
      const again = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store }));
      await again.client.connect();
      expect(Buffer.from(await again.client.trust.identityKey()).equals(Buffer.from(identityBefore))).to.equal(true);
      await eventually(() => again.messages.length === 1, 'missed message after restart');
      expect(again.messages[0]!.text).to.equal('while offline');
      await again.client.sendText(conv.id, 'after restart');
      await eventually(() => lee.messages.length === 1, 'reply');
      expect(lee.messages[0]!.text).to.equal('after restart');
      expect([...lee.errors, ...again.errors]).to.deep.equal([]);
      again.client.disconnect();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('safety numbers match on both sides and change when a device is added', async () => {
    const t = await harness.start('memory');
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    await Promise.all([lee.connect(), patel.connect()]);
    const a = await lee.trust.safetyNumber('dr-patel');
    const b = await patel.trust.safetyNumber('dr-lee');
    expect(a.displayString).to.match(/^\d{60}$/);
    expect(a.displayString).to.equal(b.displayString);
    expect(a.state).to.equal('unverified');
    await lee.trust.markVerified('dr-patel');
    expect(await lee.trust.safetyNumber('dr-patel')).to.deep.include({ displayString: a.displayString, state: 'verified' });
    const tablet = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' });
    await tablet.connect();
    const after = await lee.trust.safetyNumber('dr-patel');
    expect(after.displayString).to.not.equal(a.displayString);
    expect(after.state, 'verified before, then a device joined the signed list').to.equal('devices-changed');
  });

  describe('against a hostile hub', function () {
    let t: TestHub;
    let evil: ReturnType<typeof evilStorage>['evil'];
    let lee: Watched;
    let patel: Watched;
    let convId: string;

    beforeEach(async () => {
      let captured: ReturnType<typeof evilStorage>['evil'] | undefined;
      t = await harness.start('memory', undefined, undefined, (s) => {
        const wrapped = evilStorage(s);
        captured = wrapped.evil;
        return wrapped.storage;
      });
      evil = captured!;
      lee = watch(t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { store: new MemoryDeviceStore() }));
      patel = watch(t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }));
      await Promise.all([lee.client.connect(), patel.client.connect()]);
      convId = (await lee.client.createConversation({ kind: 'direct', peerUserId: 'dr-patel' })).id;
    });

    it('a substituted identity key reaches nobody: sends use the key the signed device list gives, and the app is alerted', async () => {
      const rejections: Array<{ userId: string; problem: string; deviceId?: string }> = [];
      lee.client.on('deviceListRejected', (r) => rejections.push(r));
      await lee.client.sendText(convId, 'hello');
      await eventually(() => patel.messages.length === 1, 'first message');
      const before = await lee.client.trust.safetyNumber('dr-patel');
      const mallory = testDeviceKeys().identityKey;
      evil.rewriteIdentity = (userId, _d, key) => (userId === 'dr-patel' ? mallory : key);
      await lee.client.sendText(convId, 'secret plan');
      // Only the genuine device (the key Patel's own device signed into the list) can read it.
      await eventually(() => patel.messages.length === 2, 'the genuine device reads the second message');
      expect(patel.messages[1]!.text).to.equal('secret plan');
      expect(rejections).to.deep.include({ userId: 'dr-patel', problem: 'substituted-key', version: 1, deviceId: 'patel-laptop' });
      const after = await lee.client.trust.safetyNumber('dr-patel');
      expect(after, 'the number follows the signed list, not the hub').to.deep.include({ displayString: before.displayString, state: before.state });
      expect(lee.identityChanges, 'nothing for the user to accept').to.deep.equal([]);
    });

    it('a bundle for a substituted identity key starts no session: nothing is sent, and the app is alerted', async () => {
      const mallory = testDeviceKeys();
      evil.rewriteBundle = (b) => (b.userId === 'dr-patel' ? { ...b, identityKey: mallory.identityKey, signedPrekey: mallory.signedPrekey(b.signedPrekey.keyId) } : b);
      const rejections: string[] = [];
      lee.client.on('deviceListRejected', (r) => rejections.push(`${r.userId}/${r.deviceId}:${r.problem}`));
      expect(await codeOf(lee.client.sendText(convId, 'x'))).to.equal(ErrorCode.UNTRUSTED_IDENTITY);
      expect(rejections).to.deep.equal(['dr-patel/patel-laptop:substituted-key']);
      expect(await t.storage.envelopesAfter('org-a', convId, 0, 10)).to.have.length(0);
      expect(lee.identityChanges, 'not offered to the user as a key change to accept').to.deep.equal([]);
    });

    it('a substituted prekey bundle (bad signature) is refused and nothing is sent', async () => {
      const forged = testDeviceKeys();
      evil.rewriteBundle = (b) => ({ ...b, signedPrekey: forged.signedPrekey(b.signedPrekey.keyId) });
      expect(await codeOf(lee.client.sendText(convId, 'x'))).to.equal(ErrorCode.BAD_SIGNATURE);
      expect(await t.storage.envelopesAfter('org-a', convId, 0, 10)).to.have.length(0);
    });

    for (const [what, flip] of [
      ['header', (_c: Uint8Array) => 2 + 32 + 32 + 4 + 1 + 4 + 2] as const, // inside the ratchet header of a prekey message
      ['ciphertext', (c: Uint8Array) => c.length - 5] as const,
    ]) {
      it(`a tampered ${what} is refused as tampered, costs that message only, and resets no session`, async () => {
        evil.tamper = (e) => ({
          ...e,
          recipients: e.recipients?.map((r) => {
            if (r.deviceId !== 'patel-laptop') return r;
            const c = new Uint8Array(r.ciphertext);
            c[flip(c)]! ^= 0x40;
            return { ...r, ciphertext: c };
          }),
        });
        await lee.client.sendText(convId, 'tampered on the way');
        await eventually(() => patel.errors.length === 1, 'decryption error');
        expect(patel.errors[0]!.code).to.equal(ErrorCode.DECRYPTION_FAILED);
        expect(patel.errors[0]!.reason).to.equal('AUTHENTICATION_FAILED');
        expect(patel.errors[0]!.message).to.not.include('tampered on the way');
        expect(patel.messages).to.deep.equal([]);
        evil.tamper = undefined;
        await lee.client.sendText(convId, 'after tampering');
        await patel.client.sendText(convId, 'reply');
        await eventually(() => patel.messages.length === 1 && lee.messages.length === 1, 'both directions work');
        expect(patel.messages[0]!.text).to.equal('after tampering');
        expect(lee.messages[0]!.text).to.equal('reply');
        expect(lee.errors).to.deep.equal([]);
        expect(patel.errors).to.have.length(1);
        // One bad message is no evidence that the session is lost: no session reset was sent.
        const stored = await t.storage.envelopesAfter('org-a', convId, 0, 10);
        expect(stored.filter((e) => e.kind !== 'receipt').map((e) => e.senderDeviceId)).to.deep.equal(['lee-phone', 'lee-phone', 'patel-laptop']);
      });
    }

    it('a replayed envelope is never shown twice and raises no error', async () => {
      await lee.client.sendText(convId, 'once');
      await eventually(() => patel.messages.length === 1, 'delivered');
      const [original] = await t.storage.envelopesAfter('org-a', convId, 0, 1);
      // The hub stores a copy under a new seq, as a replaying server would.
      await t.storage.appendEnvelope({
        orgId: 'org-a',
        conversationId: convId,
        senderUserId: original!.senderUserId,
        senderDeviceId: original!.senderDeviceId,
        clientMessageId: 'replayed-copy',
        body: original!.body,
        recipients: original!.recipients,
        now: Date.now(),
      });
      await lee.client.sendText(convId, 'next'); // seq 3: patel resyncs the gap at seq 2 and sees the copy
      await eventually(() => patel.messages.length === 2, 'next');
      expect(patel.messages.map((m) => m.text)).to.deep.equal(['once', 'next']);
      expect(patel.errors, 'a replay is dropped quietly: the message key was already used').to.deep.equal([]);
    });
  });
});
