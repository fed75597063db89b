/**
 * On-call roles on the hub (shared/src/roles.ts). A role's log is a care team's (CareTeams checks and
 * applies every statement, `hold` and `schedule` included); this module lists roles, hands out their
 * logs for clients to verify, keeps each requester's thread with a role in step with the role's
 * members, and says who a message in a thread asks to acknowledge.
 */
import {
  ErrorCode,
  Limits,
  holdersAt,
  nextShiftChangeAt,
  roleMatches,
  searchWords,
  type Conversation,
  type RoleLogRequest,
  type RoleLogResult,
  type RoleOpenRequest,
  type RoleSearchRequest,
  type RoleSearchResult,
  type RoleSummary,
  type TeamState,
} from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import type { DeviceDirectory } from './device-directory.js';
import type { Caller } from './message-relay.js';

const DEFAULT_RESULTS = 20;

function noSuchRole(roleId: string): HubError {
  // Another organisation's role, a plain team and a missing id answer alike.
  return new HubError(ErrorCode.NOT_FOUND, 'No such on-call role', { roleId });
}

export class OnCallRoles {
  constructor(
    private readonly storage: Storage,
    private readonly directory: DeviceDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  /** The organisation's roles whose name matches, by name, with who holds each now (as the hub applied the log). */
  async search(caller: Caller, req: RoleSearchRequest): Promise<RoleSearchResult> {
    const words = searchWords(req.query ?? '');
    const now = this.now();
    const roles = (await this.storage.listRoles(caller.orgId))
      .filter((r) => roleMatches(r.oncall!.name, words))
      .sort((a, b) => a.oncall!.name.localeCompare(b.oncall!.name) || (a.teamId < b.teamId ? -1 : 1))
      .slice(0, req.limit ?? DEFAULT_RESULTS);
    return { roles: roles.map((r) => summary(r, now)) };
  }

  /** A role's signed statements, for any clinician of the organisation to verify who holds it. */
  async log(caller: Caller, req: RoleLogRequest): Promise<RoleLogResult> {
    await this.role(caller.orgId, req.roleId);
    const fromIndex = req.fromIndex ?? 0;
    const page = await this.storage.teamStatements(caller.orgId, req.roleId, fromIndex, Limits.MAX_ROLE_LOG_PAGE + 1);
    return { statements: page.slice(0, Limits.MAX_ROLE_LOG_PAGE), more: page.length > Limits.MAX_ROLE_LOG_PAGE };
  }

  /** The caller's thread with a role: its members are the caller and the role's members. */
  async open(caller: Caller, req: RoleOpenRequest): Promise<{ conversation: Conversation; created: boolean }> {
    const role = await this.role(caller.orgId, req.roleId);
    return this.storage.createConversation({ orgId: caller.orgId, kind: 'group', createdBy: caller.userId, memberUserIds: Object.keys(role.members), roleId: req.roleId, now: this.now() });
  }

  /**
   * After a statement changed a role's members: every thread with it gets the new members (the
   * directory forgets the threads it changed). Answers the threads as they are now, to tell their members.
   */
  async membersChanged(orgId: string, state: TeamState): Promise<Conversation[]> {
    if (!state.oncall) return [];
    const written = await this.storage.setRoleThreadMembers(orgId, state.teamId, Object.keys(state.members));
    const threads: Conversation[] = [];
    for (const id of written) {
      await this.directory.conversationChanged(orgId, id);
      const thread = await this.storage.getConversation(orgId, id);
      if (thread) threads.push(thread);
    }
    return threads;
  }

  /**
   * Who an urgent message in a role thread asks to acknowledge: from the requester, whoever holds the
   * role now; from anyone else, the requester (and the other holders). Undefined for other conversations.
   */
  async askedBy(orgId: string, thread: Conversation, senderUserId: string): Promise<string[] | undefined> {
    if (thread.roleId === undefined) return undefined;
    const role = await this.storage.getTeamState(orgId, thread.roleId);
    const holders = role ? holdersAt(role, this.now()) : [];
    return [...new Set([thread.createdBy, ...holders])].filter((u) => u !== senderUserId);
  }

  private async role(orgId: string, roleId: string): Promise<TeamState> {
    const state = await this.storage.getTeamState(orgId, roleId);
    if (!state?.oncall) throw noSuchRole(roleId);
    return state;
  }
}

function summary(r: TeamState, now: number): RoleSummary {
  const next = nextShiftChangeAt(r, now);
  return { roleId: r.teamId, name: r.oncall!.name, memberUserIds: Object.keys(r.members), holderUserIds: holdersAt(r, now), ...(next !== undefined ? { nextChangeAt: next } : {}) };
}
