import { holdersAt, nextShiftChangeAt, type Conversation, type SendResult, type Shift, type TeamRole } from '@curbside/shared';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { HubApi } from './hub/api.js';
import type { TextSendOptions } from './client-types.js';
import { escalationPolicy } from './teams.js';

export type { Shift };

/** An on-call role as this device verified it from its signed log. */
export interface OnCallRole {
  roleId: string;
  /** "Cardiology on-call". */
  name: string;
  /** The clinicians who may hold it, with their role in it (`owner` and `admin` set the shifts). */
  members: Record<string, TeamRole>;
  /** Who holds it now: the last hand-off until the next shift starts, else the shifts covering now. */
  holders: string[];
  /** The last explicit hand-off ("I'm taking it"). */
  lastHandOff?: { userId: string; at: number };
  shifts: Shift[];
  /** When a shift next starts or ends. */
  nextChangeAt?: number;
  /** Where an urgent page goes next when nobody acknowledges in time. */
  escalation?: Array<{ afterMs: number; userIds: string[]; roleIds: string[] }>;
}

/**
 * On-call roles (`client.roles`): "Cardiology on-call", "Rapid response", "Ward 4 charge nurse". A role
 * is a care team whose signed log also says who holds it: shifts set by its owner or admins, and
 * explicit hand-offs signed by the member taking it. Every answer here is verified on this device
 * from that log, not taken from the hub. Add or remove the clinicians who may hold it with
 * `client.teams.addMember` / `removeMember` (the role's id is its team id).
 *
 * Anyone in the organisation can write to a role ({@link page}, or {@link open} and
 * `client.sendText`): the message is sealed for the devices of whoever holds it at send time. When the
 * role changes hands, the previous holder's device hands its pending urgent messages to the new holder.
 */
export class OnCallRoles {
  /** @internal */
  constructor(
    private readonly deps: {
      messenger: SecureMessenger;
      api: HubApi;
      sendText: (conversationId: string, text: string, options: TextSendOptions) => Promise<SendResult>;
    },
  ) {}

  /**
   * Create an on-call role; this user owns it. The name is unique in the organisation and visible to
   * the hub (so people can find the role); what is written to the role stays end-to-end encrypted.
   *
   * @param name - "Cardiology on-call" (1 to 100 characters).
   * @param members - The clinicians who may hold it besides this user (`admin`s may set shifts).
   * @example
   * ```ts
   * const { roleId } = await client.roles.create('Cardiology on-call', [{ userId: 'dr-okafor' }, { userId: 'dr-lee', role: 'admin' }]);
   * await client.roles.schedule(roleId, [{ userIds: ['dr-okafor'], from: Date.parse('2026-12-04T08:00Z'), to: Date.parse('2026-12-04T20:00Z') }]);
   * ```
   * @throws CurbsideError CONFLICT (a role with this name exists), INVALID_STATEMENT / INVALID_PAYLOAD
   */
  async create(name: string, members: Array<{ userId: string; role?: 'admin' | 'member' }>): Promise<{ roleId: string; seq: number }> {
    const { teamId, seq } = await this.deps.messenger.careTeams.create({ title: name.trim() }, members, { roleName: name.trim() });
    return { roleId: teamId, seq };
  }

  /**
   * Take the role now ("I'm taking cardiology on-call"): a hand-off signed by this device, which lasts
   * until the next shift starts. The previous holder's device hands over their pending urgent messages.
   * @throws CurbsideError INVALID_STATEMENT (not a member of the role)
   */
  async take(roleId: string): Promise<{ seq: number }> {
    const { seq } = await this.deps.messenger.careTeams.signed(roleId, { op: 'hold' });
    return { seq };
  }

  /**
   * Set the role's shifts (owner or admin), replacing the previous ones. Shifts may overlap; each names
   * members of the role, and lasts at most 31 days.
   * @throws CurbsideError INVALID_STATEMENT (not an owner or admin, or a shift names a non-member)
   */
  async schedule(roleId: string, shifts: Shift[]): Promise<{ seq: number }> {
    const { seq } = await this.deps.messenger.careTeams.signed(roleId, { op: 'schedule', shifts: shifts.map((s) => ({ userIds: [...s.userIds], from: s.from, to: s.to })) });
    return { seq };
  }

  /**
   * Set the role's escalation policy (owner or admin): where an urgent page to the role goes next when
   * its holder does not acknowledge in time (a backup role, a consultant). See `client.teams.setEscalationPolicy`.
   * @example
   * ```ts
   * await client.roles.setEscalationPolicy(roleId, [{ afterMs: 120_000, roleIds: [backupRoleId] }, { afterMs: 300_000, userIds: ['dr-chief'] }]);
   * ```
   */
  async setEscalationPolicy(roleId: string, tiers: Array<{ afterMs: number; userIds?: string[]; roleIds?: string[] }>): Promise<{ seq: number }> {
    const { seq } = await this.deps.messenger.careTeams.signed(roleId, { op: 'policy', escalation: escalationPolicy(tiers) });
    return { seq };
  }

  /**
   * The role, verified from its signed log on this device.
   * @throws CurbsideError NOT_FOUND, BAD_SIGNATURE / INVALID_STATEMENT (the hub's log does not verify)
   */
  async get(roleId: string): Promise<OnCallRole> {
    const state = await this.deps.messenger.roles.verifiedState(roleId);
    const now = Date.now();
    const oncall = state.oncall!;
    const next = nextShiftChangeAt(state, now);
    return {
      roleId,
      name: oncall.name,
      members: { ...state.members },
      holders: holdersAt(state, now),
      ...(oncall.hold ? { lastHandOff: { ...oncall.hold } } : {}),
      shifts: oncall.shifts.map((s) => ({ ...s, userIds: [...s.userIds] })),
      ...(next !== undefined ? { nextChangeAt: next } : {}),
      ...(state.escalation ? { escalation: state.escalation.tiers.map((t) => ({ afterMs: t.afterMs, userIds: [...t.userIds], roleIds: [...t.roleIds] })) } : {}),
    };
  }

  /**
   * The organisation's roles whose name contains every word of `query` (all of them without one), by
   * name, each verified here. A role whose log does not verify is left out (and logged).
   */
  async search(query?: string): Promise<OnCallRole[]> {
    const found = await this.deps.api.roleSearch(query);
    const out: OnCallRole[] = [];
    for (const r of found) {
      try {
        out.push(await this.get(r.roleId));
      } catch (e) {
        this.deps.messenger.logger.warn({ roleId: r.roleId, err: String(e) }, 'an on-call role does not verify; left out');
      }
    }
    return out;
  }

  /** "On call now": every role of the organisation with who holds it now (verified), by name. */
  onCallNow(): Promise<OnCallRole[]> {
    return this.search();
  }

  /** This user's thread with the role: a conversation whose messages go to whoever holds the role. */
  open(roleId: string): Promise<Conversation> {
    return this.deps.api.roleOpen(roleId);
  }

  /**
   * Write to whoever holds the role now, in this user's thread with it.
   * @example
   * ```ts
   * await client.roles.page(roleId, 'Bed 12: STEMI on ECG, cath lab?', { priority: 'emergent' });
   * ```
   * @throws CurbsideError NOT_FOUND (no such role, or nobody holds it now: nothing is sent)
   */
  async page(roleId: string, text: string, options: TextSendOptions = {}): Promise<SendResult> {
    const thread = await this.open(roleId);
    return this.deps.sendText(thread.id, text, options);
  }

  /**
   * Hand this device's pending urgent messages of the role's threads to whoever holds it now. The SDK
   * does it by itself when a signed hand-off moves the role away from this user; call it when a shift
   * ended instead. Answers how many messages were handed over.
   */
  handOver(roleId: string): Promise<number> {
    return this.deps.messenger.roles.handOver(roleId);
  }
}
