/**
 * Issue #16 part 3: device lists are signed. A device record the hub (or its database operator)
 * adds for a clinician is trusted by nobody: contacts encrypt only to devices in the clinician's
 * signed list, the hub refuses lists that do not verify, and peers refuse lists that roll back or
 * do not chain. Against the real Mongo-wire database (direct edits) and Redis where it matters.
 */
import { expect } from 'chai';
import mongoose from 'mongoose';
import { ClientEvent, ErrorCode, type SignedDeviceList } from '@curbside/shared';
import type { ChatMessage, CurbsideClient, DecryptionError, UnavailableMessage } from '@curbside/client-sdk';
import { HubHarness, codeOf, eventually, sharedBackend, type Shared, type TestHub } from '../support/hub.js';
import { serviceUrls } from '../support/services.js';
import { opaqueSealedDetails, testDeviceKeys } from '../support/keys.js';
import { connectRaw, errorCode, type RawClient } from '../security/support.js';

function inbox(client: CurbsideClient) {
  const seen = { messages: [] as ChatMessage[], errors: [] as DecryptionError[], unavailable: [] as UnavailableMessage[] };
  client.on('message', (m) => seen.messages.push(m));
  client.on('decryptionError', (e) => seen.errors.push(e));
  client.on('unavailable', (u) => seen.unavailable.push(u));
  return seen;
}

/** The operator adds a device with keys they hold for Dr Patel, straight into the database. */
async function plantDevice(t: TestHub): Promise<ReturnType<typeof testDeviceKeys>> {
  const planted = testDeviceKeys();
  await t.storage.touchDevice({ orgId: 'org-a', userId: 'dr-patel', deviceId: 'planted', now: Date.now() });
  await t.storage.publishKeys({ orgId: 'org-a', deviceId: 'planted', identityKey: planted.identityKey, signedPrekey: planted.signedPrekey(), oneTimePrekeys: planted.oneTimePrekeys(5), maxStored: 100, now: Date.now() });
  return planted;
}

/** The hub's database, opened as its operator would. */
async function database(shared: Shared): Promise<mongoose.Connection> {
  return mongoose.createConnection(serviceUrls().mongoUri, { dbName: shared.dbName }).asPromise();
}

describe('signed device lists (issue #16, part 3)', function () {
  const harness = new HubHarness();
  const raws: RawClient[] = [];
  const conns: mongoose.Connection[] = [];
  afterEach(async () => {
    for (const r of raws.splice(0)) r.close();
    for (const c of conns.splice(0)) await c.close();
    await harness.cleanup();
  });

  /** Dr Lee and Dr Patel connected to a hub on Redis and the Mongo-wire DB, with a direct conversation. */
  async function leeAndPatel() {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    await Promise.all([lee.connect(), patel.connect()]);
    const convId = (await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' })).id;
    return { shared, t, lee, patel, convId };
  }

  describe('a device inserted into the database', function () {
    let t: TestHub;
    let lee: CurbsideClient;
    let patel: CurbsideClient;
    let convId: string;

    beforeEach(async () => {
      ({ t, lee, patel, convId } = await leeAndPatel());
      await plantDevice(t);
    });

    it('is not listed to contacts, gets no share of what they send, and the genuine device still reads it', async () => {
      const seen = inbox(patel);
      expect((await lee.listDevices(['dr-patel'])).map((d) => d.deviceId)).to.deep.equal(['patel-laptop']);
      await lee.sendText(convId, 'consult: troponin trend');
      await eventually(() => seen.messages.length === 1, 'the genuine device reads it');
      const [stored] = await t.storage.envelopesAfter('org-a', convId, 0, 10);
      expect(stored!.recipients!.map((r) => r.deviceId), 'shares only for listed devices').to.deep.equal(['patel-laptop']);
    });

    it('connecting as it (a token the operator minted) gets a pending device that receives nothing and may not send', async () => {
      const planted = t.client({ userId: 'dr-patel', deviceId: 'planted-2', manualLink: true });
      const required: string[] = [];
      planted.on('linkRequired', (c) => required.push(c.deviceId));
      const seen = inbox(planted);
      await planted.connect();
      expect(planted.linkState).to.equal('pending');
      expect(required).to.deep.equal(['planted-2']);
      await lee.sendText(convId, 'for patel only');
      await eventually(async () => (await t.storage.envelopesAfter('org-a', convId, 0, 10)).length === 1, 'stored');
      const [stored] = await t.storage.envelopesAfter('org-a', convId, 0, 10);
      expect(stored!.recipients!.map((r) => r.deviceId)).to.not.include('planted-2');
      expect(await codeOf(planted.sendText(convId, 'hello from the operator'))).to.equal(ErrorCode.DEVICE_NOT_LINKED);
      expect(seen.messages, 'nothing readable reached it').to.deep.equal([]);
    });

    it('its signed team statement is refused by the hub (DEVICE_NOT_LINKED), not only by clients', async () => {
      const keys = testDeviceKeys();
      const token = t.idp.mint({ userId: 'dr-patel', deviceId: 'planted-3' });
      const raw = await connectRaw(t.url, token);
      raws.push(raw);
      expect(errorCode(await raw.call(ClientEvent.KEYS_PUBLISH, { identityKey: keys.identityKey, signedPrekey: keys.signedPrekey() }))).to.equal('ok');
      const statement = { v: 1, teamId: 'ward-4b', index: 0, prev: '', op: 'create', sealedDetails: opaqueSealedDetails(), members: [{ userId: 'dr-patel', role: 'owner' }], actorUserId: 'dr-patel', actorDeviceId: 'planted-3', issuedAt: Date.now() };
      const ack = await raw.call(ClientEvent.TEAM_CREATE, { signed: keys.signStatement(statement) });
      expect(errorCode(ack)).to.equal(ErrorCode.DEVICE_NOT_LINKED);
    });
  });

  describe('the hub verifies every list it is given', function () {
    it('refuses a wrong version, a bad signature, a signer outside the list, an unknown or substituted device, with typed errors', async () => {
      const t = await harness.start('real');
      const a = testDeviceKeys();
      const b = testDeviceKeys();
      const connect = async (deviceId: string, keys: ReturnType<typeof testDeviceKeys>) => {
        const raw = await connectRaw(t.url, t.idp.mint({ userId: 'dr-kim', deviceId }));
        raws.push(raw);
        expect(errorCode(await raw.call(ClientEvent.KEYS_PUBLISH, { identityKey: keys.identityKey, signedPrekey: keys.signedPrekey() }))).to.equal('ok');
        return raw;
      };
      const rawA = await connect('kim-a', a);
      const rawB = await connect('kim-b', b);
      const publish = async (raw: RawClient, list: SignedDeviceList) => errorCode(await raw.call(ClientEvent.DEVICE_LIST_PUBLISH, { list }));
      const A = { deviceId: 'kim-a', identityKey: a.identityKey };
      const B = { deviceId: 'kim-b', identityKey: b.identityKey };

      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 2, devices: [A], signerDeviceId: 'kim-a' })), 'not the next version').to.equal(ErrorCode.CONFLICT);
      const forged = a.signDeviceList('dr-kim', { version: 1, devices: [A], signerDeviceId: 'kim-a' });
      forged.signature[5]! ^= 1;
      expect(await publish(rawA, forged), 'bad signature').to.equal(ErrorCode.BAD_SIGNATURE);
      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 1, devices: [B], signerDeviceId: 'kim-a' })), 'version 1 must name its signer').to.equal(ErrorCode.DEVICE_NOT_LINKED);
      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 1, devices: [A, { deviceId: 'ghost', identityKey: b.identityKey }], signerDeviceId: 'kim-a' })), 'an unknown device').to.equal(ErrorCode.DEVICE_LIST_INVALID);
      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 1, devices: [A, { deviceId: 'kim-b', identityKey: testDeviceKeys().identityKey }], signerDeviceId: 'kim-a' })), 'a substituted key').to.equal(ErrorCode.DEVICE_LIST_INVALID);
      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 1, devices: [A], signerDeviceId: 'kim-b' })), 'signed as another device').to.equal(ErrorCode.DEVICE_LIST_INVALID);
      expect(await t.storage.deviceListHistory('org-a', 'dr-kim'), 'nothing stored by any refusal').to.equal(undefined);

      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 1, devices: [A], signerDeviceId: 'kim-a' }))).to.equal('ok');
      // B is not listed: it cannot sign itself in.
      expect(await publish(rawB, b.signDeviceList('dr-kim', { version: 2, devices: [A, B], signerDeviceId: 'kim-b' }))).to.equal(ErrorCode.DEVICE_NOT_LINKED);
      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 2, devices: [B], signerDeviceId: 'kim-a' })), 'the signer stays listed').to.equal(ErrorCode.DEVICE_LIST_INVALID);
      expect(await publish(rawA, a.signDeviceList('dr-kim', { version: 2, devices: [A, B], signerDeviceId: 'kim-a' }))).to.equal('ok');
      expect((await t.storage.deviceListHeads('org-a', ['dr-kim']))[0]).to.deep.include({ version: 2, deviceIds: ['kim-a', 'kim-b'] });
    });

    it('linking or unlinking another device needs a recent sign-in (REAUTHENTICATION_REQUIRED), as revoking one does', async () => {
      const t = await harness.start('real');
      const a = testDeviceKeys();
      const b = testDeviceKeys();
      const connect = async (deviceId: string, keys: ReturnType<typeof testDeviceKeys>, authAgeSec: number | null = 0) => {
        const raw = await connectRaw(t.url, t.idp.mint({ userId: 'dr-kim', deviceId }, { authAgeSec }));
        raws.push(raw);
        expect(errorCode(await raw.call(ClientEvent.KEYS_PUBLISH, { identityKey: keys.identityKey, signedPrekey: keys.signedPrekey() }))).to.equal('ok');
        return raw;
      };
      // A phone whose sign-in is an hour old (a thief's), and the same phone freshly signed in.
      const stale = await connect('kim-a', a, 3600);
      await connect('kim-b', b);
      const publish = async (raw: RawClient, list: SignedDeviceList) => errorCode(await raw.call(ClientEvent.DEVICE_LIST_PUBLISH, { list }));
      const A = { deviceId: 'kim-a', identityKey: a.identityKey };
      const B = { deviceId: 'kim-b', identityKey: b.identityKey };
      const head = async () => (await t.storage.deviceListHeads('org-a', ['dr-kim']))[0];

      expect(await publish(stale, a.signDeviceList('dr-kim', { version: 1, devices: [A], signerDeviceId: 'kim-a' })), "a user's first list needs none").to.equal('ok');
      expect(await publish(stale, a.signDeviceList('dr-kim', { version: 2, devices: [A, B], signerDeviceId: 'kim-a' })), 'linking').to.equal(ErrorCode.REAUTHENTICATION_REQUIRED);
      expect(await publish(stale, a.signDeviceList('dr-kim', { version: 2, devices: [A], signerDeviceId: 'kim-a' })), 'a version naming the same devices needs none').to.equal('ok');
      const fresh = await connect('kim-a', a);
      expect(await publish(fresh, a.signDeviceList('dr-kim', { version: 3, devices: [A, B], signerDeviceId: 'kim-a' })), 'linking after a fresh sign-in').to.equal('ok');
      expect(await publish(stale, a.signDeviceList('dr-kim', { version: 4, devices: [A], signerDeviceId: 'kim-a' })), 'listing the laptop out').to.equal(ErrorCode.REAUTHENTICATION_REQUIRED);
      expect(await head()).to.deep.include({ version: 3, deviceIds: ['kim-a', 'kim-b'] });
    });
  });

  describe('linking a new device', function () {
    it('needs the code the new device shows; then it reads what is sent after, and contacts are told', async () => {
      const t = await harness.start('real');
      const phone = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      await Promise.all([phone.connect(), patel.connect()]);
      const convId = (await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' })).id;
      await patel.sendText(convId, 'before the laptop');
      const changes: Array<{ userId: string; added: string[]; removed: string[] }> = [];
      patel.on('deviceListChanged', (c) => changes.push(c));
      const requests: string[] = [];
      phone.on('linkRequest', (d) => requests.push(d.deviceId));

      const laptop = t.client({ userId: 'dr-lee', deviceId: 'lee-laptop', manualLink: true });
      const seen = inbox(laptop);
      await laptop.connect();
      expect(laptop.linkState).to.equal('pending');
      await eventually(() => requests.includes('lee-laptop'), 'the phone hears a device waits to be linked');
      const code = await laptop.linkCode();
      expect(code.code).to.match(/^\d{5}( \d{5}){5}$/);

      const wrong = { deviceId: 'lee-laptop', code: code.code.replace(/^\d/, (d) => String((Number(d) + 1) % 10)) };
      expect(await codeOf(phone.linkDevice(wrong))).to.equal(ErrorCode.LINK_CODE_MISMATCH);
      expect((await t.storage.deviceListHeads('org-a', ['dr-lee']))[0]!.version, 'a wrong code changes nothing').to.equal(1);

      expect(await phone.linkDevice(code)).to.equal(2);
      await eventually(() => laptop.linkState === 'linked', 'the laptop learns it is linked');
      await eventually(() => changes.length === 1, 'the contact hears of the new device');
      expect(changes[0]).to.deep.include({ userId: 'dr-lee', added: ['lee-laptop'], removed: [] });

      const patelSeen = inbox(patel);
      await patel.sendText(convId, 'after the laptop');
      await eventually(() => seen.messages.some((m) => m.text === 'after the laptop'), 'the linked laptop reads new messages');
      expect(seen.errors, 'never a decryption error for the older message').to.deep.equal([]);
      expect(seen.unavailable.map((u) => u.reason)).to.deep.equal(['before-this-device']);
      await laptop.sendText(convId, 'from the laptop');
      await eventually(() => patelSeen.messages.some((m) => m.text === 'from the laptop'), 'contacts accept the linked device');
    });

    it('revoking a lost device signs it out of the list: contacts hear it was removed', async () => {
      const t = await harness.start('memory');
      const phone = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      await Promise.all([phone.connect(), patel.connect()]);
      await patel.createConversation({ kind: 'direct', peerUserId: 'dr-lee' });
      const lost = t.client({ userId: 'dr-lee', deviceId: 'lee-old-phone' });
      await lost.connect();
      expect((await patel.listDevices(['dr-lee'])).map((d) => d.deviceId)).to.deep.equal(['lee-old-phone', 'lee-phone']);
      const changes: Array<{ added: string[]; removed: string[] }> = [];
      patel.on('deviceListChanged', (c) => changes.push(c));
      await phone.revokeDevice('lee-old-phone');
      await eventually(() => changes.some((c) => c.removed.includes('lee-old-phone')), 'the contact hears the device left the list');
      expect((await t.storage.deviceListHeads('org-a', ['dr-lee']))[0]!.deviceIds).to.deep.equal(['lee-phone']);
      expect((await patel.listDevices(['dr-lee'])).map((d) => d.deviceId)).to.deep.equal(['lee-phone']);
    });

    it('care-team statements a device signed while linked still verify, after it left the list, for a member who joins later', async () => {
      const t = await harness.start('real');
      const phone = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
      const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
      await Promise.all([phone.connect(), patel.connect()]);
      const desk = t.client({ userId: 'dr-lee', deviceId: 'lee-desk' });
      await desk.connect();
      // The desk creates the team: the log's first statement is signed by the desk's key.
      const { teamId } = await desk.createTeam('Ward 4B', [{ userId: 'dr-patel' }]);
      await eventually(async () => (await patel.teamState(teamId)) !== undefined && (await phone.teamState(teamId)) !== undefined, 'members verified the log');
      await phone.revokeDevice('lee-desk');
      expect((await t.storage.deviceListHeads('org-a', ['dr-lee']))[0]!.deviceIds).to.deep.equal(['lee-phone']);
      // Kim never saw the desk listed, and joins after it left: the create statement checks out
      // against the version of Lee's signed list that named it.
      const kim = t.client({ userId: 'dr-kim', deviceId: 'kim-phone' });
      const rejected: unknown[] = [];
      kim.on('membershipMismatch', (m) => rejected.push(m));
      await kim.connect();
      await phone.addTeamMember(teamId, 'dr-kim');
      await eventually(async () => (await kim.teamState(teamId))?.members['dr-kim'] === 'member', 'the new member verified the whole log');
      expect(rejected).to.deep.equal([]);
      const got: string[] = [];
      kim.on('message', (m) => got.push(m.text));
      await phone.sendText(teamId, 'welcome');
      await eventually(() => got.includes('welcome'), 'the new member reads the team');
    });
  });

  describe('peers refuse lists the database operator edits', function () {
    let t: TestHub;
    let lee: CurbsideClient;
    let db: mongoose.Connection;

    beforeEach(async () => {
      let shared: Shared;
      ({ t, lee, shared } = await leeAndPatel());
      db = await database(shared);
      conns.push(db);
    });

    it('a version appended with a forged signature: refused (DEVICE_LIST_INVALID), and nothing is encrypted to its device', async () => {
      const planted = await plantDevice(t);
      expect((await lee.listDevices(['dr-patel'])).map((d) => d.deviceId)).to.deep.equal(['patel-laptop']);
      const current = (await t.storage.deviceListHistory('org-a', 'dr-patel'))!.lists.at(-1)!;
      // Signed by the operator's key, claiming to be Patel's laptop.
      const forged = planted.signDeviceList('dr-patel', { version: 2, devices: [...current.devices, { deviceId: 'planted', identityKey: planted.identityKey }], signerDeviceId: 'patel-laptop' });
      expect(await t.storage.appendDeviceList({ orgId: 'org-a', userId: 'dr-patel', expectedVersion: 1, list: forged, maxHistory: 64 })).to.equal('ok');
      await t.hub.directory.changed('org-a', 'dr-patel'); // what a hub node would see after the edit
      const rejected: string[] = [];
      lee.on('deviceListRejected', (r) => rejected.push(r.problem));
      expect(await codeOf(lee.listDevices(['dr-patel']))).to.equal(ErrorCode.DEVICE_LIST_INVALID);
      expect(rejected).to.deep.equal(['bad-signature']);
    });

    it('an older version put back: refused as a rollback (DEVICE_LIST_ROLLBACK) by a peer that saw the newer one', async () => {
      const laptop = t.client({ userId: 'dr-patel', deviceId: 'patel-tablet' });
      await laptop.connect(); // linked by the harness from Patel's laptop: version 2
      expect((await lee.listDevices(['dr-patel'])).map((d) => d.deviceId)).to.deep.equal(['patel-laptop', 'patel-tablet']);
      const docs = db.collection('device_lists');
      expect((await docs.find({ userId: 'dr-patel' }).toArray()).map((d) => d.version as number).sort()).to.deep.equal([1, 2]);
      // Back to version 1, which lists the laptop only.
      await docs.deleteOne({ userId: 'dr-patel', version: 2 });
      await t.hub.directory.changed('org-a', 'dr-patel');
      const rejected: string[] = [];
      lee.on('deviceListRejected', (r) => rejected.push(r.problem));
      expect(await codeOf(lee.listDevices(['dr-patel']))).to.equal(ErrorCode.DEVICE_LIST_ROLLBACK);
      expect(rejected).to.deep.equal(['rollback']);
    });
  });
});
