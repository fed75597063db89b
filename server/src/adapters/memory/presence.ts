import { compositeKey } from '@curbside/shared';
import type { Presence, PresenceConnection, PresenceOptions } from '../../ports/presence.js';

/** Presence for a single hub process. */
export class MemoryPresence implements Presence {
  /** user key → connection key → expiry (epoch ms) */
  private readonly entries = new Map<string, Map<string, { deviceId: string; expiresAt: number }>>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: PresenceOptions) {
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
  }

  async connect(conn: PresenceConnection): Promise<void> {
    this.set(conn);
  }

  async disconnect(conn: PresenceConnection): Promise<void> {
    const uk = userKey(conn);
    const m = this.entries.get(uk);
    m?.delete(conn.connectionId);
    if (m && m.size === 0) this.entries.delete(uk);
  }

  async heartbeat(conns: readonly PresenceConnection[]): Promise<void> {
    for (const c of conns) this.set(c);
  }

  async onlineDevices(orgId: string, userId: string): Promise<string[]> {
    const m = this.entries.get(userKey({ orgId, userId }));
    if (!m) return [];
    const now = this.now();
    const devices = new Set<string>();
    for (const [id, e] of m) {
      if (e.expiresAt > now) devices.add(e.deviceId);
      else m.delete(id);
    }
    return [...devices].sort();
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {
    this.entries.clear();
  }

  private set(conn: PresenceConnection): void {
    const uk = userKey(conn);
    let m = this.entries.get(uk);
    if (!m) this.entries.set(uk, (m = new Map()));
    m.set(conn.connectionId, { deviceId: conn.deviceId, expiresAt: this.now() + this.ttlMs });
  }
}

function userKey(c: { orgId: string; userId: string }): string {
  return compositeKey(c.orgId, c.userId);
}
