/**
 * Socket event names. One table; the typed event maps in `socket.ts` are keyed by these values.
 */
export const ClientEvent = {
  /** Create a conversation (1:1 or group). Ack: `ConversationAck`. */
  CONVERSATION_CREATE: 'conversation:create',
  /** List the caller's conversations. Ack: `ConversationListAck`. */
  CONVERSATION_LIST: 'conversation:list',
  /** Send an opaque envelope to a conversation. Ack: `SendAck` after the durable write. */
  ENVELOPE_SEND: 'envelope:send',
  /** Fetch envelopes after per-conversation cursors (resync). Ack: `SyncAck`. */
  SYNC_FETCH: 'sync:fetch',
  /** Publish this device's identity key, signed prekey and/or one-time prekeys. */
  KEYS_PUBLISH: 'keys:publish',
  /** How many one-time prekeys the hub still holds for this device. */
  KEYS_COUNT: 'keys:count',
  /** Claim one prekey bundle for every device of some users (each one-time prekey is handed out once). */
  KEYS_CLAIM: 'keys:claim',
  /** Devices (with identity keys) of some users, without claiming anything. */
  DEVICES_LIST: 'devices:list',
} as const;
export type ClientEvent = (typeof ClientEvent)[keyof typeof ClientEvent];

export const ServerEvent = {
  /** A new envelope for one of the device's conversations. */
  ENVELOPE: 'envelope',
  /** The device's user was added to a conversation. */
  CONVERSATION: 'conversation',
  /** A contact (or the user) published keys for a new device. */
  DEVICE_ADDED: 'device:added',
  /** The hub is about to close this socket, and why. */
  SESSION_CLOSING: 'session:closing',
} as const;
export type ServerEvent = (typeof ServerEvent)[keyof typeof ServerEvent];
