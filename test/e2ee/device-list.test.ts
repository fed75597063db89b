import { expect } from 'chai';
import { ErrorCode, type DeviceIdentity, type PrekeyBundle, type SendResult } from '@curbside/shared';
import { CurbsideError, MemoryDeviceStore, type CurbsideClient } from '@curbside/client-sdk';
import { SecureMessenger } from '../../client-sdk/src/e2ee/secure-messenger.js';
import type { HubTransport } from '../../client-sdk/src/e2ee/types.js';
import type { EnvelopePayload } from '../../client-sdk/src/client.js';
import { rateLimitsOff } from '@curbside/server';
import { HubHarness, eventually, sharedBackend } from '../support/hub.js';

describe('multi-device upkeep', function () {
  const harness = new HubHarness();
  afterEach(() => harness.cleanup());

  it('fixes a stale device list the hub reports and retries, reusing the shares already made', async () => {
    // Three real devices (their keys and bundles), behind a transport that is one device behind.
    const t = await harness.start('memory');
    const peers: CurbsideClient[] = ['patel-laptop', 'patel-tablet'].map((d) => t.client({ userId: 'dr-patel', deviceId: d }));
    const lee = t.client({ userId: 'dr-lee', deviceId: 'lee-phone' }, { e2ee: false });
    await Promise.all([...peers, lee].map((c) => c.connect()));
    const all = await lee.devices.list(['dr-patel']);
    expect(all.map((d) => d.deviceId)).to.deep.equal(['patel-laptop', 'patel-tablet']);

    const sends: EnvelopePayload[] = [];
    // Patel's signed device list, as the hub keeps it.
    const history = (await t.storage.deviceListHistory('org-a', 'dr-patel'))!;
    expect(history.lists.at(-1)!.devices.map((d) => d.deviceId).sort()).to.deep.equal(['patel-laptop', 'patel-tablet']);
    const transport: HubTransport = {
      conversationMembers: async () => ['dr-lee', 'dr-patel'],
      hubDevices: async (userIds: string[]) => ({
        devices: (sends.length === 0 ? all.slice(0, 1) : await lee.devices.list(userIds)) as DeviceIdentity[],
        listVersions: userIds.includes('dr-patel') ? [{ userId: 'dr-patel', version: history.version }] : [],
      }),
      deviceListChains: async (users) => users.map((u) => ({ userId: u.userId, version: u.userId === 'dr-patel' ? history.version : 0, lists: u.userId === 'dr-patel' ? history.lists.filter((l) => l.version > u.after) : [] })),
      publishDeviceList: async () => {
        throw new Error('not used');
      },
      myDevices: async () => [],
      claimBundles: (r): Promise<PrekeyBundle[]> => lee.hub.claimBundles(r),
      publishKeys: async () => ({ oneTimePrekeys: 0 }),
      countPrekeys: async () => 100,
      teamRequest: async () => ({ seq: 1 }),
      roleThread: async () => undefined,
      roleLog: async () => [],
      openAlerts: async () => ({ alerts: [] }),
      catchUp: async () => {},
      stopped: () => false,
      sendEnvelope: async (_c, payload): Promise<SendResult> => {
        sends.push(payload);
        if (sends.length === 1) throw new CurbsideError(ErrorCode.DEVICE_LIST_STALE, 'stale', { missing: [{ userId: 'dr-patel', deviceId: 'patel-tablet' }], extra: [] });
        return { messageId: 'm', conversationId: 'c', seq: 1, sentAt: 1, duplicate: false };
      },
    };
    const messenger = new SecureMessenger(new MemoryDeviceStore(), transport, () => ({ userId: 'dr-lee', deviceId: 'lee-phone' }), {
      message: () => {},
      decryptionError: () => {},
      identityChanged: () => {},
      unavailable: () => {},
      teamChanged: () => {},
      teamDetails: () => {},
      membershipMismatch: () => {},
      receipt: () => {},
      deviceListChanged: () => {},
      deviceListRejected: () => {},
    }, { debug: () => {}, warn: () => {} });

    const ack = await messenger.sendText('c', 'hello');
    expect(ack.seq).to.equal(1);
    expect(sends.map((p) => p.recipients?.map((r) => r.deviceId))).to.deep.equal([['patel-laptop'], ['patel-laptop', 'patel-tablet']]);
    expect(Buffer.from(sends[1]!.recipients![0]!.ciphertext).equals(Buffer.from(sends[0]!.recipients![0]!.ciphertext)), 'the laptop share is reused, not re-encrypted').to.equal(true);
    expect(sends[1]!.body).to.equal(sends[0]!.body);
  });

  it('refills one-time prekeys at the next connect when they ran low while the device was away', async () => {
    // Draining a colleague's prekeys is rate limited (test/regression/abuse-locks-nobody-out.test.ts); not here.
    const t = await harness.start('memory', sharedBackend(), (c) => (c.security = { corsOrigins: 'dev-localhost', rateLimits: rateLimitsOff(), revocationRecheckMs: 5000 }));
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const harvester = t.client({ userId: 'dr-mallory', deviceId: 'm' }, { e2ee: false });
    await Promise.all([patel.connect(), harvester.connect()]);
    expect(await t.storage.countOneTimePrekeys('org-a', 'patel-laptop')).to.equal(100);
    // Away: no keys:low push reaches the device.
    patel.disconnect();
    for (let i = 0; i < 85; i++) await harvester.hub.claimBundles({ userIds: ['dr-patel'] });
    expect(await t.storage.countOneTimePrekeys('org-a', 'patel-laptop')).to.equal(15);
    // The next connect tops up.
    await patel.connect();
    await eventually(async () => (await t.storage.countOneTimePrekeys('org-a', 'patel-laptop')) === 115, 'refilled after reconnect');
  });

  it('refills at once when the hub says keys:low after others claimed them down, and tells the app', async () => {
    const t = await harness.start('memory', sharedBackend(), (c) => (c.security = { corsOrigins: 'dev-localhost', rateLimits: rateLimitsOff(), revocationRecheckMs: 5000 }));
    const patel = t.client({ userId: 'dr-patel', deviceId: 'patel-laptop' });
    const harvester = t.client({ userId: 'dr-mallory', deviceId: 'm' }, { e2ee: false });
    const low: number[] = [];
    patel.on('prekeysLow', (info) => low.push(info.remaining));
    await Promise.all([patel.connect(), harvester.connect()]);
    for (let i = 0; i < 85; i++) await harvester.hub.claimBundles({ userIds: ['dr-patel'] });
    await eventually(() => low.length > 0, 'the app hears prekeysLow');
    expect(low[0]).to.be.below(20);
    // Without a reconnect: the keys:low push made the SDK upload more.
    await eventually(async () => (await t.storage.countOneTimePrekeys('org-a', 'patel-laptop')) >= 100, 'refilled while connected');
  });
});
