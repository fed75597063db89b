/**
 * Encrypted attachments (issue #21) end to end on real Redis and FerretDB: the SDK encrypts and
 * uploads, the hub stores ciphertext in GridFS, the recipient downloads, checks and decrypts. The
 * canary image never appears in any collection, GridFS chunk, Redis key or log; tampering in the
 * database is caught as ATTACHMENT_TAMPERED; non-members, other organisations and bad requests are
 * refused with typed errors and change nothing.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { Redis } from 'ioredis';
import { AttachmentPath, attachmentPath, type AttachmentDescriptor } from '@curbside/shared';
import type { ChatMessage, AttachmentProgress } from '@curbside/client-sdk';
import { HubHarness, codeOf, eventually, sharedBackend, type TestHub } from '../support/hub.js';
import { expectNotStored } from '../support/canary.js';
import { withDb } from '../support/db.js';
import { serviceUrls } from '../support/services.js';
import { defaultSecurityConfig } from '@curbside/server';

const MARKER = 'CANARY-attach-7c41e2: GPS 51.5007N 0.1246W, patient MRN 00451234';

/** A fake JPEG: SOI, an APP1 segment holding the marker, then 300 KB of scan data. */
function canaryImage(): Uint8Array {
  const marker = Buffer.from(MARKER);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, marker.length + 2]), marker]);
  return new Uint8Array(Buffer.concat([Buffer.from([0xff, 0xd8]), app1, randomBytes(300_000), Buffer.from([0xff, 0xd9])]));
}


describe('encrypted attachments through the hub (Redis + FerretDB)', function () {
  this.timeout(60_000);
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  async function pair(t: TestHub) {
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const got: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    return { lee, patel, got, conv };
  }

  it('a canary image goes through encrypted: the recipient gets the exact bytes, and its plaintext is in no collection, GridFS chunk, Redis key or log', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const { lee, patel, got, conv } = await pair(t);
    const image = canaryImage();
    const up: AttachmentProgress[] = [];
    const thumb = canaryImage().subarray(0, 2000);
    const { attachment } = await lee.attachments.send(conv.id, image, {
      caption: 'Rash, forearm, day 3',
      name: 'rash.jpg',
      mediaType: 'image/jpeg',
      thumbnail: { bytes: thumb, mediaType: 'image/jpeg', width: 64, height: 48 },
      removedMetadata: ['EXIF GPS position', 'EXIF camera serial number'],
      // The transport, byte for byte: this fake JPEG (random scan data) is not one de-identification can parse.
      deidentify: false,
      onProgress: (p) => up.push(p),
    });
    await eventually(() => got.length === 1, 'message delivered');
    const message = got[0]!;
    expect(message.text).to.equal('Rash, forearm, day 3');
    expect(message.attachment).to.deep.equal(attachment);
    expect(message.attachment).to.include({ name: 'rash.jpg', mediaType: 'image/jpeg', size: image.length });
    expect(message.attachment!.removedMetadata).to.deep.equal(['EXIF GPS position', 'EXIF camera serial number']);
    expect(Buffer.from(patel.attachments.thumbnail(message.attachment!)!.bytes).equals(Buffer.from(thumb))).to.equal(true);
    expect(up.at(-1)).to.deep.equal({ phase: 'upload', bytes: attachment.cipherSize, total: attachment.cipherSize });

    const down: AttachmentProgress[] = [];
    const bytes = await patel.attachments.download(message.attachment!, { onProgress: (p) => down.push(p) }).bytes();
    expect(Buffer.from(bytes).equals(Buffer.from(image)), 'exact bytes').to.equal(true);
    expect(down.at(-1)).to.deep.equal({ phase: 'download', bytes: image.length, total: image.length });
    // The sender's other reads work too (its own device is a member's device).
    expect(Buffer.from(await lee.attachments.download(attachment).bytes()).equals(Buffer.from(image))).to.equal(true);

    const slice = (at: number) => Buffer.from(image.subarray(at, at + 48)).toString('latin1');
    const needles = [MARKER, 'CANARY-attach-7c41e2', Buffer.from(MARKER).toString('base64'), Buffer.from(MARKER).toString('hex'), slice(1000), slice(150_000), slice(image.length - 60)];
    const scanned = await expectNotStored(shared.dbName, needles);
    expect(scanned.collections).to.include.members(['attachments', 'attachment_parts.files', 'attachment_parts.chunks', 'envelopes']);
    const chunks = await withDb(shared.dbName, (db) => db.collection('attachment_parts.chunks').countDocuments({}));
    expect(chunks, 'the ciphertext is in GridFS chunks').to.be.greaterThan(1);

    const redis = new Redis(serviceUrls().redisUrl);
    try {
      let cursor = '0';
      let keys = 0;
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${shared.keyPrefix}*`, 'COUNT', 500);
        cursor = next;
        for (const key of batch) {
          keys++;
          expect(key).to.not.include('CANARY');
          const type = await redis.type(key);
          const dump = type === 'string' ? await redis.getBuffer(key) : type === 'hash' ? Buffer.from(JSON.stringify(await redis.hgetall(key))) : type === 'zset' ? Buffer.from(JSON.stringify(await redis.zrange(key, 0, -1))) : Buffer.alloc(0);
          expect(dump?.includes(Buffer.from('CANARY-attach')), `redis ${key}`).to.equal(false);
        }
      } while (cursor !== '0');
      expect(keys, 'Redis was in use').to.be.greaterThan(0);
    } finally {
      redis.disconnect();
    }
    const logs = t.logs.text();
    expect(logs).to.include('attachment');
    expect(logs).to.not.include('CANARY-attach');
    expect(logs).to.not.include(Buffer.from(MARKER).toString('base64'));
  });

  it('works in a care team: every member downloads; someone outside it is refused NOT_FOUND', async () => {
    const t = await harness.start('real');
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const ortiz = t.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' });
    const got: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    await Promise.all([lee.connect(), patel.connect(), ortiz.connect()]);
    const { teamId } = await lee.teams.create('Ward 4B', [{ userId: 'dr-patel' }]);
    const file = randomBytes(200_000);
    const { attachment } = await lee.attachments.send(teamId, new Blob([file], { type: 'application/pdf' }), { caption: 'ECG strip' });
    expect(attachment.mediaType).to.equal('application/pdf');
    await eventually(() => got.some((m) => m.attachment !== undefined), 'team message with attachment');
    expect(Buffer.from(await patel.attachments.download(got.find((m) => m.attachment)!.attachment!).bytes()).equals(file)).to.equal(true);
    expect(await codeOf(ortiz.attachments.download(attachment).bytes()), 'not a member').to.equal('NOT_FOUND');
    // The node counts the ciphertext bytes it stored and served.
    const counted = async (direction: string) => ((await t.hub.metrics.attachmentBytes.get()).values.find((v) => v.labels.direction === direction)?.value ?? 0);
    expect(await counted('upload')).to.equal(attachment.cipherSize);
    expect(await counted('download')).to.equal(attachment.cipherSize);
  });

  it('a non-member, another organisation and an unknown id all get NOT_FOUND; nothing changes', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const { lee, conv } = await pair(t);
    const stranger = t.client({ userId: 'dr-stranger', deviceId: 'stranger-phone' });
    // Same user and device ids, another organisation.
    const otherOrg = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop', orgId: 'org-b' });
    await Promise.all([stranger.connect(), otherOrg.connect()]);
    const { attachment } = await lee.attachments.send(conv.id, randomBytes(5000));
    const before = await withDb(shared.dbName, async (db) => [await db.collection('attachments').find({}).toArray(), await db.collection('attachment_parts.files').countDocuments({})]);
    expect(await codeOf(stranger.attachments.download(attachment).bytes())).to.equal('NOT_FOUND');
    expect(await codeOf(otherOrg.attachments.download(attachment).bytes())).to.equal('NOT_FOUND');
    expect(await codeOf(stranger.attachments.download({ ...attachment, id: 'att_nope' }).bytes())).to.equal('NOT_FOUND');
    // Nor may they upload into it, finish it, or read its status.
    const token = await t.idp.mint({ userId: 'dr-stranger', deviceId: 'stranger-phone' });
    for (const [method, path] of [
      ['GET', attachmentPath(AttachmentPath.STATUS, attachment.id)],
      ['POST', attachmentPath(AttachmentPath.FINISH, attachment.id)],
      ['PUT', attachmentPath(AttachmentPath.PART, attachment.id, 0)],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, ...(method === 'PUT' ? { body: new Uint8Array(10) } : {}) });
      expect(res.status, `${method} ${path}`).to.equal(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('NOT_FOUND');
    }
    // And a stranger cannot create an upload in the conversation.
    const created = await fetch(`${t.url}${AttachmentPath.CREATE}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ conversationId: conv.id, size: 5000, partSize: 4096 }) });
    expect(((await created.json()) as { error: { code: string } }).error.code).to.equal('FORBIDDEN');
    const after = await withDb(shared.dbName, async (db) => [await db.collection('attachments').find({}).toArray(), await db.collection('attachment_parts.files').countDocuments({})]);
    expect(after).to.deep.equal(before);
  });

  it('too large and over quota are refused before any byte is stored', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared, (c) => {
      c.attachments = { maxBytes: 100_000, orgQuotaBytes: 150_000, unreferencedMs: 3600_000 };
    });
    const { lee, conv } = await pair(t);
    expect(await codeOf(lee.attachments.send(conv.id, randomBytes(120_000)))).to.equal('ATTACHMENT_TOO_LARGE');
    await lee.attachments.send(conv.id, randomBytes(90_000));
    const err = await lee.attachments.send(conv.id, randomBytes(90_000)).catch((e: { code: string; details: Record<string, unknown> }) => e);
    expect(err).to.include({ code: 'QUOTA_EXCEEDED' });
    expect((err as { details: Record<string, unknown> }).details).to.include({ quotaBytes: 150_000 });
    await withDb(shared.dbName, async (db) => {
      expect(await db.collection('attachments').countDocuments({}), 'only the upload that fitted').to.equal(1);
      expect(await db.collection('attachment_parts.files').countDocuments({})).to.equal(1);
    });
  });

  it('a byte flipped in a stored GridFS chunk, two chunks swapped, and a truncated file are each ATTACHMENT_TAMPERED', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const { lee, patel, conv } = await pair(t);
    const sendOne = async () => (await lee.attachments.send(conv.id, randomBytes(800_000))).attachment;
    const flipped = await sendOne();
    const swapped = await sendOne();
    const truncated = await sendOne();
    await withDb(shared.dbName, async (db) => {
      const files = db.collection<{ _id: unknown; metadata: { blob: string; index: number } }>('attachment_parts.files');
      const chunks = db.collection<{ files_id: unknown; n: number; data: mongoose.mongo.Binary }>('attachment_parts.chunks');
      const part0 = async (a: AttachmentDescriptor) => (await files.findOne({ 'metadata.blob': a.id, 'metadata.index': 0 }))!._id;

      const f = await chunks.findOne({ files_id: await part0(flipped), n: 1 });
      const data = Buffer.from(f!.data.buffer);
      data[1234] = data[1234]! ^ 0x01;
      await chunks.updateOne({ files_id: f!.files_id, n: 1 }, { $set: { data: new mongoose.mongo.Binary(data) } });

      const s0 = await chunks.findOne({ files_id: await part0(swapped), n: 0 });
      const s1 = await chunks.findOne({ files_id: await part0(swapped), n: 1 });
      await chunks.updateOne({ files_id: s0!.files_id, n: 0 }, { $set: { data: s1!.data } });
      await chunks.updateOne({ files_id: s1!.files_id, n: 1 }, { $set: { data: s0!.data } });

      // The last part goes, and the record is made to match: the hub serves a clean, shorter stream.
      const last = await files.find({ 'metadata.blob': truncated.id }).sort({ 'metadata.index': -1 }).limit(1).next();
      await chunks.deleteMany({ files_id: last!._id });
      await files.deleteOne({ _id: last!._id });
      const kept = truncated.cipherSize - (truncated.cipherSize % (16 * (65536 + 17)) || 16 * (65536 + 17));
      await db.collection('attachments').updateOne({ attachmentId: truncated.id }, { $set: { size: kept } });
    });
    for (const [what, a] of [
      ['flipped byte', flipped],
      ['swapped chunks', swapped],
      ['truncated', truncated],
    ] as const) {
      const seen: number[] = [];
      const error = await (async () => {
        for await (const chunk of patel.attachments.download(a)) seen.push(chunk.length);
      })().catch((e: { code?: string }) => e);
      expect((error as { code?: string } | undefined)?.code, what).to.equal('ATTACHMENT_TAMPERED');
      expect(seen.reduce((n, c) => n + c, 0), `${what}: never the whole file`).to.be.lessThan(a.size);
    }
  });

  it('a send may only name a finished upload of the same device in the same conversation; otherwise nothing is stored', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared);
    const { lee, patel, conv } = await pair(t);
    const { attachment } = await lee.attachments.send(conv.id, randomBytes(3000));
    const other = await patel.createConversation({ kind: 'group', memberUserIds: ['dr-lee'] });
    const count = async () => withDb(shared.dbName, (db) => db.collection('envelopes').countDocuments({ kind: { $ne: 'receipt' } }));
    const before = await count();
    // Someone else's upload, and the same upload in another conversation.
    expect(await codeOf(patel.sendEnvelope(conv.id, { body: new Uint8Array(40), attachmentIds: [attachment.id] }))).to.equal('NOT_FOUND');
    expect(await codeOf(lee.sendEnvelope(other.id, { body: new Uint8Array(40), attachmentIds: [attachment.id] }))).to.equal('NOT_FOUND');
    // An upload not finished yet.
    const token = await t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const res = await fetch(`${t.url}${AttachmentPath.CREATE}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ conversationId: conv.id, size: 5000, partSize: 4096 }) });
    const { attachmentId } = (await res.json()) as { attachmentId: string };
    expect(await codeOf(lee.sendEnvelope(conv.id, { body: new Uint8Array(40), attachmentIds: [attachmentId] }))).to.equal('UPLOAD_INCOMPLETE');
    expect(await count()).to.equal(before);
  });

  it('malformed requests get typed errors', async () => {
    const t = await harness.start('real');
    const { conv } = await pair(t);
    const token = await t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const call = async (method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}, auth = true) => {
      const res = await fetch(`${t.url}${path}`, { method, ...init, headers: { ...(auth ? { authorization: `Bearer ${token}` } : {}), ...init.headers } });
      return { status: res.status, body: (await res.json()) as { error?: { code: string }; attachmentId?: string } };
    };
    const json = (v: unknown) => ({ body: JSON.stringify(v), headers: { 'content-type': 'application/json' } });
    expect((await call('POST', AttachmentPath.CREATE, json({ conversationId: conv.id, size: 10, partSize: 4096 }), false)).body.error?.code).to.equal('AUTH_REQUIRED');
    expect((await call('POST', AttachmentPath.CREATE, { body: '{not json', headers: { 'content-type': 'application/json' } })).body.error?.code).to.equal('INVALID_PAYLOAD');
    expect((await call('POST', AttachmentPath.CREATE, json({ conversationId: conv.id, size: 10, partSize: 10 }))).body.error?.code).to.equal('INVALID_PAYLOAD');
    expect((await call('POST', AttachmentPath.CREATE, json({ conversationId: conv.id, size: -1, partSize: 4096 }))).body.error?.code).to.equal('INVALID_PAYLOAD');
    expect((await call('POST', AttachmentPath.CREATE, json({ conversationId: conv.id, size: 10, partSize: 4096, extra: 1 }))).body.error?.code).to.equal('INVALID_PAYLOAD');
    const created = await call('POST', AttachmentPath.CREATE, json({ conversationId: conv.id, size: 5000, partSize: 4096 }));
    expect(created.status).to.equal(201);
    const id = created.body.attachmentId!;
    const octets = (n: number) => ({ body: new Uint8Array(n), headers: { 'content-type': 'application/octet-stream' } });
    expect((await call('PUT', attachmentPath(AttachmentPath.PART, id, 2), octets(10))).body.error?.code, 'no part 2').to.equal('INVALID_PAYLOAD');
    expect((await call('PUT', attachmentPath(AttachmentPath.PART, id, 0), octets(10))).body.error?.code, 'part 0 is 4096 bytes').to.equal('INVALID_PAYLOAD');
    expect((await call('PUT', `/attachments/${id}/parts/x`, octets(10))).body.error?.code).to.equal('INVALID_PAYLOAD');
    expect((await call('PUT', attachmentPath(AttachmentPath.PART, id, 1), { body: '{}', headers: { 'content-type': 'application/json' } })).body.error?.code).to.equal('UNSUPPORTED_MEDIA_TYPE');
    expect((await call('POST', attachmentPath(AttachmentPath.FINISH, id))).body.error?.code).to.equal('UPLOAD_INCOMPLETE');
    expect((await call('GET', attachmentPath(AttachmentPath.CONTENT, id))).body.error?.code).to.equal('UPLOAD_INCOMPLETE');
    expect((await call('PUT', attachmentPath(AttachmentPath.PART, id, 1), octets(5000 - 4096))).status).to.equal(200);
    const status = await call('GET', attachmentPath(AttachmentPath.STATUS, id));
    expect(status.body).to.include({ state: 'uploading', parts: 2 });
    expect((status.body as { storedParts?: number[] }).storedParts).to.deep.equal([1]);
  });

  it('attachment requests spend the device’s attachments budget: past it, RATE_LIMITED with retryAfterMs', async () => {
    const t = await harness.start('real', sharedBackend(), (c) => {
      const security = defaultSecurityConfig('production');
      c.security = { ...security, rateLimits: { ...security.rateLimits, attachments: { points: 3, durationSec: 60 } } };
    });
    const { conv } = await pair(t);
    const token = await t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const create = () => fetch(`${t.url}${AttachmentPath.CREATE}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ conversationId: conv.id, size: 5000, partSize: 4096 }) });
    for (let i = 0; i < 3; i++) expect((await create()).status).to.equal(201);
    const refused = await create();
    expect(refused.status).to.equal(429);
    const body = (await refused.json()) as { error: { code: string; details: { retryAfterMs: number } } };
    expect(body.error.code).to.equal('RATE_LIMITED');
    expect(body.error.details.retryAfterMs).to.be.greaterThan(0);
  });

  it('an upload no message names is swept after ATTACHMENT_UNREFERENCED_MS; one a message names goes after its retention', async () => {
    const shared = sharedBackend();
    const t = await harness.start('real', shared, (c) => {
      c.attachments = { maxBytes: 1_000_000, orgQuotaBytes: 0, unreferencedMs: 60_000 };
      c.retentionMs = 3600_000;
    });
    const { lee, conv } = await pair(t);
    const { attachment } = await lee.attachments.send(conv.id, randomBytes(3000));
    const token = await t.idp.mint({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const res = await fetch(`${t.url}${AttachmentPath.CREATE}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ conversationId: conv.id, size: 5000, partSize: 4096 }) });
    const { attachmentId: orphan } = (await res.json()) as { attachmentId: string };
    await fetch(`${t.url}${attachmentPath(AttachmentPath.PART, orphan, 0)}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(4096) });
    const ids = async () => withDb(shared.dbName, async (db) => (await db.collection<{ attachmentId: string }>('attachments').find({}).toArray()).map((d) => d.attachmentId).sort());
    await t.hub.sweep(Date.now() + 30_000);
    expect(await ids()).to.deep.equal([attachment.id, orphan].sort());
    await t.hub.sweep(Date.now() + 120_000);
    expect(await ids(), 'the unreferenced one went').to.deep.equal([attachment.id]);
    await withDb(shared.dbName, async (db) => expect(await db.collection('attachment_parts.files').countDocuments({ 'metadata.blob': orphan })).to.equal(0));
    await t.hub.sweep(Date.now() + 3_700_000);
    expect(await ids(), 'past retention').to.deep.equal([]);
    await withDb(shared.dbName, async (db) => expect(await db.collection('attachment_parts.chunks').countDocuments({})).to.equal(0));
  });
});
