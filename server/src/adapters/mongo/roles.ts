import mongoose from 'mongoose';
import type { SignedStatement, TeamState } from '@curbside/shared';
import type { RoleStore } from '../../ports/roles.js';
import { sameMembers, uniqueMembers } from '../../ports/storage-rules.js';
import { MAX_UPDATES_PER_COMMAND, docKey, toBytes, type ConversationDoc, type EnvelopeDoc, type StorageModels } from './models.js';
import { fromTeamDoc } from './team-docs.js';

/**
 * `RoleStore` for `MongoStorage`, over the conversations and envelopes collections. A role is a team
 * document with `team.oncall`; a role thread a conversation document with `roleId`.
 */
export class MongoRoles implements RoleStore {
  constructor(private readonly models: StorageModels) {}

  async listRoles(orgId: string): Promise<TeamState[]> {
    const docs = await this.models.Conversation.find({ orgId, 'team.oncall': mongoose.trusted({ $exists: true }) })
      .lean<ConversationDoc[]>()
      .exec();
    return docs.filter((d) => d.team?.oncall).map((d) => fromTeamDoc(d.conversationId, d.team!));
  }

  async listPools(orgId: string): Promise<TeamState[]> {
    const docs = await this.models.Conversation.find({ orgId, 'team.pool': mongoose.trusted({ $exists: true }) })
      .lean<ConversationDoc[]>()
      .exec();
    return docs.filter((d) => d.team?.pool).map((d) => fromTeamDoc(d.conversationId, d.team!));
  }

  async teamStatements(orgId: string, teamId: string, fromIndex: number, limit: number): Promise<SignedStatement[]> {
    const docs = await this.models.Envelope.find({ orgId, conversationId: teamId, membership: mongoose.trusted({ $exists: true }) })
      .sort({ seq: 1 })
      .skip(fromIndex)
      .limit(limit)
      .lean<EnvelopeDoc[]>()
      .exec();
    return docs.filter((d) => d.membership).map((d) => ({ statement: d.membership!.statement, signature: toBytes(d.membership!.signature) }));
  }

  async setRoleThreadMembers(orgId: string, roleId: string, roleMemberUserIds: readonly string[]): Promise<string[]> {
    const threads = await this.models.Conversation.find({ orgId, roleId }).lean<ConversationDoc[]>().exec();
    const changes = threads
      .map((t) => ({ t, members: uniqueMembers(t.createdBy, roleMemberUserIds) }))
      .filter(({ t, members }) => !sameMembers(t.memberUserIds, members));
    // Several commands for a role with many threads (FerretDB-PostgreSQL stalls on large bulk updates).
    for (let i = 0; i < changes.length; i += MAX_UPDATES_PER_COMMAND) {
      const part = changes.slice(i, i + MAX_UPDATES_PER_COMMAND);
      await this.models.Conversation.bulkWrite(part.map(({ t, members }) => ({ updateOne: { filter: { _id: docKey(orgId, t.conversationId) }, update: { $set: { memberUserIds: members } } } })), { ordered: false });
    }
    return changes.map(({ t }) => t.conversationId);
  }
}
