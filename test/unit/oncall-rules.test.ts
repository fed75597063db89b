import { expect } from 'chai';
import { EscalationPolicySchema, ShiftSchema, TeamRuleError, applyTeamStatement, holdersAt, nextShiftChangeAt, type TeamState, type TeamStatement } from '@curbside/shared';

/** Who holds an on-call role when: the rules every client and the hub apply to the signed log. */
describe('on-call role rules (shared by hub and clients)', function () {
  const base = { v: 1 as const, teamId: 'cardio', actorDeviceId: 'd' };
  const sealedDetails = { keyId: 'a'.repeat(32), box: 'b'.repeat(139) };
  let state: TeamState;
  let index = 0;
  const apply = (s: Omit<TeamStatement, 'v' | 'teamId' | 'actorDeviceId' | 'index' | 'prev'>) => {
    index += 1;
    state = applyTeamStatement(state, { ...base, index, prev: state.head, ...s } as TeamStatement, `h${index}`);
    return state;
  };
  beforeEach(() => {
    index = 0;
    state = applyTeamStatement(
      undefined,
      { ...base, index: 0, prev: '', op: 'create', actorUserId: 'chief', issuedAt: 0, sealedDetails, roleName: 'Cardiology on-call', members: [{ userId: 'chief', role: 'owner' }, { userId: 'bell', role: 'member' }, { userId: 'cruz', role: 'admin' }] },
      'h0',
    );
  });

  it('a role starts held by nobody; shifts give the holders while they cover a time, overlapping ones together', () => {
    expect(state.oncall).to.deep.equal({ name: 'Cardiology on-call', shifts: [] });
    expect(holdersAt(state, 50)).to.deep.equal([]);
    apply({ op: 'schedule', actorUserId: 'cruz', issuedAt: 1, shifts: [{ userIds: ['bell'], from: 100, to: 200 }, { userIds: ['cruz'], from: 150, to: 300 }] });
    expect([99, 100, 149, 150, 199, 200, 299, 300].map((t) => holdersAt(state, t))).to.deep.equal([[], ['bell'], ['bell'], ['bell', 'cruz'], ['bell', 'cruz'], ['cruz'], ['cruz'], []]);
    expect([0, 100, 150, 200, 300].map((t) => nextShiftChangeAt(state, t))).to.deep.equal([100, 150, 200, 300, undefined]);
  });

  it('a hand-off lasts until the next shift starts, even past the end of the shift it interrupted', () => {
    apply({ op: 'schedule', actorUserId: 'chief', issuedAt: 1, shifts: [{ userIds: ['bell'], from: 100, to: 200 }, { userIds: ['chief'], from: 400, to: 500 }] });
    apply({ op: 'hold', actorUserId: 'cruz', issuedAt: 120 });
    expect([110, 120, 199, 250, 399, 400].map((t) => holdersAt(state, t))).to.deep.equal([['bell'], ['cruz'], ['cruz'], ['cruz'], ['cruz'], ['chief']]);
    // A later statement is a later hand-off even when its device's clock ran behind.
    apply({ op: 'hold', actorUserId: 'bell', issuedAt: 110 });
    expect(state.oncall!.hold).to.deep.equal({ userId: 'bell', at: 120 });
    expect(holdersAt(state, 130)).to.deep.equal(['bell']);
  });

  it('only members hold it: a removed holder stops holding it at once', () => {
    apply({ op: 'hold', actorUserId: 'bell', issuedAt: 10 });
    expect(holdersAt(state, 20)).to.deep.equal(['bell']);
    apply({ op: 'remove', actorUserId: 'chief', issuedAt: 30, userId: 'bell' });
    expect(holdersAt(state, 40)).to.deep.equal([]);
  });

  it('an owner or admin sets the escalation policy; no tiers removes it; tiers go in order', () => {
    const tiers = [{ afterMs: 60_000, userIds: [], roleIds: ['backup'] }, { afterMs: 120_000, userIds: ['consultant'], roleIds: [] }];
    expect(apply({ op: 'policy', actorUserId: 'cruz', issuedAt: 1, escalation: { tiers } }).escalation).to.deep.equal({ tiers });
    expect(() => apply({ op: 'policy', actorUserId: 'bell', issuedAt: 2, escalation: { tiers } })).to.throw(TeamRuleError, /owner or admin/);
    index -= 1;
    expect(apply({ op: 'policy', actorUserId: 'chief', issuedAt: 3, escalation: { tiers: [] } })).to.not.have.property('escalation');
    expect(EscalationPolicySchema.safeParse({ tiers: [...tiers].reverse() }).success, 'out of order').to.equal(false);
    expect(EscalationPolicySchema.safeParse({ tiers: [{ afterMs: 60_000, userIds: [], roleIds: [] }] }).success, 'a tier names someone').to.equal(false);
  });

  it('refuses what the rules forbid', () => {
    expect(() => apply({ op: 'schedule', actorUserId: 'bell', issuedAt: 1, shifts: [] })).to.throw(TeamRuleError, /owner or admin/);
    index = 0;
    expect(() => apply({ op: 'schedule', actorUserId: 'chief', issuedAt: 1, shifts: [{ userIds: ['stranger'], from: 1, to: 2 }] })).to.throw(TeamRuleError, /not a member/);
    index = 0;
    expect(() => apply({ op: 'hold', actorUserId: 'stranger', issuedAt: 1 })).to.throw(TeamRuleError, /not a member/);
    index = 0;
    expect(() => apply({ op: 'schedule', actorUserId: 'chief', issuedAt: 1 })).to.throw(TeamRuleError, /carries the shifts/);
    // A plain care team is not held.
    const team = applyTeamStatement(undefined, { ...base, teamId: 't', index: 0, prev: '', op: 'create', actorUserId: 'o', issuedAt: 0, sealedDetails, members: [{ userId: 'o', role: 'owner' }] }, 'x0');
    expect(() => applyTeamStatement(team, { ...base, teamId: 't', index: 1, prev: 'x0', op: 'hold', actorUserId: 'o', issuedAt: 1 }, 'x1')).to.throw(TeamRuleError, /only an on-call role/);
    expect(holdersAt(team, 1)).to.deep.equal([]);
    // Shifts end after they start, and last at most 31 days.
    expect(ShiftSchema.safeParse({ userIds: ['bell'], from: 5, to: 5 }).success).to.equal(false);
    expect(ShiftSchema.safeParse({ userIds: ['bell'], from: 0, to: 32 * 86_400_000 }).success).to.equal(false);
    expect(ShiftSchema.safeParse({ userIds: [], from: 0, to: 1 }).success).to.equal(false);
  });
});
