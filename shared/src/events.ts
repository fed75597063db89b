/**
 * Socket event names. One table; the typed event maps in `socket.ts` are keyed by these values.
 */
export const ClientEvent = {
  /** Create a conversation (1:1 or group). Ack: `ConversationAck`. */
  CONVERSATION_CREATE: 'conversation:create',
  /** List the caller's conversations. Ack: `ConversationListAck`. */
  CONVERSATION_LIST: 'conversation:list',
  /** One conversation as the hub sees it (members only). Ack: `Conversation`. */
  CONVERSATION_GET: 'conversation:get',
  /**
   * Leave a group conversation (anyone may leave any group). The remaining members and the leaver get a
   * `conversation` push with the new member list. Care teams are left with a signed remove statement.
   */
  CONVERSATION_LEAVE: 'conversation:leave',
  /** Send an opaque envelope to a conversation. Ack: `SendAck` after the durable write. */
  ENVELOPE_SEND: 'envelope:send',
  /** Fetch envelopes after per-conversation cursors (resync). Ack: `SyncAck`. */
  SYNC_FETCH: 'sync:fetch',
  /** Tell the hub what this device has processed; envelopes every recipient device acked can be deleted. */
  SYNC_ACK: 'sync:ack',
  /** Publish this device's identity key, signed prekey and/or one-time prekeys. */
  KEYS_PUBLISH: 'keys:publish',
  /** How many one-time prekeys the hub still holds for this device. */
  KEYS_COUNT: 'keys:count',
  /** Claim one prekey bundle for every device of some users (each one-time prekey is handed out once). */
  KEYS_CLAIM: 'keys:claim',
  /** Devices (with identity keys) of some users, without claiming anything. */
  DEVICES_LIST: 'devices:list',
  /** Create a care team from a signed `create` statement. Ack: `TeamStatementResult`. */
  TEAM_CREATE: 'team:create',
  /** Add, remove or change the role of a member with a signed statement. Ack: `TeamStatementResult`. */
  TEAM_CHANGE: 'team:change',
  /** Tell the other members this user is (or stopped) typing. Not stored. */
  TYPING: 'typing',
  /** Which members of a conversation are online, and on which devices. */
  PRESENCE_QUERY: 'presence:query',
  /** List the caller's own devices (security). Ack: `DevicesMineResult`. */
  DEVICES_MINE: 'devices:mine',
  /** Revoke one of the caller's own devices (security). Ack: `DeviceRevokeResult`. */
  DEVICE_REVOKE: 'device:revoke',
  /** Publish the user's next signed device list (device-lists.ts). Ack: `DeviceListPublishResult`. */
  DEVICE_LIST_PUBLISH: 'devices:sign',
  /** Signed device lists of some users after given versions. Ack: `DeviceListsResult`. */
  DEVICE_LISTS: 'devices:lists',
  /** Profiles (display name, role, department) of some users of the caller's organisation (directory.ts). */
  DIRECTORY_LOOKUP: 'directory:lookup',
  /** Search the caller's organisation's directory by name, role, department or id (directory.ts). */
  DIRECTORY_SEARCH: 'directory:search',
  /** Acknowledge an urgent or emergent message (alerts.ts). Ack: `AlertState`. */
  ALERT_ACK: 'alert:ack',
  /** The caller's open alerts (alerts.ts). Ack: `AlertListResult`. */
  ALERT_LIST: 'alert:list',
  /** An escalated alert's content, for a user its tier asked (alerts.ts). Ack: `AlertContent`. */
  ALERT_CONTENT: 'alert:content',
  /** The organisation's on-call roles by name, with who holds each now (roles.ts). Ack: `RoleSearchResult`. */
  ROLE_SEARCH: 'role:search',
  /** An on-call role's signed statements, for a client to verify who holds it (roles.ts). Ack: `RoleLogResult`. */
  ROLE_LOG: 'role:log',
  /** The caller's thread with an on-call role (roles.ts). Ack: `Conversation`. */
  ROLE_OPEN: 'role:open',
  /** The credentialing key and the signed attestations of some users (credentials.ts). Ack: `CredentialsResult`. */
  CREDENTIALS_GET: 'credentials:get',
  /** Signed attestations by specialty (credentials.ts). Ack: `CredentialsResult`. */
  CREDENTIALS_SEARCH: 'credentials:search',
  /** The office-certified pseudonym token keys and epoch revocations of the caller's organisation (pseudonyms.ts). Ack: `PseudonymKeysResult`. */
  PSEUDONYM_KEYS: 'pseudonym:keys',
  /** Ask the credentialing office for blind-signed pseudonym tokens (pseudonyms.ts). Ack: `PseudonymRequestResult`. */
  PSEUDONYM_REQUEST: 'pseudonym:request',
  /** The office's blind signatures for the calling device's requests (pseudonyms.ts). Ack: `PseudonymCollectResult`. */
  PSEUDONYM_COLLECT: 'pseudonym:collect',
  /** The organisation's consult pools by topic (consults.ts). Ack: `PoolSearchResult`. */
  POOL_SEARCH: 'pool:search',
  /** A consult pool's signed statements, for a clinician to verify it and join (consults.ts). Ack: `RoleLogResult`. */
  POOL_LOG: 'pool:log',
} as const;
export type ClientEvent = (typeof ClientEvent)[keyof typeof ClientEvent];

export const ServerEvent = {
  /** A new envelope for one of the device's conversations. */
  ENVELOPE: 'envelope',
  /** The device's user was added to a conversation. */
  CONVERSATION: 'conversation',
  /** A contact (or the user) published keys for a new device. */
  DEVICE_ADDED: 'device:added',
  /** Another member of a conversation started or stopped typing. */
  TYPING: 'typing',
  /** The hub is about to close this socket, and why. */
  SESSION_CLOSING: 'session:closing',
  /** A device of a contact (or of the user) was revoked: stop encrypting to it. */
  DEVICE_REMOVED: 'device:removed',
  /** A contact (or the user) published a new signed device list: `DeviceListChanged`. */
  DEVICE_LIST_CHANGED: 'devices:changed',
  /** Others claimed this device's one-time prekeys down to `KeysLow.remaining`: upload more (the SDK does). */
  KEYS_LOW: 'keys:low',
  /** An alert (urgent or emergent message) was raised, repeated, acknowledged or expired: `AlertUpdate`. */
  ALERT: 'alert',
} as const;
export type ServerEvent = (typeof ServerEvent)[keyof typeof ServerEvent];
