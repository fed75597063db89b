import { expect } from 'chai';
import { isCurbsideError, type ChatMessage } from '@curbside/client-sdk';
import { HubHarness, eventually } from '../support/hub.js';

describe('revoking a lost device through the SDK', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('contacts are told and stop encrypting to it; it cannot sign in again', async () => {
    const t = await harness.start('real');
    const phone = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const lost = t.client({ userId: 'dr-lee', deviceId: 'lee-lost-tablet' });
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const removed: string[] = [];
    patel.on('deviceRemoved', (d) => removed.push(`${d.userId}/${d.deviceId}`));
    const lostRead: ChatMessage[] = [];
    lost.on('message', (m) => lostRead.push(m));
    await Promise.all([phone.connect(), lost.connect(), patel.connect()]);
    const conv = await phone.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    await patel.sendText(conv.id, 'before');
    await eventually(() => lostRead.length === 1, 'the tablet reads while it is trusted');

    expect((await phone.devices.mine()).map((d) => d.deviceId).sort()).to.deep.equal(['lee-lost-tablet', 'lee-phone']);
    await phone.devices.revoke('lee-lost-tablet');
    await eventually(() => removed.includes('dr-lee/lee-lost-tablet'), 'patel is told');

    const ack = await patel.sendText(conv.id, 'after the tablet was lost');
    const [stored] = (await t.storage.envelopesAfter('org-a', conv.id, 0, 50)).filter((e) => e.messageId === ack.messageId);
    expect(stored!.recipients!.map((r) => r.deviceId)).to.deep.equal(['lee-phone']);
    const again = t.client({ userId: 'dr-lee', deviceId: 'lee-lost-tablet' });
    const err = await again.connect().catch((e: unknown) => e);
    expect(isCurbsideError(err) && err.code).to.equal('AUTH_REVOKED');
    expect(lostRead.map((m) => m.text)).to.deep.equal(['before']);
  });
});
