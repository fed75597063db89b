/**
 * Attachment settings from the environment (issue #21): the largest attachment, each organisation's
 * quota, and how long an upload no message names is kept. `loadAttachmentsConfig` is called by
 * `loadConfig` and reports problems into the same list.
 */
import { AttachmentLimits } from '@curbside/shared';
import type { EnvSetting } from '../env-setting.js';

export interface AttachmentsConfig {
  /** Largest attachment, in bytes of ciphertext. */
  maxBytes: number;
  /** Bytes of ciphertext one organisation may hold (uploads not yet swept); 0: no quota. */
  orgQuotaBytes: number;
  /** An upload no sent message names is deleted this long after it was created (ms). */
  unreferencedMs: number;
}

const GIB = 1024 * 1024 * 1024;

export const DEFAULT_ATTACHMENTS: AttachmentsConfig = { maxBytes: AttachmentLimits.DEFAULT_MAX_BYTES, orgQuotaBytes: 50 * GIB, unreferencedMs: 24 * 3600 * 1000 };

export const ATTACHMENTS_ENV_DOC: readonly EnvSetting[] = [
  { name: 'ATTACHMENT_MAX_BYTES', default: String(AttachmentLimits.DEFAULT_MAX_BYTES), meaning: 'largest attachment, in bytes of ciphertext (about 17 bytes per 64 KiB more than the file); larger uploads are refused with `ATTACHMENT_TOO_LARGE` before any byte is stored' },
  { name: 'ATTACHMENT_ORG_QUOTA_BYTES', default: String(50 * GIB), meaning: 'bytes of attachment ciphertext one organisation may hold at once (0: no quota); an upload past it is refused with `QUOTA_EXCEEDED` before any byte is stored' },
  { name: 'ATTACHMENT_UNREFERENCED_MS', default: String(24 * 3600 * 1000), meaning: 'an upload that no sent message names is deleted this long after it was created (the envelope sweep, `SWEEP_INTERVAL_MS`, removes it); named ones follow `RETENTION_DAYS`' },
];

export function loadAttachmentsConfig(num: (name: string, def: number, min: number, max: number) => number): AttachmentsConfig {
  return {
    maxBytes: num('ATTACHMENT_MAX_BYTES', DEFAULT_ATTACHMENTS.maxBytes, AttachmentLimits.MIN_PART_BYTES, AttachmentLimits.MAX_PARTS * AttachmentLimits.MAX_PART_BYTES),
    orgQuotaBytes: num('ATTACHMENT_ORG_QUOTA_BYTES', DEFAULT_ATTACHMENTS.orgQuotaBytes, 0, 2 ** 50),
    unreferencedMs: num('ATTACHMENT_UNREFERENCED_MS', DEFAULT_ATTACHMENTS.unreferencedMs, 60_000, 30 * 86_400_000),
  };
}
