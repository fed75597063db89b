/** Rules every storage implementation shares, so they cannot drift apart. */

/** Members with the creator first, each once, in the order given. */
export function uniqueMembers(createdBy: string, memberUserIds: readonly string[]): string[] {
  return [...new Set([createdBy, ...memberUserIds])];
}

/** The one key a direct conversation between the same two users always has. */
export function directKey(members: readonly string[]): string {
  if (members.length !== 2) throw new Error('a direct conversation has exactly two members');
  return [...members].sort().join('\u0000');
}
