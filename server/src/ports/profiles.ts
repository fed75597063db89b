/**
 * The organisation's directory of profiles (display name, role or specialty, department): what
 * clients show instead of user ids. Two sources per user, kept apart: what the user's tokens state
 * (recorded at sign-in) and what an operator set (`POST /admin/users/profile`); the operator's value
 * wins field by field. Part of `Storage` (every adapter implements it) and covered by
 * `test/contract/profiles.contract.test.ts` over memory and MongoDB.
 */
import { PROFILE_FIELDS, type DirectoryProfile, type ProfileFields } from '@curbside/shared';

/** An operator's change: a value sets the field, `null` clears the operator's value, absent leaves it. */
export type ProfileChange = { [K in keyof ProfileFields]?: string | null };

export interface ProfileDirectory {
  /**
   * Record the profile the user's token states; it replaces the previous token profile as a whole
   * (a field the identity provider stopped sending is cleared). Operator values are untouched.
   */
  recordTokenProfile(input: { orgId: string; userId: string; profile: ProfileFields; now: number }): Promise<void>;
  /** Apply an operator's change and answer the profile clients now see. A user not seen yet may be given one. */
  setAdminProfile(input: { orgId: string; userId: string; change: ProfileChange; now: number }): Promise<DirectoryProfile>;
  /** The profiles of these users, in the order asked; users without any profile field are left out. */
  lookupProfiles(orgId: string, userIds: readonly string[]): Promise<DirectoryProfile[]>;
  /** Profiles matching every word (`profileMatches`), ordered by user id, at most `limit`. */
  searchProfiles(orgId: string, words: readonly string[], limit: number): Promise<DirectoryProfile[]>;
}

/** The profile clients see: the operator's fields over the token's. Absent fields stay absent. */
export function effectiveProfile(userId: string, token: ProfileFields | undefined, admin: ProfileFields | undefined): DirectoryProfile {
  const out: DirectoryProfile = { userId };
  for (const field of PROFILE_FIELDS) {
    const value = admin?.[field] ?? token?.[field];
    if (value !== undefined) out[field] = value;
  }
  return out;
}

/** Whether a profile has anything besides its user id. */
export function hasProfileFields(p: DirectoryProfile): boolean {
  return p.displayName !== undefined || p.role !== undefined || p.department !== undefined;
}
