import type { TeamRole, TeamState } from '@curbside/shared';
import type { ConversationDoc } from './models.js';

/** A care team's state as the conversation document stores it, and back (`ConversationDoc.team`). */
export function teamDoc(state: TeamState): NonNullable<ConversationDoc['team']> {
  return {
    ...(state.oncall ? { oncall: structuredClone(state.oncall) } : {}),
    ...(state.escalation ? { escalation: structuredClone(state.escalation) } : {}),
    ...(state.pool ? { pool: { topic: state.pool.topic, hidden: [...state.pool.hidden] } } : {}),
    ...(state.sealedDetails ? { sealedDetails: { keyId: state.sealedDetails.keyId, box: state.sealedDetails.box } } : {}),
    index: state.index,
    head: state.head,
    members: Object.entries(state.members).map(([userId, role]) => ({ userId, role })),
  };
}

export function fromTeamDoc(teamId: string, t: NonNullable<ConversationDoc['team']>): TeamState {
  const members: Record<string, TeamRole> = {};
  for (const m of [...t.members].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))) {
    // defineProperty: a user id like "__proto__" must become a key, not a prototype.
    Object.defineProperty(members, m.userId, { value: m.role, enumerable: true, writable: true, configurable: true });
  }
  // A team stored before titles were sealed has a plaintext `title` here and no sealed details: ignored.
  const sealed = t.sealedDetails;
  const oncall = t.oncall ? { oncall: { name: t.oncall.name, ...(t.oncall.hold ? { hold: { userId: t.oncall.hold.userId, at: t.oncall.hold.at } } : {}), shifts: t.oncall.shifts.map((s) => ({ userIds: [...s.userIds], from: s.from, to: s.to })) } } : {};
  const escalation = t.escalation?.tiers.length ? { escalation: { tiers: t.escalation.tiers.map((x) => ({ afterMs: x.afterMs, userIds: [...x.userIds], roleIds: [...x.roleIds] })) } } : {};
  const pool = t.pool ? { pool: { topic: t.pool.topic, hidden: [...t.pool.hidden] } } : {};
  return { teamId, ...(sealed?.keyId && sealed.box ? { sealedDetails: { keyId: sealed.keyId, box: sealed.box } } : {}), index: t.index, head: t.head, members, ...oncall, ...escalation, ...pool };
}
