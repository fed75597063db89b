/**
 * On-call roles (shared/src/roles.ts) and consult pools (shared/src/consults.ts): a role is a care team whose signed log also says who holds it
 * (`TeamState.oncall`); each requester's thread with a role is a group conversation (`roleId`) whose
 * members are the requester and the role's members. Part of `Storage`, covered by
 * `test/contract/roles.contract.test.ts` over memory and MongoDB (FerretDB on SQLite and PostgreSQL).
 */
import type { SignedStatement, TeamState } from '@curbside/shared';

export interface RoleStore {
  /** The organisation's on-call roles (teams whose log made them one), in no particular order. */
  listRoles(orgId: string): Promise<TeamState[]>;
  /** The organisation's consult pools (teams created with a `poolTopic`), in no particular order. */
  listPools(orgId: string): Promise<TeamState[]>;
  /** A team's signed statements from index `fromIndex`, in order, at most `limit`. */
  teamStatements(orgId: string, teamId: string, fromIndex: number, limit: number): Promise<SignedStatement[]>;
  /**
   * Make every thread with the role have as members its requester and `roleMemberUserIds` (after the
   * role's members changed). Idempotent: a thread already right is not written. Answers the threads written.
   */
  setRoleThreadMembers(orgId: string, roleId: string, roleMemberUserIds: readonly string[]): Promise<string[]>;
}
