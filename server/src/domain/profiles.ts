/**
 * The directory of profiles, as the gateway serves it: lookups and searches within the caller's
 * organisation, and the profile a token states, recorded at sign-in.
 */
import { searchWords, type DirectoryLookupRequest, type DirectoryProfile, type DirectorySearchRequest, type SocketData } from '@curbside/shared';
import { compositeKey } from '@curbside/shared';
import type { ProfileDirectory } from '../ports/profiles.js';

const DEFAULT_SEARCH_LIMIT = 20;
/** Token profiles this node remembers having recorded (so an unchanged one costs no write); cleared when full. */
const RECORDED_CACHE_MAX = 50_000;

export class Profiles {
  /** compositeKey(org, user) → the token profile this node last recorded, as JSON. */
  private readonly recorded = new Map<string, string>();

  constructor(
    private readonly profiles: ProfileDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Record the profile the token states, if it states one. Skipped when this node already recorded the
   * same profile for the user (every handshake would otherwise write it again).
   */
  async recordSignIn(identity: SocketData): Promise<void> {
    if (!identity.profile) return;
    const key = compositeKey(identity.orgId, identity.userId);
    const json = JSON.stringify([identity.profile.displayName, identity.profile.role, identity.profile.department]);
    if (this.recorded.get(key) === json) return;
    await this.profiles.recordTokenProfile({ orgId: identity.orgId, userId: identity.userId, profile: identity.profile, now: this.now() });
    if (this.recorded.size >= RECORDED_CACHE_MAX) this.recorded.clear();
    this.recorded.set(key, json);
  }

  async lookup(caller: SocketData, req: DirectoryLookupRequest): Promise<{ profiles: DirectoryProfile[] }> {
    return { profiles: await this.profiles.lookupProfiles(caller.orgId, req.userIds) };
  }

  async search(caller: SocketData, req: DirectorySearchRequest): Promise<{ profiles: DirectoryProfile[] }> {
    return { profiles: await this.profiles.searchProfiles(caller.orgId, searchWords(req.query), req.limit ?? DEFAULT_SEARCH_LIMIT) };
  }
}
