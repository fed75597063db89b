/**
 * Which requests the SDK tries again, and when: a request that changes nothing on the hub, or nothing
 * twice, is retried after a dropped connection, a slow answer or an UNAVAILABLE node; any other request
 * is tried once (the outbox resends messages itself, with its own idempotency key).
 */
import { ClientEvent, ErrorCode, backoffMs } from '@curbside/shared';
import { CurbsideError } from '../errors.js';

/** Requests that change nothing, or nothing twice, so a retry after a dropped connection is safe. */
const REPEATABLE_EVENTS: ReadonlySet<string> = new Set([
  ClientEvent.CONVERSATION_GET,
  ClientEvent.CONVERSATION_LIST,
  ClientEvent.PRESENCE_QUERY,
  ClientEvent.SYNC_FETCH,
  ClientEvent.KEYS_PUBLISH,
  ClientEvent.KEYS_COUNT,
  ClientEvent.KEYS_CLAIM,
  ClientEvent.DEVICES_LIST,
  ClientEvent.DEVICE_LISTS,
  ClientEvent.DEVICES_MINE,
  // Reads that change nothing on the hub.
  ClientEvent.DIRECTORY_LOOKUP,
  ClientEvent.DIRECTORY_SEARCH,
  ClientEvent.ALERT_LIST,
  ClientEvent.ALERT_CONTENT,
  ClientEvent.ROLE_SEARCH,
  ClientEvent.ROLE_LOG,
  ClientEvent.CREDENTIALS_GET,
  ClientEvent.CREDENTIALS_SEARCH,
  ClientEvent.PSEUDONYM_KEYS,
  ClientEvent.POOL_SEARCH,
  ClientEvent.POOL_LOG,
]);
/** Tries of a repeatable request. */
const REPEATABLE_ATTEMPTS = 5;

/** Tries a request gets: REPEATABLE_ATTEMPTS if it is safe to repeat, else one. */
export function attemptsFor(event: string): number {
  return REPEATABLE_EVENTS.has(event) ? REPEATABLE_ATTEMPTS : 1;
}

/**
 * How long to wait before trying again after `e` failed try `attempt` of `attempts` (0: at once), or
 * undefined when it is not tried again. A dropped connection or a slow answer is tried again at once (the
 * request waits for the reconnect); a node that is draining or cannot reach its database (UNAVAILABLE:
 * it closes our connection soon, or another node can answer) after its retry hint or a backoff.
 */
export function retryWaitMs(e: unknown, attempt: number, attempts: number): number | undefined {
  const code = e instanceof CurbsideError ? e.code : undefined;
  const retry = code === ErrorCode.NOT_CONNECTED || code === ErrorCode.TIMEOUT || code === ErrorCode.UNAVAILABLE;
  if (!retry || attempt >= attempts) return undefined;
  return code === ErrorCode.UNAVAILABLE ? Math.max((e as CurbsideError).retryAfterMs, backoffMs(attempt, { baseMs: 200, maxMs: 10_000 })) : 0;
}
