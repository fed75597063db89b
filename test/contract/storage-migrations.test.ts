/**
 * Data migrations on the real Mongo-wire DB: documents written by the previous release, inserted raw,
 * are readable through today's MongoStorage after `init()`; an interrupted migration finishes on the
 * next start; two nodes starting at once do not trip over each other.
 */
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { MongoStorage } from '../../server/src/adapters/mongo/storage.js';
import { serviceUrls, uniqueName } from '../support/services.js';

describe('MongoStorage migrations (Mongo-wire DB)', function () {
  this.timeout(60_000);
  let dbName: string;
  let raw: mongoose.Connection;
  const open: MongoStorage[] = [];

  beforeEach(async () => {
    dbName = uniqueName('migrate');
    raw = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await raw.dropDatabase();
    await raw.close();
  });

  const storage = () => {
    const s = new MongoStorage({ uri: serviceUrls().mongoUri, dbName });
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
    assert.deepEqual((await raw.collection('conversation_seqs').find({}).toArray()).map((d) => d._id).sort(), ['org-a c-direct', 'org-a t-ward']);
    assert.equal(await raw.collection('schema_migrations').countDocuments({}), 1);
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
