/**
 * Issue #18, sender side: "Today 120 of 730 sends during a hub kill were refused with NOT_CONNECTED."
 * A clinician sends a storm of end-to-end-encrypted messages while the hub process their client is
 * connected to is killed (SIGKILL) mid-storm. The client knows both hub URLs and fails over; texts it
 * could not encrypt or send meanwhile wait in the device store. Two real hub processes on their own
 * Redis and FerretDB: no send is refused, the recipient sees every message once, none twice.
 */
import { expect } from 'chai';
import type { ChatMessage, SendResult } from '@curbside/client-sdk';
import { sleep } from '../../scripts/faults/cluster.js';
import { faultClients } from '../support/fault-clients.js';
import { eventually } from '../../scripts/faults/checker.js';

describe('sender side: a hub killed during a send storm refuses, loses and duplicates nothing (two hub processes)', function () {
  this.timeout(240_000);
  const faults = faultClients();

  it('0 sends refused, every message delivered once, in the order each was sent', async () => {
    const c = await faults.start({ nodes: 2 });
    const [first, second] = c.nodes.map((n) => n.url) as [string, string];
    const client = faults.client;
    // The sender starts on the node that will die; the recipient on the other.
    const lee = client({ userId: 'dr-lee', deviceId: 'lee-phone' }, [first, second]);
    const patel = client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, [second, first]);
    const got: ChatMessage[] = [];
    patel.on('message', (m) => got.push(m));
    await Promise.all([lee.connect(), patel.connect()]);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await lee.sendText(conv.id, 'warm-up');
    await eventually(() => got.length === 1, 'the session is set up', 20_000);

    const total = 240;
    const outcomes: Array<Promise<SendResult | Error>> = [];
    for (let i = 0; i < total; i++) {
      outcomes.push(lee.sendText(conv.id, `storm ${i}`).catch((e: Error) => e));
      if (i === 60) void c.killNode(0);
      await sleep(15);
    }
    const settled = await Promise.all(outcomes);
    const refused = settled.filter((o) => o instanceof Error);
    expect(refused.map((e) => `${(e as { code?: string }).code}: ${e.message}`), 'no send refused').to.deep.equal([]);
    expect(c.isUp(0), 'the first node really died').to.equal(false);

    await eventually(() => got.length === total + 1, `every message delivered (${got.length - 1} of ${total} so far)`, 60_000);
    const texts = got.slice(1).map((m) => m.text);
    expect(new Set(texts).size, 'no message shown twice').to.equal(texts.length);
    expect(new Set(got.map((m) => m.messageId)).size).to.equal(got.length);
    const storm = texts.map((t) => Number(t.replace('storm ', '')));
    expect(storm, 'in the order they were sent').to.deep.equal([...storm].sort((a, b) => a - b));
    await sleep(500);
    expect(got.length, 'and nothing more arrives').to.equal(total + 1);
  });
});
