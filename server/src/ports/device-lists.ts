import type { SignedDeviceList } from '@curbside/shared';

/** The newest signed device list of a user, without its history. */
export interface DeviceListHead {
  userId: string;
  version: number;
  deviceIds: string[];
}

/**
 * Signed device lists (shared/src/device-lists.ts), as stored: per user, the newest version, the
 * devices it names, and the last versions kept (oldest first). The hub verifies a list before it
 * gets here; storage only keeps versions consecutive and writes atomic. Part of `Storage`; covered
 * by `test/contract/device-lists.contract.test.ts` over memory and the Mongo-wire database.
 */
export interface DeviceListStore {
  /** Heads of these users' lists (users without one are left out). */
  deviceListHeads(orgId: string, userIds: readonly string[]): Promise<DeviceListHead[]>;
  /** The kept versions of a user's list, oldest first, or undefined if the user has none. */
  deviceListHistory(orgId: string, userId: string): Promise<{ version: number; lists: SignedDeviceList[] } | undefined>;
  /**
   * Store `list` as the user's newest version if the newest stored is `expectedVersion` (0: none
   * yet) and `list.version` is `expectedVersion + 1`; keep the last `maxHistory` versions.
   * @returns `conflict` when another version got there first (nothing changed).
   */
  appendDeviceList(input: { orgId: string; userId: string; expectedVersion: number; list: SignedDeviceList; maxHistory: number }): Promise<'ok' | 'conflict'>;
}
