import { expect } from 'chai';
import { TeamRuleError, applyTeamStatement, canonicalJson, type TeamStatement } from '@curbside/shared';

describe('care-team rules (shared by hub and clients)', function () {
  const base = { v: 1 as const, teamId: 't', issuedAt: 1, actorDeviceId: 'd' };
  const sealedDetails = { keyId: 'a'.repeat(32), box: 'b'.repeat(139) };
  const create: TeamStatement = { ...base, index: 0, prev: '', op: 'create', actorUserId: 'owner', sealedDetails, members: [{ userId: 'owner', role: 'owner' }] };

  it('does not mistake Object.prototype names for members (regression: "constructor" could add members)', () => {
    const state = applyTeamStatement(undefined, create, 'h0');
    expect(() => applyTeamStatement(state, { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'constructor', userId: 'x' }, 'h1')).to.throw(TeamRuleError, /actor is not a member/);
    const withToString = applyTeamStatement(state, { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'owner', userId: 'toString' }, 'h1');
    expect(Object.keys(withToString.members)).to.deep.equal(['owner', 'toString']);
    const withProto = applyTeamStatement(state, { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'owner', userId: '__proto__' }, 'h1');
    expect(Object.keys(withProto.members)).to.include('__proto__');
    expect(Object.getPrototypeOf(withProto.members)).to.equal(Object.prototype);
  });

  it('a title is sealed: create and details need sealed details, and only an owner or admin changes them', () => {
    expect(() => applyTeamStatement(undefined, { ...create, sealedDetails: undefined }, 'h0')).to.throw(TeamRuleError, /sealed title/);
    const state = applyTeamStatement(applyTeamStatement(undefined, create, 'h0'), { ...base, index: 1, prev: 'h0', op: 'add', actorUserId: 'owner', userId: 'kim' }, 'h1');
    expect(state.sealedDetails).to.deep.equal(sealedDetails);
    const renamed = { keyId: 'c'.repeat(32), box: 'd'.repeat(139) };
    expect(applyTeamStatement(state, { ...base, index: 2, prev: 'h1', op: 'details', actorUserId: 'owner', sealedDetails: renamed }, 'h2')).to.include({ index: 2, head: 'h2' }).and.deep.include({ sealedDetails: renamed });
    expect(() => applyTeamStatement(state, { ...base, index: 2, prev: 'h1', op: 'details', actorUserId: 'kim', sealedDetails: renamed }, 'h2')).to.throw(TeamRuleError, /owner or admin/);
    expect(() => applyTeamStatement(state, { ...base, index: 2, prev: 'h1', op: 'details', actorUserId: 'owner' }, 'h2')).to.throw(TeamRuleError, /sealed title/);
    // Sealed details on another op change nothing (a field another op uses is ignored).
    const added = applyTeamStatement(state, { ...base, index: 2, prev: 'h1', op: 'add', actorUserId: 'owner', userId: 'ito', sealedDetails: renamed }, 'h2');
    expect(added.sealedDetails).to.deep.equal(sealedDetails);
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
