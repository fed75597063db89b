import { expect } from 'chai';
import { ConsultPartSchema, TeamRuleError, applyTeamStatement, type TeamState, type TeamStatement } from '@curbside/shared';
import { consultThreads, type ChatMessage } from '@curbside/client-sdk';

/** Consult pools: the `join` and `hide` rules every client and the hub apply, and how a device threads cases. */
describe('consult pool rules (shared by hub and clients) and case threading', function () {
  const base = { v: 1 as const, teamId: 'derm', actorDeviceId: 'd' };
  const sealedDetails = { keyId: 'a'.repeat(32), box: 'b'.repeat(139) };
  let state: TeamState;
  let index = 0;
  const apply = (s: Omit<TeamStatement, 'v' | 'teamId' | 'actorDeviceId' | 'index' | 'prev'>) => {
    state = applyTeamStatement(state, { ...base, index: index + 1, prev: state.head, ...s } as TeamStatement, `h${index + 1}`);
    index += 1;
    return state;
  };
  beforeEach(() => {
    index = 0;
    state = applyTeamStatement(undefined, { ...base, index: 0, prev: '', op: 'create', actorUserId: 'okafor', issuedAt: 0, sealedDetails, poolTopic: 'Dermatology curbside', members: [{ userId: 'okafor', role: 'owner' }] }, 'h0');
  });

  it('a clinician joins a pool as a member, once; a plain team or an on-call role is not joined', () => {
    expect(state.pool).to.deep.equal({ topic: 'Dermatology curbside', hidden: [] });
    apply({ op: 'join', actorUserId: 'lee', issuedAt: 1 });
    expect(state.members).to.deep.equal({ lee: 'member', okafor: 'owner' });
    expect(() => apply({ op: 'join', actorUserId: 'lee', issuedAt: 2 })).to.throw(TeamRuleError, /already a member/);
    const team = applyTeamStatement(undefined, { ...base, index: 0, prev: '', op: 'create', actorUserId: 'okafor', issuedAt: 0, sealedDetails, members: [{ userId: 'okafor', role: 'owner' }] }, 'h0');
    expect(() => applyTeamStatement(team, { ...base, index: 1, prev: 'h0', op: 'join', actorUserId: 'lee', issuedAt: 1 }, 'h1')).to.throw(TeamRuleError, /only a consult pool is joined/);
    expect(() => applyTeamStatement(undefined, { ...base, index: 0, prev: '', op: 'create', actorUserId: 'okafor', issuedAt: 0, sealedDetails, poolTopic: 'x', roleName: 'y', members: [{ userId: 'okafor', role: 'owner' }] }, 'h0')).to.throw(TeamRuleError, /not both/);
  });

  it('only a moderator hides a case; hiding twice keeps one entry; a member who joined may leave', () => {
    apply({ op: 'join', actorUserId: 'lee', issuedAt: 1 });
    expect(() => apply({ op: 'hide', actorUserId: 'lee', issuedAt: 2, messageId: 'case-1' })).to.throw(TeamRuleError, /moderator/);
    expect(() => apply({ op: 'hide', actorUserId: 'mallory', issuedAt: 2, messageId: 'case-1' })).to.throw(TeamRuleError, /not a member/);
    apply({ op: 'hide', actorUserId: 'okafor', issuedAt: 2, messageId: 'case-1' });
    apply({ op: 'hide', actorUserId: 'okafor', issuedAt: 3, messageId: 'case-1' });
    expect(state.pool!.hidden).to.deep.equal(['case-1']);
    apply({ op: 'remove', actorUserId: 'lee', userId: 'lee', issuedAt: 4 });
    expect(state.members).to.deep.equal({ okafor: 'owner' });
  });

  it('threads replies under their case; only the asker marks helpful, closes or moves; hidden cases and stray replies drop out', () => {
    let seq = 0;
    const m = (messageId: string, senderUserId: string, text: string, consult: ChatMessage['consult']): ChatMessage => ({ conversationId: 'derm', messageId, seq: ++seq, senderUserId, senderDeviceId: 'd', sentAt: seq, text, priority: 'routine', outgoing: false, ...(consult ? { consult } : {}) });
    const messages = [
      m('c1', 'lee', 'Annular plaque?', { type: 'case', ageBand: '30-39', sex: 'female' }),
      m('r1', 'okafor', 'Granuloma annulare', { type: 'reply', caseId: 'c1' }),
      m('r2', 'kim', 'Tinea?', { type: 'reply', caseId: 'c1' }),
      m('x', 'kim', 'reply to nothing', { type: 'reply', caseId: 'nope' }),
      m('h1', 'kim', '', { type: 'helpful', caseId: 'c1', replyId: 'r2' }),
      m('h2', 'lee', '', { type: 'helpful', caseId: 'c1', replyId: 'r1' }),
      m('z1', 'kim', 'closed by a bystander', { type: 'close', caseId: 'c1' }),
      m('z2', 'lee', 'Biopsy: GA', { type: 'close', caseId: 'c1' }),
      m('c2', 'kim', 'Nail?', { type: 'case', ageBand: '60-69', sex: 'male' }),
      m('plain', 'kim', 'just chatting', undefined),
    ];
    const [c1, c2] = consultThreads(messages);
    expect(c1).to.deep.include({ caseId: 'c1', askerUserId: 'lee', question: 'Annular plaque?', ageBand: '30-39', sex: 'female', closed: { summary: 'Biopsy: GA', at: 8 } });
    expect(c1!.replies.map((r) => [r.messageId, r.helpful])).to.deep.equal([['r1', true], ['r2', false]]);
    expect(c2!.replies).to.deep.equal([]);
    expect(consultThreads(messages, ['c1']).map((c) => c.caseId)).to.deep.equal(['c2']);
    // What a sender seals is checked on opening: a case never carries a name or a date of birth.
    expect(ConsultPartSchema.safeParse({ type: 'case', ageBand: '30-39', sex: 'female', name: 'Jane Doe' }).success).to.equal(false);
    expect(ConsultPartSchema.safeParse({ type: 'case', ageBand: '1987-03-02', sex: 'female' }).success).to.equal(false);
  });
});
