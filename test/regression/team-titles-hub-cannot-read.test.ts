/**
 * Regression (issue #22, finding 6): the hub held PHI in metadata. A test team titled
 * "Ward 4B discharge - Mr J. Smith bed 12" was stored as typed, in the conversation and in its signed
 * create statement. Titles and descriptions are now sealed on the creating device under a team
 * details key that only member devices receive; the hub stores ciphertext.
 *
 * Against Redis and the Mongo-wire database: the title and description never reach any collection
 * or the hub's logs; every member device reads them (one of a member added later at once, a device
 * added later with the next team message); a member removed before a rename never gets the new one.
 */
import { expect } from 'chai';
import mongoose from 'mongoose';
import { MemoryDeviceStore, type CurbsideClient } from '@curbside/client-sdk';
import { CryptoError, openTeamDetails } from '../../client-sdk/src/crypto/index.js';
import { HubHarness, eventually, sharedBackend } from '../support/hub.js';
import { serviceUrls } from '../support/services.js';
import { connectRaw, errorCode } from '../security/support.js';
import { ErrorCode, type Conversation } from '@curbside/shared';

const FIRST = { title: 'Ward 4B discharge - Mr J. Smith bed 12', description: 'Discharge planning for Mr J. Smith, MRN 00412345' };
const RENAMED = { title: 'Ward 4B discharge - Mrs K. Jones bed 14', description: 'Mrs K. Jones, MRN 00498765, after Mr Smith went home' };
/** Whatever would give a title away, in the forms a database or a log could hold it. */
const NEEDLES = [FIRST.title, FIRST.description, RENAMED.title, RENAMED.description, 'J. Smith', 'K. Jones', 'Mr Smith', '00412345', '00498765'].flatMap((n) => [
  n,
  Buffer.from(n).toString('base64'),
  Buffer.from(n).toString('base64url'),
  Buffer.from(n).toString('hex'),
]);

interface Device {
  client: CurbsideClient;
  store: MemoryDeviceStore;
  /** Titles this device announced through `teamDetails` events. */
  titles: string[];
}

describe('regression: care-team titles are sealed, the hub cannot read them (Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('no title or description in any collection or the hub logs; every member device reads them; a removed member never gets a later one', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const device = (userId: string, deviceId: string): Device => {
      const store = new MemoryDeviceStore();
      const d: Device = { client: t.client({ userId, deviceId }, { store }), store, titles: [] };
      d.client.on('teamDetails', (x) => d.titles.push(x.title));
      return d;
    };
    const details = (d: Device, teamId: string) => d.client.teamDetails(teamId);
    const readsAll = async (devices: Device[], teamId: string, expected: typeof FIRST) => {
      for (const d of devices) if (JSON.stringify(await details(d, teamId)) !== JSON.stringify(expected)) return false;
      return true;
    };

    const leePhone = device('dr-lee', 'lee-phone');
    const leeDesk = device('dr-lee', 'lee-desk');
    const patel = device('dr-patel', 'patel-laptop');
    const ortiz = device('rn-ortiz', 'ortiz-tablet');
    const kim = device('dr-kim', 'kim-phone');
    await Promise.all([leePhone, leeDesk, patel, ortiz, kim].map((d) => d.client.connect()));

    // Created with a title and description that name a patient.
    const { teamId } = await leePhone.client.createTeam(FIRST.title, [{ userId: 'dr-patel', role: 'admin' }, { userId: 'rn-ortiz' }], { description: FIRST.description });
    expect(await details(leePhone, teamId)).to.deep.equal(FIRST);
    await eventually(() => readsAll([leeDesk, patel, ortiz], teamId, FIRST), 'every member device decrypts the title, with no message sent');
    for (const d of [leeDesk, patel, ortiz]) expect(d.titles, 'announced once per device').to.deep.equal([FIRST.title]);
    expect(await details(kim, teamId), 'not a member yet').to.equal(undefined);

    // A member added later reads the title in force at once (the adder hands over its key).
    await leePhone.client.addTeamMember(teamId, 'dr-kim');
    await eventually(() => readsAll([kim], teamId, FIRST), 'the new member decrypts the title');

    // A device added later gets the key along with the next team message's sender key.
    const patelTablet = device('dr-patel', 'patel-tablet');
    await patelTablet.client.connect();
    await eventually(async () => (await patelTablet.client.teamState(teamId)) !== undefined, 'the new device verified the log');
    expect(await details(patelTablet, teamId), 'no member device has sent it the key yet').to.equal(undefined);
    await ortiz.client.sendText(teamId, 'Pharmacy notified');
    await eventually(() => readsAll([patelTablet], teamId, FIRST), 'the later device decrypts the title');
    expect(patelTablet.titles).to.deep.equal([FIRST.title]);

    // Ortiz is removed, then an admin renames the team: a new key, for the remaining devices only.
    await leePhone.client.removeTeamMember(teamId, 'rn-ortiz');
    await eventually(async () => (await patel.client.teamState(teamId))?.members['rn-ortiz'] === undefined, 'Patel applied the removal');
    await patel.client.setTeamDetails(teamId, RENAMED);
    const remaining = [leePhone, leeDesk, patel, patelTablet, kim];
    await eventually(() => readsAll(remaining, teamId, RENAMED), 'every remaining member device decrypts the new title', 10_000);
    for (const d of remaining) expect(d.titles.at(-1)).to.equal(RENAMED.title);

    // The removed member: no new title, by event or on request, and no key in its store that opens it.
    expect(ortiz.titles).to.not.include(RENAMED.title);
    expect(await details(ortiz, teamId)).to.not.deep.equal(RENAMED);
    const sealed = (await t.storage.getTeamState('org-a', teamId))?.sealedDetails;
    expect(sealed, 'the hub keeps the sealed details').to.not.equal(undefined);
    const held = await ortiz.store.list<Uint8Array>('senderKeys');
    expect(held.map(([name]) => name).filter((name) => name.includes(sealed!.keyId))).to.deep.equal([]);
    const candidates = held.map(([, value]) => value).filter((v): v is Uint8Array => v instanceof Uint8Array && v.length === 32);
    expect(candidates.length, 'Ortiz still holds the key of the title Ortiz was shown').to.be.greaterThan(0);
    for (const key of candidates) expect(() => openTeamDetails(teamId, key, sealed!)).to.throw(CryptoError);
    // The check can fail: the keys Ortiz holds do open the first title, from the create statement the hub keeps.
    const [createEnvelope] = await t.storage.envelopesAfter('org-a', teamId, 0, 1);
    const firstSealed = (JSON.parse(createEnvelope!.membership!.statement) as { sealedDetails: NonNullable<typeof sealed> }).sealedDetails;
    const opened = candidates.flatMap((key) => {
      try {
        return [openTeamDetails(teamId, key, firstSealed)];
      } catch {
        return [];
      }
    });
    expect(opened).to.deep.equal([FIRST]);

    // Nothing readable in any collection...
    const conn = await mongoose.createConnection(serviceUrls().mongoUri, { dbName: shared.dbName }).asPromise();
    try {
      const collections = await conn.db!.listCollections().toArray();
      expect(collections.map((c) => c.name)).to.include.members(['conversations', 'envelopes', 'team_log']);
      let documents = 0;
      let sawSealed = false;
      for (const { name } of collections) {
        for (const doc of await conn.db!.collection(name).find({}).toArray()) {
          documents++;
          // Binary fields as raw bytes, so a title stored as bytes would show too.
          const asText = JSON.stringify(doc, (_k, v: unknown) => (v && typeof v === 'object' && '_bsontype' in v ? Buffer.from((v as unknown as { buffer: Uint8Array }).buffer).toString('latin1') : v));
          for (const n of NEEDLES) expect(asText, `${name} holds ${JSON.stringify(n)}`).to.not.include(n);
          if (asText.includes(sealed!.box)) sawSealed = true;
        }
      }
      expect(documents).to.be.greaterThan(10);
      expect(sawSealed, 'the scan reads the collections that hold the sealed title').to.equal(true);
      const team = await conn.db!.collection('conversations').findOne({ conversationId: teamId });
      expect(team, 'the team document').to.not.equal(null);
      expect(team).to.not.have.property('title');
      expect(team!.team).to.not.have.property('title');
    } finally {
      await conn.close();
    }
    // ...nor in the hub's logs (at debug level).
    const logs = t.logs.text();
    expect(logs).to.include(teamId);
    for (const n of NEEDLES) expect(logs, `the logs hold ${JSON.stringify(n)}`).to.not.include(n);
  });

  it('a plain group takes no title: one named in conversation:create is refused and nothing is stored', async () => {
    const t = await harness.start('real', sharedBackend());
    const lee = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
    try {
      const named = await lee.call('conversation:create', { kind: 'group', title: FIRST.title, memberUserIds: ['dr-patel'] });
      expect(errorCode(named)).to.equal(ErrorCode.INVALID_PAYLOAD);
      expect(await t.storage.listConversationsForUser('org-a', 'dr-lee'), 'nothing stored').to.deep.equal([]);
      const plain = await lee.call<Conversation>('conversation:create', { kind: 'group', memberUserIds: ['dr-patel'] });
      expect(plain.ok && plain.data).to.include({ kind: 'group' }).and.not.have.property('title');
    } finally {
      lee.close();
    }
    for (const n of NEEDLES) expect(t.logs.text(), `the logs hold ${JSON.stringify(n)}`).to.not.include(n);
  });
});
