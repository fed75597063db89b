import type { AuditEvent } from './port.js';

const MAX_LISTED = 100;
/** Ids are printable ASCII without spaces, at most 128 characters (the shared IdSchema). */
const ID = /^[\x21-\x7e]{1,128}$/;

type Ids = Pick<AuditEvent, 'conversationId' | 'messageId' | 'seq' | 'clientMessageId' | 'targetDeviceId' | 'targetUserIds' | 'messageIds'>;

/**
 * The ids an audit entry keeps from a validated request and its answer, for any event: a fixed
 * list of id fields, each taken only if it looks like an id. Bodies, ciphertexts, keys, titles and
 * anything else are never read, so a new handler is audited without extra code and without a
 * chance of leaking content into the log.
 */
export function auditFields(request: unknown, result: unknown): Ids {
  const req = asRecord(request);
  const res = asRecord(result);
  const out: Ids = {};
  const conversationId = id(req?.conversationId) ?? id(res?.conversationId) ?? (looksLikeConversation(res) ? id(res!.id) : undefined);
  if (conversationId) out.conversationId = conversationId;
  const messageId = id(res?.messageId);
  if (messageId) out.messageId = messageId;
  if (typeof res?.seq === 'number' && Number.isSafeInteger(res.seq)) out.seq = res.seq;
  const clientMessageId = id(req?.clientMessageId);
  if (clientMessageId) out.clientMessageId = clientMessageId;
  const targetDeviceId = id(req?.deviceId);
  if (targetDeviceId) out.targetDeviceId = targetDeviceId;
  const users = ids(req?.userIds) ?? (id(req?.peerUserId) ? [id(req!.peerUserId)!] : undefined) ?? ids(req?.memberUserIds);
  if (users) out.targetUserIds = users;
  if (Array.isArray(res?.envelopes)) {
    const messageIds = ids(res.envelopes.map((e) => asRecord(e)?.messageId), Number.MAX_SAFE_INTEGER);
    if (messageIds) out.messageIds = messageIds;
  }
  return out;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as Record<string, unknown>) : undefined;
}

function id(v: unknown): string | undefined {
  return typeof v === 'string' && ID.test(v) ? v : undefined;
}

function ids(v: unknown, max = MAX_LISTED): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const list = v.map(id).filter((x): x is string => x !== undefined);
  return list.length ? list.slice(0, max) : undefined;
}

function looksLikeConversation(v: Record<string, unknown> | undefined): boolean {
  return v !== undefined && Array.isArray(v.memberUserIds) && typeof v.id === 'string';
}
