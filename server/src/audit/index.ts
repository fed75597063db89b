export * from './port.js';
export { ChainedAuditLog, chainName, canonicalAuditEntry, hashAuditEntry, AUDIT_EVENT_FIELDS, type AuditBackend } from './chain.js';
export { MemoryAuditLog, MemoryAuditBackend } from './memory.js';
export { MongoAuditLog, MongoAuditBackend, type MongoAuditOptions } from './mongo.js';
export { verifyAuditLog, formatVerdict, type AuditVerdict, type ChainVerdict } from './verify.js';
export { auditFields } from './fields.js';
