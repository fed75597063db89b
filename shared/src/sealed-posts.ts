/**
 * Sealed posts (issue #23): a pseudonymous case in a consult pool, sent so that the hub cannot tell
 * which clinician posted it. The poster's device sends it over an unauthenticated request
 * (`POST /pools/sealed`), authorised by a one-time pseudonym token (pseudonyms.ts) instead of an
 * access token; the hub stores and delivers it as sent by the reserved sender {@link SEALED_SENDER}.
 *
 * The envelope body is a frame the hub can check and readers verify:
 * `0x53 0x01 ‖ u16 header length ‖ header (canonical JSON) ‖ sealed message`.
 * - The sealed message is an ordinary sealed message (a fresh key, the SDK's message crypto) whose key
 *   package goes to each member device in an anonymous sealed box (`crypto_box_seal` to the X25519 form
 *   of the device's identity key): nothing in a share names the poster.
 * - The header carries the token and a signature by the token's one-time posting key over
 *   {@link sealedPostSignedBytes}: the organisation, the pool, the client message id, the epoch, the
 *   time and the SHA-256 of the sealed message. A `case` spends the token (its client message id is the
 *   token's nullifier); a `follow-up` (the asker's reply, helpful mark or summary) names a token already
 *   spent on a case and is signed by the same key, which is how readers tell the asker.
 */
import { z } from 'zod';
import { EpochSchema, IdSchema, TimestampSchema } from './schemas.js';
import { Limits } from './limits.js';
import { PseudonymTokenSchema, fromBase64Url, toBase64Url } from './pseudonyms.js';
import { SignatureTextSchema, parseSigned } from './credentials.js';
import { canonicalJson } from './teams.js';

/** The sender (user and device) of every sealed post. No access token may name an id starting with `~`. */
export const SEALED_SENDER = '~sealed';

/** Ids starting with `~` are the hub's own (e.g. {@link SEALED_SENDER}): no user or device may have one. */
export function isReservedId(id: string): boolean {
  return id.startsWith('~');
}

/** How far a sealed post's `sentAt` may be from the hub's clock (replays of an old post are refused). */
export const SEALED_POST_MAX_SKEW_MS = 2 * 60_000;

export const SealedPostHeaderSchema = z.strictObject({
  v: z.literal(1),
  /** `case` spends the token; `follow-up` is by the asker of the case that spent it. */
  kind: z.enum(['case', 'follow-up']),
  token: PseudonymTokenSchema,
  /** The poster's clock (epoch ms), signed: the hub refuses a post far from its own. */
  sentAt: TimestampSchema,
  /** Ed25519 by the token's posting key over `sealedPostSignedBytes`, base64url. */
  signature: SignatureTextSchema,
});
export type SealedPostHeader = z.infer<typeof SealedPostHeaderSchema>;

const MAGIC = 0x53;
const VERSION = 1;
const MAX_HEADER_BYTES = 4096;

/** Body frame: header and sealed message. */
export function encodeSealedPost(header: SealedPostHeader, sealed: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(canonicalJson(header));
  if (h.length > MAX_HEADER_BYTES) throw new Error('sealed post header too large');
  const out = new Uint8Array(4 + h.length + sealed.length);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = h.length >> 8;
  out[3] = h.length & 0xff;
  out.set(h, 4);
  out.set(sealed, 4 + h.length);
  return out;
}

/** The header and sealed message of a body frame; undefined when it is not one (or the header is not canonical). */
export function decodeSealedPost(body: Uint8Array): { header: SealedPostHeader; sealed: Uint8Array } | undefined {
  if (body.length < 4 || body[0] !== MAGIC || body[1] !== VERSION) return undefined;
  const length = (body[2]! << 8) | body[3]!;
  if (length > MAX_HEADER_BYTES || body.length < 4 + length + 1) return undefined;
  const header = parseSigned(SealedPostHeaderSchema, new TextDecoder('utf-8', { fatal: false }).decode(body.subarray(4, 4 + length)));
  if (!header) return undefined;
  return { header, sealed: body.subarray(4 + length) };
}

const LABEL = new TextEncoder().encode('Curbside sealed post v1\u0000');

/** What the posting key signs: everything a reader and the hub both see, bound to the sealed message's hash. */
export async function sealedPostSignedBytes(input: {
  orgId: string;
  poolId: string;
  clientMessageId: string;
  epoch: string;
  kind: SealedPostHeader['kind'];
  sentAt: number;
  sealed: Uint8Array;
}): Promise<Uint8Array> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new Uint8Array(input.sealed)));
  const text = new TextEncoder().encode(
    canonicalJson({ orgId: input.orgId, poolId: input.poolId, clientMessageId: input.clientMessageId, epoch: input.epoch, kind: input.kind, sentAt: input.sentAt, sealedHash: toBase64Url(digest) }),
  );
  const out = new Uint8Array(LABEL.length + text.length);
  out.set(LABEL, 0);
  out.set(text, LABEL.length);
  return out;
}

/** A base64url field of the REST body, decoded and bounded. */
function base64Bytes(max: number) {
  return z
    .string()
    .max(Math.ceil((max * 4) / 3) + 4)
    .transform((s, ctx) => {
      const bytes = fromBase64Url(s);
      if (!bytes || bytes.length === 0 || bytes.length > max) {
        ctx.addIssue({ code: 'custom', message: `must be 1 to ${max} bytes in base64url` });
        return z.NEVER;
      }
      return bytes;
    });
}

/** `POST /pools/sealed` (no access token): the post, its epoch and one sealed share per member device named. */
export const SealedPostRequestSchema = z
  .strictObject({
    orgId: IdSchema,
    poolId: IdSchema,
    clientMessageId: IdSchema,
    /** The pool's membership epoch the post was sealed for (the head of its verified log). */
    epoch: EpochSchema,
    body: base64Bytes(Limits.MAX_CIPHERTEXT_BYTES),
    recipients: z.array(z.strictObject({ deviceId: IdSchema, ciphertext: base64Bytes(Limits.MAX_SEALED_SHARE_BYTES) })).min(1).max(Limits.MAX_RECIPIENT_DEVICES),
  })
  .refine((r) => new Set(r.recipients.map((x) => x.deviceId)).size === r.recipients.length, { message: 'each device may appear once in recipients', path: ['recipients'] });
export type SealedPostRequest = z.input<typeof SealedPostRequestSchema>;

/** Where sealed posts go: unauthenticated by design (the token in the body authorises it). */
export const SEALED_POST_PATH = '/pools/sealed';

/** The REST body of a sealed post, bytes in base64url. */
export function sealedPostRequestBody(input: { orgId: string; poolId: string; clientMessageId: string; epoch: string; body: Uint8Array; recipients: Array<{ deviceId: string; ciphertext: Uint8Array }> }): SealedPostRequest {
  return { ...input, body: toBase64Url(input.body), recipients: input.recipients.map((r) => ({ deviceId: r.deviceId, ciphertext: toBase64Url(r.ciphertext) })) };
}
