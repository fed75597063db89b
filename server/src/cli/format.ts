/** How `curbside-admin` prints users and care teams for people (`--json` prints the answers as they are). */
import type { z } from 'zod';
import type { AdminTeamsResponseSchema, AdminUsersResponseSchema } from '@curbside/shared';

export function formatUsers(res: z.output<typeof AdminUsersResponseSchema>): string {
  if (res.users.length === 0) return `no users in ${res.orgId}`;
  const lines = res.users.flatMap((u) => [
    `${u.userId}${u.disabledAt !== undefined ? `  DISABLED since ${iso(u.disabledAt)}` : ''}  (first seen ${iso(u.createdAt)}, last seen ${iso(u.lastSeenAt)})`,
    ...u.devices.map(
      (d) => `  ${d.deviceId}  ${d.revokedAt !== undefined ? `revoked ${iso(d.revokedAt)}` : d.listed ? 'listed' : 'not listed'}${d.hasKeys ? '' : ', no keys'}  last seen ${iso(d.lastSeenAt)}`,
    ),
  ]);
  if (res.next !== undefined) lines.push(`(more: --after ${res.next})`);
  return lines.join('\n');
}

export function formatTeams(res: z.output<typeof AdminTeamsResponseSchema>): string {
  if (res.teams.length === 0) return `no care teams`;
  return res.teams
    .map((t) =>
      [
        `${t.teamId}  created ${iso(t.createdAt)} by ${t.createdBy}`,
        `  epoch ${t.epoch ?? '(none)'}, ${t.statements} statements, last seq ${t.lastSeq}`,
        `  ${t.counts.members} members (${t.counts.owners} owner, ${t.counts.admins} admins): ${t.members.map((m) => `${m.userId} (${m.role})`).join(', ')}`,
      ].join('\n'),
    )
    .join('\n');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
