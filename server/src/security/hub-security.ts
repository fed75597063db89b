import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import proxyaddr from 'proxy-addr';
import {
  ClientEvent,
  CloseCode,
  ErrorCode,
  Rooms,
  SecurityRooms,
  ServerEvent,
  type DeviceRevokeResult,
  type OwnDevice,
  type SocketData,
} from '@curbside/shared';
import { HubError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../ports/storage.js';
import type { AuditEvent, AuditLog } from '../audit/port.js';
import { auditFields } from '../audit/fields.js';
import type { HubServer, HubSocket } from '../realtime/sockets.js';
import type { SecurityConfig } from './config.js';
import { EVENT_CLASS } from './event-classes.js';
import { RefusalAudit } from './refusal-audit.js';
import { DEFAULT_RECENT_AUTH_SEC, requireRecentSignIn } from './recent-sign-in.js';
import { OriginPolicy } from './origins.js';
import { RateLimits, rateKey, type RateLimitName } from './rate-limits.js';
import { MemoryRevocations, REVOCATION_GRACE_MS, RedisRevocations, type RevocationList, type Revoked } from './revocation.js';

/** What a socket closed for a revocation is told, per what was revoked. */
const CLOSING_MESSAGE: Record<Revoked, string> = { user: 'User disabled by an operator', device: 'Device revoked', token: 'Access token revoked' };

function userDisabled(): HubError {
  return new HubError(ErrorCode.USER_DISABLED, 'This user was disabled by an operator; ask your administrator');
}

export interface HubSecurityOptions {
  config: SecurityConfig;
  storage: Storage;
  audit: AuditLog;
  logger: Logger;
  /** Shared rate-limit counters and revocation list. Absent (dev mode): memory, this process only. */
  redis?: { client: Redis; keyPrefix: string } | undefined;
  /** Told when a device is revoked, so that no node keeps listing it. */
  onDevicesChanged?: ((orgId: string, userId: string) => Promise<void>) | undefined;
  /** Which hops may name the client's address in X-Forwarded-For (`HubConfig.trustProxy`). Unset: none. */
  trustProxy?: string | number | undefined;
  /** How recent a sign-in (`auth_time`) revoking a sibling device needs, seconds. @default 600 */
  recentAuthSec?: number | undefined;
  /** How client addresses go into the audit log (`HubConfig.auditClientIp`). @default keep */
  auditClientIp?: { mode: 'keep' } | { mode: 'hash'; key: string } | { mode: 'omit' } | undefined;
  now?: () => number;
}

type Caller = Pick<SocketData, 'orgId' | 'userId' | 'deviceId'>;


/** Events with a budget of their own, by what key, at what cost. */
const EVENT_LIMITS: Partial<Record<string, { name: RateLimitName; key: (c: SocketData) => string; cost?: (req: unknown) => number }>> = {
  [ClientEvent.KEYS_CLAIM]: {
    name: 'keysClaim',
    key: (c) => rateKey(c.orgId, c.userId),
    cost: (req) => (req as { userIds: unknown[] }).userIds.length,
  },
};


/**
 * The hub's security layer, used by the gateway's handshake and `handle()` wrapper: origin
 * allow-list, rate limits, revocation of tokens and devices (checked at the handshake, re-checked on
 * live sockets, and pushed to every node at once), device administration, and the audit trail.
 */
export class HubSecurity {
  readonly origins: OriginPolicy;
  readonly rateLimits: RateLimits;
  readonly revocations: RevocationList;
  readonly audit: AuditLog;
  private io: HubServer | undefined;
  private readonly checkedAt = new WeakMap<HubSocket, number>();
  private readonly now: () => number;
  private readonly refusals: RefusalAudit;
  private readonly trusted: ((addr: string, i: number) => boolean) | undefined;

  constructor(private readonly options: HubSecurityOptions) {
    this.now = options.now ?? Date.now;
    this.audit = options.audit;
    this.refusals = new RefusalAudit((e) => this.audit.record(e), this.now);
    this.trusted = options.trustProxy === undefined ? undefined : trustFunction(options.trustProxy);
    this.origins = new OriginPolicy(options.config.corsOrigins);
    this.rateLimits = new RateLimits({ rules: options.config.rateLimits, budgetFactors: options.config.budgetFactors, redis: options.redis, logger: options.logger });
    this.revocations = options.redis
      ? new RedisRevocations({ redis: options.redis.client, keyPrefix: options.redis.keyPrefix, now: this.now })
      : new MemoryRevocations(this.now);
  }

  attach(io: HubServer): void {
    this.io = io;
  }

  // --- handshake ------------------------------------------------------------------------------

  /**
   * The client's address: the socket's peer, or behind trusted proxies (TRUST_PROXY) the address they
   * forwarded. What per-address limits and the audit log see.
   */
  clientAddress(socket: HubSocket): string {
    // Worked out from the connection's first request (`addressOf`), which engine.io then drops (gateway.ts).
    return (socket.conn as unknown as { clientAddress?: string }).clientAddress ?? socket.handshake.address;
  }

  /** The client's address for a connection's first HTTP request: its peer, or what trusted proxies forwarded. */
  addressOf(req: IncomingMessage): string {
    const peer = req.socket?.remoteAddress ?? '';
    if (!this.trusted) return peer;
    try {
      return proxyaddr(req, this.trusted);
    } catch {
      return peer;
    }
  }

  /**
   * A handshake whose token could not be verified: counted against its address. Past the (high)
   * ceiling, that address's failing handshakes are answered RATE_LIMITED. Valid tokens never are, so
   * garbage from behind a hospital's NAT locks nobody out.
   */
  async handshakeFailed(address: string, err: unknown): Promise<never> {
    await this.rateLimits.consume('handshakeFailures', rateKey('address', address));
    throw err;
  }

  /** A verified handshake, against its device's and user's budgets. */
  limitHandshake(identity: SocketData): Promise<void> {
    return this.rateLimits.consumeScoped('handshake', identity);
  }

  /**
   * A disabled user, a revoked token (jti) or a revoked device never authenticates. Redis first, then
   * the durable records in the database (disabled users, device tombstones, token revocations), so a
   * flushed Redis forgets nothing that matters.
   */
  async assertNotRevoked(identity: SocketData): Promise<void> {
    const tokenRevoked = () => new HubError(ErrorCode.AUTH_REVOKED, 'This access token was revoked; sign in again');
    const deviceRevoked = () => new HubError(ErrorCode.AUTH_REVOKED, 'This device was revoked; register it again as a new device');
    const revoked = await this.revocations.check(identity);
    if (revoked === 'user') throw userDisabled();
    if (revoked === 'token') throw tokenRevoked();
    if (revoked === 'device') throw deviceRevoked();
    const { storage } = this.options;
    const [deviceAt, token, userDisabledAt] = await Promise.all([
      storage.deviceRevokedAt(identity.orgId, identity.deviceId),
      identity.tokenId === undefined ? false : storage.tokenRevoked(identity.orgId, identity.tokenId, this.now()),
      storage.userDisabledAt(identity.orgId, identity.userId),
    ]);
    if (userDisabledAt !== undefined) throw userDisabled();
    if (deviceAt !== undefined) throw deviceRevoked();
    if (token) throw tokenRevoked();
  }

  /** A socket passed the handshake. */
  onConnection(socket: HubSocket): void {
    this.checkedAt.set(socket, this.now());
    const { orgId, tokenId } = socket.data;
    if (tokenId !== undefined) void socket.join(SecurityRooms.token(orgId, tokenId));
  }

  // --- per event ------------------------------------------------------------------------------

  /**
   * Checks before a validated event runs: revocation (re-checked at most every
   * `revocationRecheckMs` per socket) and the event's rate limit. `undefined` when there is nothing
   * to wait for, so unlimited events keep running synchronously, in arrival order.
   */
  gate(event: string, socket: HubSocket, request: unknown): Promise<void> | undefined {
    const waits: Array<Promise<void>> = [];
    const last = this.checkedAt.get(socket) ?? 0;
    if (this.now() - last >= this.options.config.revocationRecheckMs) {
      this.checkedAt.set(socket, this.now());
      waits.push(this.recheck(socket));
    }
    const limit = EVENT_LIMITS[event];
    if (limit) waits.push(this.rateLimits.consume(limit.name, limit.key(socket.data), limit.cost?.(request) ?? 1));
    if (event === ClientEvent.KEYS_CLAIM) {
      // Per claimer and claimed user: draining one colleague's one-time prekeys takes a long time.
      const { orgId, userId } = socket.data;
      for (const target of new Set((request as { userIds: string[] }).userIds)) {
        if (target !== userId) waits.push(this.rateLimits.consume('keysClaimTarget', rateKey(orgId, userId, target)));
      }
    }
    for (const added of addedUsers(event, request, socket.data.userId)) {
      waits.push(this.rateLimits.consume('addedToConversations', rateKey(socket.data.orgId, added)));
    }
    const eventClass = EVENT_CLASS[event];
    if (eventClass) waits.push(this.rateLimits.consumeScoped(eventClass, socket.data));
    if (waits.length === 0) return undefined;
    return Promise.all(waits).then(() => undefined);
  }

  /** An event no route knows: refused either way; past its budget the answer is RATE_LIMITED. */
  limitUnknown(socket: HubSocket): Promise<void> {
    return this.rateLimits.consumeScoped('unknown', socket.data);
  }

  private async recheck(socket: HubSocket): Promise<void> {
    let revoked: Revoked | undefined;
    try {
      revoked = await this.revocations.check(socket.data);
    } catch (err) {
      // Live sockets were checked at the handshake; an unreachable list does not cut them off.
      this.options.logger.warn({ err: toWireError(err).message }, 'revocation re-check skipped');
      return;
    }
    if (!revoked) return;
    // After the refused event's answer has gone out.
    setImmediate(() => closeRevoked(socket, CLOSING_MESSAGE[revoked]));
    if (revoked === 'user') throw userDisabled();
    throw new HubError(ErrorCode.AUTH_REVOKED, revoked === 'token' ? 'This access token was revoked' : 'This device was revoked');
  }

  // --- revocation -----------------------------------------------------------------------------

  /**
   * Revoke one access token by its `jti` (e.g. on sign-out or a stolen token report): refused at
   * every handshake until it would have expired, and its live sockets on every node are told
   * (`session:closing` REVOKED) and dropped. (The admin API writes the audit entry.)
   */
  async revokeToken(input: { orgId: string; tokenId: string; expiresAt: number; by?: string }): Promise<void> {
    // The database first: it is what still refuses the token if Redis loses its entries.
    await this.options.storage.revokeToken({ orgId: input.orgId, tokenId: input.tokenId, keepUntil: input.expiresAt + REVOCATION_GRACE_MS, now: this.now() });
    await this.revocations.revokeToken(input.orgId, input.tokenId, input.expiresAt);
    this.dropSockets(SecurityRooms.token(input.orgId, input.tokenId), 'Access token revoked');
  }

  /** `devices:mine`. */
  async listMine(caller: Caller): Promise<OwnDevice[]> {
    const [devices, heads] = await Promise.all([
      this.options.storage.listOwnDevices(caller.orgId, caller.userId),
      this.options.storage.deviceListHeads(caller.orgId, [caller.userId]),
    ]);
    const listed = new Set(heads[0]?.deviceIds ?? []);
    return devices.map((d) => ({
      deviceId: d.deviceId,
      createdAt: d.createdAt,
      lastSeenAt: d.lastSeenAt,
      hasKeys: d.hasKeys,
      current: d.deviceId === caller.deviceId,
      ...(d.identityKey ? { identityKey: d.identityKey } : {}),
      listed: listed.has(d.deviceId) && d.revokedAt === undefined,
      ...(d.revokedAt !== undefined ? { revokedAt: d.revokedAt } : {}),
    }));
  }

  /**
   * `device:revoke`: one of the caller's own devices. Its keys leave the directory, it is refused at
   * every handshake, its contacts hear `device:removed`, and its live sockets on every node close.
   * Another user's or another organisation's device is NOT_FOUND, like one that does not exist.
   */
  async revokeDevice(caller: Caller & Pick<SocketData, 'authTime'>, deviceId: string): Promise<DeviceRevokeResult> {
    // A stolen phone must not lock its owner's other devices out: revoking a sibling needs a recent
    // sign-in (the identity provider's auth_time), not just a device that is still logged in.
    if (deviceId !== caller.deviceId) requireRecentSignIn(caller, this.now(), this.options.recentAuthSec ?? DEFAULT_RECENT_AUTH_SEC, 'revoke another of your devices');
    return this.revokeDeviceOf(caller, deviceId);
  }

  /** Revoke one of the user's devices: tombstone, Redis, contacts told, sockets closed on every node. */
  private async revokeDeviceOf(owner: { orgId: string; userId: string }, deviceId: string): Promise<DeviceRevokeResult> {
    const { orgId, userId } = owner;
    const { status } = await this.options.storage.revokeDevice({ orgId, userId, deviceId, now: this.now() });
    if (status === 'not_found') throw new HubError(ErrorCode.NOT_FOUND, 'No such device of yours', { deviceId });
    // Also on 'already': a retry after a failed notice must notify again.
    await this.options.onDevicesChanged?.(orgId, userId);
    try {
      await this.revocations.revokeDevice(orgId, deviceId);
    } catch (err) {
      // The database tombstone already refuses the device at the handshake.
      this.options.logger.warn({ err: toWireError(err).message, deviceId }, 'device revocation not written to Redis; the database tombstone applies');
    }
    const io = this.io;
    if (io) {
      const conversations = await this.options.storage.listConversationsForUser(orgId, userId);
      const contacts = [...new Set([userId, ...conversations.flatMap((c) => c.memberUserIds)])];
      io.to(contacts.map((u) => Rooms.user(orgId, u)))
        .except(Rooms.device(orgId, deviceId))
        .emit(ServerEvent.DEVICE_REMOVED, { userId, deviceId });
    }
    this.dropSockets(Rooms.device(orgId, deviceId), 'Device revoked');
    return { deviceId, revoked: status === 'revoked' };
  }

  /**
   * An operator revokes a device (POST /admin/devices/revoke): as its owner's own `device:revoke`
   * (tombstone, keys deleted, contacts told, sockets closed on every node), without the owner.
   */
  async adminRevokeDevice(input: { orgId: string; userId: string; deviceId: string }): Promise<DeviceRevokeResult> {
    return this.revokeDeviceOf({ orgId: input.orgId, userId: input.userId }, input.deviceId);
  }

  /**
   * An operator disables a user (POST /admin/users/disable): the flag goes to the database (durable) and
   * to Redis (read by every node at each handshake and, every `revocationRecheckMs`, on live sockets),
   * and the user's sockets on every node are told (`session:closing` REVOKED) and closed at once.
   */
  async disableUser(input: { orgId: string; userId: string }): Promise<{ status: 'disabled' | 'already' }> {
    const { status } = await this.options.storage.disableUser({ ...input, now: this.now() });
    if (status === 'not_found') throw new HubError(ErrorCode.NOT_FOUND, 'No such user in this organisation', { userId: input.userId });
    try {
      await this.revocations.disableUser(input.orgId, input.userId);
    } catch (err) {
      // The database flag already refuses the user at the handshake.
      this.options.logger.warn({ err: toWireError(err).message, userId: input.userId }, 'disabled user not written to Redis; the database flag applies');
    }
    this.dropSockets(Rooms.user(input.orgId, input.userId), CLOSING_MESSAGE.user);
    return { status };
  }

  /** An operator enables a disabled user again (POST /admin/users/enable). */
  async enableUser(input: { orgId: string; userId: string }): Promise<{ status: 'enabled' | 'not_disabled' }> {
    const { status } = await this.options.storage.enableUser(input.orgId, input.userId);
    await this.revocations.enableUser(input.orgId, input.userId);
    return { status };
  }

  /** An operator undoes a revocation (POST /admin/devices/restore): the device may sign in again and publish new keys. */
  async restoreDevice(input: { orgId: string; deviceId: string; by?: string | undefined }): Promise<{ restored: boolean }> {
    const { status } = await this.options.storage.restoreDevice(input.orgId, input.deviceId);
    await this.revocations.restoreDevice(input.orgId, input.deviceId);
    return { restored: status === 'restored' };
  }

  /** Tell every socket in the room, on every node, why, then disconnect them. */
  private dropSockets(room: string, message: string): void {
    if (!this.io) return;
    this.io.to(room).emit(ServerEvent.SESSION_CLOSING, { code: CloseCode.REVOKED, message });
    this.io.in(room).disconnectSockets(true);
  }

  // --- audit ----------------------------------------------------------------------------------

  record(event: Omit<AuditEvent, 'at'> & { at?: number }): void {
    const full = { ...event, at: event.at ?? this.now(), ip: this.auditAddress(event.ip) };
    // Refusals repeat (floods, retries): one entry per kind and window, with a count.
    if (full.outcome !== 'ok') this.refusals.record(full);
    else this.audit.record(full);
  }

  /** The socket's client address as the audit log and the hub's logs may show it (AUDIT_CLIENT_IP). */
  loggedAddress(socket: HubSocket): string | undefined {
    return this.auditAddress(this.clientAddress(socket));
  }

  /** A client address as the audit log keeps it (AUDIT_CLIENT_IP). */
  private auditAddress(ip: string | undefined): string | undefined {
    const policy = this.options.auditClientIp ?? { mode: 'keep' };
    if (ip === undefined || policy.mode === 'keep') return ip;
    if (policy.mode === 'omit') return undefined;
    return `hmac:${createHmac('sha256', policy.key).update(ip).digest('hex').slice(0, 32)}`;
  }

  /** Write the counts of refusals gathered so far. */
  flushAudit(): void {
    this.refusals.flush(true);
  }

  /** Stop gathering refusals, writing what was gathered (before the audit log closes). */
  close(): void {
    this.refusals.stop();
  }

  /** One handled event: who, what, outcome, ids from the validated request and the answer. */
  recordEvent(socket: HubSocket, action: string, outcome: string, request: unknown, result: unknown): void {
    const d = socket.data;
    this.record({
      action,
      outcome,
      orgId: d.orgId,
      userId: d.userId,
      deviceId: d.deviceId,
      ip: this.clientAddress(socket),
      ...auditFields(request, result),
    });
  }

  /** A handshake, accepted or refused. `identity` when the token was verified. */
  recordHandshake(socket: HubSocket, identity: SocketData | undefined, outcome: string): void {
    this.record({
      action: 'handshake',
      outcome,
      orgId: identity?.orgId,
      userId: identity?.userId,
      deviceId: identity?.deviceId,
      ip: this.clientAddress(socket),
    });
  }
}

/** Users (other than the caller) a membership event would add to a conversation or team. */
function addedUsers(event: string, request: unknown, caller: string): string[] {
  let users: string[] = [];
  if (event === ClientEvent.CONVERSATION_CREATE) {
    const r = request as { kind: string; memberUserIds?: string[] };
    if (r.kind === 'group') users = r.memberUserIds ?? [];
  } else if (event === ClientEvent.TEAM_CREATE || event === ClientEvent.TEAM_CHANGE) {
    try {
      const s = JSON.parse((request as { signed: { statement: string } }).signed.statement) as { op?: unknown; members?: Array<{ userId?: unknown }>; userId?: unknown };
      if (s.op === 'create' && Array.isArray(s.members)) users = s.members.map((m) => m.userId).filter((u): u is string => typeof u === 'string');
      if (s.op === 'add' && typeof s.userId === 'string') users = [s.userId];
    } catch {
      // a malformed statement is refused by the team rules
    }
  }
  return [...new Set(users)].filter((u) => u !== caller).slice(0, 1000);
}

/** TRUST_PROXY as proxy-addr takes it: a hop count, or addresses, CIDRs and named ranges. */
function trustFunction(value: string | number): (addr: string, i: number) => boolean {
  if (typeof value === 'number') return (_addr, i) => i < value;
  return proxyaddr.compile(value.split(',').map((v) => v.trim()).filter(Boolean));
}

/** Tell one local socket why, then disconnect it. */
function closeRevoked(socket: HubSocket, message: string): void {
  socket.emit(ServerEvent.SESSION_CLOSING, { code: CloseCode.REVOKED, message });
  socket.disconnect(true);
}
