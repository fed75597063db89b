/**
 * Which devices of a user are online right now, across every hub node.
 *
 * A connection is online from `connect` until `disconnect`, or until `ttlMs` passes without a
 * `heartbeat` — that is how a node that died without saying goodbye has its devices go offline.
 *
 * Implementations: `MemoryPresence` (one process) and `RedisPresence` (ioredis). Both pass
 * `test/contract/presence.contract.ts`.
 */
export interface Presence {
  connect(conn: PresenceConnection): Promise<void>;
  disconnect(conn: PresenceConnection): Promise<void>;
  /** Refresh the expiry of connections this node still holds. */
  heartbeat(conns: readonly PresenceConnection[]): Promise<void>;
  /** Distinct device ids of the user with at least one live connection, sorted. */
  onlineDevices(orgId: string, userId: string): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface PresenceConnection {
  orgId: string;
  userId: string;
  deviceId: string;
  /** Unique per socket (socket.io's socket id): a device may hold several connections. */
  connectionId: string;
}

export interface PresenceOptions {
  /** How long a connection stays online without a heartbeat. */
  ttlMs: number;
  /** Clock, injectable so contract tests can expire entries without sleeping. @default Date.now */
  now?: () => number;
}
