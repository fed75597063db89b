import type { TeamRole } from './schemas.js';
import { Limits } from './limits.js';
import type { EscalationPolicy, SealedTeamDetails, Shift, TeamStatement } from './teams.js';

/** Membership of a care team after replaying its log up to `index`. JSON-safe. */
export interface TeamState {
  teamId: string;
  /**
   * The title and description in force, sealed (set by `create` and `details`). Only member devices
   * holding its key read it; absent only in teams stored before titles were sealed.
   */
  sealedDetails?: SealedTeamDetails;
  /** Index of the last applied statement. */
  index: number;
  /** Hex SHA-256 of the last applied statement's canonical form. */
  head: string;
  members: Record<string, TeamRole>;
  /** On-call roles only (created with `roleName`): who holds the role, and when (see {@link holdersAt}). */
  oncall?: OnCallState;
  /** Who an urgent message sent here escalates to, as an owner or admin set it (`policy`). */
  escalation?: EscalationPolicy;
  /** Consult pools only (created with `poolTopic`): the topic and the cases moderators hid. */
  pool?: PoolState;
}

/** A consult pool's topic and the message ids of the cases its moderators hid (the newest MAX_POOL_HIDDEN). */
export interface PoolState {
  topic: string;
  hidden: string[];
}

/** An on-call role's name, the last explicit hand-off, and its shifts. */
export interface OnCallState {
  name: string;
  /** The last `hold` statement: who took the role, at the statement's time. */
  hold?: { userId: string; at: number };
  shifts: Shift[];
}

/**
 * A member's role, or undefined. Own properties only: a user id such as `constructor` must not
 * find something on Object.prototype.
 */
export function teamRoleOf(members: Readonly<Record<string, TeamRole>>, userId: string): TeamRole | undefined {
  return Object.hasOwn(members, userId) ? members[userId] : undefined;
}

/** Why a statement cannot be applied. `message` is precise and safe to log. */
export class TeamRuleError extends Error {
  override readonly name = 'TeamRuleError';
}

/**
 * The membership rules, shared by the hub (which applies statements) and every client (which
 * replays the log to check the hub). `hash` is the SHA-256 (hex) of the statement's canonical JSON.
 *
 * - `create` (index 0): the actor is listed as the only owner.
 * - `add`: by an owner or admin; only the owner adds admins; the user must not be a member.
 * - `remove`: an owner or admin removes a non-owner, or anyone removes themselves (leaves).
 * - `role`: only the owner changes roles, never their own, and never to `owner`.
 * - `details`: an owner or admin sets new sealed details (title and description under a new key).
 * - `hold` (on-call roles only): any member takes the role from the statement's time.
 * - `schedule` (on-call roles only): an owner or admin replaces the shifts; every shift names members.
 * - `policy`: an owner or admin sets the escalation policy (without tiers, there is none).
 * - `join` (consult pools only): a clinician who is not a member adds themselves as a member. Whether
 *   they hold a verified credential is checked outside these rules (the hub, with the stored attestations).
 * - `hide` (consult pools only): an owner or admin hides a case (a message id) for every member.
 *
 * A field another op uses is allowed and ignored (`sealedDetails` on an add changes nothing).
 */
export function applyTeamStatement(state: TeamState | undefined, s: TeamStatement, hash: string): TeamState {
  const fail = (why: string): never => {
    throw new TeamRuleError(`statement ${s.index} (${s.op}) of team ${s.teamId}: ${why}`);
  };
  if (s.op === 'create') {
    if (state) fail('a team is created once');
    if (s.index !== 0 || s.prev !== '') fail('create must be index 0 with no previous statement');
    if (!s.sealedDetails) fail('create needs the sealed title');
    const members = s.members ?? fail('create lists the members');
    const owners = members.filter((m) => m.role === 'owner');
    if (owners.length !== 1 || owners[0]!.userId !== s.actorUserId) fail('the creator must be the one owner');
    const roles: Record<string, TeamRole> = {};
    for (const m of members) {
      if (teamRoleOf(roles, m.userId)) fail(`${m.userId} is listed twice`);
      Object.defineProperty(roles, m.userId, { value: m.role, enumerable: true, writable: true, configurable: true });
    }
    if (s.roleName !== undefined && s.poolTopic !== undefined) fail('a team is an on-call role or a consult pool, not both');
    const oncall = s.roleName !== undefined ? { oncall: { name: s.roleName, shifts: [] } } : {};
    const pool = s.poolTopic !== undefined ? { pool: { topic: s.poolTopic, hidden: [] } } : {};
    return { teamId: s.teamId, sealedDetails: s.sealedDetails!, index: 0, head: hash, members: sortKeys(roles), ...oncall, ...pool };
  }
  if (!state) return fail('the team does not exist yet');
  if (s.teamId !== state.teamId) fail('wrong team');
  if (s.index !== state.index + 1) fail(`expected index ${state.index + 1}`);
  if (s.prev !== state.head) fail('does not chain from the previous statement');
  if (s.op === 'join') {
    if (!state.pool) fail('only a consult pool is joined');
    if (teamRoleOf(state.members, s.actorUserId)) fail(`${s.actorUserId} is already a member`);
    const members = { ...state.members };
    Object.defineProperty(members, s.actorUserId, { value: 'member', enumerable: true, writable: true, configurable: true });
    return { ...state, index: s.index, head: hash, members: sortKeys(members) };
  }
  const actorRole = teamRoleOf(state.members, s.actorUserId);
  if (!actorRole) fail('the actor is not a member');
  if (s.op === 'hide') {
    const pool = state.pool ?? fail('only a consult pool has cases to hide');
    if (actorRole === 'member') fail('only a moderator (owner or admin) hides a case');
    const messageId = s.messageId ?? fail('hide names the case');
    const hidden = pool.hidden.includes(messageId) ? pool.hidden : [...pool.hidden, messageId].slice(-Limits.MAX_POOL_HIDDEN);
    return { ...state, pool: { topic: pool.topic, hidden }, index: s.index, head: hash };
  }
  if (s.op === 'details') {
    if (actorRole === 'member') fail('only an owner or admin changes the title');
    const sealedDetails = s.sealedDetails ?? fail('details carries the sealed title');
    return { ...state, sealedDetails, index: s.index, head: hash };
  }
  if (s.op === 'policy') {
    if (actorRole === 'member') fail('only an owner or admin sets the escalation policy');
    const policy = s.escalation ?? fail('policy carries the escalation policy');
    const { escalation: _previous, ...rest } = state;
    const tiers = policy.tiers.map((t) => ({ afterMs: t.afterMs, userIds: [...t.userIds], roleIds: [...t.roleIds] }));
    return { ...rest, ...(tiers.length ? { escalation: { tiers } } : {}), index: s.index, head: hash };
  }
  if (s.op === 'hold' || s.op === 'schedule') {
    const oncall = state.oncall ?? fail('only an on-call role is held or scheduled');
    if (s.op === 'hold') {
      // A later statement is a later hand-off, whatever the clocks said.
      const at = Math.max(s.issuedAt, oncall.hold?.at ?? 0);
      return { ...state, oncall: { ...oncall, hold: { userId: s.actorUserId, at } }, index: s.index, head: hash };
    }
    if (actorRole === 'member') fail('only an owner or admin sets the shifts');
    const shifts = s.shifts ?? fail('schedule carries the shifts');
    for (const shift of shifts) for (const u of shift.userIds) if (!teamRoleOf(state.members, u)) fail(`${u} is not a member of the role`);
    const sorted = [...shifts].sort((a, b) => a.from - b.from || a.to - b.to).map((x) => ({ userIds: [...x.userIds], from: x.from, to: x.to }));
    return { ...state, oncall: { ...oncall, shifts: sorted }, index: s.index, head: hash };
  }
  const target = s.userId ?? fail('names no user');
  const members = { ...state.members };
  switch (s.op) {
    case 'add': {
      if (teamRoleOf(members, target)) fail(`${target} is already a member`);
      const role = s.role ?? 'member';
      if (role === 'owner') fail('there is one owner');
      if (actorRole === 'member') fail('only an owner or admin adds members');
      if (role === 'admin' && actorRole !== 'owner') fail('only the owner adds admins');
      Object.defineProperty(members, target, { value: role, enumerable: true, writable: true, configurable: true });
      break;
    }
    case 'remove': {
      const targetRole = teamRoleOf(members, target) ?? fail(`${target} is not a member`);
      const leaving = target === s.actorUserId;
      if (!leaving) {
        if (actorRole === 'member') fail('only an owner or admin removes members');
        if (targetRole === 'owner') fail('the owner cannot be removed by others');
        if (targetRole === 'admin' && actorRole !== 'owner') fail('only the owner removes admins');
      }
      delete members[target];
      break;
    }
    case 'role': {
      if (actorRole !== 'owner') fail('only the owner changes roles');
      if (target === s.actorUserId) fail('the owner keeps their role');
      if (!teamRoleOf(members, target)) fail(`${target} is not a member`);
      if (!s.role || s.role === 'owner') fail('a role change sets admin or member');
      Object.defineProperty(members, target, { value: s.role!, enumerable: true, writable: true, configurable: true });
      break;
    }
  }
  return { ...state, index: s.index, head: hash, members: sortKeys(members) };
}

/**
 * Who holds an on-call role at time `t` (epoch ms), from its verified state. An explicit hand-off
 * (`hold`) lasts until the next shift starts after it; otherwise the members of every shift covering
 * `t` hold it. Only current members hold it. Nobody, when neither applies (or for a plain team).
 */
export function holdersAt(state: TeamState, t: number): string[] {
  const oncall = state.oncall;
  if (!oncall) return [];
  const member = (u: string) => teamRoleOf(state.members, u) !== undefined;
  const lastStart = oncall.shifts.reduce((m, s) => (s.from <= t && s.from > m ? s.from : m), -Infinity);
  const hold = oncall.hold;
  if (hold && hold.at <= t && hold.at >= lastStart && member(hold.userId)) return [hold.userId];
  const covering = oncall.shifts.filter((s) => s.from <= t && t < s.to).flatMap((s) => s.userIds);
  return [...new Set(covering)].filter(member).sort();
}

/** When who holds the role may next change by the schedule alone (a shift starts or ends), after `t`; undefined if never. */
export function nextShiftChangeAt(state: TeamState, t: number): number | undefined {
  const times = (state.oncall?.shifts ?? []).flatMap((s) => [s.from, s.to]).filter((x) => x > t);
  return times.length ? Math.min(...times) : undefined;
}

function sortKeys<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
