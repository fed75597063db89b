import { compositeKey } from '@curbside/shared';
import type { Redis } from 'ioredis';
import { unavailableAfter } from '../errors.js';

/** Fail closed: a revocation check that cannot be made refuses the request as UNAVAILABLE. */
const REVOCATIONS_UNREACHABLE = 'Revocation list unreachable; retry later';

/** How long a token revocation is kept past the token's `exp`, covering clock tolerance. */
export const REVOCATION_GRACE_MS = 300_000;

/** What a handshake or a live socket is checked against. */
export interface RevocationSubject {
  orgId: string;
  userId: string;
  deviceId: string;
  tokenId: string | undefined;
}

/**
 * Revoked access tokens (by `jti`, kept until the token would have expired anyway), revoked
 * devices (kept for good) and disabled users (until an operator enables them again). Checked at every handshake and periodically on live sockets; live
 * sockets are also dropped at once when something is revoked (see `Revoker`).
 *
 * Implementations: `MemoryRevocations` (dev mode, one process) and `RedisRevocations` (every node).
 */
export interface RevocationList {
  revokeToken(orgId: string, tokenId: string, expiresAt: number): Promise<void>;
  revokeDevice(orgId: string, deviceId: string): Promise<void>;
  /** Forget a device's revocation (an operator restored it). */
  restoreDevice(orgId: string, deviceId: string): Promise<void>;
  /** An operator disabled the user: none of their devices authenticates. */
  disableUser(orgId: string, userId: string): Promise<void>;
  enableUser(orgId: string, userId: string): Promise<void>;
  /** Which credential of the subject is revoked, if any (the user first, then the device, then the token). */
  check(subject: RevocationSubject): Promise<Revoked | undefined>;
}

export type Revoked = 'user' | 'device' | 'token';

export class MemoryRevocations implements RevocationList {
  private readonly tokens = new Map<string, number>();
  private readonly devices = new Set<string>();
  private readonly users = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  async revokeToken(orgId: string, tokenId: string, expiresAt: number): Promise<void> {
    this.tokens.set(key(orgId, tokenId), expiresAt);
    // Forget tokens that expired long ago, so the map stays small.
    if (this.tokens.size % 1024 === 0) for (const [k, exp] of this.tokens) if (exp < this.now()) this.tokens.delete(k);
  }

  async revokeDevice(orgId: string, deviceId: string): Promise<void> {
    this.devices.add(key(orgId, deviceId));
  }

  async restoreDevice(orgId: string, deviceId: string): Promise<void> {
    this.devices.delete(key(orgId, deviceId));
  }

  async disableUser(orgId: string, userId: string): Promise<void> {
    this.users.add(key(orgId, userId));
  }

  async enableUser(orgId: string, userId: string): Promise<void> {
    this.users.delete(key(orgId, userId));
  }

  async check(subject: RevocationSubject): Promise<Revoked | undefined> {
    if (this.users.has(key(subject.orgId, subject.userId))) return 'user';
    if (this.devices.has(key(subject.orgId, subject.deviceId))) return 'device';
    if (subject.tokenId !== undefined && this.tokens.has(key(subject.orgId, subject.tokenId))) return 'token';
    return undefined;
  }
}

export interface RedisRevocationsOptions {
  redis: Redis;
  keyPrefix: string;
  /** Extra lifetime of a token revocation past the token's `exp`, covering clock tolerance. @default 300 s */
  graceMs?: number;
  /** A check slower than this fails with UNAVAILABLE (fail closed). @default 1000 */
  timeoutMs?: number;
  now?: () => number;
}

/**
 * Revocations in Redis, shared by every hub node. Token entries expire (PX) after the token would
 * have; device entries never expire. The device's durable tombstone is also kept in the database
 * (`DeviceAdmin.revokeDevice`), so a flushed Redis does not resurrect a revoked device.
 *
 * Keys are `compositeKey(org, id)`. Token revocations written before that (`<org>\n<jti>`) are still
 * read, in the same MGET, until the last of them expires with its token.
 */
export class RedisRevocations implements RevocationList {
  private readonly graceMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly options: RedisRevocationsOptions) {
    this.graceMs = options.graceMs ?? REVOCATION_GRACE_MS;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  private tokenKey(orgId: string, tokenId: string): string {
    return `${this.options.keyPrefix}revoked:t:${key(orgId, tokenId)}`;
  }
  /** Token revocations stored before keys went through `compositeKey`; they expire with their tokens. */
  private legacyTokenKey(orgId: string, tokenId: string): string {
    return `${this.options.keyPrefix}revoked:t:${orgId}\n${tokenId}`;
  }
  private deviceKey(orgId: string, deviceId: string): string {
    return `${this.options.keyPrefix}revoked:d:${key(orgId, deviceId)}`;
  }
  private userKey(orgId: string, userId: string): string {
    return `${this.options.keyPrefix}disabled:u:${key(orgId, userId)}`;
  }

  async revokeToken(orgId: string, tokenId: string, expiresAt: number): Promise<void> {
    const ttl = Math.max(1000, expiresAt - this.now() + this.graceMs);
    await this.options.redis.set(this.tokenKey(orgId, tokenId), String(expiresAt), 'PX', ttl);
  }

  async revokeDevice(orgId: string, deviceId: string): Promise<void> {
    await this.options.redis.set(this.deviceKey(orgId, deviceId), String(this.now()));
  }
  async restoreDevice(orgId: string, deviceId: string): Promise<void> {
    await this.options.redis.del(this.deviceKey(orgId, deviceId));
  }
  async disableUser(orgId: string, userId: string): Promise<void> {
    await this.options.redis.set(this.userKey(orgId, userId), String(this.now()));
  }
  async enableUser(orgId: string, userId: string): Promise<void> {
    await this.options.redis.del(this.userKey(orgId, userId));
  }


  async check(subject: RevocationSubject): Promise<Revoked | undefined> {
    const keys = [this.userKey(subject.orgId, subject.userId), this.deviceKey(subject.orgId, subject.deviceId)];
    if (subject.tokenId !== undefined) keys.push(this.tokenKey(subject.orgId, subject.tokenId), this.legacyTokenKey(subject.orgId, subject.tokenId));
    const values = await unavailableAfter(this.options.redis.mget(...keys), this.timeoutMs, REVOCATIONS_UNREACHABLE);
    if (values[0] !== null) return 'user';
    if (values[1] !== null) return 'device';
    if (values.slice(2).some((v) => v !== null)) return 'token';
    return undefined;
  }
}

function key(orgId: string, id: string): string {
  return compositeKey(orgId, id);
}
