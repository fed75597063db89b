/**
 * The gateway's route table: every client event the hub answers, with its payload schema, its
 * handler and which of its answers are audited. Every client event is routed here, in one table, so
 * that each one's schema, authorization, rate limit and audit can be read and checked in one pass;
 * the work itself is in domain/ and security/. The handshake, the connections, the dispatch of each
 * event to its route and the drain are the gateway's (gateway.ts).
 */
import type { HubServer, HubSocket } from './sockets.js';
import {
  ClientEvent,
  ConversationCreateRequestSchema,
  ConversationGetRequestSchema,
  ConversationListRequestSchema,
  EnvelopeSendRequestSchema,
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
} from '@curbside/shared';
import type { z } from 'zod';
import type { Logger } from '../logger.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { Presence } from '../ports/presence.js';
import type { Storage } from '../ports/storage.js';
import type { MessageRelay } from '../domain/message-relay.js';
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
import { TypingCoalescer, presenceVisible } from './signals.js';
import type { HubMetrics } from '../metrics/metrics.js';

/** What one client event runs: the payload schema, the handler, and which answers are audited. */
export interface Route {
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

export interface GatewayDeps {
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
  /** Requests handled at once; past it, new ones are refused UNAVAILABLE with a retry hint. @default DEFAULT_MAX_IN_FLIGHT */
  maxInFlight?: number;
  /** This node's Prometheus metrics. */
  metrics?: HubMetrics | undefined;
}

/** Pushes a stored envelope to the devices that should have it (`Gateway.fanOut`). */
type FanOut = (orgId: string, senderDeviceId: string, userIds: string[], envelope: StoredEnvelope) => void;

/** One gateway's routes: the handlers reach the gateway's dependencies and its fan-out to devices. */
export class GatewayRoutes {
  /** Typing signals: one that repeats the state last fanned out (lately) is not sent on. */
  private readonly typing: TypingCoalescer;

  constructor(
    private readonly deps: GatewayDeps,
    private readonly fanOut: FanOut,
  ) {
    this.typing = new TypingCoalescer(deps.now ?? Date.now);
  }

  /** Every client event the hub answers, built once. Handlers take the caller from `socket.data`. */
  buildRoutes(): Map<string, Route> {
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

  /** After a claim: tell each device left with few one-time prekeys to upload more. */
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
}
