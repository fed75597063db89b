/**
 * `curbside-admin keys show | reload`: the identity provider keys each node accepts, and a re-read of
 * JWT_PUBLIC_KEY_FILE on every node (key rotation). Exit 1 when a node failed to load its keys.
 */
import { AdminKeysResponseSchema, AdminPath } from '@curbside/shared';
import type { CommandContext } from './command-context.js';

export async function keyCommand(action: 'show' | 'reload', ctx: CommandContext): Promise<number> {
  const { hub, print } = ctx;
  const res = action === 'show' ? await hub.get(AdminPath.KEYS, {}, AdminKeysResponseSchema) : await hub.post(AdminPath.KEYS_RELOAD, {}, AdminKeysResponseSchema);
  print(res, () => res.nodes.map((n) => `${n.node}  ${n.source}  ${n.algorithm}  ${n.error ? `FAILED: ${n.error}` : n.fingerprints.join(' ')}`).join('\n'));
  return res.nodes.some((n) => n.error !== undefined) ? 1 : 0;
}
