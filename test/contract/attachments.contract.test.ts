/**
 * AttachmentStore contract (server/src/ports/attachments.ts) over MemoryStorage and MongoStorage on
 * each of the run's Mongo-wire databases, two instances standing for two hub nodes.
 */
import assert from 'node:assert/strict';
import type { AttachmentRecord } from '@curbside/server';
import { storageImpls, type StoragePair } from '../support/storage-impls.js';

function record(over: Partial<AttachmentRecord> = {}): AttachmentRecord {
  return { orgId: 'org-a', attachmentId: 'att-1', conversationId: 'conv-1', uploaderUserId: 'dr-a', uploaderDeviceId: 'dev-a', size: 1000, partSize: 1024, createdAt: 100, ...over };
}

for (const impl of storageImpls('attachments')) {
  describe(`AttachmentStore contract: ${impl.name}`, function () {
    let h: StoragePair;
    beforeEach(async () => {
      h = await impl.open();
    });
    afterEach(() => h.cleanup());

    it('keeps a record per organisation: another organisation’s id reads as unknown', async () => {
      await h.a.createAttachment(record());
      assert.deepEqual(await h.b.getAttachment('org-a', 'att-1'), record());
      assert.equal(await h.b.getAttachment('org-b', 'att-1'), undefined);
      assert.equal(await h.b.getAttachment('org-a', 'att-2'), undefined);
    });

    it('an id is inserted once', async () => {
      await h.a.createAttachment(record());
      await assert.rejects(h.b.createAttachment(record({ size: 5 })));
      assert.equal((await h.a.getAttachment('org-a', 'att-1'))?.size, 1000);
    });

    it('finish keeps the first time; references keep the first time and the latest retention end', async () => {
      await h.a.createAttachment(record());
      await h.a.finishAttachment('org-a', 'att-1', 200);
      await h.b.finishAttachment('org-a', 'att-1', 300);
      await h.b.referenceAttachment('org-a', 'att-1', 400, 10_000);
      await h.a.referenceAttachment('org-a', 'att-1', 500, 9_000);
      await h.a.referenceAttachment('org-b', 'att-1', 500, 9_000);
      assert.deepEqual(await h.b.getAttachment('org-a', 'att-1'), record({ finishedAt: 200, referencedAt: 400, retainUntil: 10_000 }));
      await h.a.referenceAttachment('org-a', 'att-1', 600, 12_000);
      assert.equal((await h.b.getAttachment('org-a', 'att-1'))?.retainUntil, 12_000);
    });

    it('sums the bytes an organisation holds', async () => {
      await h.a.createAttachment(record({ attachmentId: 'x', size: 1000 }));
      await h.a.createAttachment(record({ attachmentId: 'y', size: 2500 }));
      await h.a.createAttachment(record({ orgId: 'org-b', attachmentId: 'z', size: 7 }));
      assert.equal(await h.b.attachmentBytes('org-a'), 3500);
      assert.equal(await h.b.attachmentBytes('org-b'), 7);
      assert.equal(await h.b.attachmentBytes('org-c'), 0);
    });

    it('answers what is due: old unreferenced uploads and referenced ones past retention', async () => {
      await h.a.createAttachment(record({ attachmentId: 'old-unref', createdAt: 100 }));
      await h.a.createAttachment(record({ attachmentId: 'new-unref', createdAt: 900 }));
      await h.a.createAttachment(record({ attachmentId: 'old-kept', createdAt: 100 }));
      await h.a.referenceAttachment('org-a', 'old-kept', 150, 5_000);
      await h.a.createAttachment(record({ attachmentId: 'expired', createdAt: 100 }));
      await h.a.referenceAttachment('org-a', 'expired', 150, 1_000);
      const due = await h.b.expiredAttachments({ now: 2_000, unreferencedBefore: 500, limit: 10 });
      assert.deepEqual(due.map((r) => r.attachmentId).sort(), ['expired', 'old-unref']);
      assert.equal((await h.b.expiredAttachments({ now: 2_000, unreferencedBefore: 500, limit: 1 })).length, 1);
      await h.b.deleteAttachment('org-a', 'expired');
      await h.b.deleteAttachment('org-a', 'expired');
      assert.equal(await h.a.getAttachment('org-a', 'expired'), undefined);
      assert.deepEqual((await h.b.expiredAttachments({ now: 2_000, unreferencedBefore: 500, limit: 10 })).map((r) => r.attachmentId), ['old-unref']);
    });
  });
}
