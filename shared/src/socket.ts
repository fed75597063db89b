import { compositeKey } from './keys.js';
import type {
  Ack,
  Conversation,
  ConversationCreateRequest,
  ConversationGetRequest,
  ConversationListRequest,
  ConversationListResult,
  Envelope,
  EnvelopeSendRequest,
  SendResult,
  SessionClosing,
  SyncFetchRequest,
  SyncFetchResult,
  SyncAckRequest,
  KeysPublishRequest,
  KeysPublishResult,
  KeysCountRequest,
  KeysCountResult,
  KeysClaimRequest,
  KeysClaimResult,
  UserListRequest,
  DevicesListResult,
  DeviceIdentity,
  KeysLow,
} from './schemas.js';
import type { PresenceQuery, PresenceResult, TeamStatementRequest, TeamStatementResult, TypingNotice, TypingRequest } from './teams.js';
import type { ClientEvent, ServerEvent } from './events.js';

/**
 * Typed socket.io event maps, passed to `Server<…>` on the hub and `Socket<…>` in the SDK.
 * The hub still validates every payload at runtime: these types describe honest clients only.
 */
export interface ClientToServerEvents {
  [ClientEvent.CONVERSATION_CREATE]: (req: ConversationCreateRequest, ack: (res: Ack<Conversation>) => void) => void;
  [ClientEvent.CONVERSATION_GET]: (req: ConversationGetRequest, ack: (res: Ack<Conversation>) => void) => void;
  [ClientEvent.CONVERSATION_LEAVE]: (req: ConversationGetRequest, ack: (res: Ack<Conversation>) => void) => void;
  [ClientEvent.CONVERSATION_LIST]: (req: ConversationListRequest, ack: (res: Ack<ConversationListResult>) => void) => void;
  [ClientEvent.ENVELOPE_SEND]: (req: EnvelopeSendRequest, ack: (res: Ack<SendResult>) => void) => void;
  [ClientEvent.SYNC_FETCH]: (req: SyncFetchRequest, ack: (res: Ack<SyncFetchResult>) => void) => void;
  [ClientEvent.SYNC_ACK]: (req: SyncAckRequest, ack: (res: Ack<Record<string, never>>) => void) => void;
  [ClientEvent.KEYS_PUBLISH]: (req: KeysPublishRequest, ack: (res: Ack<KeysPublishResult>) => void) => void;
  [ClientEvent.KEYS_COUNT]: (req: KeysCountRequest, ack: (res: Ack<KeysCountResult>) => void) => void;
  [ClientEvent.KEYS_CLAIM]: (req: KeysClaimRequest, ack: (res: Ack<KeysClaimResult>) => void) => void;
  [ClientEvent.DEVICES_LIST]: (req: UserListRequest, ack: (res: Ack<DevicesListResult>) => void) => void;
  [ClientEvent.TEAM_CREATE]: (req: TeamStatementRequest, ack: (res: Ack<TeamStatementResult>) => void) => void;
  [ClientEvent.TEAM_CHANGE]: (req: TeamStatementRequest, ack: (res: Ack<TeamStatementResult>) => void) => void;
  [ClientEvent.TYPING]: (req: TypingRequest, ack: (res: Ack<Record<string, never>>) => void) => void;
  [ClientEvent.PRESENCE_QUERY]: (req: PresenceQuery, ack: (res: Ack<PresenceResult>) => void) => void;
}

export interface ServerToClientEvents {
  [ServerEvent.ENVELOPE]: (envelope: Envelope) => void;
  [ServerEvent.CONVERSATION]: (conversation: Conversation) => void;
  [ServerEvent.DEVICE_ADDED]: (device: DeviceIdentity) => void;
  [ServerEvent.KEYS_LOW]: (info: KeysLow) => void;
  [ServerEvent.TYPING]: (notice: TypingNotice) => void;
  [ServerEvent.SESSION_CLOSING]: (info: SessionClosing) => void;
}

/** Events between hub nodes (extended by features, e.g. admin.ts). */
export interface InterServerEvents {}

/** What the handshake binds to a socket. */
export interface SocketData {
  orgId: string;
  userId: string;
  deviceId: string;
  tokenId: string | undefined;
  /** Token expiry, epoch ms. */
  tokenExpiresAt: number;
  /** When the user last signed in (the token's `auth_time`), epoch ms, if the identity provider said. */
  authTime?: number | undefined;
  /** Display name, from the token's name claim (OIDC_NAME_CLAIM), if any. */
  name?: string | undefined;
  /** Roles, from the token's roles claim (OIDC_ROLES_CLAIM), if any. */
  roles?: string[] | undefined;
}

/**
 * Rooms: every device socket joins its device room and its user room. Built by `compositeKey`, so an
 * id containing the old `:` separator can never name another tenant's room.
 */
export const Rooms = {
  device: (orgId: string, deviceId: string) => compositeKey('d', orgId, deviceId),
  user: (orgId: string, userId: string) => compositeKey('u', orgId, userId),
} as const;
