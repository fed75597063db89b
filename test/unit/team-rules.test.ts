import { expect } from 'chai';
import { TeamRuleError, applyTeamStatement, canonicalJson, type TeamStatement } from '@curbside/shared';

describe('care-team rules (shared by hub and clients)', function () {
  const base = { v: 1 as const, teamId: 't', issuedAt: 1, actorDeviceId: 'd' };
  const create: TeamStatement = { ...base, index: 0, prev: '', op: 'create', actorUserId: 'owner', title: 'T', members: [{ userId: 'owner', role: 'owner' }] };

  it('does not mistake Object.prototype names for members (regression: "constructor" could add members)', () => {
    const state = applyTeamStatement(undefined, create, 'h0');
    expect(() => applyTeamStatement(state, { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'constructor', userId: 'x' }, 'h1')).to.throw(TeamRuleError, /actor is not a member/);
    const withToString = applyTeamStatement(state, { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'owner', userId: 'toString' }, 'h1');
    expect(Object.keys(withToString.members)).to.deep.equal(['owner', 'toString']);
    const withProto = applyTeamStatement(state, { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'owner', userId: '__proto__' }, 'h1');
    expect(Object.keys(withProto.members)).to.include('__proto__');
    expect(Object.getPrototypeOf(withProto.members)).to.equal(Object.prototype);
  });

  it('canonical JSON is independent of key order and refuses what JSON cannot carry faithfully', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined })).to.equal('{"a":[true,null,"x"],"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).to.equal(canonicalJson({ b: 2, a: 1 }));
    expect(() => canonicalJson({ n: Number.NaN })).to.throw(TypeError);
    expect(() => canonicalJson(new Date())).to.throw(TypeError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalJson(cycle)).to.throw(TypeError);
  });
});
