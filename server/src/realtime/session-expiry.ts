import type { HubSocket } from './sockets.js';

/** setTimeout's longest delay (2^31 − 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Close a socket when its token expires, idle or not: an idle socket once kept receiving envelopes
 * after its token had expired. Re-armed in steps, since a timer holds at most about 24.8 days.
 */
export function closeAtExpiry(socket: HubSocket, now: () => number, close: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = () => {
    timer = setTimeout(
      () => {
        if (!socket.connected) return;
        if (socket.data.tokenExpiresAt > now()) arm();
        else close();
      },
      Math.min(Math.max(0, socket.data.tokenExpiresAt - now()), MAX_TIMER_MS),
    );
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
