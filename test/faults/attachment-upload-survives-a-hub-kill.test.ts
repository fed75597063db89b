/**
 * Issue #21: "Uploads resume after a disconnect, from the last stored chunk." A clinician uploads a
 * 48 MB file (12 parts) through the hub process their client is connected to, and that process is killed
 * (SIGKILL) mid-upload. The SDK asks the other node which parts are stored and sends only the rest:
 * the recipient downloads exactly the file, and no part but those in flight at the kill was sent twice.
 * Two real hub processes on their own Redis and FerretDB.
 */
import { DEFAULT_CHUNKS_PER_PART, DEFAULT_PARALLEL_PARTS } from '../../client-sdk/src/attachments/attachments.js';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { ChatMessage } from '@curbside/client-sdk';
import { faultClients } from '../support/fault-clients.js';
import { eventually } from '../../scripts/faults/checker.js';

describe('an attachment upload survives a hub kill (two hub processes)', function () {
  this.timeout(240_000);
  const faults = faultClients();
  const realFetch = globalThis.fetch;
  afterEach(() => {
    globalThis.fetch = realFetch;
  });

  it('resumes on the other node from the parts stored, and the recipient gets the exact file', async () => {
    const c = await faults.start({ nodes: 2 });
    const [first, second] = c.nodes.map((n) => n.url) as [string, string];
    const lee = faults.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, [first, second]);
    const patel = faults.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, [second, first]);
    const got: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });

    // Every part PUT, by index and outcome.
    const puts: Array<{ index: number; node: string; ok: boolean }> = [];
    globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      const m = /\/parts\/(\d+)$/.exec(url);
      if (!m || init?.method !== 'PUT') return realFetch(input, init);
      try {
        const res = await realFetch(input, init);
        puts.push({ index: Number(m[1]), node: new URL(url).origin, ok: res.ok });
        return res;
      } catch (e) {
        puts.push({ index: Number(m[1]), node: new URL(url).origin, ok: false });
        throw e;
      }
    }) as typeof fetch;

    const file = randomBytes(48 * 1024 * 1024);
    let killed: Promise<void> | undefined;
    const { attachment } = await lee.attachments.send(conv.id, file, {
      caption: 'CT slice',
      onProgress: ({ bytes, total }) => {
        if (!killed && bytes > total / 3) killed = c.killNode(0);
      },
    });
    await killed;
    expect(c.isUp(0), 'the first node really died').to.equal(false);
    const parts = Math.ceil(attachment.cipherSize / (DEFAULT_CHUNKS_PER_PART * (65536 + 17)));
    expect(parts).to.equal(12);
    const onFirst = puts.filter((p) => p.node === new URL(first).origin && p.ok).map((p) => p.index);
    const onSecond = puts.filter((p) => p.node === new URL(second).origin && p.ok).map((p) => p.index);
    expect(onFirst.length, 'some parts were stored before the kill').to.be.greaterThan(0);
    expect(onSecond.length, 'the rest went to the other node').to.be.greaterThan(0);
    // A part whose answer the kill cut off may still have been stored: the other node then reports it and it is not sent again.
    expect(new Set(puts.map((p) => p.index)).size, 'every part was sent').to.equal(parts);
    for (const i of onFirst) expect(onSecond, `part ${i}, stored before the kill, was not sent again`).to.not.include(i);
    const sentTwice = [...new Set(puts.map((p) => p.index))].filter((i) => puts.filter((p) => p.index === i).length > 1);
    expect(sentTwice.length, `only parts in flight at the kill were sent again (${sentTwice.join(', ')})`).to.be.at.most(DEFAULT_PARALLEL_PARTS);

    globalThis.fetch = realFetch;
    await eventually(() => got.length === 1, 'the message reached the recipient', 60_000);
    expect(got[0]!.attachment?.id).to.equal(attachment.id);
    const bytes = await patel.attachments.download(got[0]!.attachment!).bytes();
    expect(Buffer.from(bytes).equals(file), 'the exact file').to.equal(true);
  });
});
