import { RatchetSession, bytesEqual } from '../crypto/index.js';
import { putOp, deleteOp, type DeviceStore, type DeviceStoreOp } from '../stores/index.js';

/** Sessions kept per peer device besides the current one (simultaneous starts, repairs). */
export const MAX_ARCHIVED_SESSIONS = 5;

export const peerKey = (userId: string, deviceId: string) => `${userId}\n${deviceId}`;

/** Every session this device has with one peer device; the first is the one used for sending. */
export interface PeerSessions {
  sessions: RatchetSession[];
}

interface StoredPeerSessions {
  sessions: Uint8Array[];
}

/** Ratchet sessions per peer device, persisted in the device store. */
export class SessionBook {
  constructor(private readonly store: DeviceStore) {}

  async load(userId: string, deviceId: string): Promise<RatchetSession[]> {
    const stored = await this.store.get<StoredPeerSessions>('sessions', peerKey(userId, deviceId));
    return stored ? stored.sessions.map((b) => RatchetSession.deserialize(b)) : [];
  }

  /** The op that saves these sessions (current first), for a transaction with other changes. */
  saveOp(userId: string, deviceId: string, sessions: RatchetSession[]): DeviceStoreOp {
    if (sessions.length === 0) return deleteOp('sessions', peerKey(userId, deviceId));
    return putOp('sessions', peerKey(userId, deviceId), { sessions: sessions.slice(0, 1 + MAX_ARCHIVED_SESSIONS).map((s) => s.serialize()) });
  }

  async forget(userId: string, deviceId: string): Promise<void> {
    await this.store.delete('sessions', peerKey(userId, deviceId));
  }
}

/** What this device believes about a peer device's identity key. */
export interface TrustRecord {
  userId: string;
  deviceId: string;
  identityKey: Uint8Array;
  /** `trusted` on first use, `verified` after the user compared safety numbers, `changed` when a different key appeared. */
  status: 'trusted' | 'verified' | 'changed';
  /** With `changed`: the new key, waiting for the user to accept it. */
  pendingIdentityKey?: Uint8Array;
  firstSeenAt: number;
}

/**
 * Trust on first use, per device: the first identity key seen for a (user, device) is remembered;
 * a different one later marks the device `changed`, and the SDK sends nothing to that user until
 * the app calls `acceptIdentity`.
 */
export class TrustBook {
  constructor(private readonly store: DeviceStore) {}

  get(userId: string, deviceId: string): Promise<TrustRecord | undefined> {
    return this.store.get<TrustRecord>('trust', peerKey(userId, deviceId));
  }

  async forUser(userId: string): Promise<TrustRecord[]> {
    return (await this.store.list<TrustRecord>('trust')).filter(([k]) => k.startsWith(`${userId}\n`)).map(([, v]) => v);
  }

  /** Whether the user has a device whose key changed and was not accepted yet. */
  async isBlocked(userId: string): Promise<boolean> {
    return (await this.forUser(userId)).some((r) => r.status === 'changed');
  }

  /**
   * Check a key the hub presented for a device. Records it if the device is new.
   * @returns `new`, `same`, or `changed` (recorded as such: the user is now blocked).
   */
  async observe(userId: string, deviceId: string, identityKey: Uint8Array, now = Date.now()): Promise<'new' | 'same' | 'changed'> {
    const known = await this.get(userId, deviceId);
    if (!known) {
      await this.store.put('trust', peerKey(userId, deviceId), { userId, deviceId, identityKey, status: 'trusted', firstSeenAt: now });
      return 'new';
    }
    if (bytesEqual(known.identityKey, identityKey)) return known.status === 'changed' ? 'changed' : 'same';
    if (known.status !== 'changed' || !known.pendingIdentityKey || !bytesEqual(known.pendingIdentityKey, identityKey)) {
      await this.store.put('trust', peerKey(userId, deviceId), { ...known, status: 'changed', pendingIdentityKey: identityKey });
    }
    return 'changed';
  }

  /** The user accepted the new keys of this contact: they become trusted (not verified). Returns the devices whose key changed. */
  async accept(userId: string): Promise<string[]> {
    const changed = (await this.forUser(userId)).filter((r) => r.status === 'changed' && r.pendingIdentityKey);
    await this.store.transaction(
      changed.map((r) => putOp('trust', peerKey(userId, r.deviceId), { userId, deviceId: r.deviceId, identityKey: r.pendingIdentityKey!, status: 'trusted', firstSeenAt: r.firstSeenAt })),
    );
    return changed.map((r) => r.deviceId);
  }

  /** The user compared safety numbers and they matched. */
  async markVerified(userId: string): Promise<void> {
    const records = await this.forUser(userId);
    await this.store.transaction(records.filter((r) => r.status !== 'changed').map((r) => putOp('trust', peerKey(userId, r.deviceId), { ...r, status: 'verified' })));
  }
}
