import { ErrorCode, type DeviceIdentity, type DeviceListChain, type OwnDevice } from '@curbside/shared';
import { bytesEqual, constantTimeEqual, deviceLinkCode, deviceListDiff, signDeviceList, verifyDeviceListChain, type DeviceListChainProblem, type SignedDeviceListData } from '../crypto/index.js';
import { utf8 } from '../crypto/sodium.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import type { DeviceStore } from '../stores/index.js';
import type { LocalKeys } from './local-keys.js';

/** What the device-list book needs from the hub connection. */
export interface DeviceListTransport {
  /** The hub's `devices:list`: devices it would route to, and each signed list's version. */
  hubDevices(userIds: string[]): Promise<{ devices: DeviceIdentity[]; listVersions: Array<{ userId: string; version: number }> }>;
  deviceListChains(users: Array<{ userId: string; after: number }>): Promise<DeviceListChain[]>;
  publishDeviceList(list: SignedDeviceListData): Promise<{ version: number }>;
  myDevices(): Promise<OwnDevice[]>;
}

/** A contact's (or this user's) signed device list changed: devices added and removed since the version this device knew. */
export interface DeviceListChange {
  userId: string;
  version: number;
  added: string[];
  removed: string[];
}

/**
 * The hub offered a device list that does not verify, or an older one than this device knew
 * (nothing is sent to the user), or presented an identity key for a listed device that the list
 * does not give (`substituted-key`: the list's key is used, the hub's ignored).
 */
export interface DeviceListRejection {
  userId: string;
  problem: DeviceListChainProblem | 'substituted-key';
  version: number;
  /** With `substituted-key`: the device the hub presented another key for. */
  deviceId?: string;
}

export interface DeviceListEvents {
  deviceListChanged(change: DeviceListChange): void;
  deviceListRejected(rejection: DeviceListRejection): void;
}

/** Whether this device is in its user's signed device list. */
export type LinkState = 'linked' | 'pending';

/** What a new device shows so another device of the same user can link it. */
export interface LinkCode {
  deviceId: string;
  /** 30 digits in groups of five: type it on the other device, or put it in a QR code. */
  code: string;
}

/**
 * Signed device lists on the client: the last verified list of every user this device met (pinned
 * in the device store), checked again whenever the hub reports a newer version. Every list of
 * devices the SDK encrypts to comes from here: the hub's devices, less those the user's signed list
 * does not name. Also registers this device (version 1) and links new ones.
 */
export class DeviceListBook {
  private readonly memo = new Map<string, SignedDeviceListData>();
  private readonly refreshing = new Map<string, Promise<SignedDeviceListData | undefined>>();

  constructor(
    private readonly store: DeviceStore,
    private readonly hub: DeviceListTransport,
    private readonly self: () => { userId: string; deviceId: string },
    private readonly localKeys: () => Promise<LocalKeys>,
    private readonly events: () => DeviceListEvents,
  ) {}

  /** The verified list pinned for a user, if any. */
  async pinned(userId: string): Promise<SignedDeviceListData | undefined> {
    const cached = this.memo.get(userId);
    if (cached) return cached;
    const stored = await this.store.get<SignedDeviceListData>('deviceLists', userId);
    if (stored) this.memo.set(userId, stored);
    return stored;
  }

  /**
   * The devices to encrypt to for these users: the hub's (it drops revoked ones) that the user's
   * verified signed list names, with the identity key the list gives. A user without a signed list
   * gets none.
   * @throws CurbsideError DEVICE_LIST_ROLLBACK or DEVICE_LIST_INVALID when a user's list does not verify.
   */
  async devices(userIds: string[]): Promise<DeviceIdentity[]> {
    const users = [...new Set(userIds)];
    const { devices, listVersions } = await this.hub.hubDevices(users);
    const versions = new Map(listVersions.map((v) => [v.userId, v.version]));
    await this.refreshMany(users.map((userId) => ({ userId, version: versions.get(userId) ?? 0 })));
    const out: DeviceIdentity[] = [];
    for (const userId of users) {
      const list = await this.current(userId, versions.get(userId) ?? 0);
      if (!list) continue;
      for (const d of devices) {
        if (d.userId !== userId) continue;
        const listed = list.devices.find((l) => l.deviceId === d.deviceId);
        if (!listed) continue; // not linked (or inserted behind the user's back): sent nothing
        // The list's key, whatever the hub says: a key it substitutes reaches nobody.
        if (!bytesEqual(listed.identityKey, d.identityKey)) this.events().deviceListRejected({ userId, problem: 'substituted-key', version: list.version, deviceId: d.deviceId });
        out.push({ userId, deviceId: d.deviceId, identityKey: new Uint8Array(listed.identityKey) });
      }
    }
    return out;
  }

  /** Whether the user's verified signed list names this device (asking the hub once if not, for a list newer than ours). */
  async isListed(userId: string, deviceId: string): Promise<boolean> {
    const names = (l: SignedDeviceListData | undefined) => l?.devices.some((d) => d.deviceId === deviceId) ?? false;
    if (names(await this.pinned(userId))) return true;
    return names(await this.fresh(userId));
  }

  /** The identity key the user's verified signed list gives a device (asking the hub once for a newer list if it names none). */
  async keyOf(userId: string, deviceId: string): Promise<Uint8Array | undefined> {
    if (!(await this.isListed(userId, deviceId))) return undefined;
    return (await this.pinned(userId))?.devices.find((d) => d.deviceId === deviceId)?.identityKey;
  }

  /**
   * The identity key a version of the user's signed list gave a device that the current list no
   * longer names (a device unlinked or revoked since): what its earlier signatures, such as care-team
   * statements it signed while linked, are checked with. The whole kept chain is read and verified
   * from version 1, and it must run through the version this device pinned (a chain forked from the
   * one verified here gives nothing). Undefined when the hub no longer keeps version 1.
   */
  async formerKeyOf(userId: string, deviceId: string): Promise<Uint8Array | undefined> {
    const through = (await this.pinned(userId)) ?? (await this.fresh(userId).catch(() => undefined));
    if (!through) return undefined;
    const [chain] = await this.hub.deviceListChains([{ userId, after: 0 }]);
    const lists = (chain?.lists ?? []).filter((l) => l.version <= through.version);
    if (lists[0]?.version !== 1) return undefined;
    const verified = verifyDeviceListChain(userId, undefined, lists, through.version);
    if (!verified.ok || !bytesEqual(verified.list.signature, through.signature)) return undefined;
    for (const list of [...lists].reverse()) {
      const listed = list.devices.find((d) => d.deviceId === deviceId);
      if (listed) return new Uint8Array(listed.identityKey);
    }
    return undefined;
  }

  /** The user's verified list at the version the hub holds now. */
  private async fresh(userId: string): Promise<SignedDeviceListData | undefined> {
    const { listVersions } = await this.hub.hubDevices([userId]);
    return this.current(userId, listVersions.find((v) => v.userId === userId)?.version ?? 0);
  }

  /**
   * This user's verified list at the version storage holds now (not a hub node's cached answer,
   * which lags a concurrent publish by a moment): what registering and changing the list start from.
   */
  private async stored(userId: string): Promise<SignedDeviceListData | undefined> {
    const pinned = await this.pinned(userId);
    const [chain] = await this.hub.deviceListChains([{ userId, after: pinned?.version ?? 0 }]);
    return this.current(userId, chain?.version ?? 0);
  }

  /** The hub announced a new version for a user (`devices:changed`): verify it now, so the app hears of the change. */
  async refresh(userId: string, version: number): Promise<void> {
    await this.current(userId, version);
  }

  /**
   * The verified list at the hub's `version` (or newer), fetching and checking the chain from our
   * pin. One check per user at a time; a caller that finds one running waits for it and looks again.
   */
  private async current(userId: string, version: number): Promise<SignedDeviceListData | undefined> {
    for (;;) {
      const pinned = await this.pinned(userId);
      // Equal: nothing new. Lower: an answer read before a change we already verified (the chain fetch
      // below tells a real rollback from that).
      if (pinned && pinned.version === version) return pinned;
      if (!pinned && version === 0) return undefined;
      const running = this.refreshing.get(userId);
      if (running) {
        await running.catch(() => {});
        const after = await this.pinned(userId);
        if (after && after.version >= version) return after;
        continue;
      }
      const run = this.verifyFrom(userId, pinned).finally(() => this.refreshing.delete(userId));
      this.refreshing.set(userId, run);
      return run;
    }
  }

  /**
   * Start verifying, together, the users whose hub version differs from the one pinned here: their
   * chains come in one request (paged) instead of one per user; each is verified as `current` would.
   * `current` then finds the verification running and waits for it.
   */
  private async refreshMany(users: Array<{ userId: string; version: number }>): Promise<void> {
    const stale: Array<{ userId: string; pinned: SignedDeviceListData | undefined }> = [];
    for (const { userId, version } of users) {
      const pinned = await this.pinned(userId);
      if ((pinned && pinned.version === version) || (!pinned && version === 0) || this.refreshing.has(userId)) continue;
      stale.push({ userId, pinned });
    }
    if (stale.length < 2) return;
    const chains = new Map((await this.hub.deviceListChains(stale.map((u) => ({ userId: u.userId, after: u.pinned?.version ?? 0 })))).map((c) => [c.userId, c]));
    for (const { userId, pinned } of stale) {
      if (this.refreshing.has(userId)) continue;
      const run = this.verifyFrom(userId, pinned, chains.get(userId) ?? null).finally(() => this.refreshing.delete(userId));
      run.catch(() => {}); // `current` awaits it and sees the outcome
      this.refreshing.set(userId, run);
    }
  }

  /** `prefetched`: the chain read for this user in a batch (null: the hub gave none); else it is read here. */
  private async verifyFrom(userId: string, pinned: SignedDeviceListData | undefined, prefetched?: DeviceListChain | null): Promise<SignedDeviceListData | undefined> {
    const reject = (problem: DeviceListChainProblem, at: number): never => {
      this.events().deviceListRejected({ userId, problem, version: at });
      if (problem === 'rollback') {
        throw new CurbsideError(ErrorCode.DEVICE_LIST_ROLLBACK, `The hub offered an older device list for ${userId} than this device verified; nothing is sent to them`, { userId, version: at, known: pinned?.version });
      }
      throw new CurbsideError(ErrorCode.DEVICE_LIST_INVALID, `The device list of ${userId} does not verify (${problem}); nothing is sent to them`, { userId, problem, version: at });
    };
    // A fresh read: its version is what the hub holds now.
    const chain = prefetched !== undefined ? (prefetched ?? undefined) : (await this.hub.deviceListChains([{ userId, after: pinned?.version ?? 0 }]))[0];
    const newest = chain?.version ?? 0;
    if (newest < (pinned?.version ?? 0)) return reject('rollback', newest);
    if (newest === 0) return undefined;
    if (pinned && newest === pinned.version) return pinned;
    const result = verifyDeviceListChain(userId, pinned, chain!.lists, newest);
    if (!result.ok) return reject(result.problem, result.version);
    await this.store.put('deviceLists', userId, result.list);
    this.memo.set(userId, result.list);
    if (pinned && result.changed) this.events().deviceListChanged({ userId, version: result.list.version, added: result.added, removed: result.removed });
    return result.list;
  }

  /**
   * After a connect: register this device if its user has no signed list yet (version 1, naming
   * only it), and say whether it is linked.
   */
  async register(): Promise<LinkState> {
    const me = this.self();
    for (let attempt = 0; attempt < 3; attempt++) {
      const list = await this.stored(me.userId);
      const keys = await this.localKeys();
      if (list) return list.devices.some((d) => d.deviceId === me.deviceId && bytesEqual(d.identityKey, keys.identity.publicKey)) ? 'linked' : 'pending';
      const first = signDeviceList(keys.identity, me.userId, me.deviceId, 1, [{ deviceId: me.deviceId, identityKey: keys.identity.publicKey }]);
      try {
        await this.hub.publishDeviceList(first);
        await this.pin(me.userId, first);
        return 'linked';
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.CONFLICT) throw e; // another device registered first: look again
      }
    }
    throw new CurbsideError(ErrorCode.CONFLICT, 'Could not settle this user’s device list; try again');
  }

  /** The code this device shows to be linked. */
  async linkCode(): Promise<LinkCode> {
    const me = this.self();
    return { deviceId: me.deviceId, code: deviceLinkCode(me.userId, me.deviceId, (await this.localKeys()).identity.publicKey) };
  }

  /**
   * Sign the next version of this user's list with `deviceId` added, after checking that the key the
   * hub presents for it matches `code` (shown on that device). Revoked devices are left out.
   */
  async link(deviceId: string, code: string): Promise<number> {
    const me = this.self();
    const mine = await this.hub.myDevices();
    const target = mine.find((d) => d.deviceId === deviceId && d.revokedAt === undefined);
    if (!target?.identityKey) throw new CurbsideError(ErrorCode.NOT_FOUND, `This user has no device ${deviceId} with published keys to link`, { deviceId });
    const expected = deviceLinkCode(me.userId, deviceId, target.identityKey);
    if (!constantTimeEqual(utf8(digits(expected)), utf8(digits(code)))) {
      throw new CurbsideError(ErrorCode.LINK_CODE_MISMATCH, 'The code does not match the device the hub presents: it was mistyped, or the device is not the one on your screen', { deviceId });
    }
    const identityKey = target.identityKey;
    return this.change((devices) => [...devices.filter((d) => d.deviceId !== deviceId), { deviceId, identityKey }], mine);
  }

  /** Sign the next version of this user's list without `deviceId` (a lost device). Returns the version, or undefined if it was not listed. */
  async unlink(deviceId: string): Promise<number | undefined> {
    const me = this.self();
    if (deviceId === me.deviceId) return undefined;
    const list = await this.stored(me.userId);
    if (!list?.devices.some((d) => d.deviceId === deviceId)) return undefined;
    return this.change((devices) => devices.filter((d) => d.deviceId !== deviceId), await this.hub.myDevices());
  }

  private async change(edit: (devices: SignedDeviceListData['devices']) => SignedDeviceListData['devices'], mine: OwnDevice[]): Promise<number> {
    const me = this.self();
    const keys = await this.localKeys();
    for (let attempt = 0; ; attempt++) {
      const list = await this.stored(me.userId);
      if (!list?.devices.some((d) => d.deviceId === me.deviceId)) {
        throw new CurbsideError(ErrorCode.DEVICE_NOT_LINKED, 'Only a linked device can change this user’s device list');
      }
      const revoked = new Set(mine.filter((d) => d.revokedAt !== undefined).map((d) => d.deviceId));
      const next = signDeviceList(keys.identity, me.userId, me.deviceId, list.version + 1, edit(list.devices.filter((d) => !revoked.has(d.deviceId))));
      try {
        await this.hub.publishDeviceList(next);
        await this.pin(me.userId, next, list);
        return next.version;
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.CONFLICT || attempt >= 2) throw e;
      }
    }
  }

  private async pin(userId: string, list: SignedDeviceListData, previous?: SignedDeviceListData): Promise<void> {
    await this.store.put('deviceLists', userId, list);
    this.memo.set(userId, list);
    if (previous) this.events().deviceListChanged({ userId, version: list.version, ...deviceListDiff(previous, list) });
  }
}

function digits(code: string): string {
  return code.replace(/\D/g, '');
}
