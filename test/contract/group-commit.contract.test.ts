/**
 * Group commit on the real databases (FerretDB on SQLite and on PostgreSQL, or MONGODB_URI), seen
 * through the driver's command monitoring: concurrent sends become one `insertMany` and one lastSeq
 * raise, nothing is acked before its batch is stored, a retried send inside a batch is still answered
 * as a duplicate, and nothing is read from the database on the way (issue #19, "a lean send path").
 */
import { strict as assert } from 'node:assert';
import { MongoStorage, type AppendResult } from '@curbside/server';
import { mongoBackends, uniqueName } from '../support/services.js';
import { dropDatabase } from '../support/storage-impls.js';

const ORG = 'org-gc';
const T0 = 1_700_000_000_000;

interface Started {
  commandName: string;
  command: Record<string, unknown>;
}

function stored(r: AppendResult) {
  assert.equal(r.status, 'stored');
  return (r as Extract<AppendResult, { status: 'stored' }>).envelope;
}

for (const backend of mongoBackends()) {
  describe(`Group commit of envelope appends on ${backend.name}`, function () {
    let st: MongoStorage;
    let dbName: string;
    let commands: Started[];

    beforeEach(async function () {
      dbName = uniqueName('groupcommit');
      // A long bounded wait: a batch goes out when it is full or the wait is over, whatever the machine's load.
      st = new MongoStorage({ uri: backend.uri(), dbName, groupCommitWaitMs: 200 });
      await st.init();
      commands = [];
      st.connection.getClient().on('commandStarted', (e: { commandName: string; command: Record<string, unknown> }) => commands.push({ commandName: e.commandName, command: e.command }));
    });

    afterEach(async function () {
      await st.close();
      await dropDatabase(backend.uri(), dbName);
    });

    const conversations = async (n: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await st.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['b'], now: T0 })).conversation.id);
      return ids;
    };
    const send = (conversationId: string, clientMessageId: string, lastSeqSeen = 0) =>
      st.appendEnvelope({ orgId: ORG, conversationId, senderUserId: 'a', senderDeviceId: 'a-phone', clientMessageId, body: new Uint8Array([1, 2, 3]), lastSeqSeen, now: T0 });
    const named = (name: string, collection: string) => commands.filter((c) => c.commandName === name && c.command[name] === collection);

    it('twelve concurrent sends to twelve conversations: one insertMany of twelve and one lastSeq raise, no read', async function () {
      const ids = await conversations(12);
      // Every conversation has had its first raise (its seq document exists), as in steady state.
      await Promise.all(ids.map((id, i) => send(id, `warm-${i}`)));
      commands.length = 0;

      const results = await Promise.all(ids.map((id, i) => send(id, `m-${i}`, 1)));
      assert.deepEqual(
        results.map((r) => stored(r).seq),
        ids.map(() => 2),
      );
      const inserts = named('insert', 'envelopes');
      assert.equal(inserts.length, 1, 'one insert command for the batch');
      assert.equal((inserts[0]!.command['documents'] as unknown[]).length, 12, 'carrying every envelope');
      const raises = named('update', 'conversation_seqs');
      assert.equal(raises.length, 1, 'one lastSeq raise for the batch');
      assert.equal((raises[0]!.command['updates'] as unknown[]).length, 12, 'one $max per conversation');
      assert.deepEqual(
        commands.filter((c) => ['find', 'aggregate', 'count', 'getMore'].includes(c.commandName)).map((c) => c.commandName),
        [],
        'no database read on the way',
      );
      // Acked (resolved) means stored and visible to sync.
      for (const id of ids) assert.equal((await st.getConversation(ORG, id))!.lastSeq, 2);
    });

    it('a batch with more conversations than FerretDB-PostgreSQL answers in one bulk update (60) is raised in parts, and cursors likewise', async function () {
      const ids = await conversations(60);
      await Promise.all(ids.map((id, i) => send(id, `warm-${i}`)));
      commands.length = 0;
      const results = await Promise.all(ids.map((id, i) => send(id, `big-${i}`, 1)));
      assert.ok(results.every((r) => stored(r).seq === 2));
      assert.equal(named('insert', 'envelopes').length, 1, 'one insertMany of 60');
      const raises = named('update', 'conversation_seqs').map((c) => (c.command['updates'] as unknown[]).length);
      assert.deepEqual(raises, [32, 28], 'the raise in two commands of at most 32');
      for (const id of ids) assert.equal((await st.getConversation(ORG, id))!.lastSeq, 2);
      // One device acking 60 conversations at once.
      await st.ackDelivered(ORG, 'b-phone', ids.map((conversationId) => ({ conversationId, afterSeq: 2 })));
      assert.deepEqual(named('update', 'device_cursors').map((c) => (c.command['updates'] as unknown[]).length), [32, 28]);
    });

    it('nobody is answered before the insert command of their batch has answered', async function () {
      const ids = await conversations(3);
      await Promise.all(ids.map((id, i) => send(id, `warm-${i}`)));
      let insertsAnswered = 0;
      st.connection.getClient().on('commandSucceeded', (e: { commandName: string }) => {
        if (e.commandName === 'insert') insertsAnswered++;
      });
      const seen: number[] = [];
      await Promise.all(ids.map((id, i) => send(id, `n-${i}`, 1).then(() => seen.push(insertsAnswered))));
      assert.deepEqual(seen, [1, 1, 1], 'each send resolved after the one insert of its batch answered');
    });

    it('idempotency keys hold inside a batch: the same client message id twice in one insertMany is stored once', async function () {
      const [a, b] = await conversations(2);
      await Promise.all([send(a!, 'warm-a'), send(b!, 'warm-b')]);
      commands.length = 0;
      // The same device and client message id for two conversations, in one batch: one is stored, the
      // other refused as a conflict (never a second envelope).
      const [ra, rb] = await Promise.all([send(a!, 'same', 1), send(b!, 'same', 1)]);
      assert.equal(named('insert', 'envelopes').length, 1, 'both went in one insertMany');
      assert.deepEqual([ra!.status, rb!.status].sort(), ['conflict', 'stored']);
      const winner = ra!.status === 'stored' ? a! : b!;
      const first = stored(ra!.status === 'stored' ? ra! : rb!);
      // A retry of the stored send is answered with the stored envelope.
      const retry = await send(winner, 'same', 2);
      assert.equal(retry.status, 'duplicate');
      assert.equal((retry as { envelope: { seq: number; messageId: string } }).envelope.messageId, first.messageId);
      assert.equal((await st.envelopesAfter(ORG, a!, 0, 10)).length + (await st.envelopesAfter(ORG, b!, 0, 10)).length, 3, 'two warm-ups and one copy of the message');
    });
  });
}
