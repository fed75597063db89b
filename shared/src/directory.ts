/**
 * The organisation's directory: who a user id is, for people reading a conversation. A profile is a
 * display name, a role or specialty ("Cardiology registrar") and a department ("Ward 4"), as the
 * identity provider's tokens state them (OIDC_NAME_CLAIM, OIDC_PROFILE_ROLE_CLAIM,
 * OIDC_DEPARTMENT_CLAIM) or as an operator set them (`POST /admin/users/profile`, which wins field by
 * field). Profiles are metadata the hub holds in plaintext, like user ids; messages stay sealed.
 * Every answer is scoped to the caller's organisation.
 */
import { z } from 'zod';
import { IdSchema, storedTextSchema, type Ack } from './schemas.js';
import { Limits } from './limits.js';
import type { ClientEvent } from './events.js';

/** One profile field: trimmed, 1 to `MAX_PROFILE_FIELD_LENGTH` characters, no control characters. */
export const ProfileFieldSchema = storedTextSchema(Limits.MAX_PROFILE_FIELD_LENGTH);

/** Who a user is, as the directory knows them. A field nobody stated is absent. */
export const DirectoryProfileSchema = z.object({
  userId: IdSchema,
  displayName: ProfileFieldSchema.optional(),
  /** Role or specialty, e.g. "Cardiology registrar". Not a care-team role (owner, admin, member). */
  role: ProfileFieldSchema.optional(),
  department: ProfileFieldSchema.optional(),
});
export type DirectoryProfile = z.infer<typeof DirectoryProfileSchema>;

/** The profile fields, without the user id. */
export type ProfileFields = Omit<DirectoryProfile, 'userId'>;
export const PROFILE_FIELDS = ['displayName', 'role', 'department'] as const satisfies ReadonlyArray<keyof ProfileFields>;

/** `directory:lookup`: the profiles of these users (users without any profile are left out). */
export const DirectoryLookupRequestSchema = z.strictObject({ userIds: z.array(IdSchema).min(1).max(Limits.MAX_KEY_QUERY_USERS) });
export type DirectoryLookupRequest = z.input<typeof DirectoryLookupRequestSchema>;

/**
 * `directory:search`: profiles whose name, role, department or user id contain every word of `query`
 * (case-insensitive), ordered by user id, at most `limit` (default 20).
 */
export const DirectorySearchRequestSchema = z.strictObject({
  query: storedTextSchema(Limits.MAX_DIRECTORY_QUERY_LENGTH),
  limit: z.number().int().min(1).max(Limits.MAX_DIRECTORY_RESULTS).optional(),
});
export type DirectorySearchRequest = z.input<typeof DirectorySearchRequestSchema>;

export const DirectoryResultSchema = z.object({ profiles: z.array(DirectoryProfileSchema) });
export type DirectoryResult = z.infer<typeof DirectoryResultSchema>;

/** The words of a search query, lower-cased: what every adapter matches (each word must occur). */
export function searchWords(query: string): string[] {
  return query.toLowerCase().split(/\s+/).filter((w) => w.length > 0).slice(0, 8);
}

/** Whether a profile matches every word (the one rule every adapter applies). */
export function profileMatches(profile: DirectoryProfile, words: readonly string[]): boolean {
  const haystack = [profile.userId, profile.displayName, profile.role, profile.department]
    .filter((v): v is string => v !== undefined)
    .join('\n')
    .toLowerCase();
  return words.every((w) => haystack.includes(w));
}

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging).
declare module './socket.js' {
  interface SocketData {
    /** The directory profile the token states (name, role or specialty, department), if any; recorded at the handshake. */
    profile?: ProfileFields | undefined;
  }
  interface ClientToServerEvents {
    [ClientEvent.DIRECTORY_LOOKUP]: (req: DirectoryLookupRequest, ack: (res: Ack<DirectoryResult>) => void) => void;
    [ClientEvent.DIRECTORY_SEARCH]: (req: DirectorySearchRequest, ack: (res: Ack<DirectoryResult>) => void) => void;
  }
}
