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
} as const;
export type ClientEvent = (typeof ClientEvent)[keyof typeof ClientEvent];

export const ServerEvent = {
  /** A new envelope for one of the device's conversations. */
  ENVELOPE: 'envelope',
  /** The device's user was added to a conversation. */
  CONVERSATION: 'conversation',
  /** The hub is about to close this socket, and why. */
  SESSION_CLOSING: 'session:closing',
} as const;
export type ServerEvent = (typeof ServerEvent)[keyof typeof ServerEvent];
