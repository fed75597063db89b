/**
 * The audit log: what the hub records for handshakes and events (ids only, never content), the hash
 * chain per organisation, concurrent appends from two nodes on the Mongo-wire DB (unique (chain,
 * index) + retry on 11000), and tampering detected in the real database by `npm run audit:verify`.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import type { Conversation, SendResult } from '@curbside/shared';
import {
  AUDIT_EVENT_FIELDS,
  ChainedAuditLog,
  MemoryAuditBackend,
  MongoAuditLog,
  chainName,
  MongoAuditBackend,
  UNAUTHENTICATED_CHAIN,
  hashAuditEntry,
  verifyAuditLog,
  type AuditEntry,
  type AuditLog,
} from '@curbside/server';
import { sharedBackend } from '../support/hub.js';
import { serviceUrls, uniqueName } from '../support/services.js';
import { testDeviceKeys } from '../support/keys.js';
import { connectRaw, errorCode, handshakeOutcome, rawHubs } from './support.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY_KEYS = new Set<string>([...AUDIT_EVENT_FIELDS, 'id', 'chain', 'index', 'prevHash', 'hash']);

async function allEntries(log: Pick<AuditLog, 'entries'>, chain: string): Promise<AuditEntry[]> {
  return log.entries(chain, -1, 100_000);
}

type AuditCollection = mongoose.mongo.Collection;
type StoredEntry = Omit<AuditEntry, 'chain'>;

/** The entries of a stored block: one JSON text (an array of subdocuments in the first release with blocks). */
function blockEntries(block: mongoose.mongo.Document): StoredEntry[] {
  return typeof block.entries === 'string' ? (JSON.parse(block.entries) as StoredEntry[]) : (block.entries as StoredEntry[]);
}

/**
 * Edit the stored entries of a chain as someone with database access would: each stored document is a
 * block of consecutive entries (`entries`, one JSON text); `edit` gets them all and returns what should
 * be stored instead (entries left out are deleted; a block left empty is removed).
 */
async function tamper(col: AuditCollection, chain: string, edit: (entries: StoredEntry[]) => StoredEntry[]): Promise<void> {
  for (const block of await col.find({ chain }).toArray()) {
    const entries = edit(blockEntries(block));
    if (entries.length === 0) await col.deleteOne({ _id: block._id });
    else await col.updateOne({ _id: block._id }, { $set: { entries: JSON.stringify(entries) } });
  }
}

/** The hub names its chains per node (`chainName`): the one chain of this organisation (or none). */
async function chainOf(log: Pick<AuditLog, 'chains'>, org: string): Promise<string> {
  const found = (await log.chains()).filter((c) => c === org || c.startsWith(`${org} @`));
  expect(found, `one chain for ${org}`).to.have.length(1);
  return found[0]!;
}

function runVerify(dbName: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('npm', ['run', '-s', 'audit:verify', '--', ...args], {
    cwd: repoRoot,
    env: { ...process.env, MONGODB_URI: serviceUrls().mongoUri, MONGODB_DB: dbName },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('audit log', function () {
  describe('hash chain (memory backend)', function () {
    it('chains per organisation, verifies, and detects a changed, a removed and a cut-off entry', async () => {
      const backend = new MemoryAuditBackend();
      const log = new ChainedAuditLog(backend);
      for (let i = 0; i < 10; i++) log.record({ at: 1000 + i, action: 'envelope:send', outcome: 'ok', orgId: i % 2 ? 'org-a' : 'org-b', userId: 'u', messageId: `m${i}`, seq: i + 1 });
      log.record({ at: 2000, action: 'handshake', outcome: 'AUTH_INVALID', ip: '10.0.0.9' });
      await log.flush();
      expect(await log.chains()).to.deep.equal([UNAUTHENTICATED_CHAIN, 'org-a', 'org-b'].sort());
      const a = await allEntries(log, 'org-a');
      expect(a.map((e) => e.index)).to.deep.equal([0, 1, 2, 3, 4]);
      expect(a[1]!.prevHash).to.equal(a[0]!.hash);
      expect(a[0]!.hash).to.equal(hashAuditEntry(a[0]!));
      expect((await verifyAuditLog(log)).ok).to.equal(true);

      backend.store.get('org-a')![2]!.userId = 'someone-else';
      let v = await verifyAuditLog(log);
      expect(v.ok).to.equal(false);
      expect(v.chains.find((c) => c.chain === 'org-a')!.problems.join('\n')).to.match(/entry 2: content does not match its hash/);

      backend.store.get('org-b')!.splice(1, 1);
      backend.store.get(UNAUTHENTICATED_CHAIN)!.pop();
      v = await verifyAuditLog(log);
      expect(v.chains.find((c) => c.chain === 'org-b')!.problems.join('\n')).to.match(/entries 1\.\.1 are missing/);
      expect(v.chains.find((c) => c.chain === UNAUTHENTICATED_CHAIN)!.problems.join('\n')).to.match(/tail cut off/);
    });
  });

  describe('the hub on real Redis + the Mongo-wire DB', function () {
    const { harness, open } = rawHubs();

    it('records who, what, which ids, when and from where for handshakes and every event, never content', async () => {
      const shared = sharedBackend();
      const t = await harness.start('real', shared);
      const lee = await connectRaw(t.url, t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' }));
      const patel = await connectRaw(t.url, t.idp.mint({ userId: 'dr-patel', deviceId: 'patel-phone' }));
      const mallory = await connectRaw(t.url, t.idp.mint({ userId: 'dr-mallory', deviceId: 'mal-phone' }));
      open.push(lee, patel, mallory);
      const canary = new TextEncoder().encode('CANARY-PHI-diagnosis-Q8Z');
      const keys = testDeviceKeys();
      expect(errorCode(await patel.call('keys:publish', { identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(3) }))).to.equal('ok');
      const conv = await lee.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' });
      const conversationId = conv.ok ? conv.data.id : '';
      const sent = await lee.call<SendResult>('envelope:send', { conversationId, clientMessageId: 'cm-1', body: canary });
      expect(sent.ok).to.equal(true);
      const { messageId, seq } = sent.ok ? sent.data : { messageId: '', seq: 0 };
      expect(errorCode(await patel.call('sync:fetch', { cursors: [] }))).to.equal('ok');
      // Accepted acks and typing signals read nothing and are not audited; refused ones are.
      expect(errorCode(await patel.call('sync:ack', { cursors: [{ conversationId, afterSeq: seq }] }))).to.equal('ok');
      expect(errorCode(await patel.call('typing', { conversationId, typing: true }))).to.equal('ok');
      expect(errorCode(await mallory.call('typing', { conversationId, typing: true }))).to.equal('FORBIDDEN');
      expect(errorCode(await mallory.call('sync:ack', { cursors: 'all' }))).to.equal('INVALID_PAYLOAD');
      expect(errorCode(await mallory.call('envelope:send', { conversationId, clientMessageId: 'x', body: canary }))).to.equal('FORBIDDEN');
      expect(errorCode(await mallory.call('keys:claim', { userIds: ['dr-patel'] }))).to.equal('ok');
      expect(errorCode(await mallory.call('envelope:send', { conversationId: 'c', clientMessageId: 'y', body: 'CANARY-PHI-as-text' }))).to.equal('INVALID_PAYLOAD');
      expect(await handshakeOutcome(t.url, 'not.a.jwt')).to.equal('AUTH_INVALID');
      await t.hub.audit.flush();

      const org = await allEntries(t.hub.audit, await chainOf(t.hub.audit, 'org-a'));
      const find = (action: string, userId: string, outcome = 'ok') => org.find((e) => e.action === action && e.userId === userId && e.outcome === outcome);
      expect(find('handshake', 'dr-lee')).to.include({ orgId: 'org-a', deviceId: 'lee-phone' });
      expect(find('handshake', 'dr-lee')!.ip).to.match(/127\.0\.0\.1$/);
      expect(find('conversation:create', 'dr-lee')).to.deep.include({ conversationId, targetUserIds: ['dr-patel'] });
      expect(find('envelope:send', 'dr-lee')).to.include({ conversationId, messageId, seq, clientMessageId: 'cm-1', deviceId: 'lee-phone' });
      expect(find('sync:fetch', 'dr-patel')!.messageIds).to.deep.equal([messageId]);
      expect(find('envelope:send', 'dr-mallory', 'FORBIDDEN')).to.include({ conversationId, clientMessageId: 'x' });
      expect(find('keys:claim', 'dr-mallory')!.targetUserIds).to.deep.equal(['dr-patel']);
      const invalid = find('envelope:send', 'dr-mallory', 'INVALID_PAYLOAD')!;
      expect(invalid.conversationId, 'nothing is taken from a payload that failed validation').to.equal(undefined);
      expect(find('keys:publish', 'dr-patel')).to.not.equal(undefined);
      expect(org.filter((e) => e.action === 'sync:ack' || e.action === 'typing').map((e) => [e.action, e.userId, e.outcome])).to.deep.equal([
        ['typing', 'dr-mallory', 'FORBIDDEN'],
        ['sync:ack', 'dr-mallory', 'INVALID_PAYLOAD'],
      ]);
      expect(org.every((e) => typeof e.at === 'number' && Math.abs(e.at - Date.now()) < 60_000)).to.equal(true);

      const unauth = await allEntries(t.hub.audit, await chainOf(t.hub.audit, UNAUTHENTICATED_CHAIN));
      expect(unauth.map((e) => [e.action, e.outcome])).to.deep.equal([['handshake', 'AUTH_INVALID']]);

      // Ids only: every field is a declared one, every value a string, number or list of strings.
      const all = [...org, ...unauth];
      for (const e of all) {
        for (const [k, v] of Object.entries(e)) {
          expect(ENTRY_KEYS.has(k), k).to.equal(true);
          expect(typeof v === 'string' || typeof v === 'number' || (Array.isArray(v) && v.every((x) => typeof x === 'string')), k).to.equal(true);
        }
      }
      const dump = JSON.stringify(all);
      expect(dump).to.not.include('CANARY');
      expect(dump).to.not.include(Buffer.from(canary).toString('base64'));
      expect(dump).to.not.include(Buffer.from(keys.identityKey).toString('base64'));
      expect((await verifyAuditLog(t.hub.audit)).ok).to.equal(true);
    });

    it('npm run audit:verify passes an intact database and detects a changed, re-hashed, deleted or cut-off entry', async function () {
      this.timeout(120_000);
      const shared = sharedBackend();
      const t = await harness.start('real', shared);
      for (const org of ['org-a', 'org-b']) {
        const c = await connectRaw(t.url, t.idp.mint({ orgId: org, userId: 'dr-lee', deviceId: 'lee-phone' }));
        open.push(c);
        for (let i = 0; i < 6; i++) expect(errorCode(await c.call('conversation:list', {}))).to.equal('ok');
      }
      await t.hub.audit.flush();

      const intact = runVerify(shared.dbName);
      expect(intact.status, intact.out).to.equal(0);
      expect(intact.out).to.match(/AUDIT LOG INTACT: 2 chain\(s\), 14 entries verified/);
      const headA = /ok\s+org-a @[^:]+: 7 entries, head ([0-9a-f]{64})/.exec(intact.out)?.[1];
      expect(headA, intact.out).to.be.a('string');
      const [chainA, chainB] = [await chainOf(t.hub.audit, 'org-a'), await chainOf(t.hub.audit, 'org-b')];

      const conn = await mongoose.createConnection(serviceUrls().mongoUri, { dbName: shared.dbName }).asPromise();
      const col = conn.db!.collection('audit_log');
      const backend = new MongoAuditBackend({ uri: serviceUrls().mongoUri, dbName: shared.dbName });
      const problems = async (chain: string) => (await verifyAuditLog(backend)).chains.find((c) => c.chain === chain)!.problems.join('\n');
      try {
        expect((await col.find({ chain: chainA }).toArray()).every((d) => typeof d.entries === 'string'), 'stored as blocks of entries, each one JSON text').to.equal(true);
        // 1. Someone edits who did it.
        await tamper(col, chainA, (es) => es.map((e) => (e.index === 2 ? { ...e, userId: 'dr-nobody' } : e)));
        const tampered = runVerify(shared.dbName);
        expect(tampered.status, tampered.out).to.equal(1);
        expect(tampered.out).to.match(/AUDIT LOG TAMPERED: 1 of 2 chain\(s\)/);
        expect(tampered.out).to.match(/TAMPERED\s+org-a @[\s\S]*entry 2: content does not match its hash/);

        // 2. ... and recomputes that entry's hash: the next entry no longer points at it.
        await tamper(col, chainA, (es) => es.map((e) => (e.index === 2 ? { ...e, hash: hashAuditEntry({ ...e, chain: chainA }) } : e)));
        expect(await problems(chainA)).to.match(/entry 3: prevHash does not match/).and.not.match(/entry 2: content/);

        // 3. An entry deleted in the middle, 4. the last ones cut off.
        await tamper(col, chainB, (es) => es.filter((e) => e.index !== 3));
        expect(await problems(chainB)).to.match(/entries 3\.\.3 are missing/);
        await tamper(col, chainB, (es) => es.filter((e) => e.index < 5));
        expect(await problems(chainB)).to.match(/tail cut off/);

        // 5. A whole-chain rewrite is caught against a head hash kept elsewhere.
        const rewritten = runVerify(shared.dbName, '--expect', `${chainA}=${'f'.repeat(64)}`);
        expect(rewritten.status).to.equal(1);
        expect(rewritten.out).to.match(/is not the expected f{64}/);
      } finally {
        await backend.close();
        await conn.close();
      }
    });

    it('stores a batch as one block of chained entries, continues a chain written by earlier releases (one-entry documents, then a block of subdocuments), and pages through all of them', async () => {
      const dbName = uniqueName('audit');
      const conn = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
      const log = new ChainedAuditLog(new MongoAuditBackend({ uri: serviceUrls().mongoUri, dbName }), { batchSize: 4 });
      try {
        await log.init();
        const chain = 'org-old';
        let prevHash = '0'.repeat(64);
        const chained = (index: number) => {
          const base = { id: `old-${index}`, chain, index, prevHash, at: 1_700_000_000_000 + index, action: 'envelope:send', outcome: 'ok', orgId: chain, userId: 'dr-old' };
          const hash = hashAuditEntry(base);
          prevHash = hash;
          return { ...base, hash };
        };
        // Releases before blocks: one document per entry, fields at the top.
        for (let index = 0; index < 3; index++) {
          const { id, ...rest } = chained(index);
          await conn.db!.collection('audit_log').insertOne({ _id: id as never, ...rest });
        }
        // The first release with blocks: entries as an array of subdocuments.
        const arrayBlock = [chained(3), chained(4)].map(({ chain: _chain, ...e }) => e);
        await conn.db!.collection('audit_log').insertOne({ _id: 'old-3' as never, chain, index: 3, lastIndex: 4, lastHash: arrayBlock[1]!.hash, entries: arrayBlock });
        for (let i = 0; i < 10; i++) log.record({ at: Date.now(), action: 'conversation:list', outcome: 'ok', orgId: chain, userId: `dr-${i}` });
        await log.flush();

        const docs = await conn.db!.collection('audit_log').find({ chain }).sort({ index: 1 }).toArray();
        const shape = (d: mongoose.mongo.Document) => (typeof d.entries === 'string' ? `text of ${blockEntries(d).length}` : Array.isArray(d.entries) ? `array of ${d.entries.length}` : 'one');
        expect(docs.map((d) => [d.index, shape(d)])).to.deep.equal([
          [0, 'one'],
          [1, 'one'],
          [2, 'one'],
          [3, 'array of 2'],
          [5, 'text of 4'],
          [9, 'text of 4'],
          [13, 'text of 2'],
        ]);
        const all = await allEntries(log, chain);
        expect(all.map((e) => e.index)).to.deep.equal(Array.from({ length: 15 }, (_, i) => i));
        expect(all[3]!.prevHash, 'the array block goes on from the last one-entry document').to.equal(all[2]!.hash);
        expect(all[5]!.prevHash, 'the first new block goes on from the array block').to.equal(all[4]!.hash);
        expect(all.slice(5).map((e) => e.userId)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `dr-${i}`));
        for (const e of all) expect(Object.keys(e).every((k) => ENTRY_KEYS.has(k)), JSON.stringify(e)).to.equal(true);
        // Pages that start inside a block, end inside one, and lie inside one.
        expect((await log.entries(chain, 3, 3)).map((e) => e.index)).to.deep.equal([4, 5, 6]);
        expect((await log.entries(chain, 1, 2)).map((e) => e.index)).to.deep.equal([2, 3]);
        expect((await log.entries(chain, 6, 2)).map((e) => e.index)).to.deep.equal([7, 8]);
        const v = await verifyAuditLog(log);
        expect(v.ok, JSON.stringify(v)).to.equal(true);
        expect(v.chains.find((c) => c.chain === chain)?.entries).to.equal(15);
        // A block moved to another chain fails there (the chain is hashed into each entry).
        await conn.db!.collection('audit_log').updateOne({ chain, index: 9 }, { $set: { chain: 'org-other' } });
        const moved = await verifyAuditLog(log);
        expect(moved.chains.find((c) => c.chain === 'org-other')?.problems.join('\n')).to.match(/content does not match its hash/);
        expect(moved.chains.find((c) => c.chain === chain)?.problems.join('\n')).to.match(/entries 9\.\.12 are missing/);
        // A block whose text is no longer a list of entries reads as none: they are reported missing.
        await conn.db!.collection('audit_log').updateOne({ chain: 'org-other', index: 9 }, { $set: { chain } });
        await conn.db!.collection('audit_log').updateOne({ chain, index: 5 }, { $set: { entries: '{"garbled": true' } });
        const garbled = await verifyAuditLog(log);
        expect(garbled.chains.find((c) => c.chain === chain)?.problems.join('\n')).to.match(/entries 5\.\.8 are missing/);
      } finally {
        await log.close();
        await conn.dropDatabase();
        await conn.close();
      }
    });

    it('two hub nodes appending to one organisation’s chain at once keep it whole (unique (chain, index), retry on 11000)', async () => {
      const dbName = uniqueName('audit');
      let conflicts = 0;
      const node = () => {
        const backend = new MongoAuditBackend({ uri: serviceUrls().mongoUri, dbName });
        const insert = backend.insert.bind(backend);
        backend.insert = async (chain, entries) => {
          const r = await insert(chain, entries);
          if (r.conflict) conflicts++;
          return r;
        };
        return new ChainedAuditLog(backend, { batchSize: 25 });
      };
      const logs = [node(), node()];
      await Promise.all(logs.map((l) => l.init()));
      try {
        for (let round = 0; round < 5; round++) {
          for (let i = 0; i < 40; i++) for (const [n, l] of logs.entries()) l.record({ at: Date.now(), action: 'envelope:send', outcome: 'ok', orgId: 'org-x', userId: `node${n}`, seq: round * 40 + i });
          await new Promise((r) => setTimeout(r, 5));
        }
        await Promise.all(logs.map((l) => l.flush()));
        const entries = await allEntries(logs[0]!, 'org-x');
        expect(entries.map((e) => e.index)).to.deep.equal(Array.from({ length: 400 }, (_, i) => i));
        expect(entries.filter((e) => e.userId === 'node0')).to.have.length(200);
        const v = await verifyAuditLog(logs[1]!);
        expect(v.ok, JSON.stringify(v)).to.equal(true);
        expect(conflicts, 'the nodes did collide on indexes (11000) and recovered').to.be.greaterThan(0);
      } finally {
        await Promise.all(logs.map((l) => l.close()));
        const c = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
        await c.dropDatabase();
        await c.close();
      }
    });

    it('hub nodes write a chain each per organisation (their node id), so they never contend for an index', async () => {
      const dbName = uniqueName('audit');
      let conflicts = 0;
      const node = (writer: string) => {
        const log = new MongoAuditLog({ uri: serviceUrls().mongoUri, dbName, writer, lingerMs: 0 });
        const backend = (log as unknown as { backend: MongoAuditBackend }).backend;
        const insert = backend.insert.bind(backend);
        backend.insert = async (chain, entries) => {
          const r = await insert(chain, entries);
          if (r.conflict) conflicts++;
          return r;
        };
        return log;
      };
      const logs = [node('hub-1'), node('hub 2')];
      await Promise.all(logs.map((l) => l.init()));
      try {
        for (let i = 0; i < 60; i++) for (const [n, l] of logs.entries()) l.record({ at: Date.now(), action: 'envelope:send', outcome: 'ok', orgId: 'org-x', userId: `node${n}`, seq: i });
        logs[1]!.record({ at: Date.now(), action: 'handshake', outcome: 'AUTH_INVALID' });
        await Promise.all(logs.map((l) => l.flush()));
        expect(await logs[0]!.chains()).to.deep.equal([chainName(undefined, 'hub 2'), chainName('org-x', 'hub 2'), chainName('org-x', 'hub-1')].sort());
        expect(chainName('org-x', 'hub 2')).to.equal('org-x @hub-2');
        for (const [n, w] of ['hub-1', 'hub 2'].entries()) {
          const entries = await allEntries(logs[0]!, chainName('org-x', w));
          expect(entries.map((e) => e.index)).to.deep.equal(Array.from({ length: 60 }, (_, i) => i));
          expect(entries.every((e) => e.userId === `node${n}`)).to.equal(true);
        }
        expect(conflicts).to.equal(0);
        expect((await verifyAuditLog(logs[1]!)).ok).to.equal(true);
      } finally {
        await Promise.all(logs.map((l) => l.close()));
        const c = await mongoose.createConnection(serviceUrls().mongoUri, { dbName }).asPromise();
        await c.dropDatabase();
        await c.close();
      }
    });
  });
});
