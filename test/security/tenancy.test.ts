/**
 * Tenancy on real Redis + the Mongo-wire DB: the organisation in the token scopes every read and
 * write. For each path, a clinician of org-b uses org-a's ids (and the same user and device ids in
 * its own organisation) and gets a refusal or an empty answer, never org-a's data.
 */
import { expect } from 'chai';
import type { Conversation, ConversationListResult, DevicesListResult, DevicesMineResult, KeysClaimResult, KeysCountResult, SyncFetchResult } from '@curbside/shared';
import { ErrorCode } from '@curbside/shared';
import { HubHarness, type TestHub } from '../support/hub.js';
import { testDeviceKeys } from '../support/keys.js';
import { connectRaw, errorCode, sleep, type RawClient } from './support.js';

describe('tenancy: the token organisation scopes every path', function () {
  const harness = new HubHarness();
  const open: RawClient[] = [];
  let t: TestHub;
  let lee: RawClient; // org-a
  let patel: RawClient; // org-a
  let mallory: RawClient; // org-b, device id of her own
  let twin: RawClient; // org-b, same user and device ids as Lee in org-a
  let conv: Conversation; // org-a
  const leeKeys = testDeviceKeys();
  const patelKeys = testDeviceKeys();

  const as = (orgId: string, userId: string, deviceId: string) => connectRaw(t.url, t.idp.mint({ orgId, userId, deviceId }));
  const ok = <T>(ack: { ok: boolean; data?: T }): T => {
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
    return ack.data as T;
  };

  beforeEach(async () => {
    t = await harness.start('real');
    lee = await as('org-a', 'dr-lee', 'lee-phone');
    patel = await as('org-a', 'dr-patel', 'patel-phone');
    mallory = await as('org-b', 'dr-mallory', 'mal-phone');
    twin = await as('org-b', 'dr-lee', 'lee-phone');
    open.push(lee, patel, mallory, twin);
    ok(await lee.call('keys:publish', { identityKey: leeKeys.identityKey, signedPrekey: leeKeys.signedPrekey(), oneTimePrekeys: leeKeys.oneTimePrekeys(10) }));
    ok(await patel.call('keys:publish', { identityKey: patelKeys.identityKey, signedPrekey: patelKeys.signedPrekey(), oneTimePrekeys: patelKeys.oneTimePrekeys(10) }));
    conv = ok(await lee.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' }));
    ok(await lee.call('envelope:send', { conversationId: conv.id, clientMessageId: 'a1', body: new Uint8Array([1, 2, 3]) }));
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await harness.cleanup();
  });

  it('conversation:create with another organisation’s user ids makes a conversation in the caller’s own organisation, invisible to the other', async () => {
    const created = ok(await mallory.call<Conversation>('conversation:create', { kind: 'group', memberUserIds: ['dr-lee', 'dr-patel'] }));
    await sleep(100);
    expect(lee.pushes.filter((p) => p.event === 'conversation').map((p) => (p.payload as Conversation).id)).to.not.include(created.id);
    expect(patel.pushes.filter((p) => p.event === 'conversation').map((p) => (p.payload as Conversation).id)).to.not.include(created.id);
    expect(await t.storage.getConversation('org-a', created.id)).to.equal(undefined);
    expect((await t.storage.getConversation('org-b', created.id))?.memberUserIds).to.deep.equal(['dr-mallory', 'dr-lee', 'dr-patel']);
    // The direct conversation of the same pair in org-b is a different one.
    const twinDirect = ok(await twin.call<Conversation>('conversation:create', { kind: 'direct', peerUserId: 'dr-patel' }));
    expect(twinDirect.id).to.not.equal(conv.id);
  });

  it('conversation:list shows only the caller’s organisation', async () => {
    expect(ok(await twin.call<ConversationListResult>('conversation:list', {})).conversations).to.deep.equal([]);
    expect(ok(await lee.call<ConversationListResult>('conversation:list', {})).conversations.map((c) => c.id)).to.deep.equal([conv.id]);
  });

  it('envelope:send into another organisation’s conversation is FORBIDDEN (like a missing one) and stores nothing', async () => {
    for (const c of [mallory, twin]) {
      const ack = await c.call('envelope:send', { conversationId: conv.id, clientMessageId: 'x1', body: new Uint8Array([9]) });
      expect(errorCode(ack)).to.equal(ErrorCode.FORBIDDEN);
    }
    expect(errorCode(await mallory.call('envelope:send', { conversationId: 'no-such-conversation', clientMessageId: 'x2', body: new Uint8Array([9]) }))).to.equal(ErrorCode.FORBIDDEN);
    expect((await t.storage.envelopesAfter('org-a', conv.id, 0, 100)).map((e) => e.clientMessageId)).to.deep.equal(['a1']);
    expect(await t.storage.findSent('org-b', 'lee-phone', 'x1')).to.equal(undefined);
  });

  it('sync:fetch with another organisation’s conversation ids returns nothing', async () => {
    const page = ok(await twin.call<SyncFetchResult>('sync:fetch', { cursors: [{ conversationId: conv.id, afterSeq: 0 }] }));
    expect(page.envelopes).to.deep.equal([]);
    const own = ok(await patel.call<SyncFetchResult>('sync:fetch', { cursors: [{ conversationId: conv.id, afterSeq: 0 }] }));
    expect(own.envelopes.map((e) => e.clientMessageId)).to.deep.equal(['a1']);
  });

  it('keys:publish under the same device id in another organisation touches only that organisation', async () => {
    const other = testDeviceKeys();
    ok(await twin.call('keys:publish', { identityKey: other.identityKey, signedPrekey: other.signedPrekey(), oneTimePrekeys: other.oneTimePrekeys(3) }));
    const [a] = await t.storage.listDeviceIdentities('org-a', ['dr-lee']);
    const [b] = await t.storage.listDeviceIdentities('org-b', ['dr-lee']);
    expect(Buffer.from(a!.identityKey).equals(Buffer.from(leeKeys.identityKey))).to.equal(true);
    expect(Buffer.from(b!.identityKey).equals(Buffer.from(other.identityKey))).to.equal(true);
    expect(await t.storage.countOneTimePrekeys('org-a', 'lee-phone')).to.equal(10);
  });

  it('keys:claim and devices:list for another organisation’s users hand out nothing of theirs', async () => {
    expect(ok(await mallory.call<KeysClaimResult>('keys:claim', { userIds: ['dr-lee', 'dr-patel'] })).bundles).to.deep.equal([]);
    expect(ok(await mallory.call<KeysClaimResult>('keys:claim', { userIds: ['dr-patel'], deviceIds: ['patel-phone'] })).bundles).to.deep.equal([]);
    expect(ok(await mallory.call<DevicesListResult>('devices:list', { userIds: ['dr-lee', 'dr-patel'] })).devices).to.deep.equal([]);
    expect(await t.storage.countOneTimePrekeys('org-a', 'patel-phone'), 'no prekey of org-a was burned').to.equal(10);
  });

  it('keys:count counts only the caller’s own device in its organisation', async () => {
    expect(ok(await twin.call<KeysCountResult>('keys:count', {})).oneTimePrekeys).to.equal(0);
    expect(ok(await lee.call<KeysCountResult>('keys:count', {})).oneTimePrekeys).to.equal(10);
  });

  it('devices:mine and device:revoke never reach another organisation’s devices', async () => {
    expect(ok(await twin.call<DevicesMineResult>('devices:mine', {})).devices.map((d) => [d.deviceId, d.hasKeys])).to.deep.equal([['lee-phone', false]]);
    expect(errorCode(await mallory.call('device:revoke', { deviceId: 'lee-phone' }))).to.equal(ErrorCode.NOT_FOUND);
    await sleep(100);
    expect(lee.socket.connected).to.equal(true);
    expect(await t.storage.deviceRevokedAt('org-a', 'lee-phone')).to.equal(undefined);
  });
});
