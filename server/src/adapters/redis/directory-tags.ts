import { compositeKey } from '@curbside/shared';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DirectoryTags } from '../../ports/directory-tags.js';
import { unavailableAfter } from '../../errors.js';

const TAGS_UNREACHABLE = 'Device-list tags unreachable; retry later';

export interface RedisDirectoryTagsOptions {
  redis: Redis;
  keyPrefix: string;
  /**
   * How long a tag lives. An expired tag is replaced by a new one, so every node reads the list from
   * the database again: this bounds how long a change made behind the hub's back (a restore, a
   * manual edit) can go unseen. @default 15 min
   */
  ttlMs?: number;
  /**
   * A read or bump slower than this fails with UNAVAILABLE (Redis down: ioredis would queue the
   * command for a long time). A failed read makes the hub read the database instead; a failed bump
   * fails the request that changed the device list, and its retry bumps again. @default 500
   */
  timeoutMs?: number;
}

/** Device-list tags in Redis, shared by every hub node (see `DirectoryTags`). One round trip per read. */
export class RedisDirectoryTags implements DirectoryTags {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly timeoutMs: number;

  constructor(options: RedisDirectoryTagsOptions) {
    this.redis = options.redis;
    this.prefix = `${options.keyPrefix}dirtag:`;
    this.ttlMs = options.ttlMs ?? 15 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 500;
  }

  private key(orgId: string, userId: string): string {
    return `${this.prefix}${compositeKey(orgId, userId)}`;
  }

  read(orgId: string, userIds: readonly string[]): Promise<string[]> {
    return unavailableAfter(this.readTags(orgId, userIds), this.timeoutMs, TAGS_UNREACHABLE);
  }

  private async readTags(orgId: string, userIds: readonly string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    const keys = userIds.map((u) => this.key(orgId, u));
    const found = await this.redis.mget(keys);
    const missing = found.map((t, i) => (t === null ? i : -1)).filter((i) => i >= 0);
    if (missing.length === 0) return found as string[];
    // SET NX GET: ours if there was none, else the one another node set meanwhile (Redis >= 7.0).
    const pipeline = this.redis.pipeline();
    const mine = missing.map(() => randomUUID());
    missing.forEach((i, j) => pipeline.set(keys[i]!, mine[j]!, 'PX', this.ttlMs, 'NX', 'GET'));
    const answers = await pipeline.exec();
    if (!answers) throw new Error('redis pipeline was discarded');
    const tags = [...found];
    missing.forEach((i, j) => {
      const [err, prior] = answers[j]!;
      if (err) throw err;
      tags[i] = typeof prior === 'string' ? prior : mine[j]!;
    });
    return tags as string[];
  }

  async bump(orgId: string, userId: string): Promise<void> {
    await unavailableAfter(this.redis.set(this.key(orgId, userId), randomUUID(), 'PX', this.ttlMs), this.timeoutMs, TAGS_UNREACHABLE);
  }
}

