import { compositeKey, type Conversation, type DeviceIdentity } from '@curbside/shared';
import type { Storage } from '../ports/storage.js';
import type { DirectoryTags } from '../ports/directory-tags.js';
import type { Logger } from '../logger.js';

/** Users whose device lists one node keeps at most (least recently used forgotten first). */
const DEFAULT_MAX_USERS = 50_000;
/** Conversations one node keeps at most. */
const DEFAULT_MAX_CONVERSATIONS = 50_000;

/** A conversation's tag id: user ids contain no space, so it can never be a user's. */
/** A conversation's tag sits beside its members' (user ids hold no space, so no user id is one of these). */
function conversationTag(conversationId: string): string {
  return compositeKey('conversation', conversationId);
}

export interface DeviceDirectoryOptions {
  storage: Pick<Storage, 'listDeviceIdentities' | 'deviceListHeads' | 'getConversation'>;
  /** Without tags nothing is cached: every call reads the storage. */
  tags?: DirectoryTags | undefined;
  logger?: Pick<Logger, 'warn'> | undefined;
  maxUsers?: number | undefined;
  maxConversations?: number | undefined;
}

/**
 * The devices (with published keys) of a conversation's members: read on every send to check the
 * recipient list and to record whom the envelope is for, so it must never be stale.
 *
 * With `tags`, each node keeps users' device lists in memory under the tag it read before reading
 * the list, and checks the tags (one Redis round trip for all members) on every call; a list whose
 * tag changed is read again. Whoever changes a device list (a first key publish, a revocation) calls
 * `changed` after storing the change and before answering. If the tags cannot be read the storage
 * answers instead; if `changed` fails, the caller's request fails and its retry bumps the tag again.
 *
 * Conversations (members and team state) are kept the same way for the checks of a send, so one tag
 * read covers a conversation and its members' device lists. Whoever changes a conversation's
 * membership calls `conversationChanged` after storing the change.
 */
export class DeviceDirectory {
  private readonly storage: Pick<Storage, 'listDeviceIdentities' | 'deviceListHeads' | 'getConversation'>;
  private readonly tags: DirectoryTags | undefined;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  private readonly maxUsers: number;
  /** Key: org SPACE user. Map order doubles as recency. */
  private readonly cache = new Map<string, { tag: string; list: UserDevices }>();
  /** Key: org SPACE conversation. Map order doubles as recency. */
  private readonly conversations = new Map<string, { tag: string; conversation: Conversation }>();
  private readonly maxConversations: number;
  private hits = 0;
  private misses = 0;

  constructor(options: DeviceDirectoryOptions) {
    this.storage = options.storage;
    this.tags = options.tags;
    this.logger = options.logger;
    this.maxUsers = options.maxUsers ?? DEFAULT_MAX_USERS;
    this.maxConversations = options.maxConversations ?? DEFAULT_MAX_CONVERSATIONS;
  }

  /**
   * Devices of these users that have published keys and that their user's signed device list names
   * (all of them for a user without a signed list), ordered by user then device.
   */
  async identities(orgId: string, userIds: readonly string[]): Promise<DeviceIdentity[]> {
    return (await this.usersDevices(orgId, userIds)).devices;
  }

  /** `identities`, and which of the users have a signed device list. */
  async usersDevices(orgId: string, userIds: readonly string[]): Promise<UsersDevices> {
    const users = [...new Set(userIds)].sort(byCodeUnits);
    if (!this.tags) return flatten(users, await this.read(orgId, users));
    const tags = await this.readTags(orgId, users, 'device-list tags unavailable; reading device lists from storage');
    if (!tags) return flatten(users, await this.read(orgId, users));
    return this.lists(orgId, users, new Map(users.map((u, i) => [u, tags[i]!])));
  }

  /** Users' devices from storage, each user's filtered by their signed list if they have one. */
  private async read(orgId: string, users: readonly string[]): Promise<Map<string, UserDevices>> {
    const [all, heads] = await Promise.all([this.storage.listDeviceIdentities(orgId, users), this.storage.deviceListHeads(orgId, users)]);
    const listed = new Map(heads.map((h) => [h.userId, { only: new Set(h.deviceIds), version: h.version }]));
    const out = new Map<string, UserDevices>();
    for (const userId of users) {
      const head = listed.get(userId);
      out.set(userId, { devices: all.filter((d) => d.userId === userId && (!head || head.only.has(d.deviceId))), version: head?.version });
    }
    return out;
  }

  /**
   * A conversation and the devices (with published keys) of its members: what a send checks. With
   * tags, one tag read covers both when the conversation is cached. The conversation's `lastSeq` may
   * be behind (it changes on every send and has no tag): treat it as a hint.
   */
  async conversationWithDevices(
    orgId: string,
    conversationId: string,
    ahead?: TagReadAhead,
  ): Promise<{ conversation: Conversation | undefined; fence?: string } & UsersDevices> {
    if (!this.tags) return this.fromStorage(orgId, conversationId);
    const started = ahead && ahead.orgId === orgId && ahead.conversationId === conversationId ? ahead : this.readAhead(orgId, conversationId)!;
    const { guess } = started;
    const read = await started.read;
    if (!read) return this.fromStorage(orgId, conversationId);
    const tags = new Map(guess.map((u, i) => [u, read[i + 1]!]));
    const conversation = await this.conversationUnder(orgId, conversationId, read[0]!);
    if (!conversation) return { conversation: undefined, ...none() };
    const users = [...new Set(conversation.memberUserIds)].sort(byCodeUnits);
    const unread = users.filter((u) => !tags.has(u));
    if (unread.length > 0) {
      const more = await this.readTags(orgId, unread, 'device-list tags unavailable; reading device lists from storage');
      if (!more) return { conversation: copyConversation(conversation), ...flatten(users, await this.read(orgId, users)), fence: read[0]! };
      unread.forEach((u, i) => tags.set(u, more[i]!));
    }
    return { conversation: copyConversation(conversation), ...(await this.lists(orgId, users, tags)), fence: read[0]! };
  }

  /**
   * Start reading the tags a send of this conversation checks: the conversation's, and those of the
   * members this node has cached for it (a guess; others are read after). The read goes out at once,
   * so a caller that starts it in the same turn of the event loop as other Redis commands (the send's
   * rate limits) shares their round trip. Tags are read before the cached lists they validate are
   * used, as always: a change acknowledged before the read is seen. Undefined without tags.
   */
  readAhead(orgId: string, conversationId: string): TagReadAhead | undefined {
    if (!this.tags) return undefined;
    const cached = this.conversations.get(compositeKey(orgId, conversationId));
    const guess = cached ? [...new Set(cached.conversation.memberUserIds)].sort(byCodeUnits) : [];
    const read = this.readTags(orgId, [conversationTag(conversationId), ...guess], 'directory tags unavailable; reading the conversation and device lists from storage');
    return { orgId, conversationId, guess, read };
  }

  /**
   * Whether the conversation is unchanged since `conversationWithDevices` read it under `fence`: one
   * tag read, no database read. A membership change bumps the tag after it is stored and before its
   * statement is sequenced, so `true` here, after an append, means no change was sequenced before
   * that append. `undefined` when it cannot tell (no tags, or they cannot be read): ask storage.
   */
  async unchangedSince(orgId: string, conversationId: string, fence: string | undefined): Promise<boolean | undefined> {
    if (!this.tags || fence === undefined) return undefined;
    const read = await this.readTags(orgId, [conversationTag(conversationId)], 'directory tags unavailable; the epoch fence reads storage');
    return read ? read[0] === fence : undefined;
  }

  /**
   * A conversation (members and team state) for a membership check, without its devices: one tag
   * read when cached. Its `lastSeq` is a hint.
   */
  async conversation(orgId: string, conversationId: string): Promise<Conversation | undefined> {
    if (!this.tags) return this.storage.getConversation(orgId, conversationId);
    const read = await this.readTags(orgId, [conversationTag(conversationId)], 'directory tags unavailable; reading the conversation from storage');
    if (!read) return this.storage.getConversation(orgId, conversationId);
    const conversation = await this.conversationUnder(orgId, conversationId, read[0]!);
    return conversation && copyConversation(conversation);
  }

  /** The tags of `ids`, or undefined (logged with `fallback`) when they cannot be read: the caller reads storage. */
  private async readTags(orgId: string, ids: readonly string[], fallback: string): Promise<string[] | undefined> {
    try {
      return await this.tags!.read(orgId, ids);
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message }, fallback);
      return undefined;
    }
  }

  /** The cached conversation if it was kept under `tag` (read before), else from storage, kept under it. Not a copy. */
  private async conversationUnder(orgId: string, conversationId: string, tag: string): Promise<Conversation | undefined> {
    const ck = compositeKey(orgId, conversationId);
    const cached = this.conversations.get(ck);
    if (cached && cached.tag === tag) {
      this.hits++;
      this.conversations.delete(ck);
      this.conversations.set(ck, cached);
      return cached.conversation;
    }
    this.misses++;
    const conversation = await this.storage.getConversation(orgId, conversationId);
    if (!conversation) {
      this.conversations.delete(ck);
      return undefined;
    }
    this.rememberConversation(ck, { tag, conversation });
    return conversation;
  }

  private async fromStorage(orgId: string, conversationId: string): Promise<{ conversation: Conversation | undefined } & UsersDevices> {
    const conversation = await this.storage.getConversation(orgId, conversationId);
    if (!conversation) return { conversation, ...none() };
    const users = [...new Set(conversation.memberUserIds)].sort(byCodeUnits);
    return { conversation, ...flatten(users, await this.read(orgId, users)) };
  }

  /** The conversation's membership changed and the change is stored: every node reads it again. */
  async conversationChanged(orgId: string, conversationId: string): Promise<void> {
    this.conversations.delete(compositeKey(orgId, conversationId));
    await this.tags?.bump(orgId, conversationTag(conversationId));
  }

  /** The device lists of `users` (sorted, unique), each valid under the tag given for it. */
  private async lists(orgId: string, users: readonly string[], tags: ReadonlyMap<string, string>): Promise<UsersDevices> {
    const lists = new Map<string, UserDevices>();
    const stale: string[] = [];
    for (const userId of users) {
      const k = compositeKey(orgId, userId);
      const entry = this.cache.get(k);
      if (entry && entry.tag === tags.get(userId)) {
        this.cache.delete(k);
        this.cache.set(k, entry);
        lists.set(userId, entry.list);
      } else stale.push(userId);
    }
    this.hits += users.length - stale.length;
    this.misses += stale.length;
    if (stale.length > 0) {
      for (const [userId, list] of await this.read(orgId, stale)) {
        lists.set(userId, list);
        this.remember(compositeKey(orgId, userId), { tag: tags.get(userId)!, list });
      }
    }
    return flatten(users, lists);
  }

  /** The user's device list changed and the change is stored: every node reads it again. */
  async changed(orgId: string, userId: string): Promise<void> {
    this.cache.delete(compositeKey(orgId, userId));
    await this.tags?.bump(orgId, userId);
  }

  /** Cache hits and misses (users and conversations) since start. */
  stats(): { hits: number; misses: number; users: number; conversations: number } {
    return { hits: this.hits, misses: this.misses, users: this.cache.size, conversations: this.conversations.size };
  }

  private remember(key: string, entry: { tag: string; list: UserDevices }): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > this.maxUsers) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  private rememberConversation(key: string, entry: { tag: string; conversation: Conversation }): void {
    this.conversations.delete(key);
    this.conversations.set(key, entry);
    if (this.conversations.size > this.maxConversations) {
      const oldest = this.conversations.keys().next().value;
      if (oldest !== undefined) this.conversations.delete(oldest);
    }
  }
}

/** A tag read started by `readAhead`: the conversation's tag first, then the guessed members' (sorted). */
export interface TagReadAhead {
  orgId: string;
  conversationId: string;
  guess: string[];
  /** Undefined when the tags could not be read (logged): storage answers instead. */
  read: Promise<string[] | undefined>;
}

/** One user's devices as a send sees them, and the version of the signed list that chose them. */
interface UserDevices {
  devices: DeviceIdentity[];
  version: number | undefined;
}

/** Some users' devices (each user's filtered by their signed list), and which users have a list, at which version. */
export interface UsersDevices {
  devices: DeviceIdentity[];
  signedUsers: ReadonlySet<string>;
  listVersions: Array<{ userId: string; version: number }>;
}

function none(): UsersDevices {
  return { devices: [], signedUsers: new Set<string>(), listVersions: [] };
}

/** All users' devices in order (copies: callers may keep or change what they get). */
function flatten(users: readonly string[], lists: ReadonlyMap<string, UserDevices>): UsersDevices {
  const listVersions = users.flatMap((userId) => {
    const version = lists.get(userId)!.version;
    return version === undefined ? [] : [{ userId, version }];
  });
  return {
    devices: users.flatMap((u) => lists.get(u)!.devices.map((d) => ({ ...d, identityKey: new Uint8Array(d.identityKey) }))),
    signedUsers: new Set(listVersions.map((v) => v.userId)),
    listVersions,
  };
}

/** Callers may keep or change what they get. */
function copyConversation(c: Conversation): Conversation {
  return structuredClone(c);
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
