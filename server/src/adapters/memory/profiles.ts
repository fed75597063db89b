import { profileMatches, type DirectoryProfile, type ProfileFields } from '@curbside/shared';
import { effectiveProfile, hasProfileFields, type ProfileChange, type ProfileDirectory } from '../../ports/profiles.js';

/** `ProfileDirectory` in memory (the embedded default and fast tests). */
export class MemoryProfiles implements ProfileDirectory {
  /** orgId → userId → the two sources. */
  private readonly orgs = new Map<string, Map<string, { token?: ProfileFields; admin?: ProfileFields }>>();

  private entry(orgId: string, userId: string) {
    let users = this.orgs.get(orgId);
    if (!users) this.orgs.set(orgId, (users = new Map()));
    let e = users.get(userId);
    if (!e) users.set(userId, (e = {}));
    return e;
  }

  async recordTokenProfile(input: { orgId: string; userId: string; profile: ProfileFields; now: number }): Promise<void> {
    this.entry(input.orgId, input.userId).token = { ...input.profile };
  }

  async setAdminProfile(input: { orgId: string; userId: string; change: ProfileChange; now: number }): Promise<DirectoryProfile> {
    const e = this.entry(input.orgId, input.userId);
    const admin: ProfileFields = { ...e.admin };
    for (const [field, value] of Object.entries(input.change) as Array<[keyof ProfileFields, string | null | undefined]>) {
      if (value === null) delete admin[field];
      else if (value !== undefined) admin[field] = value;
    }
    e.admin = admin;
    return effectiveProfile(input.userId, e.token, e.admin);
  }

  async lookupProfiles(orgId: string, userIds: readonly string[]): Promise<DirectoryProfile[]> {
    const users = this.orgs.get(orgId);
    if (!users) return [];
    const out: DirectoryProfile[] = [];
    for (const userId of new Set(userIds)) {
      const e = users.get(userId);
      const p = e && effectiveProfile(userId, e.token, e.admin);
      if (p && hasProfileFields(p)) out.push(p);
    }
    return out;
  }

  async searchProfiles(orgId: string, words: readonly string[], limit: number): Promise<DirectoryProfile[]> {
    const users = this.orgs.get(orgId);
    if (!users) return [];
    return [...users.entries()]
      .map(([userId, e]) => effectiveProfile(userId, e.token, e.admin))
      .filter((p) => hasProfileFields(p) && profileMatches(p, words))
      .sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
      .slice(0, limit);
  }
}
