export { CurbsideClient, type CurbsideClientOptions, type CurbsideClientEvents, type DisconnectReason, type SendOptions, type TextSendOptions, type EnvelopePayload } from './client.js';
export { CareTeams, type TeamChangeResult } from './teams.js';
export { Devices } from './devices.js';
export { Trust } from './trust.js';
export { Directory, type DirectoryProfile } from './directory.js';
export { Alerts, type AlertState, type AlertUpdate, type EscalatedMessage } from './alerts.js';
export { Credentials, type Credential, type CredentialCheck } from './credentials.js';
export { Pseudonyms, type PseudonymHandle, type PseudonymToken } from './pseudonyms.js';
export type { PseudonymInfo } from './pseudonymous-posts.js';
export {
  stripImageMetadata,
  detectImageFormat,
  REMOVED_METADATA_CATEGORY,
  type DeidentifiedImage,
  type ImageFormat,
  type RemovedMetadata,
  type RemovedMetadataCategory,
} from './attachments/deidentify.js';
export { makeThumbnail } from './attachments/thumbnail.js';
export { OnCallRoles, type OnCallRole, type Shift } from './roles.js';
export { Consults, consultThreads, AGE_BANDS, SEXES, type ConsultCase, type ConsultPool, type ConsultReply, type NewCase, type AgeBand, type ConsultPart, type PoolSummary, type Sex } from './consults.js';
export { HubApi } from './hub/api.js';
export type { LinkCode, LinkState, DeviceListChange, DeviceListRejection } from './e2ee/device-lists.js';
export { CurbsideError, isCurbsideError, ErrorCode } from './errors.js';
export { MemoryCursorStore, type CursorStore } from './cursor-store.js';
export { DecryptionError, type DecryptionFailureReason, type SafetyNumber, type ChatMessage, type UnavailableMessage, type SdkLogger, type TeamChange, type TeamDetailsChange, type MembershipMismatch } from './e2ee/types.js';
export type { Fingerprint } from './crypto/index.js';
export { TypedEmitter } from './emitter.js';
export type { Conversation, ConversationCreateRequest, DeviceIdentity, Envelope, PrekeyBundle, SendResult, TeamRole, TeamState, TypingNotice } from '@curbside/shared';
export * from './stores/index.js';
export type { Receipt, ReceiptStatus } from './e2ee/receipts.js';
export {
  Attachments,
  type AttachmentInput,
  type AttachmentProgress,
  type AttachmentMetadataReport,
  type AttachmentThumbnail,
  type AttachmentSendOptions,
  type AttachmentDownloadOptions,
  type AttachmentDownload,
} from './attachments/attachments.js';
export type { AttachmentDescriptor } from '@curbside/shared';
