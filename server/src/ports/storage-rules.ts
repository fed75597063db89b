import { compositeKey } from '@curbside/shared';

/** Rules every storage implementation shares, so they cannot drift apart. */

/**
 * How long a node trusts the highest seq it knows stored in a conversation (its own append, or a
 * collision) as the base of its next seq, without reading the conversation's seq marks (ms, by the
 * hub's clock). The sweep never deletes an envelope younger than {@link SWEEP_GRACE_MS}, which is
 * longer by more than any clock skew between nodes: so every seq above a trusted base is either free
 * or still stored (its insert collides), and no seq is ever used twice (docs/delivery.md).
 */
export const SEQ_HINT_TRUST_MS = 30_000;
/** The youngest an envelope the sweep deletes (delivered to every device, or past retention) may be (ms). */
export const SWEEP_GRACE_MS = 5 * 60_000;

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

/** The one key a requester's thread with an on-call role always has (its first part, `role`, is no other key's). */
export function roleThreadKey(roleId: string, requesterUserId: string): string {
  return compositeKey('role', roleId, requesterUserId);
}

/** Whether two member lists hold the same users (order aside). */
export function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((u) => set.has(u));
}
