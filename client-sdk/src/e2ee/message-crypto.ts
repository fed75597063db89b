import { AttachmentDescriptorSchema, ConsultPartSchema, type AlertPriority, type AttachmentDescriptor, type ConsultPart } from '@curbside/shared';
import { CryptoError, aeadDecrypt, aeadEncrypt, constantTimeEqual, getSodium, randomBytes } from '../crypto/index.js';

/**
 * How one message travels: its content is encrypted once, under a fresh key, into the envelope
 * `body`; each recipient device gets that key and a hash of the body through its ratchet session
 * (the "key package"). Large messages and many devices then cost one body, not one per device.
 *
 * The body's AEAD binds the conversation, sender and client message id, so the hub cannot move a
 * body to another conversation or pass it off as another sender's. The key package carries a hash
 * of the body because Poly1305 does not commit to its key: without it a sender could craft one body
 * that opens differently under two keys sent to two devices.
 */

export const KEY_PACKAGE_VERSION = 1;
const KEY_BYTES = 32;
const HASH_BYTES = 32;
const NONCE_BYTES = 24;
const KEY_PACKAGE_BYTES = 1 + KEY_BYTES + HASH_BYTES;

/** What the app sent, as the SDK carries it inside the body. */
export type MessageContent =
  /** `priority` (urgent or emergent) is sealed with the text, so the hub's alert metadata can be checked against it. */
  | ({ kind: 'text'; text: string; priority?: AlertPriority } & SealedExtras)
  /** Invisible to the app: asks the peer to use the new session this message starts. */
  | { kind: 'session-reset' }
  /** A delivery or read receipt for messages of the same conversation, sent to their sender's devices. */
  | { kind: 'receipt'; status: 'delivered' | 'read' | 'acknowledged'; messageIds: string[] }
  /**
   * An on-call role changed hands: a holder's device passes pending urgent messages of a role thread to
   * the new holders' devices, each as its original body and key package (so the reader opens the
   * original, bound to its sender, not a retelling).
   */
  | { kind: 'handoff'; items: HandoffItem[] };

/** One message handed over: what its associated data binds, and its body and key package (base64). */
export interface HandoffItem {
  seq: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
  sentAt: number;
  body: string;
  keyPackage: string;
}

function isHandoffItem(v: unknown): v is HandoffItem {
  if (typeof v !== 'object' || v === null) return false;
  const i = v as Record<string, unknown>;
  const short = (x: unknown) => typeof x === 'string' && x.length > 0 && x.length <= 128;
  return (
    Number.isSafeInteger(i.seq) && (i.seq as number) > 0 && Number.isSafeInteger(i.sentAt) &&
    short(i.messageId) && short(i.senderUserId) && short(i.senderDeviceId) && short(i.clientMessageId) &&
    typeof i.body === 'string' && i.body.length <= 96 * 1024 && typeof i.keyPackage === 'string' && i.keyPackage.length <= 256
  );
}

/** Messages one hand-off carries (the hub's limit on the seqs it names). */
export const MAX_HANDOFF_ITEMS = 50;

/** Message ids one receipt may carry. */
export const MAX_RECEIPT_IDS = 500;

export interface MessageContext {
  conversationId: string;
  senderUserId: string;
  senderDeviceId: string;
  clientMessageId: string;
}

function associatedData(ctx: MessageContext): Uint8Array {
  return new TextEncoder().encode(['curbside-message-v1', ctx.conversationId, ctx.senderUserId, ctx.senderDeviceId, ctx.clientMessageId].join('\n'));
}

function bodyHash(body: Uint8Array): Uint8Array {
  return getSodium().crypto_generichash(HASH_BYTES, body, null);
}

/** Encrypt content into a body and the key package each device receives through its session. */
export function sealMessage(content: MessageContent, ctx: MessageContext): { body: Uint8Array; keyPackage: Uint8Array } {
  const key = randomBytes(KEY_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const plaintext = new TextEncoder().encode(JSON.stringify(content));
  const ct = aeadEncrypt(key, nonce, plaintext, associatedData(ctx));
  const body = new Uint8Array(NONCE_BYTES + ct.length);
  body.set(nonce, 0);
  body.set(ct, NONCE_BYTES);
  const keyPackage = new Uint8Array(KEY_PACKAGE_BYTES);
  keyPackage[0] = KEY_PACKAGE_VERSION;
  keyPackage.set(key, 1);
  keyPackage.set(bodyHash(body), 1 + KEY_BYTES);
  return { body, keyPackage };
}

/** Check the body against the key package's hash, then decrypt it. Any mismatch is CryptoError. */
export function openMessage(body: Uint8Array | undefined, keyPackage: Uint8Array, ctx: MessageContext): MessageContent {
  if (keyPackage.length !== KEY_PACKAGE_BYTES || keyPackage[0] !== KEY_PACKAGE_VERSION) throw new CryptoError('BAD_MESSAGE', 'bad key package');
  if (!body || body.length < NONCE_BYTES + 16) throw new CryptoError('BAD_MESSAGE', 'missing or short body');
  if (!constantTimeEqual(bodyHash(body), keyPackage.subarray(1 + KEY_BYTES))) throw new CryptoError('DECRYPT_FAILED', 'body hash does not match the key package');
  const plaintext = aeadDecrypt(keyPackage.subarray(1, 1 + KEY_BYTES), body.subarray(0, NONCE_BYTES), body.subarray(NONCE_BYTES), associatedData(ctx));
  let content: unknown;
  try {
    content = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    throw new CryptoError('BAD_MESSAGE', 'content is not valid JSON');
  }
  if (typeof content === 'object' && content !== null) {
    const c = content as { kind?: unknown; text?: unknown };
    if (c.kind === 'text' && typeof c.text === 'string') {
      const priority = (content as { priority?: unknown }).priority;
      return { kind: 'text', text: c.text, ...(priority === 'urgent' || priority === 'emergent' ? { priority } : {}), ...extrasOf(content) };
    }
    if (c.kind === 'session-reset') return { kind: 'session-reset' };
    const h = content as { items?: unknown };
    if (c.kind === 'handoff' && Array.isArray(h.items) && h.items.length > 0 && h.items.length <= MAX_HANDOFF_ITEMS && h.items.every(isHandoffItem)) {
      return { kind: 'handoff', items: h.items.map((i: HandoffItem) => ({ ...i })) };
    }
    const r = content as { status?: unknown; messageIds?: unknown };
    if (
      c.kind === 'receipt' &&
      (r.status === 'delivered' || r.status === 'read' || r.status === 'acknowledged') &&
      Array.isArray(r.messageIds) &&
      r.messageIds.length <= MAX_RECEIPT_IDS &&
      r.messageIds.every((id) => typeof id === 'string' && id.length <= 128)
    ) {
      return { kind: 'receipt', status: r.status, messageIds: r.messageIds as string[] };
    }
  }
  throw new CryptoError('BAD_MESSAGE', 'unknown content kind');
}

/**
 * What a text message may carry besides its text, sealed with it: a file (`attachment`), and in a
 * consult pool what the message is in a consult (`consult`: a case, a reply, a helpful mark, a close).
 */
export interface SealedExtras {
  attachment?: AttachmentDescriptor;
  consult?: ConsultPart;
}

/** The extras a text message carries, each checked against the shared schema (else BAD_MESSAGE). */
export function extrasOf(content: object): SealedExtras {
  const attachment = attachmentOf(content);
  const raw = (content as { consult?: unknown }).consult;
  let consult: ConsultPart | undefined;
  if (raw !== undefined) {
    const parsed = ConsultPartSchema.safeParse(raw);
    if (!parsed.success) throw new CryptoError('BAD_MESSAGE', 'malformed consult part');
    consult = parsed.data;
  }
  return { ...(attachment ? { attachment } : {}), ...(consult ? { consult } : {}) };
}

/**
 * The attachment a text message carries, checked against the shared schema. A descriptor that does
 * not parse is a BAD_MESSAGE: the sender's client made it, and a half-read attachment is worse than none.
 */
export function attachmentOf(content: object): AttachmentDescriptor | undefined {
  const raw = (content as { attachment?: unknown }).attachment;
  if (raw === undefined) return undefined;
  const parsed = AttachmentDescriptorSchema.safeParse(raw);
  if (!parsed.success) throw new CryptoError('BAD_MESSAGE', 'malformed attachment descriptor');
  return parsed.data;
}
