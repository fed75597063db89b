import type { DeviceIdentity } from '@curbside/shared';
import type { Storage } from '../ports/storage.js';
import type { DirectoryTags } from '../ports/directory-tags.js';
import type { Logger } from '../logger.js';

/** Users whose device lists one node keeps at most (least recently used forgotten first). */
const DEFAULT_MAX_USERS = 50_000;

export interface DeviceDirectoryOptions {
  storage: Pick<Storage, 'listDeviceIdentities'>;
  /** Without tags nothing is cached: every call reads the storage. */
  tags?: DirectoryTags | undefined;
  logger?: Pick<Logger, 'warn'> | undefined;
  maxUsers?: number | undefined;
}

/**
 * The devices (with published keys) of a conversation's members: read on every send to check the
 * recipient list and to record whom the envelope is for, so it must never be stale.
 *
 * With `tags`, each node keeps users' device lists in memory under the tag it read before reading
 * the list, and checks the tags (one Redis round trip for all members) on every call; a list whose
 * tag changed is read again. Whoever changes a device list (a first key publish, a revocation) calls
 * `changed` after storing the change and before answering. If the tags cannot be read the storage
 * answers instead; if `changed` fails, the caller's request fails and its retry bumps the tag again.
 */
export class DeviceDirectory {
  private readonly storage: Pick<Storage, 'listDeviceIdentities'>;
  private readonly tags: DirectoryTags | undefined;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  private readonly maxUsers: number;
  /** Key: org SPACE user. Map order doubles as recency. */
  private readonly cache = new Map<string, { tag: string; devices: DeviceIdentity[] }>();
  private hits = 0;
  private misses = 0;

  constructor(options: DeviceDirectoryOptions) {
    this.storage = options.storage;
    this.tags = options.tags;
    this.logger = options.logger;
    this.maxUsers = options.maxUsers ?? DEFAULT_MAX_USERS;
  }

  /** Devices of these users that have published keys, ordered by user then device (as the storage orders them). */
  async identities(orgId: string, userIds: readonly string[]): Promise<DeviceIdentity[]> {
    if (!this.tags) return this.storage.listDeviceIdentities(orgId, userIds);
    const users = [...new Set(userIds)].sort(byCodeUnits);
    let tags: string[];
    try {
      tags = await this.tags.read(orgId, users);
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, 'device-list tags unavailable; reading device lists from storage');
      return this.storage.listDeviceIdentities(orgId, users);
    }
    const lists = new Map<string, DeviceIdentity[]>();
    const stale: string[] = [];
    users.forEach((userId, i) => {
      const k = `${orgId} ${userId}`;
      const entry = this.cache.get(k);
      if (entry && entry.tag === tags[i]) {
        this.cache.delete(k);
        this.cache.set(k, entry);
        lists.set(userId, entry.devices);
      } else stale.push(userId);
    });
    this.hits += users.length - stale.length;
    this.misses += stale.length;
    if (stale.length > 0) {
      const fresh = await this.storage.listDeviceIdentities(orgId, stale);
      for (const userId of stale) {
        const devices = fresh.filter((d) => d.userId === userId);
        lists.set(userId, devices);
        this.remember(`${orgId} ${userId}`, { tag: tags[users.indexOf(userId)]!, devices });
      }
    }
    // Copies: callers may keep or change what they get.
    return users.flatMap((u) => lists.get(u)!.map((d) => ({ ...d, identityKey: new Uint8Array(d.identityKey) })));
  }

  /** The user's device list changed and the change is stored: every node reads it again. */
  async changed(orgId: string, userId: string): Promise<void> {
    this.cache.delete(`${orgId} ${userId}`);
    await this.tags?.bump(orgId, userId);
  }

  /** Cache hits and misses (users) since start. */
  stats(): { hits: number; misses: number; users: number } {
    return { hits: this.hits, misses: this.misses, users: this.cache.size };
  }

  private remember(key: string, entry: { tag: string; devices: DeviceIdentity[] }): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > this.maxUsers) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
