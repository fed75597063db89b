/**
 * Conversations and care teams (the `Storage` port's `ConversationStore` and the state half of
 * `TeamStore`). A conversation's `lastSeq` is not a field of its document but its highest seq mark
 * (seq-marks.ts), so membership changes and appends never write the same document: FerretDB v1 applies
 * an update as a read-modify-write of the whole document, and a seq raise could write back an old
 * member list or team state.
 */
import { randomUUID } from 'node:crypto';
import mongoose from 'mongoose';
import type { Conversation, TeamState } from '@curbside/shared';
import type { ConversationStore, NewConversation, TeamStore } from '../../ports/storage.js';
import { directKey, groupKey, roleThreadKey, uniqueMembers } from '../../ports/storage-rules.js';
import { ignoreDuplicateKey, isDuplicateKey } from './duplicate-key.js';
import { docKey, type ConversationDoc, type StorageModels } from './models.js';
import type { KeyedQueue } from './keyed-queue.js';
import type { SeqMarks } from './seq-marks.js';
import { fromTeamDoc, teamDoc } from './team-docs.js';

/** The key a conversation's appends and team changes queue on within a node (`KeyedQueue`). */
export function conversationKey(orgId: string, conversationId: string): string {
  return docKey(orgId, conversationId);
}

export class MongoConversations implements ConversationStore, Omit<TeamStore, 'statementBefore' | 'withdrawEnvelope'> {
  constructor(
    private readonly models: Pick<StorageModels, 'Conversation' | 'ConversationSender' | 'TeamLog'>,
    private readonly seqMarks: Pick<SeqMarks, 'lastSeq' | 'lastSeqs'>,
    /** Shared with the envelopes: a team change waits for the appends queued before it. */
    private readonly queue: KeyedQueue,
  ) {}

  async createConversation(input: NewConversation): Promise<{ conversation: Conversation; created: boolean }> {
    const { Conversation: Conv } = this.models;
    const members = uniqueMembers(input.createdBy, input.memberUserIds);
    const id = randomUUID();
    const key = input.kind === 'direct' ? directKey(members) : input.roleId !== undefined ? roleThreadKey(input.roleId, input.createdBy) : groupKey(id);
    const oneOnly = input.kind === 'direct' || input.roleId !== undefined;
    if (oneOnly) {
      const existing = await Conv.findOne({ orgId: input.orgId, directKey: key }).lean<ConversationDoc>().exec();
      if (existing) return { conversation: toConversation(existing, await this.lastSeq(input.orgId, existing.conversationId)), created: false };
    }
    const doc: ConversationDoc = {
      _id: docKey(input.orgId, id),
      conversationId: id,
      orgId: input.orgId,
      kind: input.kind,
      memberUserIds: members,
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
      directKey: key,
      ...(input.roleId !== undefined ? { roleId: input.roleId } : {}),
    };
    try {
      await Conv.insertOne(doc);
    } catch (err) {
      if (!isDuplicateKey(err) || !oneOnly) throw err;
      // Another creator of the same pair (or the same requester's other device) won the race.
      const existing = await Conv.findOne({ orgId: input.orgId, directKey: key }).lean<ConversationDoc>().exec();
      if (!existing) throw err;
      return { conversation: toConversation(existing, await this.lastSeq(input.orgId, existing.conversationId)), created: false };
    }
    return { conversation: toConversation(doc, 0), created: true };
  }

  async getConversation(orgId: string, conversationId: string): Promise<Conversation | undefined> {
    // Both by `_id`, at once (another organisation's conversation's seq is read and dropped).
    const [c, lastSeq] = await Promise.all([this.conversationDoc(orgId, conversationId), this.lastSeq(orgId, conversationId)]);
    return c ? toConversation(c, lastSeq) : undefined;
  }

  async leaveGroup(orgId: string, conversationId: string, userId: string): Promise<Conversation | undefined> {
    // Teams are never matched (their membership follows the signed log); direct conversations neither.
    const doc = await this.models.Conversation.findOneAndUpdate(
      { _id: docKey(orgId, conversationId), kind: 'group', team: mongoose.trusted({ $exists: false }) },
      { $pull: { memberUserIds: userId } },
      { returnDocument: 'after' },
    )
      .lean<ConversationDoc>()
      .exec();
    return doc ? toConversation(doc, await this.lastSeq(orgId, conversationId)) : undefined;
  }

  async noteSender(orgId: string, conversationId: string, userId: string): Promise<void> {
    await ignoreDuplicateKey(this.models.ConversationSender.collection.insertOne({ _id: docKey(orgId, conversationId, userId) } as never));
  }

  async sendersAmong(orgId: string, conversationId: string, userIds: readonly string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    const ids = new Map(userIds.map((u) => [docKey(orgId, conversationId, u), u]));
    const found = await this.models.ConversationSender.find({ _id: mongoose.trusted({ $in: [...ids.keys()] }) }).select({ _id: 1 }).lean<Array<{ _id: string }>>().exec();
    return found.map((d) => ids.get(d._id)!).filter(Boolean);
  }

  async listConversationsForUser(orgId: string, userId: string): Promise<Conversation[]> {
    const docs = await this.models.Conversation.find({ orgId, memberUserIds: userId }).lean<ConversationDoc[]>().exec();
    // Every conversation's highest mark, in one read (not one per conversation).
    const seqs = await this.seqMarks.lastSeqs(orgId, docs.map((d) => d.conversationId));
    return docs.map((d) => toConversation(d, seqs.get(d.conversationId) ?? 0)).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async createTeam(input: { orgId: string; state: TeamState; createdBy: string; now: number }): Promise<{ status: 'created'; conversation: Conversation } | { status: 'exists' }> {
    const { Conversation: Conv, TeamLog } = this.models;
    const doc: ConversationDoc = {
      _id: docKey(input.orgId, input.state.teamId),
      conversationId: input.state.teamId,
      orgId: input.orgId,
      kind: 'group',
      memberUserIds: Object.keys(input.state.members),
      createdBy: input.createdBy,
      createdAt: input.now,
      lastSeq: 0,
      directKey: groupKey(input.state.teamId),
      team: teamDoc(input.state),
    };
    try {
      await Conv.insertOne(doc);
    } catch (err) {
      if (isDuplicateKey(err)) return { status: 'exists' };
      throw err;
    }
    await ignoreDuplicateKey(TeamLog.insertOne({ orgId: input.orgId, teamId: input.state.teamId, index: 0, head: input.state.head }));
    return { status: 'created', conversation: toConversation(doc, 0) };
  }

  async getTeamState(orgId: string, teamId: string): Promise<TeamState | undefined> {
    const doc = await this.conversationDoc(orgId, teamId);
    return doc?.team ? fromTeamDoc(teamId, doc.team) : undefined;
  }

  /**
   * Same queue as appends to this conversation; two team changes race on the TeamLog insert, on any
   * number of nodes.
   */
  async advanceTeam(orgId: string, teamId: string, expectedIndex: number, next: TeamState): Promise<'ok' | 'conflict'> {
    return this.queue.run(conversationKey(orgId, teamId), () => this.advanceTeamQueued(orgId, teamId, expectedIndex, next));
  }

  private async advanceTeamQueued(orgId: string, teamId: string, expectedIndex: number, next: TeamState): Promise<'ok' | 'conflict'> {
    const { Conversation: Conv, TeamLog } = this.models;
    const current = await this.getTeamState(orgId, teamId);
    if (!current) throw new Error(`team ${teamId} not found`);
    if (current.index !== expectedIndex) return 'conflict';
    // The insert is the claim: of two changes from the same state, one insert fails.
    try {
      await TeamLog.insertOne({ orgId, teamId, index: next.index, head: next.head });
    } catch (err) {
      if (isDuplicateKey(err)) return 'conflict';
      throw err;
    }
    await Conv.updateOne({ _id: docKey(orgId, teamId) }, { $set: { team: teamDoc(next), memberUserIds: Object.keys(next.members) } }).exec();
    return 'ok';
  }

  /** The conversation's highest seq mark; 0 before the first. */
  private lastSeq(orgId: string, conversationId: string): Promise<number> {
    return this.seqMarks.lastSeq(orgId, conversationId);
  }

  /** The conversation by `_id`, which is (org, conversation id): ids are scoped per organisation. */
  private async conversationDoc(orgId: string, conversationId: string): Promise<ConversationDoc | undefined> {
    return (await this.models.Conversation.findOne({ _id: docKey(orgId, conversationId) }).lean<ConversationDoc>().exec()) ?? undefined;
  }
}

/** `lastSeq`: the highest seq mark; the document's own field is only a floor (see `ConversationDoc`). */
function toConversation(d: ConversationDoc, lastSeq: number): Conversation {
  return {
    id: d.conversationId,
    kind: d.kind,
    ...(d.title !== undefined && d.title !== null ? { title: d.title } : {}),
    memberUserIds: [...d.memberUserIds],
    createdBy: d.createdBy,
    createdAt: d.createdAt,
    lastSeq: Math.max(d.lastSeq ?? 0, lastSeq),
    ...(d.team ? { roles: fromTeamDoc(d.conversationId, d.team).members, signed: true, epoch: d.team.head, ...(d.team.pool ? { pool: true as const } : {}) } : {}),
    ...(typeof d.roleId === 'string' ? { roleId: d.roleId } : {}),
  };
}
