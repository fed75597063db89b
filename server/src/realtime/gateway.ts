/**
 * The socket.io gateway: the handshake, then one validated handler per client event.
 * Long file: every client event is routed here, in one table, so that each one's schema,
 * authorization, rate limit and audit can be read and checked in one pass; the work itself is in
 * domain/ and security/.
 */
import type { HubServer, HubSocket } from './sockets.js';
import {
  ClientEvent,
  CloseCode,
  ConversationCreateRequestSchema,
  ConversationGetRequestSchema,
  ConversationListRequestSchema,
  EnvelopeSendRequestSchema,
  ErrorCode,
  HandshakeAuthSchema,
  DevicesMineRequestSchema,
  DeviceRevokeRequestSchema,
  DeviceListPublishRequestSchema,
  DeviceListsRequestSchema,
  DirectoryLookupRequestSchema,
  AlertAckRequestSchema,
  AlertListRequestSchema,
  AlertContentRequestSchema,
  CredentialsGetRequestSchema,
  CredentialsSearchRequestSchema,
  PseudonymCollectRequestSchema,
  PseudonymEmptyRequestSchema,
  PseudonymRequestSchema,
  RoleLogRequestSchema,
  PoolLogRequestSchema,
  PoolSearchRequestSchema,
  RoleOpenRequestSchema,
  RoleSearchRequestSchema,
  DirectorySearchRequestSchema,
  PresenceQuerySchema,
  TeamStatementRequestSchema,
  TypingRequestSchema,
  KeysClaimRequestSchema,
  KeysCountRequestSchema,
  KeysPublishRequestSchema,
  UserListRequestSchema,
  Rooms,
  compositeKey,
  PREKEYS_LOW_WATERMARK,
  ServerEvent,
  SyncFetchRequestSchema,
  SyncAckRequestSchema,
  parsePayload,
  type Ack,
  type SocketData,
} from '@curbside/shared';
import type { z } from 'zod';
import { HubError, isStorageUnreachable, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { Presence, PresenceConnection } from '../ports/presence.js';
import type { Storage } from '../ports/storage.js';
import { projectForDevice, type MessageRelay } from '../domain/message-relay.js';
import type { DeviceKeys } from '../domain/device-keys.js';
import type { DeviceLists } from '../domain/device-lists.js';
import type { CareTeams } from '../domain/care-teams.js';
import type { OnCallRoles } from '../domain/roles.js';
import type { ConsultPools } from '../domain/consult-pools.js';
import type { Credentials } from '../domain/credentials.js';
import type { Pseudonyms } from '../domain/pseudonyms.js';
import type { Profiles } from '../domain/profiles.js';
import type { Attachments } from '../attachments/attachments.js';
import type { Alerts } from '../alerts/alerts.js';
import type { HubSecurity } from '../security/hub-security.js';
import type { StoredEnvelope } from '../ports/storage.js';
import type { IncomingMessage } from 'node:http';
import { TypingCoalescer, presenceVisible } from './signals.js';
import { closeAtExpiry } from './session-expiry.js';
import type { HubMetrics } from '../metrics/metrics.js';




/** What one client event runs: the payload schema, the handler, and which answers are audited. */
interface Route {
  schema: z.ZodType;
  run: (socket: HubSocket, req: unknown, ahead: unknown) => Promise<unknown>;
  audit: 'all' | 'refusals';
  /**
   * Reads started before the gate, in the same turn of the event loop as its rate-limit and
   * revocation commands, so that they share one Redis round trip (ioredis auto-pipelining); `run`
   * gets what this returned.
   */
  ahead?: ((socket: HubSocket, req: unknown) => unknown) | undefined;
}

interface GatewayDeps {
  io: HubServer;
  verifier: TokenVerifier;
  storage: Storage;
  presence: Presence;
  relay: MessageRelay;
  keys: DeviceKeys;
  /** Signed device lists. */
  deviceLists: DeviceLists;
  teams: CareTeams;
  /** The directory of profiles (names, roles, departments). */
  profiles: Profiles;
  /** Urgent and emergent messages: acknowledgements and re-notification timers. */
  alerts: Alerts;
  /** On-call roles: search, logs, threads, and who a message in a thread asks. */
  roles: OnCallRoles;
  /** Consult pools: search by topic, logs for clinicians about to join. */
  pools: ConsultPools;
  /** Verified credentials: the organisation's credentialing key and signed attestations. */
  credentials: Credentials;
  /** Pseudonymous posting: certified token keys, token requests and the office's answers. */
  pseudonyms: Pseudonyms;
  /** Checks and keeps the attachments a send names (issue #21). */
  attachments: Pick<Attachments, 'reference'>;
  logger: Logger;
  /** Origins, rate limits, revocation, device administration and the audit trail. */
  security: HubSecurity;
  now?: () => number;
  /** A handshake or request failed because the database could not be reached (the storage watchdog listens). */
  onStorageUnreachable?: () => void;
  /** Sockets one device may hold on this node at once (a reconnect briefly holds two). @default 5 */
  maxSocketsPerDevice?: number;
  /** This node's Prometheus metrics. */
  metrics?: HubMetrics | undefined;
}

/**
 * socket.io side of the hub: the handshake, connection lifecycle and one handler per client event.
 * Every handler validates its payload with the shared schema and answers through the ack with
 * `{ ok: true, data }` or `{ ok: false, error }`; nothing a client sends can throw past here.
 */
export class Gateway {
  private readonly typing: TypingCoalescer;
  /** Sockets per device on this node (`compositeKey(org, device)`). */
  private readonly socketsPerDevice = new Map<string, number>();
  /** Connections held by this node, refreshed in presence on every heartbeat. */
  readonly connections = new Map<string, PresenceConnection>();
  private readonly now: () => number;
  /** Every client event's route (schema, handler, audit), shared by all sockets. */
  private readonly routes: ReadonlyMap<string, Route>;
  /** Requests being handled now; a shutting-down node waits for them (their writes are durable acks). */
  private inFlight = 0;
  /** Requests in flight per socket: a draining node closes each socket once its own are answered. */
  private readonly socketInFlight = new Map<string, number>();
  private drained: (() => void) | undefined;
  private accepting = true;
  private drainClose: { code: CloseCode; message: string } | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
    this.typing = new TypingCoalescer(this.now);
    this.routes = this.buildRoutes();
    // engine.io keeps each session's first HTTP request (IncomingMessage, headers, parser state) for
    // the socket's lifetime. Nothing reads it after the handshake (origins are checked in
    // allowRequest, the address is copied): dropping it is socket.io's own advice for memory per connection.
    deps.io.engine.on('connection', (raw: { request: IncomingMessage | null; clientAddress?: string }) => {
      // The client's address (forwarded, behind a trusted proxy) is worked out while the headers exist.
      if (raw.request) raw.clientAddress = deps.security.addressOf(raw.request);
      raw.request = null;
    });
    deps.security.attach(deps.io);
    deps.io.use((socket, next) => {
      const verified: { identity?: SocketData } = {};
      this.authenticate(socket, verified).then(
        () => {
          deps.security.recordHandshake(socket, socket.data, 'ok');
          next();
        },
        (err: unknown) => {
          const wire = toWireError(err);
          deps.security.recordHandshake(socket, verified.identity, wire.code);
          deps.metrics?.authFailures.inc({ reason: wire.code });
          this.countRateLimited(wire);
          if (wire.code === ErrorCode.INTERNAL) deps.logger.error({ err }, 'handshake failed unexpectedly');
          else if (isStorageUnreachable(err)) {
            deps.onStorageUnreachable?.();
            deps.logger.warn({ err, code: wire.code, ip: deps.security.loggedAddress(socket) }, 'handshake refused: storage unreachable');
          } else if (wire.code === ErrorCode.UNAVAILABLE) {
            // e.g. the identity provider cannot be reached: the operator should hear of it.
            deps.logger.warn({ code: wire.code, reason: wire.message, ip: deps.security.loggedAddress(socket) }, 'handshake refused: a dependency is unavailable');
          } else deps.logger.info({ code: wire.code, ip: deps.security.loggedAddress(socket) }, 'handshake refused');
          // socket.io hands err.data to the client's connect_error unchanged.
          const e = new Error(wire.message) as Error & { data: unknown };
          e.data = wire;
          next(e);
        },
      );
    });
    deps.io.on('connection', (socket) => this.onConnection(socket));
  }

  private async authenticate(socket: HubSocket, verified: { identity?: SocketData }): Promise<void> {
    if (!this.accepting) throw new HubError(ErrorCode.UNAVAILABLE, 'This hub node is shutting down; connect to another node');
    const { security } = this.deps;
    const auth = HandshakeAuthSchema.safeParse(socket.handshake.auth);
    if (!auth.success) {
      return security.handshakeFailed(security.clientAddress(socket), new HubError(ErrorCode.AUTH_REQUIRED, 'An access token is required in the handshake auth field `token`'));
    }
    let identity: SocketData;
    try {
      identity = await this.deps.verifier.verify(auth.data.token, { deviceId: auth.data.deviceId, userId: auth.data.userId });
    } catch (err) {
      // Only failures count against an address; a valid token is limited per device and user below.
      return security.handshakeFailed(security.clientAddress(socket), err);
    }
    verified.identity = identity;
    await security.limitHandshake(identity);
    const held = this.socketsPerDevice.get(compositeKey(identity.orgId, identity.deviceId)) ?? 0;
    if (held >= (this.deps.maxSocketsPerDevice ?? 5)) {
      throw new HubError(ErrorCode.RATE_LIMITED, 'This device holds too many connections; close one first', { limit: 'socketsPerDevice', retryAfterMs: 5000 });
    }
    // Before anything is written: a revoked token or device leaves no trace but the audit entry.
    await this.deps.security.assertNotRevoked(identity);
    const { device } = await this.deps.storage.touchDevice({
      orgId: identity.orgId,
      userId: identity.userId,
      deviceId: identity.deviceId,
      now: this.now(),
    });
    if (device.userId !== identity.userId) {
      throw new HubError(ErrorCode.FORBIDDEN, 'This device id belongs to another user');
    }
    await this.deps.profiles.recordSignIn(identity);
    socket.data = identity;
  }

  private onConnection(socket: HubSocket): void {
    const { orgId, userId, deviceId } = socket.data;
    const conn: PresenceConnection = { orgId, userId, deviceId, connectionId: socket.id };
    this.connections.set(socket.id, conn);
    const deviceKey = compositeKey(orgId, deviceId);
    this.socketsPerDevice.set(deviceKey, (this.socketsPerDevice.get(deviceKey) ?? 0) + 1);
    void socket.join([Rooms.device(orgId, deviceId), Rooms.user(orgId, userId)]);
    this.deps.presence.connect(conn).catch((err: unknown) => this.deps.logger.warn({ err }, 'presence connect failed'));
    this.deps.logger.debug({ orgId, userId, deviceId, socket: socket.id }, 'device connected');
    this.deps.security.onConnection(socket);
    // The session ends when its token does, whether or not the client sends anything.
    const expiry = closeAtExpiry(socket, this.now, () => this.close(socket, CloseCode.TOKEN_EXPIRED, 'Access token expired; reconnect with a fresh one'));

    // One listener for every client event; the routes are shared by all sockets. (A listener and
    // closures per event per socket cost about 5 KB of heap per connection.)
    socket.onAny((event: unknown, ...args: unknown[]) => this.dispatch(socket, event, args));
    socket.on('disconnect', (reason) => {
      expiry.cancel();
      this.connections.delete(socket.id);
      const left = (this.socketsPerDevice.get(deviceKey) ?? 1) - 1;
      if (left > 0) this.socketsPerDevice.set(deviceKey, left);
      else this.socketsPerDevice.delete(deviceKey);
      this.deps.presence.disconnect(conn).catch((err: unknown) => this.deps.logger.warn({ err }, 'presence disconnect failed'));
      this.deps.logger.debug({ orgId, userId, deviceId, socket: socket.id, reason }, 'device disconnected');
      this.deps.security.record({ action: 'disconnect', outcome: 'ok', orgId, userId, deviceId, ip: this.deps.security.clientAddress(socket), note: reason });
    });
  }

  /** Every client event the hub answers, built once. Handlers take the caller from `socket.data`. */
  private buildRoutes(): Map<string, Route> {
    const { relay, keys, teams, io, security, deviceLists } = this.deps;
    const routes = new Map<string, Route>();
    const route = <S extends z.ZodType>(event: ClientEvent, schema: S, run: (socket: HubSocket, req: z.output<S>, ahead?: unknown) => Promise<unknown>, audit: Route['audit'] = 'all') =>
      routes.set(event, { schema, run: run as Route['run'], audit });

    route(ClientEvent.CONVERSATION_CREATE, ConversationCreateRequestSchema, async (socket, req) => {
      const { conversation, created } = await relay.createConversation(socket.data, req);
      if (created) {
        io.to(conversation.memberUserIds.map((u) => Rooms.user(socket.data.orgId, u))).emit(ServerEvent.CONVERSATION, conversation);
      }
      return conversation;
    });

    route(ClientEvent.CONVERSATION_GET, ConversationGetRequestSchema, (socket, req) => relay.memberConversation(socket.data, req.conversationId));

    route(ClientEvent.CONVERSATION_LEAVE, ConversationGetRequestSchema, async (socket, req) => {
      const { conversation, notifyUserIds } = await relay.leave(socket.data, req.conversationId);
      io.to(notifyUserIds.map((u) => Rooms.user(socket.data.orgId, u))).emit(ServerEvent.CONVERSATION, conversation);
      return conversation;
    });

    route(ClientEvent.CONVERSATION_LIST, ConversationListRequestSchema, (socket, req) => relay.listConversations(socket.data, req));

    route(ClientEvent.ENVELOPE_SEND, EnvelopeSendRequestSchema, async (socket, req, ahead) => {
      const { orgId, deviceId } = socket.data;
      if (req.alert) await this.deps.alerts.checkEscalation(socket.data, req.conversationId, req.alert);
      const handoffTo = req.handoff ? await this.deps.alerts.checkHandoff(socket.data, { ...req, handoff: req.handoff }) : undefined;
      // Before the message is stored: an attachment that is not this device's finished upload in this conversation stores nothing.
      if (req.attachmentIds) await this.deps.attachments.reference(socket.data, req.conversationId, req.attachmentIds);
      const outcome = await relay.send(socket.data, req, ahead as ReturnType<MessageRelay['readAhead']>);
      // An urgent message is acked once its alert is stored too (a retry finds both). In a thread with
      // an on-call role it asks whoever holds the role now (or, from them, the requester).
      if (req.alert) {
        const asked = (await this.deps.roles.askedBy(orgId, outcome.conversation, socket.data.userId)) ?? outcome.recipientUserIds;
        await this.deps.alerts.raise(socket.data, outcome.envelope, req.alert, asked);
      }
      if (req.handoff && handoffTo) await this.deps.alerts.handOff(socket.data, req.conversationId, req.handoff.seqs, handoffTo);
      // Also on a duplicate: if the first attempt's fan-out was lost (node died after the write),
      // the retry delivers it; receivers drop what they already have by seq.
      this.fanOut(orgId, deviceId, outcome.recipientUserIds, outcome.envelope);
      this.deps.logger.debug(
        { orgId, conversationId: outcome.result.conversationId, messageId: outcome.result.messageId, seq: outcome.result.seq, duplicate: outcome.result.duplicate },
        'envelope stored',
      );
      return outcome.result;
    });
    // The send's directory tags are read with its rate limits: one Redis round trip for both.
    routes.get(ClientEvent.ENVELOPE_SEND)!.ahead = (socket, req) => relay.readAhead(socket.data, req as { conversationId: string });

    route(ClientEvent.SYNC_FETCH, SyncFetchRequestSchema, (socket, req) => relay.sync(socket.data, req));
    route(
      ClientEvent.SYNC_ACK,
      SyncAckRequestSchema,
      async (socket, req) => {
        relay.ack(socket.data, req.cursors);
        return {};
      },
      'refusals',
    );

    for (const event of [ClientEvent.TEAM_CREATE, ClientEvent.TEAM_CHANGE] as const) {
      route(event, TeamStatementRequestSchema, async (socket, req) => {
        const { orgId, deviceId } = socket.data;
        const outcome = event === ClientEvent.TEAM_CREATE ? await teams.create(socket.data, req.signed) : await teams.change(socket.data, req.signed);
        if (event === ClientEvent.TEAM_CREATE) io.to(outcome.notifyUserIds.map((u) => Rooms.user(orgId, u))).emit(ServerEvent.CONVERSATION, outcome.conversation);
        this.fanOut(orgId, deviceId, outcome.notifyUserIds, outcome.envelope);
        // An on-call role's members changed: so did its threads' (each is told to its members, and to anyone it lost).
        if (outcome.state?.oncall && event === ClientEvent.TEAM_CHANGE) {
          for (const thread of await this.deps.roles.membersChanged(orgId, outcome.state)) {
            io.to([...new Set([...thread.memberUserIds, ...outcome.notifyUserIds])].map((u) => Rooms.user(orgId, u))).emit(ServerEvent.CONVERSATION, thread);
          }
        }
        return { conversation: outcome.conversation, seq: outcome.envelope.seq };
      });
    }

    route(
      ClientEvent.TYPING,
      TypingRequestSchema,
      async (socket, req) => {
        const { orgId, userId, deviceId } = socket.data;
        const conversation = await relay.memberConversation(socket.data, req.conversationId);
        if (this.typing.repeats(compositeKey(orgId, conversation.id, deviceId), req.typing)) return {};
        io.to(conversation.memberUserIds.map((u) => Rooms.user(orgId, u)))
          .except(Rooms.device(orgId, deviceId))
          .emit(ServerEvent.TYPING, { conversationId: conversation.id, userId, deviceId, typing: req.typing });
        return {};
      },
      'refusals',
    );

    route(ClientEvent.PRESENCE_QUERY, PresenceQuerySchema, async (socket, req) => {
      const conversation = await relay.memberConversation(socket.data, req.conversationId);
      const me = socket.data.userId;
      const senders = new Set(conversation.signed ? [] : await this.deps.storage.sendersAmong(socket.data.orgId, conversation.id, conversation.memberUserIds));
      const visible = conversation.memberUserIds.filter((u) => presenceVisible(conversation, me, u, senders));
      const online = await Promise.all(visible.map(async (u) => ({ userId: u, deviceIds: await this.deps.presence.onlineDevices(socket.data.orgId, u) })));
      // Which devices are online is the caller's own business only; of others, only whether they are.
      return { online: online.filter((o) => o.deviceIds.length > 0).map((o) => (o.userId === me ? o : { userId: o.userId, deviceIds: [] })) };
    });

    route(ClientEvent.KEYS_PUBLISH, KeysPublishRequestSchema, async (socket, req) => {
      const { orgId, userId, deviceId } = socket.data;
      const { firstPublish, oneTimePrekeys } = await keys.publish(socket.data, req);
      if (firstPublish) {
        // A user with a signed device list: the new device waits to be linked, so only the user's
        // own devices hear of it (to offer the link). Without a list, every contact does.
        const signed = (await keys.list(socket.data, { userIds: [userId] })).listVersions.length > 0;
        const audience = signed ? [userId] : await keys.contactsOf(socket.data);
        io.to(audience.map((u) => Rooms.user(orgId, u)))
          .except(Rooms.device(orgId, deviceId))
          .emit(ServerEvent.DEVICE_ADDED, { userId, deviceId, identityKey: req.identityKey });
      }
      return { oneTimePrekeys };
    });

    route(ClientEvent.DEVICE_LIST_PUBLISH, DeviceListPublishRequestSchema, async (socket, req) => {
      const { orgId, userId } = socket.data;
      const result = await deviceLists.publish(socket.data, req.list);
      const contacts = await keys.contactsOf(socket.data);
      io.to(contacts.map((u) => Rooms.user(orgId, u))).emit(ServerEvent.DEVICE_LIST_CHANGED, { userId, version: result.version });
      return result;
    });
    route(ClientEvent.DEVICE_LISTS, DeviceListsRequestSchema, async (socket, req) => ({ chains: await deviceLists.chains(socket.data, req.users) }));

    route(ClientEvent.KEYS_COUNT, KeysCountRequestSchema, async (socket) => ({ oneTimePrekeys: await keys.count(socket.data) }));
    route(ClientEvent.KEYS_CLAIM, KeysClaimRequestSchema, async (socket, req) => {
      const bundles = await keys.claim(socket.data, req);
      // Tell devices that others have claimed down to few one-time prekeys, so they upload more now
      // rather than at their next connect (sessions with them would start without one meanwhile).
      const claimed = bundles.filter((b) => b.oneTimePrekey).map((b) => b.deviceId);
      if (claimed.length) void this.tellLowPrekeys(socket.data.orgId, claimed);
      return { bundles };
    });
    route(ClientEvent.DEVICES_LIST, UserListRequestSchema, async (socket, req) => keys.list(socket.data, req));

    // --- security: devices ---
    route(ClientEvent.DEVICES_MINE, DevicesMineRequestSchema, async (socket) => ({ devices: await security.listMine(socket.data) }));
    route(ClientEvent.DEVICE_REVOKE, DeviceRevokeRequestSchema, (socket, req) => security.revokeDevice(socket.data, req.deviceId));
    // --- end security: devices ---
    route(ClientEvent.DIRECTORY_LOOKUP, DirectoryLookupRequestSchema, (socket, req) => this.deps.profiles.lookup(socket.data, req));
    route(ClientEvent.DIRECTORY_SEARCH, DirectorySearchRequestSchema, (socket, req) => this.deps.profiles.search(socket.data, req));
    route(ClientEvent.ALERT_ACK, AlertAckRequestSchema, async (socket, req) => {
      const confirmation = req.confirmation;
      const senderUserId = confirmation ? await this.deps.alerts.checkConfirmation(socket.data, { ...req, confirmation }) : undefined;
      const state = await this.deps.alerts.acknowledge(socket.data, req);
      if (confirmation && senderUserId !== undefined) {
        const envelope = await relay.appendConfirmation(socket.data, req.conversationId, confirmation);
        this.fanOut(socket.data.orgId, socket.data.deviceId, [senderUserId], envelope);
      }
      return state;
    });
    route(ClientEvent.ALERT_LIST, AlertListRequestSchema, (socket) => this.deps.alerts.listOpen(socket.data));
    route(ClientEvent.ALERT_CONTENT, AlertContentRequestSchema, (socket, req) => this.deps.alerts.content(socket.data, req));
    route(ClientEvent.CREDENTIALS_GET, CredentialsGetRequestSchema, (socket, req) => this.deps.credentials.get(socket.data, req));
    route(ClientEvent.CREDENTIALS_SEARCH, CredentialsSearchRequestSchema, (socket, req) => this.deps.credentials.search(socket.data, req));
    route(ClientEvent.PSEUDONYM_KEYS, PseudonymEmptyRequestSchema, (socket) => this.deps.pseudonyms.keys(socket.data));
    route(ClientEvent.PSEUDONYM_REQUEST, PseudonymRequestSchema, (socket, req) => this.deps.pseudonyms.request(socket.data, req));
    route(ClientEvent.PSEUDONYM_COLLECT, PseudonymCollectRequestSchema, (socket, req) => this.deps.pseudonyms.collect(socket.data, req.requestIds));
    route(ClientEvent.ROLE_SEARCH, RoleSearchRequestSchema, (socket, req) => this.deps.roles.search(socket.data, req));
    route(ClientEvent.ROLE_LOG, RoleLogRequestSchema, (socket, req) => this.deps.roles.log(socket.data, req));
    route(ClientEvent.POOL_SEARCH, PoolSearchRequestSchema, (socket, req) => this.deps.pools.search(socket.data, req));
    route(ClientEvent.POOL_LOG, PoolLogRequestSchema, (socket, req) => this.deps.pools.log(socket.data, req));
    route(ClientEvent.ROLE_OPEN, RoleOpenRequestSchema, async (socket, req) => {
      const { conversation, created } = await this.deps.roles.open(socket.data, req);
      if (created) io.to(conversation.memberUserIds.map((u) => Rooms.user(socket.data.orgId, u))).emit(ServerEvent.CONVERSATION, conversation);
      return conversation;
    });
    return routes;
  }

  /**
   * Push a stored envelope to the devices that should have it, each with only its own share: named
   * devices get theirs; for a body-only or partial send every other member device gets the
   * envelope without a share. Never back to the sending device. (Also for sealed posts, which arrive over HTTP.)
   */
  fanOut(orgId: string, senderDeviceId: string, userIds: string[], envelope: StoredEnvelope): void {
    const { io } = this.deps;
    const named = envelope.recipients ?? [];
    this.deps.metrics?.envelopesOut.inc({ path: 'push' });
    for (const r of named) io.to(Rooms.device(orgId, r.deviceId)).emit(ServerEvent.ENVELOPE, projectForDevice(envelope, r.deviceId));
    if (named.length > 0 && !envelope.partial) return;
    io.to(userIds.map((u) => Rooms.user(orgId, u)))
      .except([Rooms.device(orgId, senderDeviceId), ...named.map((r) => Rooms.device(orgId, r.deviceId))])
      .emit(ServerEvent.ENVELOPE, projectForDevice(envelope, ''));
  }

  /**
   * One client event: its route, expiry check, schema validation, typed errors through the ack. An
   * event no route knows still gets a typed answer (when it asked for one). Every answer is audited,
   * except that routes with `audit: 'refusals'` leave out the accepted ones: for the signals a device
   * sends several times a second that read nothing (delivery acks, typing).
   */
  private dispatch(socket: HubSocket, event: unknown, args: unknown[]): void {
    const ack = args[args.length - 1];
    const route = typeof event === 'string' ? this.routes.get(event) : undefined;
    if (!route) {
      // Refused either way; past the device's budget the answer says so, and the audit counts them.
      void this.deps.security.limitUnknown(socket).then(
        () => ({ code: ErrorCode.INVALID_PAYLOAD, message: 'Unknown event' }),
        (err: unknown) => toWireError(err),
      ).then((error) => {
        this.countRateLimited(error);
        this.deps.security.recordEvent(socket, 'unknown-event', error.code, undefined, undefined);
        if (typeof ack === 'function') (ack as (res: Ack<never>) => void)({ ok: false, error });
      });
      return;
    }
    const name = event as string;
    if (typeof ack !== 'function') {
      this.deps.logger.info({ event: name, socket: socket.id }, 'event without ack ignored');
      this.deps.security.recordEvent(socket, name, 'NO_ACK', undefined, undefined);
      return;
    }
    let request: unknown;
    const startedAt = performance.now();
    // Answers are audited: outcome and the ids of the validated request and of the result.
    const reply = (res: Ack<unknown>) => {
      (ack as (res: Ack<unknown>) => void)(res);
      this.countAnswer(name, res, startedAt);
      if (res.ok && route.audit === 'refusals') return;
      this.deps.security.recordEvent(socket, name, res.ok ? 'ok' : res.error.code, request, res.ok ? res.data : undefined);
    };
    if (args.length !== 2) {
      reply({ ok: false, error: { code: ErrorCode.INVALID_PAYLOAD, message: `${name} takes exactly one payload argument` } });
      return;
    }
    if (socket.data.tokenExpiresAt <= this.now()) {
      reply({ ok: false, error: { code: ErrorCode.AUTH_EXPIRED, message: 'Access token has expired; refresh it and reconnect' } });
      this.close(socket, CloseCode.TOKEN_EXPIRED, 'Access token expired');
      return;
    }
    const parsed = parsePayload(route.schema, args[0]);
    if (!parsed.ok) {
      reply({ ok: false, error: parsed.error });
      return;
    }
    request = parsed.value;
    const failed = (err: unknown) => {
      const wire = toWireError(err);
      if (wire.code === ErrorCode.INTERNAL) this.deps.logger.error({ err, event: name, socket: socket.id }, 'handler failed');
      else if (isStorageUnreachable(err)) {
        this.deps.onStorageUnreachable?.();
        this.deps.logger.warn({ err, event: name, socket: socket.id }, 'storage unreachable');
      }
      reply({ ok: false, error: wire });
    };
    if (!this.accepting) {
      reply({ ok: false, error: { code: ErrorCode.UNAVAILABLE, message: 'This hub node is shutting down; retry on another node' } });
      return;
    }
    const run = () => {
      this.inFlight++;
      this.socketInFlight.set(socket.id, (this.socketInFlight.get(socket.id) ?? 0) + 1);
      return route
        .run(socket, parsed.value, ahead)
        .then((data) => reply({ ok: true, data }), failed)
        .finally(() => {
          const left = (this.socketInFlight.get(socket.id) ?? 1) - 1;
          if (left > 0) this.socketInFlight.set(socket.id, left);
          else {
            this.socketInFlight.delete(socket.id);
            // Draining: this socket's last answer is out, so it may move to another node now.
            if (this.drainClose && socket.connected) this.close(socket, this.drainClose.code, this.drainClose.message);
          }
          if (--this.inFlight === 0) this.drained?.();
        });
    };
    // Revocation re-check and rate limit; unlimited events run at once, in arrival order. Reads the
    // route needs anyway start first, in the same turn: their Redis commands go out with the gate's.
    const ahead = route.ahead?.(socket, parsed.value);
    const gate = this.deps.security.gate(name, socket, parsed.value);
    if (gate) gate.then(run, failed);
    else void run();
  }

  /** Metrics of one answer: refusals for a rate limit, envelopes in and their send-to-ack time, envelopes synced. */
  private countAnswer(event: string, res: Ack<unknown>, startedAt: number): void {
    const { metrics } = this.deps;
    if (!metrics) return;
    if (!res.ok) return this.countRateLimited(res.error);
    if (event === ClientEvent.ENVELOPE_SEND) {
      metrics.envelopesIn.inc();
      metrics.sendAckSeconds.observe((performance.now() - startedAt) / 1000);
    } else if (event === ClientEvent.SYNC_FETCH) {
      const n = (res.data as { envelopes?: unknown[] }).envelopes?.length ?? 0;
      if (n > 0) metrics.envelopesOut.inc({ path: 'sync' }, n);
    }
  }

  /** A RATE_LIMITED answer, by the limit its details name (a fixed set of rule names). */
  private countRateLimited(error: { code: string; details?: Record<string, unknown> | undefined }): void {
    if (error.code !== ErrorCode.RATE_LIMITED || !this.deps.metrics) return;
    const limit = typeof error.details?.['limit'] === 'string' ? error.details['limit'] : 'unknown';
    this.deps.metrics.rateLimited.inc({ limit });
  }

  /** Tell the client why, then disconnect. */
  private async tellLowPrekeys(orgId: string, deviceIds: string[]): Promise<void> {
    try {
      for (const deviceId of deviceIds) {
        const remaining = await this.deps.storage.countOneTimePrekeys(orgId, deviceId);
        if (remaining < PREKEYS_LOW_WATERMARK) this.deps.io.to(Rooms.device(orgId, deviceId)).emit(ServerEvent.KEYS_LOW, { remaining });
      }
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not count one-time prekeys after a claim');
    }
  }

  close(socket: HubSocket, code: CloseCode, message: string): void {
    socket.emit(ServerEvent.SESSION_CLOSING, { code, message });
    socket.disconnect(true);
  }

  closeAll(code: CloseCode, message: string): void {
    for (const socket of this.deps.io.of('/').sockets.values()) this.close(socket, code, message);
  }

  /**
   * Stop taking connections and requests; close each socket (with `code`) as soon as its own
   * requests in flight are answered, so its client moves to another node at once; wait at most
   * `graceMs` for the rest. Sockets still busy after that are the caller's to close.
   */
  async drain(graceMs: number, close: { code: CloseCode; message: string }): Promise<void> {
    this.accepting = false;
    this.drainClose = close;
    for (const socket of this.deps.io.of('/').sockets.values()) {
      if (!this.socketInFlight.has(socket.id)) this.close(socket, close.code, close.message);
    }
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Drop sockets that cannot keep up: unsent data past `maxBytes` (engine.io's buffer plus the
   * WebSocket's). Memory stays bounded; the client reconnects and resyncs what it missed by seq.
   */
  dropSlowConsumers(maxBytes: number): void {
    for (const socket of this.deps.io.of('/').sockets.values()) {
      const conn = socket.conn as unknown as { writeBuffer?: Array<{ data?: unknown }>; transport?: { socket?: { bufferedAmount?: number } } };
      const queued = (conn.writeBuffer ?? []).reduce((n, p) => n + byteLength(p.data), 0);
      const inSocket = conn.transport?.socket?.bufferedAmount ?? 0;
      if (queued + inSocket > maxBytes) {
        this.deps.logger.warn({ socket: socket.id, deviceId: socket.data.deviceId, bytes: queued + inSocket }, 'dropping a slow consumer');
        this.close(socket, CloseCode.SLOW_CONSUMER, 'Too far behind; reconnect and resync');
        // Discard what is queued and cut the connection now: waiting to flush to a reader that
        // does not read is exactly the memory this protects.
        socket.conn.close(true);
        (conn.transport?.socket as { terminate?: () => void } | undefined)?.terminate?.();
      }
    }
  }
}

function byteLength(data: unknown): number {
  if (typeof data === 'string') return data.length;
  if (data instanceof Uint8Array) return data.byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  return 0;
}
