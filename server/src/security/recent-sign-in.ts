import { ErrorCode, type SocketData } from '@curbside/shared';
import { HubError } from '../errors.js';

/** @default for RECENT_AUTH_SEC: how old a sign-in may be for actions a stolen device must not take. */
export const DEFAULT_RECENT_AUTH_SEC = 600;

/**
 * Actions a stolen but still signed-in device must not take on its own (revoking a sibling, changing
 * the user's signed device list) need a recent sign-in: the identity provider's `auth_time`, not a
 * token refreshed in the background.
 * @throws HubError REAUTHENTICATION_REQUIRED with `details.maxAgeSec`.
 */
export function requireRecentSignIn(caller: Pick<SocketData, 'authTime'>, now: number, maxAgeSec: number, action: string): void {
  if (caller.authTime === undefined || now - caller.authTime > maxAgeSec * 1000) {
    throw new HubError(ErrorCode.REAUTHENTICATION_REQUIRED, `Sign in again to ${action}`, { maxAgeSec });
  }
}
