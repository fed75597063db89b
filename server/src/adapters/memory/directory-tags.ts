import { compositeKey } from '@curbside/shared';
import { randomUUID } from 'node:crypto';
import type { DirectoryTags } from '../../ports/directory-tags.js';

/** Device-list tags for a single hub process (see `DirectoryTags`). */
export class MemoryDirectoryTags implements DirectoryTags {
  private readonly tags = new Map<string, string>();

  async read(orgId: string, userIds: readonly string[]): Promise<string[]> {
    return userIds.map((userId) => {
      const k = compositeKey(orgId, userId);
      let tag = this.tags.get(k);
      if (tag === undefined) this.tags.set(k, (tag = randomUUID()));
      return tag;
    });
  }

  async bump(orgId: string, userId: string): Promise<void> {
    this.tags.set(compositeKey(orgId, userId), randomUUID());
  }
}
