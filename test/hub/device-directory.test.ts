/**
 * Device lists and conversations are cached per hub node (DeviceDirectory, tags in Redis). These
 * tests run two real nodes over Redis and the Mongo-wire DB and check the cache is never stale: a
 * device that published keys, or was revoked, through one node counts on the other node's very next
 * send, and so does a care-team member removed through the other node.
 */
import { expect } from 'chai';
import { isCurbsideError, type CurbsideClient } from '@curbside/client-sdk';
import { ErrorCode } from '@curbside/shared';
import { DeviceDirectory } from '../../server/src/domain/device-directory.js';
import { MemoryDirectoryTags } from '../../server/src/adapters/memory/directory-tags.js';
import { MemoryStorage } from '../../server/src/adapters/memory/storage.js';
import type { DirectoryTags } from '../../server/src/ports/directory-tags.js';
import { HubHarness, bytes, sharedBackend } from '../support/hub.js';
import { testDeviceKeys } from '../support/keys.js';

async function withKeys(client: CurbsideClient) {
  const keys = testDeviceKeys();
  await client.publishKeys({ identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), oneTimePrekeys: keys.oneTimePrekeys(2) });
}

async function staleDetail(p: Promise<unknown>): Promise<{ missing: string[]; extra: string[] } | string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    if (!isCurbsideError(e) || e.code !== ErrorCode.DEVICE_LIST_STALE) return `unexpected: ${String(e)}`;
    const d = e.details as { missing: Array<{ deviceId: string }>; extra: string[] };
    return { missing: d.missing.map((m) => m.deviceId), extra: d.extra };
  }
}

describe('device lists cached per node stay exact across nodes (Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it("a device published through node 2 counts on node 1's next send; a revoked one stops counting", async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const lee = node1.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    const laptop = node2.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    const tablet = node2.client({ userId: 'dr-patel', deviceId: 'patel-tablet' }, { e2ee: false });
    await Promise.all([lee.connect(), laptop.connect(), tablet.connect()]);
    await withKeys(lee);
    await withKeys(laptop);
    const conv = await lee.createConversation({ kind: 'direct', peerUserId: 'dr-patel' });
    const share = (deviceId: string) => ({ deviceId, ciphertext: bytes(`for ${deviceId}`) });

    // Node 1 reads (and caches) Patel's devices: just the laptop.
    await lee.sendEnvelope(conv.id, { body: bytes('1'), recipients: [share('patel-laptop')] });
    expect(node1.hub.directory.stats().users, 'node 1 caches device lists').to.be.greaterThan(0);

    await withKeys(tablet); // through node 2
    expect(await staleDetail(lee.sendEnvelope(conv.id, { body: bytes('2'), recipients: [share('patel-laptop')] }))).to.deep.equal({
      missing: ['patel-tablet'],
      extra: [],
    });
    await lee.sendEnvelope(conv.id, { body: bytes('3'), recipients: [share('patel-laptop'), share('patel-tablet')] });

    const revoke = node2.client({ userId: 'dr-patel', deviceId: 'patel-laptop' }, { e2ee: false });
    await revoke.connect();
    await revoke.revokeDevice('patel-tablet');
    expect(await staleDetail(lee.sendEnvelope(conv.id, { body: bytes('4'), recipients: [share('patel-laptop'), share('patel-tablet')] }))).to.deep.equal({
      missing: [],
      extra: ['patel-tablet'],
    });
    expect(await lee.listDevices(['dr-patel']).then((ds) => ds.map((d) => d.deviceId))).to.deep.equal(['patel-laptop']);
  });
});

describe('conversations cached per node stay exact across nodes (Redis + Mongo-wire DB)', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it("a member removed through node 2 is refused on node 1's next send; seqs stay gapless when both nodes send", async () => {
    const shared = sharedBackend();
    const [node1, node2] = [await harness.start('real', shared), await harness.start('real', shared)];
    const lee = node2.client({ userId: 'dr-lee', deviceId: 'lee-phone' });
    const patel = node1.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const ortiz = node1.client({ userId: 'rn-ortiz', deviceId: 'ortiz-tablet' });
    await Promise.all([lee.connect(), patel.connect(), ortiz.connect()]);
    const { teamId } = await lee.createTeam('ICU', [{ userId: 'dr-patel' }, { userId: 'rn-ortiz' }]);
    // Node 1 caches the team while Ortiz is in it; sends alternate between the nodes.
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) {
      seqs.push((await ortiz.sendText(teamId, `ortiz ${i}`)).seq);
      seqs.push((await lee.sendText(teamId, `lee ${i}`)).seq);
    }
    expect(node1.hub.directory.stats().conversations, 'node 1 caches the conversation').to.be.greaterThan(0);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `increasing: ${seqs.join(',')}`).to.equal(true);
    const stored = (await node1.storage.envelopesAfter('org-a', teamId, 0, 100)).map((e) => e.seq);
    expect(stored, 'no seq burned or reused').to.deep.equal(stored.map((_, i) => i + 1));

    await lee.removeTeamMember(teamId, 'rn-ortiz'); // through node 2
    // The raw send (not sendText, whose SDK may already know of the removal): the hub must refuse it.
    const err = await ortiz.sendEnvelope(teamId, { body: bytes('still here?') }).catch((e: unknown) => e);
    expect(isCurbsideError(err) && err.code, String(err)).to.equal(ErrorCode.FORBIDDEN);
    expect((await patel.sendText(teamId, 'after removal')).seq).to.be.greaterThan(seqs[seqs.length - 1]!);
  });
});

describe('DeviceDirectory (logic, memory adapters)', () => {
  const ORG = 'org-a';
  async function storageWith(devices: Array<[string, string]>) {
    const storage = new MemoryStorage();
    for (const [userId, deviceId] of devices) {
      await storage.touchDevice({ orgId: ORG, userId, deviceId, now: 1 });
      const keys = testDeviceKeys();
      await storage.publishKeys({ orgId: ORG, deviceId, identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), maxStored: 100, now: 1 });
    }
    return storage;
  }

  /**
   * The storage as the directory sees it, counting conversation reads; `remove` makes later reads
   * leave a member out (a membership change stored by "another node").
   */
  function countingConversations(storage: MemoryStorage) {
    const state = { convReads: 0, removed: undefined as string | undefined };
    const counting = {
      listDeviceIdentities: (o: string, u: readonly string[]) => storage.listDeviceIdentities(o, u),
      deviceListHeads: (o: string, u: readonly string[]) => storage.deviceListHeads(o, u),
      getConversation: async (o: string, c: string) => {
        state.convReads++;
        const found = await storage.getConversation(o, c);
        return found && { ...found, memberUserIds: found.memberUserIds.filter((u) => u !== state.removed) };
      },
    };
    return { counting, state };
  }

  it('answers from memory while the tags are unchanged, and from storage once one changed', async () => {
    const storage = await storageWith([
      ['dr-lee', 'l1'],
      ['dr-kim', 'k1'],
    ]);
    let reads = 0;
    const counting = {
      listDeviceIdentities: (o: string, u: readonly string[]) => (reads++, storage.listDeviceIdentities(o, u)),
      deviceListHeads: (o: string, u: readonly string[]) => storage.deviceListHeads(o, u),
      getConversation: (o: string, c: string) => storage.getConversation(o, c),
    };
    const tags = new MemoryDirectoryTags();
    const dir = new DeviceDirectory({ storage: counting, tags });
    const ids = async () => (await dir.identities(ORG, ['dr-lee', 'dr-kim'])).map((d) => `${d.userId}/${d.deviceId}`);
    expect(await ids()).to.deep.equal(['dr-kim/k1', 'dr-lee/l1']);
    expect(await ids()).to.deep.equal(['dr-kim/k1', 'dr-lee/l1']);
    expect(reads, 'second call from memory').to.equal(1);

    await storage.touchDevice({ orgId: ORG, userId: 'dr-lee', deviceId: 'l2', now: 2 });
    const keys = testDeviceKeys();
    await storage.publishKeys({ orgId: ORG, deviceId: 'l2', identityKey: keys.identityKey, signedPrekey: keys.signedPrekey(), maxStored: 100, now: 2 });
    await tags.bump(ORG, 'dr-lee'); // what another node does after storing the change
    expect(await ids()).to.deep.equal(['dr-kim/k1', 'dr-lee/l1', 'dr-lee/l2']);
    expect(reads).to.equal(2);
  });

  it('reads storage when the tags cannot be read, and hands out copies', async () => {
    const storage = await storageWith([['dr-lee', 'l1']]);
    const broken: DirectoryTags = {
      read: () => Promise.reject(new Error('redis down')),
      bump: () => Promise.reject(new Error('redis down')),
    };
    const dir = new DeviceDirectory({ storage, tags: broken });
    const [first] = await dir.identities(ORG, ['dr-lee']);
    expect(first?.deviceId).to.equal('l1');
    first!.identityKey.fill(0);
    const [again] = await dir.identities(ORG, ['dr-lee']);
    expect(again!.identityKey.some((b) => b !== 0), 'the caller cannot change what others get').to.equal(true);
    let failed = false;
    await dir.changed(ORG, 'dr-lee').catch(() => (failed = true));
    expect(failed, 'a change that cannot be announced fails its request (the retry announces it)').to.equal(true);
  });

  it('keeps a conversation under its tag: one tag read per send while unchanged, read again once changed', async () => {
    const storage = await storageWith([
      ['dr-lee', 'l1'],
      ['dr-kim', 'k1'],
    ]);
    const { conversation } = await storage.createConversation({ orgId: ORG, kind: 'group', createdBy: 'dr-lee', memberUserIds: ['dr-kim'], now: 1 });
    let tagReads = 0;
    const { counting, state } = countingConversations(storage);
    const memoryTags = new MemoryDirectoryTags();
    const tags: DirectoryTags = { read: (o, ids) => (tagReads++, memoryTags.read(o, ids)), bump: (o, id) => memoryTags.bump(o, id) };
    const dir = new DeviceDirectory({ storage: counting, tags });
    const look = async () => {
      const r = await dir.conversationWithDevices(ORG, conversation.id);
      return { members: r.conversation?.memberUserIds, devices: r.devices.map((d) => d.deviceId) };
    };
    expect(await look()).to.deep.equal({ members: ['dr-lee', 'dr-kim'], devices: ['k1', 'l1'] });
    tagReads = 0;
    const again = await dir.conversationWithDevices(ORG, conversation.id);
    expect({ convReads: state.convReads, tagReads }, 'cached: the conversation from memory, one tag read for it and its members').to.deep.equal({ convReads: 1, tagReads: 1 });
    again.conversation!.memberUserIds.push('mallory');
    expect((await look()).members, 'callers get copies').to.deep.equal(['dr-lee', 'dr-kim']);

    state.removed = 'dr-kim';
    expect((await look()).members, 'unchanged tag: the cached copy').to.deep.equal(['dr-lee', 'dr-kim']);
    await memoryTags.bump(ORG, `conversation ${conversation.id}`); // what the other node does after storing
    expect(await look()).to.deep.equal({ members: ['dr-lee'], devices: ['l1'] });
    expect(state.convReads).to.equal(2);
    expect(await dir.conversationWithDevices(ORG, 'no-such-conversation')).to.deep.equal({ conversation: undefined, devices: [], signedUsers: new Set(), listVersions: [] });
  });

  it('conversation() (delivery acks) shares that cache: members from memory under an unchanged tag, from storage after a bump', async () => {
    const storage = new MemoryStorage();
    const { conversation } = await storage.createConversation({ orgId: ORG, kind: 'group', createdBy: 'dr-lee', memberUserIds: ['dr-kim'], now: 1 });
    const { counting, state } = countingConversations(storage);
    const tags = new MemoryDirectoryTags();
    const dir = new DeviceDirectory({ storage: counting, tags });
    const otherNode = new DeviceDirectory({ storage: counting, tags });
    expect((await dir.conversation(ORG, conversation.id))?.memberUserIds).to.deep.equal(['dr-lee', 'dr-kim']);
    const copy = await dir.conversation(ORG, conversation.id);
    expect(state.convReads, 'second call from memory').to.equal(1);
    copy!.memberUserIds.push('mallory');
    expect((await dir.conversation(ORG, conversation.id))?.memberUserIds, 'callers get copies').to.deep.equal(['dr-lee', 'dr-kim']);

    state.removed = 'dr-kim';
    await otherNode.conversationChanged(ORG, conversation.id);
    expect((await dir.conversation(ORG, conversation.id))?.memberUserIds).to.deep.equal(['dr-lee']);
    expect(state.convReads).to.equal(2);
    expect(await dir.conversation(ORG, 'no-such-conversation')).to.equal(undefined);
  });
});
