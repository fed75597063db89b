import { expect } from 'chai';
import { io as rawIo, type Socket } from 'socket.io-client';
import { CurbsideClient, MemoryDeviceStore, isCurbsideError, type Envelope } from '@curbside/client-sdk';
import { ClientEvent, ErrorCode, Limits, wireParser, type Ack, type SendResult } from '@curbside/shared';
import { HubHarness, bytes, eventually, text, type Backend, type TestHub } from '../support/hub.js';

const backends: Backend[] = ['memory', 'real'];

/** Collects envelopes a client receives. */
function inbox(client: CurbsideClient): Envelope[] {
  const got: Envelope[] = [];
  client.on('envelope', (e) => got.push(e));
  return got;
}

function raw(url: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = rawIo(url, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true, parser: wireParser });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

function emitRaw<T>(s: Socket, event: string, ...args: unknown[]): Promise<Ack<T>> {
  return s.timeout(5000).emitWithAck(event, ...args) as Promise<Ack<T>>;
}

for (const backend of backends) {
  describe(`hub messaging (${backend === 'memory' ? 'memory adapters' : 'Redis + Mongo-wire DB'})`, function () {
    const harness = new HubHarness();
    let t: TestHub;
    const opened: Socket[] = [];

    beforeEach(async () => {
      t = await harness.start(backend);
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) s.disconnect();
      await harness.cleanup();
    });

    async function rawSocket(who: { userId: string; deviceId: string; orgId?: string }): Promise<Socket> {
      const s = await raw(t.url, t.idp.mint(who));
      opened.push(s);
      return s;
    }

    it('two clinicians exchange envelopes through a direct conversation', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      const leeGot = inbox(lee);
      const patelGot = inbox(patel);
      await Promise.all([lee.connect(), patel.connect()]);

      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      const again = await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' });
      expect(again.id, 'the same pair has one direct conversation').to.equal(conv.id);

      const ack1 = await lee.sendEnvelope(conv.id, { body: bytes('troponin question') });
      expect(ack1).to.include({ conversationId: conv.id, seq: 1, duplicate: false });
      await eventually(() => patelGot.length === 1, 'patel receives');
      expect(text(patelGot[0]!.body!)).to.equal('troponin question');
      expect(patelGot[0]).to.include({ senderUserId: 'dr-lee', senderDeviceId: 'lee-phone', seq: 1, messageId: ack1.messageId });

      const ack2 = await patel.sendEnvelope(conv.id, { body: bytes('answer') });
      expect(ack2.seq).to.equal(2);
      await eventually(() => leeGot.length === 1, 'lee receives');
      expect(text(leeGot[0]!.body!)).to.equal('answer');
      expect(patelGot, 'a device does not get its own send back').to.have.length(1);
    });

    it("delivers to the sender's other devices but not back to the sending device", async () => {
      const phone = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const desk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' });
      const peer = t.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' });
      const phoneGot = inbox(phone);
      const deskGot = inbox(desk);
      const peerGot = inbox(peer);
      await Promise.all([phone.connect(), desk.connect(), peer.connect()]);
      const team = await phone.createConversation({ kind: 'group', memberUserIds: ['rn-ortiz'] });
      await phone.sendEnvelope(team.id, { body: bytes('handover at 7') });
      await eventually(() => deskGot.length === 1 && peerGot.length === 1, 'desk and peer receive');
      await new Promise((r) => setTimeout(r, 100));
      expect(phoneGot).to.have.length(0);
    });

    it('an offline device gets what it missed, in order, when it reconnects', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      await lee.connect();
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

      // The device's persistent store (keys, sessions, cursors) outlives the app process.
      const store = new MemoryDeviceStore();
      const patel1 = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store });
      const first = inbox(patel1);
      await patel1.connect();
      await lee.sendEnvelope(conv.id, { body: bytes('m1') });
      await eventually(() => first.length === 1, 'first message live');
      patel1.disconnect();

      for (let i = 2; i <= 6; i++) await lee.sendEnvelope(conv.id, { body: bytes(`m${i}`) });

      // The app restarts: a new client with the persisted cursors.
      const patel2 = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { store });
      const second = inbox(patel2);
      await patel2.connect();
      expect(second.map((e) => text(e.body!))).to.deep.equal(['m2', 'm3', 'm4', 'm5', 'm6']);
      expect(second.map((e) => e.seq)).to.deep.equal([2, 3, 4, 5, 6]);
      expect(patel2.cursor(conv.id)).to.equal(6);

      // A brand-new device of the same user starts from the beginning.
      const tablet = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' });
      const third = inbox(tablet);
      await tablet.connect();
      expect(third.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    });

    it('the same client reconnecting after a dropped connection resyncs without duplicates', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      const got = inbox(patel);
      await Promise.all([lee.connect(), patel.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      await lee.sendEnvelope(conv.id, { body: bytes('a') });
      await eventually(() => got.length === 1, 'a');
      // Drop patel's transport from the hub side, as a network failure would.
      const patelSockets = [...t.hub.io.of('/').sockets.values()].filter((s) => s.data.userId === 'dr-patel');
      expect(patelSockets).to.have.length(1);
      patelSockets[0]!.conn.close();
      await lee.sendEnvelope(conv.id, { body: bytes('b') });
      await lee.sendEnvelope(conv.id, { body: bytes('c') });
      await eventually(() => got.length === 3, 'b and c after reconnect', 8000);
      await new Promise((r) => setTimeout(r, 150));
      expect(got.map((e) => text(e.body!))).to.deep.equal(['a', 'b', 'c']);
    });

    it('a retried send with the same client message id is stored and delivered once', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      const got = inbox(patel);
      await Promise.all([lee.connect(), patel.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

      const first = await lee.sendEnvelope(conv.id, { body: bytes('once') }, { clientMessageId: 'msg-1' });
      const retry = await lee.sendEnvelope(conv.id, { body: bytes('once') }, { clientMessageId: 'msg-1' });
      expect(retry).to.include({ messageId: first.messageId, seq: first.seq, duplicate: true });

      // Concurrent duplicates straight over the socket, as a flaky network might produce.
      const s = await rawSocket({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const acks = await Promise.all(
        Array.from({ length: 5 }, () => emitRaw<SendResult>(s, ClientEvent.ENVELOPE_SEND, { conversationId: conv.id, clientMessageId: 'msg-2', body: bytes('twice') })),
      );
      const seqs = new Set(acks.map((a) => (a.ok ? a.data.seq : -1)));
      expect([...seqs]).to.deep.equal([2]);
      expect(acks.filter((a) => a.ok && !a.data.duplicate)).to.have.length(1);

      await eventually(() => got.length === 2, 'two distinct envelopes');
      await new Promise((r) => setTimeout(r, 150));
      expect(got.map((e) => e.seq)).to.deep.equal([1, 2]);
      const stored = await t.storage.envelopesAfter('org-a', conv.id, 0, 100);
      expect(stored.map((e) => e.clientMessageId)).to.deep.equal(['msg-1', 'msg-2']);

      // Reusing the id for another conversation is a client bug, reported as such.
      const other = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-kim' });
      const err = await lee.sendEnvelope(other.id, { body: bytes('x') }, { clientMessageId: 'msg-1' }).catch((e: unknown) => e);
      expect(isCurbsideError(err) && err.code).to.equal(ErrorCode.IDEMPOTENCY_CONFLICT);
      expect(await t.storage.envelopesAfter('org-a', other.id, 0, 10)).to.have.length(0);
    });

    it('refuses malformed and oversized payloads with typed errors and stores nothing', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      await lee.connect();
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      const s = await rawSocket({ userId: 'dr-lee', deviceId: 'lee-phone' });

      const malformed: unknown[] = [
        null,
        'hello',
        42,
        [],
        {},
        { conversationId: conv.id },
        { conversationId: conv.id, clientMessageId: 'm', body: 'not-bytes' },
        { conversationId: conv.id, clientMessageId: 'm', body: [1, 2, 3] },
        { conversationId: conv.id, clientMessageId: '', body: bytes('x') },
        { conversationId: conv.id, clientMessageId: 'has space', body: bytes('x') },
        { conversationId: { $ne: null }, clientMessageId: 'm', body: bytes('x') },
        { conversationId: conv.id, clientMessageId: 'm', body: bytes('x'), extra: true },
        { conversationId: conv.id, clientMessageId: 'm', body: new Uint8Array(0) },
        { conversationId: 'x'.repeat(Limits.MAX_ID_LENGTH + 1), clientMessageId: 'm', body: bytes('x') },
      ];
      for (const payload of malformed) {
        const res = await emitRaw(s, ClientEvent.ENVELOPE_SEND, payload);
        expect(res.ok, JSON.stringify(payload)).to.equal(false);
        if (!res.ok) expect(res.error.code, JSON.stringify(payload)).to.be.oneOf([ErrorCode.INVALID_PAYLOAD, ErrorCode.PAYLOAD_TOO_LARGE]);
      }
      const extraArg = await emitRaw(s, ClientEvent.ENVELOPE_SEND, { conversationId: conv.id, clientMessageId: 'm', body: bytes('x') }, 'extra');
      expect(!extraArg.ok && extraArg.error.code).to.equal(ErrorCode.INVALID_PAYLOAD);

      const tooBig = await emitRaw(s, ClientEvent.ENVELOPE_SEND, {
        conversationId: conv.id,
        clientMessageId: 'big',
        body: new Uint8Array(Limits.MAX_CIPHERTEXT_BYTES + 1),
      });
      expect(!tooBig.ok && tooBig.error.code).to.equal(ErrorCode.PAYLOAD_TOO_LARGE);

      // The SDK refuses it locally with the same code.
      const local = await lee.sendEnvelope(conv.id, { body: new Uint8Array(Limits.MAX_CIPHERTEXT_BYTES + 1) }).catch((e: unknown) => e);
      expect(isCurbsideError(local) && local.code).to.equal(ErrorCode.PAYLOAD_TOO_LARGE);

      // Unknown events and events without an ack change nothing and do not crash the hub.
      s.emit('no-such-event', { a: 1 });
      s.emit(ClientEvent.ENVELOPE_SEND, { conversationId: conv.id, clientMessageId: 'noack', body: bytes('x') });

      // A frame over maxHttpBufferSize closes that connection before any handler runs.
      const big = await rawSocket({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const closed = new Promise<string>((resolve) => big.once('disconnect', resolve));
      big.emit(ClientEvent.ENVELOPE_SEND, { conversationId: conv.id, clientMessageId: 'huge', body: new Uint8Array(Limits.MAX_FRAME_BYTES + 1024) }, () => {});
      expect(await closed).to.be.a('string');

      // The hub is alive and nothing was stored.
      const ok = await lee.sendEnvelope(conv.id, { body: bytes('still fine') });
      expect(ok.seq).to.equal(1);
      const stored = await t.storage.envelopesAfter('org-a', conv.id, 0, 100);
      expect(stored).to.have.length(1);
      expect(text(stored[0]!.body!)).to.equal('still fine');
    });

    it('refuses sends to conversations the caller is not in, including another organisation\'s', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const outsider = t.client({ userId: 'dr-mallory', deviceId: 'm-1' });
      const otherOrg = t.client({ userId: 'dr-lee', deviceId: 'lee-elsewhere', orgId: 'org-b' });
      await Promise.all([lee.connect(), outsider.connect(), otherOrg.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

      for (const [who, client] of [['outsider', outsider], ['same user id in another org', otherOrg]] as const) {
        const err = await client.sendEnvelope(conv.id, { body: bytes('intrusion') }).catch((e: unknown) => e);
        expect(isCurbsideError(err) && err.code, who).to.equal(ErrorCode.FORBIDDEN);
      }
      const missing = await lee.sendEnvelope('no-such-conversation', { body: bytes('x') }).catch((e: unknown) => e);
      expect(isCurbsideError(missing) && missing.code).to.equal(ErrorCode.FORBIDDEN);
      expect(await otherOrg.listConversations()).to.deep.equal([]);
      expect(await t.storage.envelopesAfter('org-a', conv.id, 0, 10)).to.have.length(0);
    });

    it('tracks presence of connected devices', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      await lee.connect();
      expect(await t.presence.onlineDevices('org-a', 'dr-lee')).to.deep.equal(['lee-phone']);
      lee.disconnect();
      await eventually(async () => (await t.presence.onlineDevices('org-a', 'dr-lee')).length === 0, 'offline after disconnect');
    });

    it('notifies members of a new conversation and lists it', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      const seen: string[] = [];
      patel.on('conversation', (c) => seen.push(c.id));
      await Promise.all([lee.connect(), patel.connect()]);
      const team = await lee.createConversation({ kind: 'group', memberUserIds: ['dr-patel', 'dr-patel'] });
      expect(team.memberUserIds).to.deep.equal(['dr-lee', 'dr-patel']);
      await eventually(() => seen.includes(team.id), 'conversation event');
      const listed = await patel.listConversations();
      expect(listed.map((c) => c.id)).to.deep.equal([team.id]);
      const self = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-lee' }).catch((e: unknown) => e);
      expect(isCurbsideError(self) && self.code).to.equal(ErrorCode.INVALID_PAYLOAD);
    });

    it('never writes envelope bodies to the logs (canary)', async () => {
      const canary = 'CANARY-7f3a9c-troponin-0.42';
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      const got = inbox(patel);
      await Promise.all([lee.connect(), patel.connect()]);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
      await lee.sendEnvelope(conv.id, { body: bytes(canary) });
      await eventually(() => got.length === 1, 'delivered');
      // Also through the error path: a payload that fails validation.
      const s = await rawSocket({ userId: 'dr-lee', deviceId: 'lee-phone' });
      await emitRaw(s, ClientEvent.ENVELOPE_SEND, { conversationId: conv.id, clientMessageId: 'x', body: bytes(canary), junk: canary });
      const logs = t.logs.text();
      expect(logs.length, 'debug logging was on').to.be.greaterThan(100);
      expect(logs).to.not.include(canary);
      expect(logs).to.not.include(Buffer.from(canary).toString('base64'));
    });
  });
}
