import { expect } from 'chai';
import { Rooms, ServerEvent } from '@curbside/shared';
import { isCurbsideError, type ChatMessage, type CurbsideClient, type DecryptionError, type MembershipMismatch, type UnavailableMessage } from '@curbside/client-sdk';
import { HubHarness, eventually, type Backend, type TestHub } from '../support/hub.js';
import { testDeviceKeys } from '../support/keys.js';

interface Member {
  client: CurbsideClient;
  messages: ChatMessage[];
  errors: DecryptionError[];
  unavailable: UnavailableMessage[];
  mismatches: MembershipMismatch[];
}

function member(t: TestHub, userId: string, deviceId: string): Member {
  const client = t.client({ userId, deviceId });
  const m: Member = { client, messages: [], errors: [], unavailable: [], mismatches: [] };
  client.on('message', (x) => m.messages.push(x));
  client.on('decryptionError', (x) => m.errors.push(x));
  client.on('unavailable', (x) => m.unavailable.push(x));
  client.on('membershipMismatch', (x) => m.mismatches.push(x));
  return m;
}

const texts = (m: Member) => m.messages.map((x) => x.text);

for (const backend of ['memory', 'real'] as Backend[]) {
  describe(`care teams end to end (${backend === 'memory' ? 'memory adapters' : 'Redis + Mongo-wire DB'})`, function () {
    const harness = new HubHarness();
    afterEach(() => harness.cleanup());

    it('members on several devices read every message once; one ciphertext per message, not per member', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const leeDesk = member(t, 'dr-lee', 'lee-desk');
      const patel = member(t, 'dr-patel', 'patel-laptop');
      const ortiz = member(t, 'rn-ortiz', 'ortiz-tablet');
      const all = [lee, leeDesk, patel, ortiz];
      await Promise.all(all.map((m) => m.client.connect()));
      const leeReceipts = new Set<string>();
      lee.client.on('receipt', (r) => leeReceipts.add(r.deviceId));
      const { teamId } = await lee.client.teams.create('Ward 4B', [{ userId: 'dr-patel', role: 'admin' }, { userId: 'rn-ortiz' }]);
      await eventually(async () => (await ortiz.client.teams.state(teamId)) !== undefined, 'members verified the create statement');
      expect((await patel.client.teams.state(teamId))!.members).to.deep.equal({ 'dr-lee': 'owner', 'dr-patel': 'admin', 'rn-ortiz': 'member' });

      await lee.client.sendText(teamId, 'Handover at 19:00');
      await patel.client.sendText(teamId, 'Bed 12 can go home');
      await ortiz.client.sendText(teamId, 'Pharmacy notified');
      // Lee's key goes along with Lee's messages until each member device's receipt shows it arrived.
      await eventually(() => leeReceipts.has('patel-laptop') && leeReceipts.has('ortiz-tablet'), 'members acknowledged Lee’s first message');
      await lee.client.sendText(teamId, 'Thanks all');
      await eventually(() => texts(ortiz).length === 3 && texts(patel).length === 3 && texts(leeDesk).length === 4 && texts(lee).length === 2, 'everyone read everything');
      expect(texts(ortiz)).to.deep.equal(['Handover at 19:00', 'Bed 12 can go home', 'Thanks all']);
      for (const m of all) expect(m.errors, 'no decryption errors').to.deep.equal([]);

      const stored = await t.storage.envelopesAfter('org-a', teamId, 0, 20);
      const lastLee = stored.filter((e) => e.senderUserId === 'dr-lee' && !e.membership && e.kind !== 'receipt').at(-1)!;
      expect(lastLee.body, 'one body for the whole team').to.be.instanceOf(Uint8Array);
      expect(lastLee.recipients, "Lee's second message carries no per-member ciphertexts: everyone has Lee's sender key").to.equal(undefined);
    });

    it('a member’s device added later shows earlier team messages as before-this-device, never as a decryption failure', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const patel = member(t, 'dr-patel', 'patel-laptop');
      await Promise.all([lee, patel].map((m) => m.client.connect()));
      const { teamId } = await lee.client.teams.create('Night shift', [{ userId: 'dr-patel' }]);
      await lee.client.sendText(teamId, 'before the tablet 1');
      await lee.client.sendText(teamId, 'before the tablet 2');
      await eventually(() => texts(patel).length === 2, 'patel reads');
      // Patel's new tablet syncs the team's whole sequence.
      const tablet = member(t, 'dr-patel', 'patel-tablet');
      await tablet.client.connect();
      await eventually(() => tablet.unavailable.length === 2, 'the tablet hears of the two earlier messages');
      await lee.client.sendText(teamId, 'after the tablet');
      await eventually(() => texts(tablet).length === 1, 'the tablet reads what follows');
      expect(texts(tablet)).to.deep.equal(['after the tablet']);
      expect(tablet.unavailable.map((u) => u.reason)).to.deep.equal(['before-this-device', 'before-this-device']);
      expect(tablet.errors.map((e) => e.reason), 'no decryption failure').to.deep.equal([]);
    });

    it('a new member cannot read history: it shows as before-you-joined, and what follows reads fine', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const patel = member(t, 'dr-patel', 'patel-laptop');
      const kim = member(t, 'dr-kim', 'kim-phone');
      await Promise.all([lee, patel, kim].map((m) => m.client.connect()));
      const { teamId } = await lee.client.teams.create('Consult pool', [{ userId: 'dr-patel' }]);
      await lee.client.sendText(teamId, 'before kim 1');
      await patel.client.sendText(teamId, 'before kim 2');
      await lee.client.teams.addMember(teamId, 'dr-kim');
      await lee.client.sendText(teamId, 'welcome kim');
      await patel.client.sendText(teamId, 'hello from patel');
      await eventually(() => texts(kim).length === 2, 'kim reads messages after joining');
      expect(texts(kim)).to.deep.equal(['welcome kim', 'hello from patel']);
      expect(kim.unavailable.map((u) => u.reason)).to.deep.equal(['before-you-joined', 'before-you-joined']);
      expect(kim.errors).to.deep.equal([]);
    });

    it('after a removal every remaining device changes its sender key and the removed member reads nothing more', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const patel = member(t, 'dr-patel', 'patel-laptop');
      const ortiz = member(t, 'rn-ortiz', 'ortiz-tablet');
      await Promise.all([lee, patel, ortiz].map((m) => m.client.connect()));
      const { teamId } = await lee.client.teams.create('ICU', [{ userId: 'dr-patel' }, { userId: 'rn-ortiz' }]);
      await lee.client.sendText(teamId, 'shared with ortiz');
      await patel.client.sendText(teamId, 'also shared');
      await eventually(() => texts(ortiz).length === 2, 'ortiz reads while a member');
      await lee.client.teams.removeMember(teamId, 'rn-ortiz');
      await eventually(async () => !(await patel.client.teams.state(teamId))?.members['rn-ortiz'], 'patel saw the removal');

      await lee.client.sendText(teamId, 'after removal from lee');
      await patel.client.sendText(teamId, 'after removal from patel');
      await eventually(() => texts(patel).length === 2 && texts(lee).length === 2, 'remaining members read on');
      // Even if the hub kept routing to Ortiz, the new messages are under sender keys Ortiz never got.
      const stored = await t.storage.envelopesAfter('org-a', teamId, 0, 50);
      for (const e of stored.filter((x) => x.body && !x.membership && x.kind !== 'receipt').slice(-2)) {
        expect(e.recipients?.map((r) => r.deviceId) ?? [], 'new sender keys go to remaining devices only').to.not.include('ortiz-tablet');
      }
      // The hub routes everything after the removal to Ortiz anyway, in order (no gap to hold it back).
      const removal = stored.find((x) => x.membership && JSON.parse(x.membership.statement).op === 'remove')!;
      for (const e of stored.filter((x) => x.seq > removal.seq)) {
        const { recipients: _r, ...rest } = e;
        t.hub.io.to(Rooms.device('org-a', 'ortiz-tablet')).emit(ServerEvent.ENVELOPE, rest);
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(texts(ortiz)).to.deep.equal(['shared with ortiz', 'also shared']);
      // What the removed member is told of the two messages: "removed", not "before you joined", nor an error.
      await eventually(() => ortiz.unavailable.length === 2, 'ortiz hears of both messages');
      expect(ortiz.unavailable.map((u) => u.reason)).to.deep.equal(['removed', 'removed']);
      expect(ortiz.errors.map((e) => e.reason)).to.deep.equal([]);
      const err = await ortiz.client.sendText(teamId, 'still here?').catch((e: unknown) => e);
      expect(isCurbsideError(err) && err.code).to.equal('FORBIDDEN');
    });

    it('detects a member the hub added on its own, and gives them no key', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const patel = member(t, 'dr-patel', 'patel-laptop');
      const mallory = member(t, 'mallory', 'mallory-laptop');
      await Promise.all([lee, patel, mallory].map((m) => m.client.connect()));
      const { teamId } = await lee.client.teams.create('Oncology MDT', [{ userId: 'dr-patel' }]);
      await lee.client.sendText(teamId, 'before');
      await eventually(() => texts(patel).length === 1, 'patel reads');

      // The hub (its database) makes Mallory a member without any signed statement.
      const state = (await t.storage.getTeamState('org-a', teamId))!;
      expect(await t.storage.advanceTeam('org-a', teamId, state.index, { ...state, index: state.index + 1, members: { ...state.members, mallory: 'member' } })).to.equal('ok');
      // And injects a statement "by Lee" that Mallory signed.
      const forged = testDeviceKeys().signStatement({ v: 1, teamId, index: state.index + 1, prev: state.head, op: 'add', actorUserId: 'dr-lee', actorDeviceId: 'lee-phone', issuedAt: Date.now(), userId: 'mallory', role: 'member' });
      await t.storage.appendEnvelope({ orgId: 'org-a', conversationId: teamId, senderUserId: 'dr-lee', senderDeviceId: 'lee-phone', clientMessageId: 'forged', membership: forged, now: Date.now() });

      await lee.client.sendText(teamId, 'secret after the hub tampered');
      await eventually(() => texts(patel).length === 2, 'patel reads on');
      expect(lee.mismatches.flatMap((m) => m.unverifiedUserIds)).to.include('mallory');
      await eventually(() => patel.mismatches.some((m) => m.rejectedStatements.length > 0), 'the forged statement is rejected');
      expect((await patel.client.teams.state(teamId))!.members).to.not.have.property('mallory');
      const stored = await t.storage.envelopesAfter('org-a', teamId, 0, 50);
      for (const e of stored) expect(e.recipients?.map((r) => r.deviceId) ?? []).to.not.include('mallory-laptop');
      await new Promise((r) => setTimeout(r, 200));
      expect(mallory.messages, 'mallory reads nothing').to.deep.equal([]);
    });

    it('titles: sealed on create, renamed by an owner or admin only, refused with typed errors when empty or too long', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const ortiz = member(t, 'rn-ortiz', 'ortiz-tablet');
      await Promise.all([lee, ortiz].map((m) => m.client.connect()));
      const announced: string[] = [];
      ortiz.client.on('teamDetails', (d) => announced.push(d.title));
      const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isCurbsideError(e) ? e.code : String(e)));
      expect(await codeOf(lee.client.teams.create('   ', [{ userId: 'rn-ortiz' }]))).to.equal('INVALID_PAYLOAD');
      expect(await codeOf(lee.client.teams.create('x'.repeat(201), [{ userId: 'rn-ortiz' }]))).to.equal('PAYLOAD_TOO_LARGE');
      expect(await codeOf(lee.client.teams.create('ICU', [{ userId: 'rn-ortiz' }], { description: 'x'.repeat(1001) }))).to.equal('PAYLOAD_TOO_LARGE');

      const { teamId } = await lee.client.teams.create(' ICU night ', [{ userId: 'rn-ortiz' }]);
      expect((await t.storage.getConversation('org-a', teamId))?.title, 'the hub has no title').to.equal(undefined);
      expect(await lee.client.teams.details(teamId)).to.deep.equal({ title: 'ICU night' });
      await eventually(() => announced.length === 1, 'Ortiz decrypts the title');
      expect(announced).to.deep.equal(['ICU night']);
      expect(await codeOf(ortiz.client.teams.setDetails(teamId, { title: 'Mine now' })), 'a plain member cannot rename').to.equal('INVALID_STATEMENT');
      await lee.client.teams.setDetails(teamId, { title: 'ICU nights', description: 'Beds 1-12' });
      await eventually(() => announced.length === 2, 'Ortiz decrypts the new title');
      expect(await ortiz.client.teams.details(teamId)).to.deep.equal({ title: 'ICU nights', description: 'Beds 1-12' });
      expect(ortiz.errors).to.deep.equal([]);
    });

    it('shows typing and presence to members', async () => {
      const t = await harness.start(backend);
      const lee = member(t, 'dr-lee', 'lee-phone');
      const patel = member(t, 'dr-patel', 'patel-laptop');
      await Promise.all([lee.client.connect(), patel.client.connect()]);
      const { teamId } = await lee.client.teams.create('Night shift', [{ userId: 'dr-patel' }]);
      const typing: string[] = [];
      patel.client.on('typing', (n) => typing.push(`${n.userId}:${n.typing}`));
      await lee.client.setTyping(teamId, true);
      await eventually(() => typing.includes('dr-lee:true'), 'typing');
      expect((await patel.client.presence(teamId)).map((p) => p.userId).sort()).to.deep.equal(['dr-lee', 'dr-patel']);
    });
  });
}
