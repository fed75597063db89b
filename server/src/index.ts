export { Hub, createHubFromConfig } from './hub.js';
export type { HubDeps } from './wiring.js';
export { loadConfig, ConfigError, ENV_DOC, type HubConfig } from './config.js';
export { TokenVerifier, DevTokenIssuer, type TokenVerifierOptions, type StatedIdentity } from './auth/tokens.js';
export { loadOidcConfig, OIDC_ENV_DOC, STATIC_CLAIMS, type OidcConfig, type ClaimMapping, type OrgMapping } from './auth/config.js';
export { createLogger, type Logger } from './logger.js';
export { HubError } from './errors.js';
export { HubMetrics, type MetricsConfig } from './metrics/metrics.js';
export { METRICS_ENV_DOC } from './metrics/config.js';
export type { Storage, DirectoryStore, ConversationStore, EnvelopeStore, AppendResult } from './ports/storage.js';
export type { Presence, PresenceConnection, PresenceOptions } from './ports/presence.js';
export { MemoryStorage } from './adapters/memory/storage.js';
export { MemoryPresence } from './adapters/memory/presence.js';
export { MongoStorage } from './adapters/mongo/storage.js';
export { RedisPresence } from './adapters/redis/presence.js';
// --- security ---
export { HubSecurity, type HubSecurityOptions } from './security/hub-security.js';
export { loadSecurityConfig, defaultSecurityConfig, rateLimitsOff, SECURITY_ENV_DOC, type SecurityConfig, type RateLimitRule } from './security/config.js';
export { OriginPolicy } from './security/origins.js';
export { RateLimits, rateKey, type RateLimitName } from './security/rate-limits.js';
export { MemoryRevocations, RedisRevocations, type RevocationList } from './security/revocation.js';
export type { DeviceAdmin, OwnDeviceRecord } from './ports/device-admin.js';
export * from './audit/index.js';
// --- attachments ---
export type { BlobStore, StoredPart, PutPartResult } from './ports/blob-store.js';
export type { AttachmentStore, AttachmentRecord } from './ports/attachments.js';
export { MemoryBlobStore } from './adapters/memory/blobs.js';
export { GridFsBlobStore } from './adapters/mongo/gridfs-blobs.js';
