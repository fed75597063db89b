/**
 * Consult pools on the hub (shared/src/consults.ts). A pool's log is a care team's (CareTeams checks
 * and applies every statement, `join` and `hide` included, and asks Credentials whether a joining
 * device holds a verified credential); this module lists an organisation's pools by topic and hands
 * out a pool's log for a clinician to verify before joining.
 */
import {
  ErrorCode,
  Limits,
  roleMatches,
  searchWords,
  teamRoleOf,
  type PoolLogRequest,
  type PoolSearchRequest,
  type PoolSearchResult,
  type RoleLogResult,
} from '@curbside/shared';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import type { Caller } from './message-relay.js';

const DEFAULT_RESULTS = 20;

export class ConsultPools {
  constructor(private readonly storage: Storage) {}

  /** The organisation's pools whose topic matches, by topic. */
  async search(caller: Caller, req: PoolSearchRequest): Promise<PoolSearchResult> {
    const words = searchWords(req.query ?? '');
    const pools = (await this.storage.listPools(caller.orgId))
      .filter((p) => roleMatches(p.pool!.topic, words))
      .sort((a, b) => a.pool!.topic.localeCompare(b.pool!.topic) || (a.teamId < b.teamId ? -1 : 1))
      .slice(0, req.limit ?? DEFAULT_RESULTS);
    return { pools: pools.map((p) => ({ poolId: p.teamId, topic: p.pool!.topic, memberCount: Object.keys(p.members).length, member: teamRoleOf(p.members, caller.userId) !== undefined })) };
  }

  /** A pool's signed statements, for any clinician of the organisation to verify before joining. */
  async log(caller: Caller, req: PoolLogRequest): Promise<RoleLogResult> {
    const state = await this.storage.getTeamState(caller.orgId, req.poolId);
    // Another organisation's pool, a plain team and a missing id answer alike.
    if (!state?.pool) throw new HubError(ErrorCode.NOT_FOUND, 'No such consult pool', { poolId: req.poolId });
    const fromIndex = req.fromIndex ?? 0;
    const page = await this.storage.teamStatements(caller.orgId, req.poolId, fromIndex, Limits.MAX_ROLE_LOG_PAGE + 1);
    return { statements: page.slice(0, Limits.MAX_ROLE_LOG_PAGE), more: page.length > Limits.MAX_ROLE_LOG_PAGE };
  }
}
