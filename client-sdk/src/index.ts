export { CurbsideClient, type CurbsideClientOptions, type CurbsideClientEvents, type DisconnectReason, type SendOptions, type EnvelopePayload } from './client.js';
export { CurbsideError, isCurbsideError, ErrorCode } from './errors.js';
export { MemoryCursorStore, type CursorStore } from './cursor-store.js';
export { DecryptionError, type DecryptionFailureReason, type SafetyNumber, type ChatMessage, type UnavailableMessage, type SdkLogger, type TeamChange, type TeamDetailsChange, type MembershipMismatch } from './e2ee/secure-messenger.js';
export type { Fingerprint } from './crypto/index.js';
export { TypedEmitter } from './emitter.js';
export type { Conversation, ConversationCreateRequest, DeviceIdentity, Envelope, PrekeyBundle, SendResult, TeamRole, TeamState, TypingNotice } from '@curbside/shared';
export * from './stores/index.js';
export type { Receipt, ReceiptStatus } from './e2ee/receipts.js';
