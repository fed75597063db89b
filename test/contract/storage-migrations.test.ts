/**
 * Data migrations on the real Mongo-wire DB: documents written by the previous release, inserted raw,
 * are readable through today's MongoStorage after `init()`; an interrupted migration finishes on the
 * next start; two nodes starting at once do not trip over each other. Keys with NUL come from releases
 * that ran on FerretDB-SQLite or MongoDB (PostgreSQL's jsonb never stored one), so that migration runs on
 * FerretDB-SQLite (or MONGODB_URI); the control-character migration runs on FerretDB-SQLite and -PostgreSQL.
 */
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { MongoStorage } from '../../server/src/adapters/mongo/storage.js';
import { mongoBackends, serviceUrls, uniqueName } from '../support/services.js';

describe('MongoStorage migrations (Mongo-wire DB)', function () {
  this.timeout(60_000);
  let dbName: string;
  let raw: mongoose.Connection;
  const open: MongoStorage[] = [];

  beforeEach(async () => {
    dbName = uniqueName('migrate');
    raw = await mongoose.createConnection(serviceUrls().ferretDbSqliteUri, { dbName }).asPromise();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await raw.dropDatabase();
    await raw.close();
  });

  const storage = () => {
    const s = new MongoStorage({ uri: serviceUrls().ferretDbSqliteUri, dbName });
    open.push(s);
    return s;
  };

  /** What the previous release stored: conversation `_id` = its id, NUL-joined direct keys, `group:<id>`. */
  async function legacyData(): Promise<void> {
    const base = { orgId: 'org-a', createdBy: 'dr-lee', createdAt: 1, lastSeq: 0 };
    await raw.collection('conversations').insertMany([
      { ...base, _id: 'c-direct' as never, kind: 'direct', memberUserIds: ['dr-lee', 'dr-patel'], directKey: 'dr-lee\u0000dr-patel' },
      {
        ...base,
        _id: 't-ward' as never,
        kind: 'group',
        title: 'Ward 4B',
        memberUserIds: ['dr-lee', 'dr-patel'],
        directKey: 'group:t-ward',
        team: { title: 'Ward 4B', index: 1, head: 'a'.repeat(64), members: [{ userId: 'dr-lee', role: 'owner' }, { userId: 'dr-patel', role: 'member' }] },
      },
    ]);
    await raw.collection('conversation_seqs').insertMany([
      { _id: 'c-direct' as never, lastSeq: 7 },
      { _id: 't-ward' as never, lastSeq: 3 },
    ]);
  }

  it('moves conversations and their seqs to per-organisation keys, keeping ids, members, teams and seqs', async () => {
    await legacyData();
    const s = storage();
    await s.init();

    const direct = await s.getConversation('org-a', 'c-direct');
    assert.deepEqual(direct && { id: direct.id, members: direct.memberUserIds, lastSeq: direct.lastSeq }, { id: 'c-direct', members: ['dr-lee', 'dr-patel'], lastSeq: 7 });
    assert.equal(await s.getConversation('org-b', 'c-direct'), undefined);
    const team = await s.getTeamState('org-a', 't-ward');
    assert.deepEqual(team && { index: team.index, members: team.members }, { index: 1, members: { 'dr-lee': 'owner', 'dr-patel': 'member' } });
    assert.equal((await s.getConversation('org-a', 't-ward'))?.lastSeq, 3);
    assert.deepEqual((await s.listConversationsForUser('org-a', 'dr-patel')).map((c) => [c.id, c.lastSeq]), [['c-direct', 7], ['t-ward', 3]]);

    // The same pair's direct conversation is found under its new key, not created a second time.
    const again = await s.createConversation({ orgId: 'org-a', kind: 'direct', createdBy: 'dr-patel', memberUserIds: ['dr-lee'], now: 2 });
    assert.deepEqual([again.created, again.conversation.id], [false, 'c-direct']);
    // Appends continue the migrated sequence.
    const appended = await s.appendEnvelope({ orgId: 'org-a', conversationId: 'c-direct', senderUserId: 'dr-lee', senderDeviceId: 'lee-1', clientMessageId: 'm8', body: new Uint8Array([1]), now: 3 });
    assert.equal(appended.status === 'stored' && appended.envelope.seq, 8);

    // Nothing of the old shape is left; no stored key holds NUL.
    const convs = await raw.collection('conversations').find({}).toArray();
    assert.deepEqual(convs.map((c) => c._id).sort(), ['org-a c-direct', 'org-a t-ward']);
    assert.equal(convs.some((c) => String(c.directKey).includes('\u0000')), false);
    // Their seqs went on to seq marks (the next migration): 7 and 3, and c-direct's new 8.
    assert.equal(await raw.collection('conversation_seqs').countDocuments({}), 0);
    assert.deepEqual(await storedMarks(raw), [['c-direct', 7], ['c-direct', 8], ['t-ward', 3]]);
    assert.equal(await raw.collection('schema_migrations').countDocuments({}), 4);
  });

  it('finishes a migration interrupted between copy and delete, on two nodes starting at once', async () => {
    await legacyData();
    // The crash: the copy of c-direct was written, the legacy document not yet deleted.
    await raw.collection('conversations').insertOne({
      _id: 'org-a c-direct' as never,
      conversationId: 'c-direct',
      orgId: 'org-a',
      createdBy: 'dr-lee',
      createdAt: 1,
      lastSeq: 0,
      kind: 'direct',
      memberUserIds: ['dr-lee', 'dr-patel'],
      directKey: 'direct dr-lee dr-patel',
    });
    const [a, b] = [storage(), storage()];
    await Promise.all([a.init(), b.init()]);
    assert.deepEqual((await raw.collection('conversations').find({}).toArray()).map((c) => c._id).sort(), ['org-a c-direct', 'org-a t-ward']);
    assert.equal((await b.getConversation('org-a', 'c-direct'))?.lastSeq, 7);
    // A later start finds the migration done and reads nothing of the old shape.
    const c = storage();
    await c.init();
    assert.equal((await c.getConversation('org-a', 't-ward'))?.title, 'Ward 4B');
  });
});

/** Paths of the strings and field names in `value` that hold a control character. */
function controlCharacters(value: unknown, path = ''): string[] {
  const control = /[\x00-\x1f\x7f]/;
  if (typeof value === 'string') return control.test(value) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => controlCharacters(v, `${path}.${i}`));
  if (value !== null && typeof value === 'object' && !(value instanceof mongoose.mongo.Binary)) {
    return Object.entries(value).flatMap(([k, v]) => [...(control.test(k) ? [`${path}.${k} (name)`] : []), ...controlCharacters(v, `${path}.${k}`)]);
  }
  return [];
}

for (const backend of mongoBackends()) {
  describe(`MongoStorage migration of control characters in stored text, on ${backend.name}`, function () {
    this.timeout(60_000);
    let dbName: string;
    let raw: mongoose.Connection;
    const open: MongoStorage[] = [];
    // PostgreSQL's jsonb refuses NUL, so a database there never held one; the other control characters it takes.
    const nul = backend.name === 'FerretDB-PostgreSQL' ? '' : '\u0000';

    beforeEach(async () => {
      dbName = uniqueName('migrate');
      raw = await mongoose.createConnection(backend.uri(), { dbName }).asPromise();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
      await raw.dropDatabase();
      await raw.close();
    });

    const storage = () => {
      const s = new MongoStorage({ uri: backend.uri(), dbName });
      open.push(s);
      return s;
    };

    /** Conversations in today's key shape whose titles the previous release took with control characters. */
    async function titlesWithControlCharacters(): Promise<void> {
      const base = { orgId: 'org-a', kind: 'group', createdBy: 'dr-lee', createdAt: 1, lastSeq: 0, memberUserIds: ['dr-lee', 'dr-patel'] };
      const conversation = (id: string, extra: Record<string, unknown>) => ({ ...base, _id: `org-a ${id}` as never, conversationId: id, directKey: `group ${id}`, ...extra });
      await raw.collection('conversations').insertMany([
        conversation('g-tab', { title: `Ward\t4B${nul}` }),
        conversation('g-lines', { title: '\r\nNight shift\r\n4B\u001b[31m' }),
        conversation('g-only-control', { title: `\u0001\u007f${nul}` }),
        conversation('g-clean', { title: 'Ward 4B \u2014 discharge' }),
        conversation('t-legacy', { team: { title: `ICU${nul}\u0007team`, index: 0, head: 'a'.repeat(64), members: [{ userId: 'dr-lee', role: 'owner' }] } }),
      ]);
      // A database written before any migration ran: the earlier migration finds nothing to move.
    }

    it('replaces each control character in titles with a space, removes a title left empty, and touches nothing else', async () => {
      await titlesWithControlCharacters();
      const s = storage();
      await s.init();

      assert.equal((await s.getConversation('org-a', 'g-tab'))?.title, 'Ward 4B');
      assert.equal((await s.getConversation('org-a', 'g-lines'))?.title, 'Night shift  4B [31m');
      assert.equal((await s.getConversation('org-a', 'g-only-control'))?.title, undefined);
      assert.equal((await s.getConversation('org-a', 'g-clean'))?.title, 'Ward 4B \u2014 discharge');
      const legacy = await raw.collection('conversations').findOne({ _id: 'org-a t-legacy' as never });
      assert.equal(legacy?.team?.title, nul ? 'ICU  team' : 'ICU team');
      assert.deepEqual((await s.getConversation('org-a', 'g-tab'))?.memberUserIds, ['dr-lee', 'dr-patel']);
      assert.deepEqual((await s.getTeamState('org-a', 't-legacy'))?.members, { 'dr-lee': 'owner' });

      // Nothing stored holds a control character any more.
      for (const doc of await raw.collection('conversations').find({}).toArray()) {
        assert.deepEqual(controlCharacters(doc), [], `${String(doc._id)} still holds a control character`);
      }
      assert.deepEqual(
        (await raw.collection('schema_migrations').find({}).toArray()).map((d) => d._id).sort(),
        ['2026-12-conversation-keys-per-org', '2026-12-no-control-characters-in-text', '2026-12-seq-mark-sets', '2026-12-seq-marks'],
      );
    });

    it('two nodes starting at once migrate once; a later start does not run it again', async () => {
      await titlesWithControlCharacters();
      const [a, b] = [storage(), storage()];
      await Promise.all([a.init(), b.init()]);
      assert.equal((await b.getConversation('org-a', 'g-tab'))?.title, 'Ward 4B');
      await raw.collection('conversations').updateOne({ _id: 'org-a g-clean' as never }, { $set: { title: 'late\ttitle' } });
      const c = storage();
      await c.init();
      assert.equal((await c.getConversation('org-a', 'g-clean'))?.title, 'late\ttitle');
      assert.equal(await raw.collection('schema_migrations').countDocuments({}), 4);
    });
  });

  describe(`MongoStorage migration of lastSeq to seq marks, on ${backend.name}`, function () {
    this.timeout(60_000);
    let dbName: string;
    let raw: mongoose.Connection;
    const open: MongoStorage[] = [];

    beforeEach(async () => {
      dbName = uniqueName('migrate');
      raw = await mongoose.createConnection(backend.uri(), { dbName }).asPromise();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
      await raw.dropDatabase();
      await raw.close();
    });

    const storage = () => {
      const s = new MongoStorage({ uri: backend.uri(), dbName });
      open.push(s);
      return s;
    };

    /**
     * What the previous release stored: conversations in today's shape (the first two migrations done)
     * and their lastSeq in `conversation_seqs`, raised with $max; envelopes up to that seq.
     */
    async function previousRelease(): Promise<void> {
      const base = { orgId: 'org-a', kind: 'group', createdBy: 'dr-lee', createdAt: 1, lastSeq: 0, memberUserIds: ['dr-lee', 'dr-patel'] };
      await raw.collection('conversations').insertMany(
        ['g-busy', 'g-quiet', 'g-new'].map((id) => ({ ...base, _id: `org-a ${id}` as never, conversationId: id, directKey: `group ${id}` })),
      );
      await raw.collection('conversation_seqs').insertMany([
        { _id: 'org-a g-busy' as never, lastSeq: 41 },
        { _id: 'org-a g-quiet' as never, lastSeq: 2 },
      ]);
      const envelope = (conversationId: string, seq: number) => ({
        _id: `org-a lee-1 ${conversationId}-${seq}` as never,
        messageId: `${conversationId}-${seq}`,
        orgId: 'org-a',
        conversationId,
        seq,
        senderUserId: 'dr-lee',
        senderDeviceId: 'lee-1',
        clientMessageId: `${conversationId}-${seq}`,
        sentAt: 1,
        body: Buffer.from([1]),
      });
      await raw.collection('envelopes').insertMany([envelope('g-busy', 40), envelope('g-busy', 41), envelope('g-quiet', 1), envelope('g-quiet', 2)]);
      await raw.collection('schema_migrations').insertMany(['2026-12-conversation-keys-per-org', '2026-12-no-control-characters-in-text'].map((id) => ({ _id: id as never, appliedAt: 1 })));
    }

    const append = (s: MongoStorage, conversationId: string, clientMessageId: string) =>
      s.appendEnvelope({ orgId: 'org-a', conversationId, senderUserId: 'dr-patel', senderDeviceId: 'patel-1', clientMessageId, body: new Uint8Array([2]), now: 2 });

    it('each conversation keeps its lastSeq, and appends continue it; no seq document is left', async () => {
      await previousRelease();
      const s = storage();
      await s.init();
      assert.equal((await s.getConversation('org-a', 'g-busy'))?.lastSeq, 41);
      assert.equal((await s.getConversation('org-a', 'g-quiet'))?.lastSeq, 2);
      assert.equal((await s.getConversation('org-a', 'g-new'))?.lastSeq, 0);
      assert.deepEqual((await s.listConversationsForUser('org-a', 'dr-patel')).map((c) => [c.id, c.lastSeq]).sort(), [['g-busy', 41], ['g-new', 0], ['g-quiet', 2]]);
      assert.equal(await raw.collection('conversation_seqs').countDocuments({}), 0);
      assert.deepEqual(await storedMarks(raw), [['g-busy', 41], ['g-quiet', 2]]);

      const next = await append(s, 'g-busy', 'after-migration');
      assert.equal(next.status === 'stored' && next.envelope.seq, 42);
      assert.equal((await s.getConversation('org-a', 'g-busy'))?.lastSeq, 42);
      const first = await append(s, 'g-new', 'first');
      assert.equal(first.status === 'stored' && first.envelope.seq, 1);
      assert.deepEqual((await s.listConversationsForUser('org-a', 'dr-lee')).map((c) => [c.id, c.lastSeq]).sort(), [['g-busy', 42], ['g-new', 1], ['g-quiet', 2]]);
    });

    it('moves the seq marks of the release before seq mark sets into sets, on two nodes starting at once, and lastSeq stays', async () => {
      await previousRelease();
      // That release: conversation_seqs already moved to one mark document per mark, a few per conversation.
      await raw.collection('conversation_seqs').deleteMany({});
      await raw.collection('conversation_seq_marks').insertMany(
        [['g-busy', 40], ['g-busy', 41], ['g-quiet', 1], ['g-quiet', 2]].map(([c, seq]) => ({ _id: `org-a ${c} ${seq}` as never, orgId: 'org-a', conversationId: c, seq })),
      );
      await raw.collection('schema_migrations').insertOne({ _id: '2026-12-seq-marks' as never, appliedAt: 1 });
      const [a, b] = [storage(), storage()];
      await Promise.all([a.init(), b.init()]);
      assert.equal(await raw.collection('conversation_seq_marks').countDocuments({}), 0, 'no mark of the old shape is left');
      assert.deepEqual(await storedMarks(raw), [['g-busy', 41], ['g-quiet', 2]], 'one set of the highest marks (both nodes wrote the same set)');
      assert.deepEqual((await b.listConversationsForUser('org-a', 'dr-patel')).map((c) => [c.id, c.lastSeq]).sort(), [['g-busy', 41], ['g-new', 0], ['g-quiet', 2]]);
      const next = await append(a, 'g-quiet', 'after-sets');
      assert.equal(next.status === 'stored' && next.envelope.seq, 3);
      assert.equal((await b.getConversation('org-a', 'g-quiet'))?.lastSeq, 3);
    });

    it('a fresh database gets no legacy collection; marks an earlier release wrote after the migration are kept, with a warning naming them', async () => {
      const fresh = storage();
      await fresh.init();
      const names = (await raw.db!.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
      assert.ok(names.includes('envelopes') && names.includes('seq_mark_sets'), `today's collections are created: ${names.join(', ')}`);
      assert.deepEqual(await legacyCollections(raw), []);

      // A node of the release before seq mark sets, still running, writes a mark after the migration ran.
      await raw.collection('conversation_seq_marks').insertOne({ _id: 'org-a g-late 5' as never, orgId: 'org-a', conversationId: 'g-late', seq: 5 });
      const warnings: unknown[] = [];
      const later = new MongoStorage({ uri: backend.uri(), dbName, logger: { debug: () => {}, warn: (obj: unknown) => warnings.push(obj) } });
      open.push(later);
      await later.init();
      assert.deepEqual(await legacyCollections(raw), ['conversation_seq_marks']);
      assert.equal(await raw.collection('conversation_seq_marks').countDocuments({}), 1, 'the only copy of that mark stays');
      assert.deepEqual(warnings, [{ collection: 'conversation_seq_marks' }]);
    });

    it('finishes a migration interrupted between a mark and its delete, on two nodes starting at once', async () => {
      await previousRelease();
      // The crash: g-busy's mark written, its seq document not yet deleted.
      await raw.collection('conversation_seq_marks').insertOne({ _id: 'org-a g-busy 41' as never, orgId: 'org-a', conversationId: 'g-busy', seq: 41 });
      const [a, b] = [storage(), storage()];
      await Promise.all([a.init(), b.init()]);
      assert.equal(await raw.collection('conversation_seqs').countDocuments({}), 0);
      assert.equal(await raw.collection('conversation_seq_marks').countDocuments({}), 0, 'the mark of the previous release moved into a set');
      assert.deepEqual([...new Set((await storedMarks(raw)).map((m) => m.join()))], ['g-busy,41', 'g-quiet,2']);
      assert.equal((await b.getConversation('org-a', 'g-busy'))?.lastSeq, 41);
      assert.equal((await a.getConversation('org-a', 'g-quiet'))?.lastSeq, 2);
      assert.deepEqual(
        (await raw.collection('schema_migrations').find({}).toArray()).map((d) => d._id).sort(),
        ['2026-12-conversation-keys-per-org', '2026-12-no-control-characters-in-text', '2026-12-seq-mark-sets', '2026-12-seq-marks'],
      );
    });
  });
}

/** Every seq mark stored, as [conversation, seq], sorted: the marks of every set. */
async function storedMarks(raw: mongoose.Connection): Promise<Array<[string, number]>> {
  const sets = await raw.collection('seq_mark_sets').find({}).toArray();
  return sets.flatMap((set) => (set['conversationIds'] as string[]).map((c, i): [string, number] => [c, (set['seqs'] as number[])[i]!])).sort((x, y) => x[0].localeCompare(y[0]) || x[1] - y[1]);
}

/** The collections only earlier releases wrote that the database still has. */
async function legacyCollections(raw: mongoose.Connection): Promise<string[]> {
  const names = (await raw.db!.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
  return names.filter((n) => n === 'conversation_seqs' || n === 'conversation_seq_marks').sort();
}
