/**
 * Version tags of users' device lists, shared by every hub node, so that a node can keep device
 * lists in memory and still never use a stale one.
 *
 * The rule that makes a cached list safe: a reader reads the tag first and the list second, and keeps
 * the list under the tag it read; a writer stores its change first and sets a new tag second. A list
 * kept under tag T therefore contains every change whose new tag was set before T was read, and a
 * change acknowledged to its client (tag already set) is seen by every later send on every node.
 * Tags are random, never counters, so a tag store that lost its data (a Redis restart) cannot hand
 * out an old tag again: a missing tag is replaced by a new one, which no cache holds.
 *
 * Implementations: `MemoryDirectoryTags` (one process) and `RedisDirectoryTags` (every node). Both
 * pass `test/contract/directory-tags.contract.ts`.
 */
export interface DirectoryTags {
  /** The current tag of each user's device list, in the order given (a user without one gets a new one). */
  read(orgId: string, userIds: readonly string[]): Promise<string[]>;
  /** The user's device list changed (call after the change is stored): give it a new tag. */
  bump(orgId: string, userId: string): Promise<void>;
}
