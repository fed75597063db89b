/**
 * Regressions (security round 2, finding 1):
 * - Conversation and team ids were global: `team:create` with another organisation's team id
 *   answered CONFLICT, which told the caller that the team exists. Ids are now scoped per org.
 * - A user whose id is `constructor` got `CONFLICT {index}` from `team:change` instead of FORBIDDEN:
 *   the member check read `members[userId]`, and found Object.prototype's constructor.
 * On memory adapters and on Redis + the Mongo-wire DB.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { ErrorCode, type SealedTeamDetails, type TeamStatementResult } from '@curbside/shared';
import { type Backend, type TestHub } from '../support/hub.js';
import { opaqueSealedDetails, testDeviceKeys } from '../support/keys.js';
import { connectRaw, errorCode, rawHubs } from '../security/support.js';

for (const backend of ['memory', 'real'] as Backend[]) {
  describe(`regression: team ids are scoped per organisation (${backend === 'memory' ? 'memory adapters' : 'Redis + Mongo-wire DB'})`, function () {
    const { harness, open } = rawHubs();
    let t: TestHub;

    async function member(orgId: string, userId: string) {
      const deviceId = `${userId}-1`;
      const client = await connectRaw(t.url, t.idp.mint({ orgId, userId, deviceId }));
      open.push(client);
      const keys = testDeviceKeys();
      const published = await client.call('keys:publish', { identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: [] });
      expect(published.ok, JSON.stringify(published)).to.equal(true);
      const sign = (fields: Record<string, unknown>) => keys.signStatement({ v: 1, actorUserId: userId, actorDeviceId: deviceId, issuedAt: Date.now(), ...fields });
      return { client, sign };
    }

    it('team:create with another organisation’s team id creates the caller’s own team; neither learns of the other', async () => {
      t = await harness.start(backend);
      const lee = await member('org-a', 'dr-lee');
      const mallory = await member('org-b', 'dr-mallory');
      const teamId = randomUUID();
      const create = (who: typeof lee, userId: string, sealedDetails: SealedTeamDetails) =>
        who.client.call<TeamStatementResult>('team:create', { signed: who.sign({ teamId, index: 0, prev: '', op: 'create', sealedDetails, members: [{ userId, role: 'owner' }] }) });

      const [ward, probe] = [opaqueSealedDetails(), opaqueSealedDetails()];
      const a = await create(lee, 'dr-lee', ward);
      expect(a.ok, JSON.stringify(a)).to.equal(true);
      const b = await create(mallory, 'dr-mallory', probe);
      expect(b.ok, `org-b's create with org-a's id: ${JSON.stringify(b)}`).to.equal(true);

      expect((await t.storage.getTeamState('org-a', teamId))?.sealedDetails).to.deep.equal(ward);
      expect((await t.storage.getConversation('org-a', teamId))?.memberUserIds).to.deep.equal(['dr-lee']);
      expect((await t.storage.getTeamState('org-b', teamId))?.sealedDetails).to.deep.equal(probe);
      expect((await t.storage.getConversation('org-b', teamId))?.memberUserIds).to.deep.equal(['dr-mallory']);

      // Each organisation's team has its own sequence and messages.
      const send = (who: typeof lee, created: typeof a, clientMessageId: string) =>
        who.client.call('envelope:send', { conversationId: teamId, clientMessageId, body: new Uint8Array([1]), epoch: created.ok ? created.data.conversation.epoch : undefined });
      expect((await send(lee, a, 'a1')).ok).to.equal(true);
      expect((await send(mallory, b, 'b1')).ok).to.equal(true);
      expect((await t.storage.envelopesAfter('org-a', teamId, 0, 10)).map((e) => e.clientMessageId)).to.deep.equal(['team:' + teamId + ':0', 'a1']);
      expect((await t.storage.envelopesAfter('org-b', teamId, 0, 10)).map((e) => e.clientMessageId)).to.deep.equal(['team:' + teamId + ':0', 'b1']);

      // A second create of an id in the same organisation is still a conflict.
      expect(errorCode(await create(lee, 'dr-lee', opaqueSealedDetails()))).to.equal(ErrorCode.CONFLICT);
    });

    it('a user whose id is "constructor" (or another Object.prototype name) is FORBIDDEN from changing a team they are not in', async () => {
      t = await harness.start(backend);
      const lee = await member('org-a', 'dr-lee');
      const teamId = randomUUID();
      const created = await lee.client.call('team:create', { signed: lee.sign({ teamId, index: 0, prev: '', op: 'create', sealedDetails: opaqueSealedDetails(), members: [{ userId: 'dr-lee', role: 'owner' }] }) });
      expect(created.ok, JSON.stringify(created)).to.equal(true);
      for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        const outsider = await member('org-a', name);
        const ack = await outsider.client.call('team:change', { signed: outsider.sign({ teamId, index: 1, prev: '0'.repeat(64), op: 'add', userId: 'x' }) });
        expect(errorCode(ack), `${name}: ${JSON.stringify(ack)}`).to.equal(ErrorCode.FORBIDDEN);
      }
      expect((await t.storage.getConversation('org-a', teamId))?.memberUserIds).to.deep.equal(['dr-lee']);
    });
  });
}
