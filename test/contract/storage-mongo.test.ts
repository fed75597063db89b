/**
 * The MongoDB adapter beyond the Storage contract, on each of the test run's MongoDB-wire databases
 * (FerretDB on SQLite, or the server at MONGODB_URI; and FerretDB on PostgreSQL): start-up and indexes,
 * write concerns, recovery from a crash between an insert and its seq mark, packed shares, seq marks
 * and their sweep under racing nodes. "Two nodes" are two MongoStorage instances on one database.
 *
 * Assertions use node:assert/strict (fully typed; chai ships no type declarations).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import type { Envelope, TeamState } from '@curbside/shared';
import { MongoStorage } from '../../server/src/adapters/mongo/storage.js';
import { indexesArrayElements } from '../../server/src/adapters/mongo/ensure.js';
import { mongoBackends, uniqueName } from '../support/services.js';
import { dropDatabase } from '../support/storage-impls.js';
import { ORG, T0, bytes, range, sameBytes, stored } from './storage-fixtures.js';

for (const backend of mongoBackends()) {
  describe(`MongoStorage specifics on ${backend.name}`, function () {
    const dbs: string[] = [];
    const opened: MongoStorage[] = [];

    function open(dbName: string, options: { writeConcern?: 'majority' | number } = {}): MongoStorage {
      const st = new MongoStorage({ uri: backend.uri(), dbName, ...options });
      opened.push(st);
      if (!dbs.includes(dbName)) dbs.push(dbName);
      return st;
    }

    afterEach(async function () {
      await Promise.all(opened.splice(0).map((st) => st.close()));
      for (const db of dbs.splice(0)) await dropDatabase(backend.uri(), db);
    });

    it('init is idempotent, ping answers, and writeConcern 1 works', async function () {
      const st = open(uniqueName('storage'), { writeConcern: 1 });
      await st.init();
      await st.init();
      await st.ping();
      const c = await st.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: [], now: T0 });
      assert.equal(stored(await st.appendEnvelope({ orgId: ORG, conversationId: c.conversation.id, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: 'm', body: bytes(4), now: T0 })).seq, 1);
    });

    it('indexes an array field only where the server indexes its elements; drops such an index an earlier release made elsewhere', async function () {
      const dbName = uniqueName('storage');
      const raw = mongoose.createConnection(backend.uri(), { dbName });
      try {
        await raw.asPromise();
        // What the release before this one created everywhere.
        await raw.db!.collection('conversations').createIndex({ orgId: 1, memberUserIds: 1 }, { name: 'org_members' });
        await raw.db!.collection('seq_mark_sets').createIndex({ orgId: 1, conversationIds: 1 }, { name: 'org_conversations' });
        const [a, b] = [open(dbName), open(dbName)];
        await Promise.all([a.init(), b.init()]);
        const ferret = (await raw.db!.admin().command({ buildInfo: 1 }))['ferretdbVersion'] as string | undefined;
        // The run's FerretDB is a 1.x build (scripts/build-ferretdb.sh; it says "unknown"); MONGODB_URI is MongoDB.
        const elements = ferret === undefined;
        assert.equal(await indexesArrayElements(raw), elements, `FerretDB ${String(ferret)}`);
        const names = async (collection: string) => (await raw.db!.collection(collection).indexes()).map((i) => i.name).sort();
        assert.deepEqual(await names('conversations'), ['_id_', 'org_directkey_unique', ...(elements ? ['org_members'] : []), 'org_role'].sort());
        assert.deepEqual(await names('seq_mark_sets'), ['_id_', ...(elements ? ['org_conversations'] : [])].sort());
      } finally {
        await raw.close();
      }
    });

    it('refuses an unacknowledged write concern', function () {
      assert.throws(() => new MongoStorage({ uri: backend.uri(), writeConcern: 0 }), RangeError);
      assert.throws(() => new MongoStorage({ uri: backend.uri(), writeConcern: 1.5 }), RangeError);
    });

    it('recovers when a node died between storing an envelope and raising lastSeq', async function () {
      const dbName = uniqueName('storage');
      const st = open(dbName);
      await st.init();
      const c = (await st.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['b'], now: T0 })).conversation;
      const first = stored(await st.appendEnvelope({ orgId: ORG, conversationId: c.id, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: 'm1', body: bytes(4), now: T0 }));

      // What a crashed node leaves behind: seq 2 stored, lastSeq still 1.
      const raw = mongoose.createConnection(backend.uri(), { dbName });
      try {
        await raw.asPromise();
        await raw.db!.collection('envelopes').insertOne({
          _id: `${ORG} d m2` as never, // (org, sender device, client message id)
          messageId: 'orphan-message',
          orgId: ORG,
          conversationId: c.id,
          seq: 2,
          senderUserId: 'a',
          senderDeviceId: 'd',
          clientMessageId: 'm2',
          sentAt: T0 + 1,
          body: Buffer.from([9, 9]),
        });
      } finally {
        await raw.close();
      }
      assert.equal((await st.getConversation(ORG, c.id))?.lastSeq, 1);

      // A fresh node (no in-memory hint) appends: it must land at 3, not collide forever or leave a gap.
      const fresh = open(dbName); // the crashed node never marks seq 2: the next append moves past it without waiting
      await fresh.init();
      assert.equal(stored(await fresh.appendEnvelope({ orgId: ORG, conversationId: c.id, senderUserId: 'b', senderDeviceId: 'e', clientMessageId: 'x', body: bytes(4), now: T0 + 2 })).seq, 3);
      assert.equal((await fresh.getConversation(ORG, c.id))?.lastSeq, 3);
      assert.deepEqual((await fresh.envelopesAfter(ORG, c.id, 0, 10)).map((e) => e.seq), [1, 2, 3]);

      // The crashed send's retry is answered as a duplicate with the orphan's seq and bytes.
      const retry = await fresh.appendEnvelope({ orgId: ORG, conversationId: c.id, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: 'm2', body: bytes(4), now: T0 + 3 });
      assert.equal(retry.status, 'duplicate');
      const dup = (retry as { envelope: Envelope }).envelope;
      assert.equal(dup.messageId, 'orphan-message');
      assert.equal(dup.seq, 2);
      sameBytes(dup.body, new Uint8Array([9, 9]));
      assert.notEqual(dup.messageId, first.messageId);
    });

    it('stores per-device ciphertexts packed in one binary field, still reads envelopes stored with them as subdocuments, and serves an envelope whose packed shares were damaged without them, the others whole', async function () {
      const dbName = uniqueName('storage');
      const st = open(dbName);
      await st.init();
      const c = (await st.createConversation({ orgId: ORG, kind: 'direct', createdBy: 'a', memberUserIds: ['b'], now: T0 })).conversation;
      const shares = [
        { deviceId: 'dev-b1', ciphertext: bytes(80) },
        { deviceId: 'dév-b2 ü', ciphertext: bytes(1) },
        { deviceId: 'dev-a2', ciphertext: bytes(300) },
      ];
      const append = (clientMessageId: string, recipients: typeof shares) =>
        st.appendEnvelope({ orgId: ORG, conversationId: c.id, senderUserId: 'a', senderDeviceId: 'dev-a1', clientMessageId, body: bytes(16), recipients, now: T0 });
      stored(await append('m1', shares));
      stored(await append('m2', shares.slice(0, 1)));
      stored(await append('m3', shares.slice(2)));
      const legacyShare = bytes(40);
      const raw = mongoose.createConnection(backend.uri(), { dbName });
      try {
        await raw.asPromise();
        const envelopes = raw.db!.collection('envelopes');
        const first = await envelopes.findOne({ conversationId: c.id, seq: 1 });
        assert.ok(first?.shares instanceof mongoose.mongo.Binary, 'the shares are one binary field');
        assert.equal(first?.recipients, undefined, 'no subdocuments');
        // An envelope of a release before packed shares, and two damaged ones: a length that runs past
        // the end, and a field that is not binary at all.
        await envelopes.insertOne({
          _id: `${ORG} dev-a1 m4` as never,
          messageId: 'legacy-message',
          orgId: ORG,
          conversationId: c.id,
          seq: 4,
          senderUserId: 'a',
          senderDeviceId: 'dev-a1',
          clientMessageId: 'm4',
          sentAt: T0,
          body: Buffer.from(bytes(16)),
          recipients: [{ deviceId: 'dev-b1', ciphertext: Buffer.from(legacyShare) }],
        });
        const damaged = Buffer.from((first!.shares as mongoose.mongo.Binary).value());
        damaged.writeUInt32BE(0xffffff, 2 + Buffer.byteLength('dev-b1'));
        await envelopes.updateOne({ conversationId: c.id, seq: 2 }, { $set: { shares: new mongoose.mongo.Binary(damaged) } });
        await envelopes.updateOne({ conversationId: c.id, seq: 3 }, { $set: { shares: 'not binary' } });
      } finally {
        await raw.close();
      }
      const all = await st.envelopesAfter(ORG, c.id, 0, 10);
      assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4]);
      assert.deepEqual(all[0]!.recipients?.map((r) => r.deviceId), shares.map((r) => r.deviceId));
      all[0]!.recipients!.forEach((r, i) => sameBytes(r.ciphertext, shares[i]!.ciphertext, `share ${i}`));
      for (const e of all.slice(1, 3)) {
        assert.equal(e.recipients, undefined, `envelope ${e.seq}: damaged shares are left out`);
        assert.equal(e.body?.byteLength, 16, `envelope ${e.seq}: its body is still served`);
      }
      assert.equal(all[3]!.messageId, 'legacy-message');
      assert.deepEqual(all[3]!.recipients?.map((r) => r.deviceId), ['dev-b1']);
      sameBytes(all[3]!.recipients![0]!.ciphertext, legacyShare, 'legacy share');
      // A retried send is answered from the stored envelope, shares and all.
      const retry = await append('m1', shares);
      assert.equal(retry.status, 'duplicate');
      assert.deepEqual((retry as { envelope: Envelope }).envelope.seq, 1);
    });

    it('seq raises on one node never undo a team change made on another (FerretDB updates are read-modify-write)', async function () {
      // FerretDB v1 reads a document, applies the update in Go and writes the whole document back. When
      // appends raised `lastSeq` in the conversation document, a raise on node A that read the team
      // before node B's change and wrote after it put the old member list back (the two-node hub test
      // saw a removed member's send accepted). Raises now write `conversation_seqs` only.
      const dbName = uniqueName('storage');
      const [a, b] = [open(dbName), open(dbName)];
      await a.init();
      await b.init();
      const teamId = `team-${randomBytes(6).toString('hex')}`;
      let state: TeamState = { teamId, sealedDetails: { keyId: 'a'.repeat(32), box: 'b'.repeat(139) }, index: 0, head: 'h0', members: { owner: 'owner' } };
      assert.equal((await a.createTeam({ orgId: ORG, state, createdBy: 'owner', now: T0 })).status, 'created');
      let sent = 0;
      for (let round = 1; round <= 12; round++) {
        const appends = Array.from({ length: 8 }, () =>
          a.appendEnvelope({ orgId: ORG, conversationId: teamId, senderUserId: 'owner', senderDeviceId: 'owner-d', clientMessageId: `m${++sent}`, body: bytes(4), now: T0 }),
        );
        const next: TeamState = { ...state, index: round, head: `h${round}`, members: { ...state.members, [`u${round}`]: 'member' } };
        assert.equal(await b.advanceTeam(ORG, teamId, state.index, next), 'ok');
        await Promise.all(appends);
        state = next;
        const seen = await b.getTeamState(ORG, teamId);
        assert.equal(seen?.index, round, `round ${round}: team state went back to index ${String(seen?.index)}`);
        assert.deepEqual(seen?.sealedDetails, state.sealedDetails, `round ${round}: sealed details kept`);
        const conversation = await a.getConversation(ORG, teamId);
        assert.deepEqual([...(conversation?.memberUserIds ?? [])].sort(), Object.keys(state.members).sort(), `round ${round}: member list`);
        assert.equal(conversation?.lastSeq, sent, `round ${round}: lastSeq`);
      }
    });

    it('lastSeq never stays below a stored seq when six nodes append to ten conversations at once (FerretDB updates are read-modify-write)', async function () {
      // FerretDB v1 applies `$max` by reading the document and writing it back whole: a raise to N that
      // read before a raise to N+1 landed and wrote after it put N back, and a device syncing then
      // skipped envelope N+1 until the next append. Before raises went in seq order this lost about
      // one conversation-round in 35 on SQLite and on PostgreSQL (a dozen per run of this test).
      this.timeout(120_000);
      const dbName = uniqueName('storage');
      const nodes = Array.from({ length: 6 }, () => open(dbName));
      for (const node of nodes) await node.init();
      const a = nodes[0]!;
      const conversations = await Promise.all(
        range(1, 10).map(async () => (await a.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: [], now: T0 })).conversation),
      );
      for (let round = 1; round <= 25; round++) {
        await Promise.all(
          conversations.map(async (c) => {
            const results = await Promise.all(
              nodes.map((node, i) =>
                node.appendEnvelope({ orgId: ORG, conversationId: c.id, senderUserId: 'a', senderDeviceId: `d${i}`, clientMessageId: `${c.id}-${round}`, body: bytes(4), now: T0 }),
              ),
            );
            const top = Math.max(...results.map((r) => stored(r).seq));
            assert.equal(top, round * nodes.length, 'seqs stay gap-free');
            assert.equal((await nodes[round % nodes.length]!.getConversation(ORG, c.id))?.lastSeq, top, `round ${round}: lastSeq after every append was acked`);
          }),
        );
      }
    });

    it('racing nodes: lastSeq, as any node reads it (one conversation or all at once), is never below an acked seq nor above the stored ones', async function () {
      // Seq marks (docs/delivery.md): each append inserts a mark of its seq after its envelope, and is
      // acked after the mark; lastSeq is the highest mark. Four nodes append to the same five
      // conversations at once while readers on every node read lastSeq and, right after, the envelopes:
      // each read must cover every append acked before it began, and every seq up to it must be stored
      // (gap-free: a mark before its envelope, or a burned seq, would show as a hole here).
      this.timeout(180_000);
      const dbName = uniqueName('storage');
      const nodes = Array.from({ length: 4 }, () => open(dbName, { writeConcern: 1 }));
      for (const node of nodes) await node.init();
      const conversations = await Promise.all(
        range(1, 5).map(async () => (await nodes[0]!.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['r'], now: T0 })).conversation.id),
      );
      const acked = new Map(conversations.map((c) => [c, 0]));
      const failures: string[] = [];
      let reads = 0;
      let writing = true;
      const check = async (node: MongoStorage, c: string, lastSeq: number, floor: number, how: string) => {
        reads++;
        if (lastSeq < floor) failures.push(`${how}: lastSeq ${lastSeq} below acked seq ${floor}`);
        const seqs = (await node.envelopesAfter(ORG, c, 0, lastSeq)).map((e) => e.seq);
        if (seqs.length !== lastSeq || seqs.some((seq, i) => seq !== i + 1)) failures.push(`${how}: lastSeq ${lastSeq} but stored ${seqs.slice(-5).join(',')} (${seqs.length})`);
      };
      const readers = nodes.map(async (node, i) => {
        for (let n = 0; writing; n++) {
          if ((n + i) % 2 === 0) {
            const c = conversations[n % conversations.length]!;
            const floor = acked.get(c)!;
            await check(node, c, (await node.getConversation(ORG, c))!.lastSeq, floor, `getConversation on node ${i}`);
          } else {
            const floors = new Map(acked);
            const listed = await node.listConversationsForUser(ORG, 'r');
            for (const c of listed) await check(node, c.id, c.lastSeq, floors.get(c.id)!, `listConversationsForUser on node ${i}`);
          }
        }
      });
      let sent = 0;
      for (let round = 1; round <= 12; round++) {
        await Promise.all(
          conversations.flatMap((c) =>
            nodes.map(async (node, i) => {
              const r = stored(await node.appendEnvelope({ orgId: ORG, conversationId: c, senderUserId: 'a', senderDeviceId: `d${i}`, clientMessageId: `${c}-${round}`, body: bytes(4), now: T0 }));
              acked.set(c, Math.max(acked.get(c)!, r.seq));
              sent++;
            }),
          ),
        );
      }
      writing = false;
      await Promise.all(readers);
      assert.deepEqual(failures, []);
      assert.equal(sent, 12 * nodes.length * conversations.length);
      assert.ok(reads > conversations.length * 4, `readers ran alongside the appends (${reads} reads)`);
      for (const c of conversations) {
        assert.equal(acked.get(c), 12 * nodes.length, 'every seq stored once, gap-free');
        for (const node of nodes) assert.equal((await node.getConversation(ORG, c))!.lastSeq, 12 * nodes.length);
      }
    });

    it('the sweep leaves one seq mark per conversation, its highest, and lastSeq where it was (two nodes)', async function () {
      const dbName = uniqueName('storage');
      const [a, b] = [open(dbName), open(dbName)];
      await a.init();
      await b.init();
      const ids = await Promise.all(range(1, 3).map(async () => (await a.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['r'], now: T0 })).conversation.id));
      // Two nodes taking turns: each supersedes only its own marks, so both nodes' marks pile up.
      for (let i = 1; i <= 6; i++) {
        for (const c of ids) {
          const node = i % 2 ? a : b;
          assert.equal(stored(await node.appendEnvelope({ orgId: ORG, conversationId: c, senderUserId: 'a', senderDeviceId: `d${i % 2}`, clientMessageId: `${c}-${i}`, body: bytes(2), now: T0 })).seq, i);
        }
      }
      const raw = mongoose.createConnection(backend.uri(), { dbName });
      try {
        await raw.asPromise();
        const sets = raw.db!.collection('seq_mark_sets');
        const marks = async () => (await sets.find({}).toArray()).flatMap((m) => (m['conversationIds'] as string[]).map((c, i) => [c, (m['seqs'] as number[])[i]]));
        assert.ok((await marks()).length >= ids.length * 2, 'more than one mark per conversation before the sweep');
        await a.sweepEnvelopes(T0);
        assert.deepEqual((await marks()).sort(), ids.map((c) => [c, 6]).sort());
      } finally {
        await raw.close();
      }
      for (const c of ids) assert.equal((await b.getConversation(ORG, c))!.lastSeq, 6);
      assert.deepEqual((await b.listConversationsForUser(ORG, 'r')).map((c) => c.lastSeq), [6, 6, 6]);
      assert.equal(stored(await b.appendEnvelope({ orgId: ORG, conversationId: ids[0]!, senderUserId: 'a', senderDeviceId: 'd9', clientMessageId: 'after-sweep', body: bytes(2), now: T0 })).seq, 7);
    });

    it('the sweep rewrites a mostly dead set of marks: its live mark moves to a new set first, and lastSeq stays', async function () {
      const dbName = uniqueName('storage');
      const st = open(dbName);
      await st.init();
      const ids = await Promise.all(range(1, 4).map(async () => (await st.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['r'], now: T0 })).conversation.id));
      const append = (c: string, id: string, lastSeqSeen?: number) =>
        st.appendEnvelope({ orgId: ORG, conversationId: c, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: id, body: bytes(2), now: T0, ...(lastSeqSeen !== undefined ? { lastSeqSeen } : {}) });
      for (const c of ids) await append(c, `${c}-1`);
      // One batch marks all four at seq 2 (one set: the caller read each conversation, as a send does,
      // and the node knows each seq, so nothing is read before the inserts); three of them move on, the
      // fourth stays quiet.
      await Promise.all(ids.map((c) => append(c, `${c}-2`, 1)));
      for (const c of ids.slice(0, 3)) assert.equal(stored(await append(c, `${c}-3`)).seq, 3);
      const raw = mongoose.createConnection(backend.uri(), { dbName });
      try {
        await raw.asPromise();
        const sets = raw.db!.collection('seq_mark_sets');
        const first = (await sets.find({}).toArray()).find((m) => (m['conversationIds'] as string[]).length === 4);
        assert.ok(first, 'the first batch is one set of four marks, kept by the quiet conversation');
        await st.sweepEnvelopes(T0);
        const after = await sets.find({}).toArray();
        assert.equal(after.some((m) => m._id === first._id), false, 'the mostly dead set is gone');
        assert.deepEqual(
          after.flatMap((m) => (m['conversationIds'] as string[]).map((c, i) => [c, (m['seqs'] as number[])[i]])).sort(),
          ids.map((c, i) => [c, i < 3 ? 3 : 2]).sort(),
          'each conversation keeps exactly its highest mark',
        );
      } finally {
        await raw.close();
      }
      assert.deepEqual((await st.listConversationsForUser(ORG, 'r')).map((c) => c.lastSeq).sort(), [2, 3, 3, 3]);
      assert.equal((await st.getConversation(ORG, ids[3]!))!.lastSeq, 2);
      assert.equal(stored(await append(ids[3]!, 'quiet-3')).seq, 3);
    });

    it('a node whose seq hint went stale never reuses a seq whose envelope the sweep deleted', async function () {
      const dbName = uniqueName('storage');
      const [a, b] = [open(dbName), open(dbName)];
      await a.init();
      await b.init();
      const c = (await a.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: ['r'], now: T0 })).conversation.id;
      const append = (node: typeof a, id: string, lastSeqSeen?: number) =>
        node.appendEnvelope({ orgId: ORG, conversationId: c, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: id, body: bytes(2), deliverTo: ['r-phone'], expiresAt: T0 + 1e9, now: T0, ...(lastSeqSeen !== undefined ? { lastSeqSeen } : {}) });
      // Node b stores seq 1, then node a takes the conversation on to 6; every seq but the latest is delivered and swept.
      assert.equal(stored(await append(b, 'm1', 0)).seq, 1);
      for (let i = 2; i <= 6; i++) assert.equal(stored(await append(a, `m${i}`)).seq, i);
      await a.ackDelivered(ORG, 'r-phone', [{ conversationId: c, afterSeq: 6 }]);
      await a.sweepEnvelopes(T0 + 60 * 60_000);
      assert.deepEqual((await a.envelopesAfter(ORG, c, 0, 10)).map((e) => e.seq), [6], 'only the latest is kept');
      // An hour on, node b knows only seq 1 (its own hint, and a directory's cached lastSeq of 1): its next append is still 7.
      assert.equal(stored(await b.appendEnvelope({ orgId: ORG, conversationId: c, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: 'm7', body: bytes(2), deliverTo: ['r-phone'], expiresAt: T0 + 1e9, now: T0 + 60 * 60_000, lastSeqSeen: 1 })).seq, 7);
      assert.equal((await a.getConversation(ORG, c))!.lastSeq, 7);
    });

    it('repairs a lagging lastSeq when the crashed send is retried', async function () {
      const dbName = uniqueName('storage');
      const st = open(dbName); // the crashed node never marked seq 1
      await st.init();
      const c = (await st.createConversation({ orgId: ORG, kind: 'group', createdBy: 'a', memberUserIds: [], now: T0 })).conversation;
      const raw = mongoose.createConnection(backend.uri(), { dbName });
      try {
        await raw.asPromise();
        await raw.db!.collection('envelopes').insertOne({
          _id: `${ORG} d m1` as never, messageId: 'orphan', orgId: ORG, conversationId: c.id, seq: 1, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: 'm1', sentAt: T0, body: Buffer.from([1]),
        });
      } finally {
        await raw.close();
      }
      const retry = await st.appendEnvelope({ orgId: ORG, conversationId: c.id, senderUserId: 'a', senderDeviceId: 'd', clientMessageId: 'm1', body: bytes(1), now: T0 });
      assert.equal(retry.status, 'duplicate');
      assert.equal((await st.getConversation(ORG, c.id))?.lastSeq, 1);
    });
  });
}
