/**
 * Group commit on the real databases (FerretDB on SQLite and on PostgreSQL, or MONGODB_URI), seen
 * through the driver's command monitoring: concurrent sends become one `insertMany` of envelopes and
 * one `insertMany` of seq marks (the lastSeq raise, as inserts), no update, nothing is acked before its
 * batch and its marks are stored, a retried send inside a batch is still answered
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

    it('twelve concurrent sends to twelve conversations: one insertMany of twelve envelopes and one set of twelve seq marks, no update, no read', async function () {
      const ids = await conversations(12);
      // Every conversation has a mark already, as in steady state.
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
      const marks = named('insert', 'seq_mark_sets');
      assert.equal(marks.length, 1, 'one insert of seq marks for the batch');
      const sets = marks[0]!.command['documents'] as Array<{ orgId: string; conversationIds: string[]; seqs: number[] }>;
      assert.equal(sets.length, 1, 'one set for the batch (one organisation)');
      assert.equal(sets[0]!.orgId, ORG);
      assert.deepEqual(
        sets[0]!.conversationIds.map((c, i) => [c, sets[0]!.seqs[i]]).sort(),
        ids.map((id) => [id, 2]).sort(),
        'one mark per conversation, of its new seq',
      );
      assert.deepEqual(commands.filter((c) => ['update', 'findAndModify'].includes(c.commandName)).map((c) => c.commandName), [], 'no update (a read-modify-write on FerretDB)');
      assert.ok(
        commands.findIndex((c) => c.commandName === 'insert' && c.command['insert'] === 'envelopes') < commands.findIndex((c) => c.command['insert'] === 'seq_mark_sets'),
        'marks after the envelopes',
      );
      assert.deepEqual(
        commands.filter((c) => ['find', 'aggregate', 'count', 'getMore'].includes(c.commandName)).map((c) => c.commandName),
        [],
        'no database read on the way',
      );
      // Acked (resolved) means stored and visible to sync.
      for (const id of ids) assert.equal((await st.getConversation(ORG, id))!.lastSeq, 2);
    });

    it('a batch of 60 conversations is marked by one set in one insert; cursors go in bulk updates of at most 32 (what FerretDB-PostgreSQL answers)', async function () {
      const ids = await conversations(60);
      await Promise.all(ids.map((id, i) => send(id, `warm-${i}`)));
      commands.length = 0;
      const results = await Promise.all(ids.map((id, i) => send(id, `big-${i}`, 1)));
      assert.ok(results.every((r) => stored(r).seq === 2));
      assert.equal(named('insert', 'envelopes').length, 1, 'one insertMany of 60');
      assert.deepEqual(
        named('insert', 'seq_mark_sets').map((c) => (c.command['documents'] as Array<{ seqs: number[] }>).map((d) => d.seqs.length)),
        [[60]],
        'one insert of one set of 60 marks',
      );
      for (const id of ids) assert.equal((await st.getConversation(ORG, id))!.lastSeq, 2);
      // One device acking 60 conversations at once.
      await st.ackDelivered(ORG, 'b-phone', ids.map((conversationId) => ({ conversationId, afterSeq: 2 })));
      assert.deepEqual(named('update', 'device_cursors').map((c) => (c.command['updates'] as unknown[]).length), [32, 28]);
    });

    it('superseded mark sets wait at most about a second (markPruneEveryMs) when fewer than a batch come', async function () {
      const quick = new MongoStorage({ uri: backend.uri(), dbName, groupCommitWaitMs: 0, markPruneEveryMs: 0 });
      try {
        await quick.init();
        const id = (await quick.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['b'], now: T0 })).conversation.id;
        for (let i = 1; i <= 3; i++) {
          await quick.appendEnvelope({ orgId: ORG, conversationId: id, senderUserId: 'a', senderDeviceId: 'a-phone', clientMessageId: `q-${i}`, body: new Uint8Array([1]), lastSeqSeen: i - 1, now: T0 });
        }
        await quick.close(); // waits for a delete in flight
        const sets = await st.connection.db!.collection('seq_mark_sets').find({ conversationIds: id }).toArray();
        // Appends 2 and 3 superseded 1 and 2; with no interval each set went at once (the second maybe
        // while the first delete was in flight, then left for the sweep): mark 1 is gone, 3 stays.
        const seqs = sets.flatMap((m) => m['seqs'] as number[]).sort((a, b) => a - b);
        assert.equal(seqs.includes(1), false, 'the first superseded mark was deleted');
        assert.equal(seqs.at(-1), 3);
        assert.equal((await st.getConversation(ORG, id))!.lastSeq, 3);
      } finally {
        await quick.close();
      }
    });

    it('nobody is answered before the insert commands of their batch (envelopes, then marks) have answered', async function () {
      const ids = await conversations(3);
      await Promise.all(ids.map((id, i) => send(id, `warm-${i}`)));
      const answered: string[] = [];
      st.connection.getClient().on('commandSucceeded', (e: { commandName: string; reply?: unknown }) => {
        if (e.commandName === 'insert') answered.push('insert');
      });
      const seen: number[] = [];
      await Promise.all(ids.map((id, i) => send(id, `n-${i}`, 1).then(() => seen.push(answered.length))));
      assert.deepEqual(seen, [2, 2, 2], 'each send resolved after both inserts of its batch answered');
      const marked = named('insert', 'seq_mark_sets').at(-1)!;
      assert.deepEqual((marked.command['documents'] as Array<{ seqs: number[] }>).map((d) => d.seqs.length), [3], 'the second insert was the batch\'s marks');
    });

    it('superseded mark sets are deleted by this node, a batch at a time, and lastSeq stays', async function () {
      this.timeout(120_000);
      // No bounded wait: 257 appends one after another; deletes by count only (not once a second).
      const fast = new MongoStorage({ uri: backend.uri(), dbName, groupCommitWaitMs: 0, markPruneEveryMs: 3_600_000 });
      try {
        await fast.init();
        const deletes: Started[] = [];
        fast.connection.getClient().on('commandStarted', (e: Started) => {
          if (e.commandName === 'delete' && e.command['delete'] === 'seq_mark_sets') deletes.push(e);
        });
        const id = (await fast.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['b'], now: T0 })).conversation.id;
        const append = (i: number) =>
          fast.appendEnvelope({ orgId: ORG, conversationId: id, senderUserId: 'a', senderDeviceId: 'a-phone', clientMessageId: `p-${i}`, body: new Uint8Array([1]), lastSeqSeen: i - 1, now: T0 });
        // Each append's set (one mark) is superseded by the next: 256 superseded sets make a batch.
        for (let i = 1; i <= 257; i++) assert.equal(stored(await append(i)).seq, i);
        for (let i = 0; i < 200 && deletes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(deletes.length, 1, 'one delete command');
        const removed = (deletes[0]!.command['deletes'] as Array<{ q: { _id: { $in: string[] } } }>)[0]!.q._id.$in;
        assert.equal(removed.length, 256);
        await fast.close(); // waits for the delete in flight
        const sets = await st.connection.db!.collection('seq_mark_sets').find({}).toArray();
        assert.deepEqual(sets.map((m) => m['seqs']), [[257]], 'only the newest mark is left');
        assert.equal((await st.getConversation(ORG, id))!.lastSeq, 257);
        assert.equal((await st.listConversationsForUser(ORG, 'b')).find((c) => c.id === id)!.lastSeq, 257);
      } finally {
        await fast.close();
      }
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
