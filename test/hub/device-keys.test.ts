import { expect } from 'chai';
import { isCurbsideError, type CurbsideClient, type DeviceIdentity, type Envelope } from '@curbside/client-sdk';
import { ErrorCode, Limits } from '@curbside/shared';
import { HubHarness, codeOf, bytes, eventually, text, type Backend, type TestHub } from '../support/hub.js';
import { testDeviceKeys } from '../support/keys.js';

const backends: Backend[] = ['memory', 'real'];

async function withKeys(client: CurbsideClient, otks = 5) {
  const keys = testDeviceKeys();
  await client.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(otks) });
  return keys;
}

for (const backend of backends) {
  describe(`device keys and per-device envelopes (${backend === 'memory' ? 'memory adapters' : 'Redis + Mongo-wire DB'})`, function () {
    const harness = new HubHarness();
    let t: TestHub;
    beforeEach(async () => {
      t = await harness.start(backend);
    });
    afterEach(() => harness.cleanup());

    it('publishes keys, counts prekeys, and refuses a bad signature, a swapped identity and an oversized batch', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
      await lee.connect();
      const keys = testDeviceKeys();
      const forged = { ...keys.signedPrekey(), signature: new Uint8Array(64).fill(7) };
      expect(await codeOf(lee.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: forged }))).to.equal(ErrorCode.BAD_SIGNATURE);
      // A prekey signed by someone else's identity does not verify under ours either.
      expect(await codeOf(lee.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: testDeviceKeys().signedPrekey() }))).to.equal(ErrorCode.BAD_SIGNATURE);
      expect(await lee.devices.list(['dr-lee'])).to.deep.equal([]);

      await lee.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(100) });
      expect(await lee.hub.countPrekeys()).to.equal(100);
      const other = testDeviceKeys();
      expect(await codeOf(lee.hub.publishKeys({ identityKey: other.identityKey, signedPrekey: other.signedPrekey() }))).to.equal(ErrorCode.IDENTITY_MISMATCH);
      expect(await codeOf(lee.hub.publishKeys({ identityKey: keys.identityKey, oneTimePrekeys: keys.oneTimePrekeys(Limits.MAX_PREKEY_BATCH + 1, 1000) }))).to.equal(
        ErrorCode.PAYLOAD_TOO_LARGE,
      );
      expect(await lee.hub.countPrekeys()).to.equal(100);
    });

    it('claims one bundle per device, never the caller\'s own, and each one-time prekey once', async () => {
      const phone = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
      const desk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' }, { e2ee: false });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
      await Promise.all([phone.connect(), desk.connect(), patel.connect()]);
      await withKeys(phone, 1);
      await withKeys(desk, 1);
      const own = await phone.hub.claimBundles({ userIds: ['dr-lee'] });
      expect(own.map((b) => b.deviceId), 'a device never claims its own bundle').to.deep.equal(['lee-desk']);
      const first = await patel.hub.claimBundles({ userIds: ['dr-lee'] });
      expect(first.map((b) => [b.deviceId, b.oneTimePrekey === undefined])).to.deep.equal([
        ['lee-desk', true], // taken by the phone's claim above
        ['lee-phone', false],
      ]);
      const second = await patel.hub.claimBundles({ userIds: ['dr-lee'], deviceIds: ['lee-phone'] });
      expect(second).to.have.length(1);
      expect(second[0]!.oneTimePrekey, 'the signed prekey alone once none are left').to.equal(undefined);
    });

    it('delivers each device only its own share, and refuses a stale device list with what is missing and extra', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
      const leeDesk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' }, { e2ee: false });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
      const patelTablet = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { e2ee: false });
      const got = new Map<string, Envelope[]>();
      for (const [name, c] of [['leeDesk', leeDesk], ['patel', patel], ['patelTablet', patelTablet]] as const) {
        got.set(name, []);
        c.on('envelope', (e) => got.get(name)!.push(e));
      }
      await Promise.all([lee, leeDesk, patel, patelTablet].map((c) => c.connect()));
      for (const c of [lee, leeDesk, patel]) await withKeys(c);
      const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

      const stale = await lee
        .sendEnvelope(conv.id, { body: bytes('b'), recipients: [{ deviceId: 'patel-laptop', ciphertext: bytes('for laptop') }, { deviceId: 'ghost', ciphertext: bytes('x') }] })
        .catch((e: unknown) => e);
      expect(isCurbsideError(stale) && stale.code).to.equal(ErrorCode.DEVICE_LIST_STALE);
      expect(isCurbsideError(stale) && stale.details).to.deep.equal({ missing: [{ userId: 'dr-lee', deviceId: 'lee-desk' }], extra: ['ghost'] });
      expect(await t.storage.envelopesAfter('org-a', conv.id, 0, 10)).to.have.length(0);

      const ack = await lee.sendEnvelope(conv.id, {
        body: bytes('common body'),
        recipients: [
          { deviceId: 'patel-laptop', ciphertext: bytes('for laptop') },
          { deviceId: 'lee-desk', ciphertext: bytes('for desk') },
        ],
      });
      await eventually(() => got.get('patel')!.length === 1 && got.get('leeDesk')!.length === 1, 'per-device delivery');
      const [toPatel] = got.get('patel')!;
      expect(text(toPatel!.ciphertext!)).to.equal('for laptop');
      expect(text(toPatel!.body!)).to.equal('common body');
      expect(text(got.get('leeDesk')![0]!.ciphertext!)).to.equal('for desk');
      expect(toPatel).to.not.have.property('recipients');

      // The tablet published no keys: nothing live, and sync hands it a content-free placeholder
      // that keeps its sequence gap-free.
      await new Promise((r) => setTimeout(r, 100));
      expect(got.get('patelTablet')).to.have.length(0);
      const tabletLate = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { e2ee: false });
      const late: Envelope[] = [];
      tabletLate.on('envelope', (e) => late.push(e));
      patelTablet.disconnect();
      await tabletLate.connect();
      expect(late.map((e) => [e.seq, e.ciphertext, e.body && text(e.body)])).to.deep.equal([[ack.seq, undefined, 'common body']]);
    });

    it('asks about large teams in pages (the hub takes 100 users per request)', async () => {
      const a = t.client({ userId: 'u-a', deviceId: 'a-1' }, { e2ee: false });
      const b = t.client({ userId: 'u-z', deviceId: 'z-1' }, { e2ee: false });
      await Promise.all([a.connect(), b.connect()]);
      await withKeys(a, 2);
      await withKeys(b, 2);
      const many = [...Array.from({ length: 148 }, (_, i) => `nobody-${i}`), 'u-a', 'u-z'];
      expect((await b.devices.list(many)).map((d) => d.deviceId)).to.deep.equal(['a-1', 'z-1']);
      expect((await b.hub.claimBundles({ userIds: many })).map((x) => x.deviceId)).to.deep.equal(['a-1']);
      expect(await b.devices.list([])).to.deep.equal([]);
    });

    it('tells contacts and the user\'s other devices when a device first publishes keys', async () => {
      const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
      const stranger = t.client({ userId: 'dr-kim', deviceId: 'kim-1' }, { e2ee: false });
      const heard = { patel: [] as DeviceIdentity[], stranger: [] as DeviceIdentity[], lee: [] as DeviceIdentity[] };
      patel.on('device', (d) => heard.patel.push(d));
      stranger.on('device', (d) => heard.stranger.push(d));
      lee.on('device', (d) => heard.lee.push(d));
      await Promise.all([lee.connect(), patel.connect(), stranger.connect()]);
      await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

      const desk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' }, { e2ee: false });
      await desk.connect();
      const keys = await withKeys(desk);
      await eventually(() => heard.patel.length === 1 && heard.lee.length === 1, 'contact and own device hear of it');
      expect(heard.patel[0]).to.include({ userId: 'dr-lee', deviceId: 'lee-desk' });
      expect(Buffer.from(heard.patel[0]!.identityKey).equals(Buffer.from(keys.identityKey))).to.equal(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(heard.stranger, 'someone who shares no conversation hears nothing').to.have.length(0);
    });
  });
}
