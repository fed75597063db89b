import { Limits, type DirectoryProfile } from '@curbside/shared';
import { CurbsideError, ErrorCode } from './errors.js';
import type { HubApi } from './hub/api.js';

/** How long a looked-up profile is used before it is asked for again. */
const PROFILE_TTL_MS = 5 * 60_000;
/** Profiles kept at most; the oldest go first. */
const MAX_CACHED = 5_000;

export type { DirectoryProfile };

/**
 * The organisation's directory (`client.directory`): who a user id is — display name, role or
 * specialty, department — as the hospital's identity provider or its operators state it. Profiles are
 * metadata the hub holds; messages stay end-to-end encrypted.
 *
 * Lookups are cached for five minutes, and concurrent lookups of the same user share one request.
 */
export class Directory {
  private readonly cache = new Map<string, { profile: DirectoryProfile; at: number }>();
  private readonly inFlight = new Map<string, Promise<void>>();

  /** @internal */
  constructor(
    private readonly api: HubApi,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Profiles of these users, in the order asked. A user the directory knows nothing about comes back
   * as `{ userId }` alone, so callers can always fall back to the id.
   * @param options.fresh ask the hub even for profiles in the cache
   * @throws CurbsideError as the hub answers (e.g. NOT_CONNECTED, RATE_LIMITED)
   */
  async lookup(userIds: readonly string[], options: { fresh?: boolean } = {}): Promise<DirectoryProfile[]> {
    const unique = [...new Set(userIds)];
    const now = this.now();
    const stale = (u: string) => {
      const hit = this.cache.get(u);
      return !hit || now - hit.at >= PROFILE_TTL_MS;
    };
    const missing = unique.filter((u) => options.fresh || (!this.inFlight.has(u) && stale(u)));
    if (missing.length) {
      const request = this.api.directoryLookup(missing).then((profiles) => {
        const at = this.now();
        const found = new Map(profiles.map((p) => [p.userId, p]));
        for (const u of missing) this.remember(u, found.get(u) ?? { userId: u }, at);
      });
      const shared = request.finally(() => {
        for (const u of missing) if (this.inFlight.get(u) === shared) this.inFlight.delete(u);
      });
      for (const u of missing) this.inFlight.set(u, shared);
    }
    await Promise.all(new Set(unique.map((u) => this.inFlight.get(u)).filter((p) => p !== undefined)));
    return unique.map((u) => this.cache.get(u)?.profile ?? { userId: u });
  }

  /** One user's profile (`{ userId }` alone when the directory knows nothing of them). */
  async profile(userId: string): Promise<DirectoryProfile> {
    const [p] = await this.lookup([userId]);
    return p ?? { userId };
  }

  /**
   * The profile in the cache, without asking the hub (undefined when not looked up yet): for
   * rendering synchronously, with `lookup` to fill it.
   */
  cached(userId: string): DirectoryProfile | undefined {
    return this.cache.get(userId)?.profile;
  }

  /**
   * Users whose name, role, department or id contain every word of `query` (case-insensitive),
   * ordered by user id. The results refresh the cache.
   * @param options.limit at most this many (1–50; default 20)
   * @throws CurbsideError INVALID_PAYLOAD locally for an empty or over-long query
   */
  async search(query: string, options: { limit?: number } = {}): Promise<DirectoryProfile[]> {
    const q = query.trim();
    if (q.length === 0 || q.length > Limits.MAX_DIRECTORY_QUERY_LENGTH) {
      throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, `A directory search needs 1 to ${Limits.MAX_DIRECTORY_QUERY_LENGTH} characters`);
    }
    const profiles = await this.api.directorySearch(q, options.limit);
    const at = this.now();
    for (const p of profiles) this.remember(p.userId, p, at);
    return profiles;
  }

  private remember(userId: string, profile: DirectoryProfile, at: number): void {
    this.cache.delete(userId);
    this.cache.set(userId, { profile, at });
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
  }
}
