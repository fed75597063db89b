import { compositeKey } from '@curbside/shared';

/** Rules every storage implementation shares, so they cannot drift apart. */

/** Members with the creator first, each once, in the order given. */
export function uniqueMembers(createdBy: string, memberUserIds: readonly string[]): string[] {
  return [...new Set([createdBy, ...memberUserIds])];
}

/**
 * The one key a direct conversation between the same two users always has. Every conversation of an
 * organisation has a unique key: `directKey` for direct ones, `groupKey` for groups (one part more or
 * less, so a pair of users can never take a group's key).
 */
export function directKey(members: readonly string[]): string {
  if (members.length !== 2) throw new Error('a direct conversation has exactly two members');
  return compositeKey('direct', ...[...members].sort());
}

export function groupKey(conversationId: string): string {
  return compositeKey('group', conversationId);
}
