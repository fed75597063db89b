import { ErrorCode, Limits, deviceListMessage, type DeviceListChain, type SignedDeviceList, type SocketData } from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import type { Caller } from './message-relay.js';
import type { DeviceDirectory } from './device-directory.js';
import { ed25519Verify } from './ed25519.js';
import { DEFAULT_RECENT_AUTH_SEC, requireRecentSignIn } from '../security/recent-sign-in.js';

function invalid(message: string, details?: Record<string, unknown>): HubError {
  return new HubError(ErrorCode.DEVICE_LIST_INVALID, message, details);
}

/**
 * Signed device lists on the hub (shared/src/device-lists.ts). The hub checks everything it can
 * before it stores a list (clients check the chain again and never trust the hub with it):
 * - the version is the next one;
 * - the calling device signed it, and is in the list it replaces (or, for version 1, in this one);
 * - the signature verifies under the signer's identity key as the previous list names it;
 * - every listed device exists for this user, is not revoked, and published exactly that identity key;
 * - the signer stays listed (a device does not sign itself out; another device or a revocation does);
 * - a version that adds or drops another device comes from a recent sign-in (`auth_time`), as revoking
 *   a sibling does: a stolen, still signed-in phone cannot link devices of its own or list the owner's
 *   laptop out.
 */
export class DeviceLists {
  constructor(
    private readonly storage: Storage,
    private readonly directory: DeviceDirectory,
    private readonly options: { now?: () => number; recentAuthSec?: number | undefined } = {},
  ) {}

  async publish(caller: Caller & Pick<SocketData, 'authTime'>, list: SignedDeviceList): Promise<{ version: number }> {
    const { orgId, userId, deviceId } = caller;
    const [history, own] = await Promise.all([this.storage.deviceListHistory(orgId, userId), this.storage.listOwnDevices(orgId, userId)]);
    const current = history?.lists.at(-1);
    const version = history?.version ?? 0;
    if (list.version !== version + 1) {
      throw new HubError(ErrorCode.CONFLICT, `The next device-list version is ${version + 1}`, { version });
    }
    if (list.signerDeviceId !== deviceId) throw invalid('A device signs a device list only as itself');
    const signer = (current ?? list).devices.find((d) => d.deviceId === deviceId);
    if (!signer) {
      throw new HubError(ErrorCode.DEVICE_NOT_LINKED, "This device is not in its user's signed device list: only a listed device signs the next one");
    }
    if (!list.devices.some((d) => d.deviceId === deviceId)) throw invalid('The signing device must stay in the list');
    if (current && changesOthers(current.devices, list.devices, deviceId)) {
      requireRecentSignIn(caller, (this.options.now ?? Date.now)(), this.options.recentAuthSec ?? DEFAULT_RECENT_AUTH_SEC, 'link or unlink another of your devices');
    }
    if (!ed25519Verify(signer.identityKey, deviceListMessage(userId, list), list.signature)) {
      throw new HubError(ErrorCode.BAD_SIGNATURE, "The device list signature does not verify under the signer's identity key");
    }
    const byId = new Map(own.map((d) => [d.deviceId, d]));
    for (const d of list.devices) {
      const known = byId.get(d.deviceId);
      if (!known || known.revokedAt !== undefined || !known.identityKey || !Buffer.from(known.identityKey).equals(d.identityKey)) {
        throw invalid('A listed device is unknown, revoked, or has another identity key', { deviceId: d.deviceId });
      }
    }
    const stored = await this.storage.appendDeviceList({ orgId, userId, expectedVersion: version, list, maxHistory: Limits.MAX_DEVICE_LIST_HISTORY });
    if (stored === 'conflict') throw new HubError(ErrorCode.CONFLICT, 'Another device published the next device list first', { version });
    await this.directory.changed(orgId, userId);
    return { version: list.version };
  }

  /** Each user's kept versions after `after` (users without a list get version 0 and none). */
  async chains(caller: Caller, users: ReadonlyArray<{ userId: string; after: number }>): Promise<DeviceListChain[]> {
    return Promise.all(
      users.map(async ({ userId, after }) => {
        const history = await this.storage.deviceListHistory(caller.orgId, userId);
        return { userId, version: history?.version ?? 0, lists: (history?.lists ?? []).filter((l) => l.version > after) };
      }),
    );
  }
}

/** Whether `next` adds or drops a device other than `signer` (or changes one's key) against `previous`. */
function changesOthers(previous: SignedDeviceList['devices'], next: SignedDeviceList['devices'], signer: string): boolean {
  const key = (d: SignedDeviceList['devices'][number]) => `${d.deviceId} ${Buffer.from(d.identityKey).toString('base64')}`;
  const before = new Set(previous.filter((d) => d.deviceId !== signer).map(key));
  const after = new Set(next.filter((d) => d.deviceId !== signer).map(key));
  return before.size !== after.size || [...after].some((k) => !before.has(k));
}
