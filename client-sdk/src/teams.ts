import type { EscalationPolicy, TeamRole, TeamState } from '@curbside/shared';
import type { SecureMessenger } from './e2ee/secure-messenger.js';

/** What a team change returns: the team and the seq of its statement in the team's stream. */
export interface TeamChangeResult {
  teamId: string;
  seq: number;
}

/**
 * Care teams (`client.teams`): group conversations whose membership is a log of statements signed by
 * members' devices and checked by every member's SDK, with end-to-end encrypted titles. Send to a
 * team with `client.sendText(teamId, …)` like to any conversation.
 */
export class CareTeams {
  /** @internal */
  constructor(
    private readonly messenger: SecureMessenger,
    private readonly userId: () => string | undefined,
  ) {}

  /**
   * Create a care team. The creator is the owner. The title and description are end-to-end
   * encrypted: the hub stores them sealed under a key only member devices receive ({@link details}).
   *
   * @param title - The team's name as members see it (trimmed; 1 to 200 characters).
   * @param members - Everyone besides the creator, with their role (default `member`).
   * @param options - `description`: up to 1000 characters, sealed with the title.
   * @example
   * ```ts
   * const { teamId } = await client.teams.create('Ward 4B discharge', [{ userId: 'rn-ortiz' }, { userId: 'dr-patel', role: 'admin' }]);
   * await client.sendText(teamId, 'Bed 12 ready for discharge at 15:00');
   * ```
   * @throws CurbsideError INVALID_PAYLOAD for an empty title, PAYLOAD_TOO_LARGE for a title or description over its limit
   */
  create(title: string, members: Array<{ userId: string; role?: 'admin' | 'member' }>, options: { description?: string } = {}): Promise<TeamChangeResult> {
    return this.messenger.careTeams.create({ title, ...(options.description !== undefined ? { description: options.description } : {}) }, members);
  }

  /**
   * Rename a care team, or change its description (owner or admin). The new details are sealed under
   * a new key that goes to the current members' devices only: someone removed earlier cannot read them.
   *
   * @example
   * ```ts
   * await client.teams.setDetails(teamId, { title: 'Ward 4B discharge', description: 'Weekday discharges, 08:00–18:00' });
   * ```
   * @throws CurbsideError INVALID_STATEMENT when this user is a plain member, INVALID_PAYLOAD / PAYLOAD_TOO_LARGE as for {@link create}
   */
  setDetails(teamId: string, details: { title: string; description?: string }): Promise<TeamChangeResult> {
    return this.messenger.careTeams.setDetails(teamId, details);
  }

  /**
   * A care team's title and description, decrypted on this device; undefined while this device does
   * not hold their key (a device added after the last change gets it with the next team message, and
   * a `teamDetails` event says so) or is not in the team.
   *
   * @example
   * ```ts
   * heading.textContent = (await client.teams.details(teamId))?.title ?? 'Care team';
   * ```
   */
  details(teamId: string): Promise<{ title: string; description?: string } | undefined> {
    return this.messenger.careTeams.details(teamId);
  }

  /** Add a member (owner or admin only; only the owner adds admins). */
  addMember(teamId: string, userId: string, role: 'admin' | 'member' = 'member'): Promise<TeamChangeResult> {
    return this.messenger.careTeams.change(teamId, 'add', userId, role);
  }

  /** Remove a member (owner or admin). Every remaining device changes its sender key before it sends again. */
  removeMember(teamId: string, userId: string): Promise<TeamChangeResult> {
    return this.messenger.careTeams.change(teamId, 'remove', userId);
  }

  /** Leave a care team. */
  leave(teamId: string): Promise<TeamChangeResult> {
    return this.messenger.careTeams.change(teamId, 'remove', this.userId() ?? '');
  }

  /** Change a member's role (owner only). */
  setRole(teamId: string, userId: string, role: Exclude<TeamRole, 'owner'>): Promise<TeamChangeResult> {
    return this.messenger.careTeams.change(teamId, 'role', userId, role);
  }

  /**
   * Set the team's escalation policy (owner or admin): who an urgent message sent to the team goes to
   * next when nobody acknowledges in time. Each tier names users, on-call roles (whoever holds them at
   * send time), or both. A send that names no tiers of its own follows the policy; `[]` removes it.
   *
   * @example
   * ```ts
   * await client.teams.setEscalationPolicy(teamId, [
   *   { afterMs: 120_000, roleIds: [cardiologyOnCall] },
   *   { afterMs: 300_000, userIds: ['dr-chief'] },
   * ]);
   * ```
   * @throws CurbsideError INVALID_STATEMENT (not an owner or admin), INVALID_PAYLOAD (tiers out of order or empty)
   */
  setEscalationPolicy(teamId: string, tiers: Array<{ afterMs: number; userIds?: string[]; roleIds?: string[] }>): Promise<TeamChangeResult> {
    return this.messenger.careTeams.signed(teamId, { op: 'policy', escalation: escalationPolicy(tiers) });
  }

  /** The team as this device verified it from the signed log (not as the hub says). */
  state(teamId: string): Promise<TeamState | undefined> {
    return this.messenger.careTeams.state(teamId);
  }
}

/** @internal An escalation policy from tiers as the app names them (users and roles optional). */
export function escalationPolicy(tiers: ReadonlyArray<{ afterMs: number; userIds?: string[]; roleIds?: string[] }>): EscalationPolicy {
  return { tiers: tiers.map((t) => ({ afterMs: t.afterMs, userIds: [...(t.userIds ?? [])], roleIds: [...(t.roleIds ?? [])] })) };
}
