import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import type { CurbsideClient, Envelope } from '@curbside/client-sdk';
import { ClientEvent, ErrorCode, type SignedStatement, type TeamStatementResult } from '@curbside/shared';
import { HubHarness, codeOf, eventually, type Backend, type TestHub } from '../support/hub.js';
import { opaqueSealedDetails, testDeviceKeys } from '../support/keys.js';

const backends: Backend[] = ['memory', 'real'];
type Keys = ReturnType<typeof testDeviceKeys>;

/** Raw access to the team events, as the SDK will use them. */
async function teamRequest(client: CurbsideClient, event: 'team:create' | 'team:change', signed: SignedStatement): Promise<TeamStatementResult> {
  return (client as unknown as { connection: { request(e: string, p: unknown): Promise<TeamStatementResult> } }).connection.request(event, { signed });
}

const hash = (canonical: string) => createHash('sha256').update(canonical).digest('hex');

for (const backend of backends) {
  describe(`care teams on the hub (${backend === 'memory' ? 'memory adapters' : 'Redis + Mongo-wire DB'})`, function () {
    const harness = new HubHarness();
    let t: TestHub;
    const people: Record<string, { client: CurbsideClient; keys: Keys; deviceId: string; got: Envelope[] }> = {};

    beforeEach(async () => {
      t = await harness.start(backend);
      for (const name of ['lee', 'patel', 'ortiz', 'kim']) {
        const deviceId = `${name}-1`;
        const client = t.client({ userId: name, deviceId }, { e2ee: false });
        const keys = testDeviceKeys();
        const got: Envelope[] = [];
        client.on('envelope', (e) => got.push(e));
        await client.connect();
        await client.hub.publishKeys({ identityKey: keys.identityKey, signedPrekey: keys.signedPrekey() });
        people[name] = { client, keys, deviceId, got };
      }
    });
    afterEach(() => harness.cleanup());

    function statement(actor: string, fields: Record<string, unknown>) {
      return { v: 1, actorUserId: actor, actorDeviceId: people[actor]!.deviceId, issuedAt: Date.now(), ...fields };
    }

    async function createWard(): Promise<{ teamId: string; head: string }> {
      const teamId = randomUUID();
      const signed = people.lee!.keys.signStatement(
        statement('lee', { teamId, index: 0, prev: '', op: 'create', sealedDetails: opaqueSealedDetails(), members: [{ userId: 'lee', role: 'owner' }, { userId: 'patel', role: 'admin' }, { userId: 'ortiz', role: 'member' }] }),
      );
      const res = await teamRequest(people.lee!.client, 'team:create', signed);
      expect(res.conversation).to.include({ id: teamId, kind: 'group', signed: true });
      expect(res.conversation, 'a care team has no title the hub can read').not.to.have.property('title');
      expect(res.conversation.roles).to.deep.equal({ lee: 'owner', ortiz: 'member', patel: 'admin' });
      return { teamId, head: hash(signed.statement) };
    }

    it('creates a team from a signed statement and puts the statement in the sequence for every member', async () => {
      const { teamId } = await createWard();
      await eventually(() => people.patel!.got.length === 1 && people.ortiz!.got.length === 1, 'members get the statement');
      const e = people.patel!.got[0]!;
      expect(e).to.include({ conversationId: teamId, seq: 1, senderUserId: 'lee' });
      expect(JSON.parse(e.membership!.statement)).to.include({ op: 'create', index: 0 });
      expect(people.kim!.got, 'a non-member hears nothing').to.have.length(0);
    });

    it('applies adds, role changes and removals by the right people, and routes accordingly', async () => {
      const { teamId, head } = await createWard();
      const add = people.patel!.keys.signStatement(statement('patel', { teamId, index: 1, prev: head, op: 'add', userId: 'kim', role: 'member' }));
      const r1 = await teamRequest(people.patel!.client, 'team:change', add);
      expect(r1.conversation.memberUserIds).to.include('kim');
      const promote = people.lee!.keys.signStatement(statement('lee', { teamId, index: 2, prev: hash(add.statement), op: 'role', userId: 'kim', role: 'admin' }));
      await teamRequest(people.lee!.client, 'team:change', promote);
      const remove = people.lee!.keys.signStatement(statement('lee', { teamId, index: 3, prev: hash(promote.statement), op: 'remove', userId: 'ortiz' }));
      const r3 = await teamRequest(people.lee!.client, 'team:change', remove);
      expect(r3.conversation.roles).to.deep.equal({ kim: 'admin', lee: 'owner', patel: 'admin' });
      await eventually(() => people.ortiz!.got.length === 4, 'the removed member learns of the removal');
      // Removed: no longer receives, sends or reads history.
      expect(await codeOf(people.ortiz!.client.sendEnvelope(teamId, { body: new Uint8Array([1]) }))).to.equal(ErrorCode.FORBIDDEN);
      await people.lee!.client.sendEnvelope(teamId, { body: new Uint8Array([2]), epoch: r3.conversation.epoch! });
      // Kim, added at seq 2, resyncs the whole log from the create statement (to verify it) and the message.
      await eventually(() => people.kim!.got.length === 5, 'kim sees the log and the message');
      await new Promise((r) => setTimeout(r, 100));
      expect(people.kim!.got.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5]);
      expect(people.ortiz!.got.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4]);
    });

    it('refuses statements that break the rules, are forged or race, and changes nothing', async () => {
      const { teamId, head } = await createWard();
      const cases: Array<[string, string, () => Promise<unknown>, string]> = [
        ['a member adds someone', 'ortiz', () => teamRequest(people.ortiz!.client, 'team:change', people.ortiz!.keys.signStatement(statement('ortiz', { teamId, index: 1, prev: head, op: 'add', userId: 'kim' }))), ErrorCode.INVALID_STATEMENT],
        ['an admin adds an admin', 'patel', () => teamRequest(people.patel!.client, 'team:change', people.patel!.keys.signStatement(statement('patel', { teamId, index: 1, prev: head, op: 'add', userId: 'kim', role: 'admin' }))), ErrorCode.INVALID_STATEMENT],
        ['an admin removes the owner', 'patel', () => teamRequest(people.patel!.client, 'team:change', people.patel!.keys.signStatement(statement('patel', { teamId, index: 1, prev: head, op: 'remove', userId: 'lee' }))), ErrorCode.INVALID_STATEMENT],
        ['wrong previous hash', 'lee', () => teamRequest(people.lee!.client, 'team:change', people.lee!.keys.signStatement(statement('lee', { teamId, index: 1, prev: 'f'.repeat(64), op: 'add', userId: 'kim' }))), ErrorCode.INVALID_STATEMENT],
        ['wrong index', 'lee', () => teamRequest(people.lee!.client, 'team:change', people.lee!.keys.signStatement(statement('lee', { teamId, index: 5, prev: head, op: 'add', userId: 'kim' }))), ErrorCode.INVALID_STATEMENT],
        ['signed by another key', 'lee', () => teamRequest(people.lee!.client, 'team:change', testDeviceKeys().signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'add', userId: 'kim' }))), ErrorCode.BAD_SIGNATURE],
        ['acting as someone else', 'patel', () => teamRequest(people.patel!.client, 'team:change', people.patel!.keys.signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'add', userId: 'kim' }))), ErrorCode.INVALID_STATEMENT],
        ['not canonical JSON', 'lee', () => {
          const s = people.lee!.keys.signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'add', userId: 'kim' }));
          return teamRequest(people.lee!.client, 'team:change', { ...s, statement: ` ${s.statement}` });
        }, ErrorCode.INVALID_STATEMENT],
        ['an outsider', 'kim', () => teamRequest(people.kim!.client, 'team:change', people.kim!.keys.signStatement(statement('kim', { teamId, index: 1, prev: head, op: 'add', userId: 'kim' }))), ErrorCode.FORBIDDEN],
        ['a plaintext title (an older client)', 'lee', () => teamRequest(people.lee!.client, 'team:change', people.lee!.keys.signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'add', userId: 'kim', title: 'Ward 4B' }))), ErrorCode.INVALID_STATEMENT],
        ['a member renames the team', 'ortiz', () => teamRequest(people.ortiz!.client, 'team:change', people.ortiz!.keys.signStatement(statement('ortiz', { teamId, index: 1, prev: head, op: 'details', sealedDetails: opaqueSealedDetails() }))), ErrorCode.INVALID_STATEMENT],
        ['a rename with nothing sealed', 'lee', () => teamRequest(people.lee!.client, 'team:change', people.lee!.keys.signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'details' }))), ErrorCode.INVALID_STATEMENT],
        ['sealed details over the size limit', 'lee', () => teamRequest(people.lee!.client, 'team:change', people.lee!.keys.signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'details', sealedDetails: { keyId: 'a'.repeat(32), box: 'A'.repeat(11_000) } }))), ErrorCode.INVALID_STATEMENT],
      ];
      for (const [what, , run, code] of cases) expect(await codeOf(run()), what).to.equal(code);
      const conv = await t.storage.getConversation('org-a', teamId);
      expect(conv!.memberUserIds.sort()).to.deep.equal(['lee', 'ortiz', 'patel']);
      expect((await t.storage.envelopesAfter('org-a', teamId, 0, 10)).length).to.equal(1);

      // Two admins change the team from the same state at once: exactly one wins.
      const a = people.lee!.keys.signStatement(statement('lee', { teamId, index: 1, prev: head, op: 'add', userId: 'kim' }));
      const b = people.patel!.keys.signStatement(statement('patel', { teamId, index: 1, prev: head, op: 'remove', userId: 'ortiz' }));
      const codes = await Promise.all([codeOf(teamRequest(people.lee!.client, 'team:change', a)), codeOf(teamRequest(people.patel!.client, 'team:change', b))]);
      expect(codes.sort()).to.deep.equal([ErrorCode.CONFLICT, undefined].sort());
      expect((await t.storage.envelopesAfter('org-a', teamId, 0, 10)).length).to.equal(2);
    });

    it('relays typing to the other members and answers presence, for members only', async () => {
      const { teamId } = await createWard();
      const typing: string[] = [];
      (people.patel!.client as unknown as { connection: { socket: { on(e: string, f: (n: { userId: string; typing: boolean }) => void): void } } }).connection.socket.on('typing', (n) => typing.push(`${n.userId}:${n.typing}`));
      const req = (c: CurbsideClient, e: string, p: unknown) => (c as unknown as { connection: { request(e: string, p: unknown): Promise<unknown> } }).connection.request(e, p);
      await req(people.lee!.client, ClientEvent.TYPING, { conversationId: teamId, typing: true });
      await eventually(() => typing.includes('lee:true'), 'typing relayed');
      const presence = (await req(people.ortiz!.client, ClientEvent.PRESENCE_QUERY, { conversationId: teamId })) as { online: Array<{ userId: string }> };
      expect(presence.online.map((o) => o.userId).sort()).to.deep.equal(['lee', 'ortiz', 'patel']);
      expect(await codeOf(req(people.kim!.client, ClientEvent.TYPING, { conversationId: teamId, typing: true }))).to.equal(ErrorCode.FORBIDDEN);
      expect(await codeOf(req(people.kim!.client, ClientEvent.PRESENCE_QUERY, { conversationId: teamId }))).to.equal(ErrorCode.FORBIDDEN);
    });
  });
}
