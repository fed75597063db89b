/**
 * `curbside-admin users list | disable | enable | profile`, `devices revoke | restore`, `teams show`: the
 * organisation's directory as the operator sees it, and how it prints for people (`--json` prints the
 * answers as they are).
 */
import type { z } from 'zod';
import {
  AdminDeviceRestoreResultSchema,
  AdminDeviceRevokeResultSchema,
  AdminPath,
  AdminTeamsResponseSchema,
  AdminUserActionResultSchema,
  AdminUserProfileResultSchema,
  AdminUsersResponseSchema,
} from '@curbside/shared';
import type { CommandContext } from './command-context.js';

export type UserCommand = 'users list' | 'users disable' | 'users enable' | 'users profile' | 'devices revoke' | 'devices restore' | 'teams show';

export async function userCommand(command: UserCommand, ctx: CommandContext): Promise<number> {
  const { hub, need, print } = ctx;
  const v = (name: string) => ctx.value(name);
  switch (command) {
    case 'users list': {
      const limit = v('limit');
      if (limit !== undefined && !/^\d{1,3}$/.test(limit)) ctx.usage('--limit must be a number from 1 to 500');
      const res = await hub.get(AdminPath.USERS, { orgId: need('org'), after: v('after'), limit }, AdminUsersResponseSchema);
      print(res, () => formatUsers(res));
      return 0;
    }
    case 'users disable':
    case 'users enable': {
      const path = command === 'users disable' ? AdminPath.USER_DISABLE : AdminPath.USER_ENABLE;
      const res = await hub.post(path, { orgId: need('org'), userId: need('user') }, AdminUserActionResultSchema);
      print(res, () => `${res.userId} (${res.orgId}): ${res.status.replace('_', ' ')}`);
      return 0;
    }
    case 'users profile': {
      const [name, role, department] = [v('name'), v('role'), v('department')];
      if (name === undefined && role === undefined && department === undefined) ctx.usage('users profile needs at least one of --name, --role and --department');
      const body = { orgId: need('org'), userId: need('user'), displayName: name, role, department };
      const res = await hub.post(AdminPath.USER_PROFILE, body, AdminUserProfileResultSchema);
      const p = res.profile;
      print(res, () => `${p.userId} (${res.orgId}): ${[p.displayName ?? '(no name)', p.role, p.department].filter(Boolean).join(' · ')}`);
      return 0;
    }
    case 'devices revoke': {
      const res = await hub.post(AdminPath.DEVICE_REVOKE, { orgId: need('org'), userId: need('user'), deviceId: need('device') }, AdminDeviceRevokeResultSchema);
      print(res, () => `${res.deviceId}: ${res.revoked ? 'revoked' : 'was already revoked'}`);
      return 0;
    }
    case 'devices restore': {
      const res = await hub.post(AdminPath.DEVICE_RESTORE, { orgId: need('org'), deviceId: need('device') }, AdminDeviceRestoreResultSchema);
      print(res, () => `${v('device')}: ${res.restored ? 'restored' : 'was not revoked'}`);
      return 0;
    }
    case 'teams show': {
      const [team, user] = [v('team'), v('user')];
      if ((team === undefined) === (user === undefined)) ctx.usage('teams show needs exactly one of --team and --user');
      const res = await hub.get(AdminPath.TEAMS, { orgId: need('org'), teamId: team, userId: user }, AdminTeamsResponseSchema);
      print(res, () => formatTeams(res));
      return 0;
    }
  }
}

function formatUsers(res: z.output<typeof AdminUsersResponseSchema>): string {
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

function formatTeams(res: z.output<typeof AdminTeamsResponseSchema>): string {
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
