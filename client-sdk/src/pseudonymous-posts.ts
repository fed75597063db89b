/**
 * Pseudonymous cases in consult pools, over sealed sender (shared/src/sealed-posts.ts). Posting: the
 * message is sealed under a fresh key, that key goes to every device of the pool's verified members in
 * an anonymous sealed box (`crypto_box_seal` to the X25519 form of the device's identity key), and the
 * whole is signed by the one-time key of a pseudonym token and sent over a request that carries no
 * access token. Reading: the token is verified against the office's certified keys and the pinned
 * office key, the post's signature against the token's posting key, and only then is it opened.
 */
import {
  ErrorCode,
  PseudonymMessageSchema,
  SEALED_POST_PATH,
  SEALED_SENDER,
  SendResultSchema,
  decodeSealedPost,
  encodeSealedPost,
  fromBase64Url,
  parseSigned,
  RETRYABLE_ERROR_CODES,
  pseudonymNullifier,
  sealedPostRequestBody,
  sealedPostSignedBytes,
  toBase64Url,
  verifyPseudonymToken,
  type ConsultPart,
  type Envelope,
  type PseudonymKeysResult,
  type PseudonymToken,
  type SealedPostHeader,
  type SendResult,
} from '@curbside/shared';
import { getSodium, identityPrivateToX25519, identityPublicToX25519, sodiumReady, verifySignature } from './crypto/index.js';
import { openMessage, sealMessage, extrasOf } from './e2ee/message-crypto.js';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import { chatMessageOf, type ChatMessage } from './e2ee/types.js';
import { CurbsideError, isCurbsideError } from './errors.js';
import { restCall } from './hub/rest.js';
import type { Pseudonyms } from './pseudonyms.js';

/** Attempts at a post whose epoch or device list went stale meanwhile. */
const MAX_ROUNDS = 4;
/** How long the certified token keys are trusted before they are fetched again. */
const KEYS_TTL_MS = 5 * 60_000;

/** How a pseudonymous post shows who sent it: a verified clinician of this specialty, and nothing else. */
export interface PseudonymInfo {
  /** "a verified <specialty>" of the organisation. */
  specialty: string;
  /** The office's token epoch. */
  epoch: string;
  /** The case's one-time posting key (base64url): the same on a case and its asker's follow-ups, never on anything else. */
  key: string;
  /** This device asked the case. */
  mine: boolean;
}

export class PseudonymousPosts {
  private keys: { at: number; docs: { result: PseudonymKeysResult; officeKey: string } } | undefined;

  /** @internal */
  constructor(
    private readonly deps: {
      messenger: SecureMessenger;
      pseudonyms: Pseudonyms;
      hub: { nodeUrls(): string[] };
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * Post a case with a token taken from `client.pseudonyms` (the token is kept for the asker's
   * follow-ups once the hub accepted the case), or the asker's follow-up under a case it asked.
   */
  async post(
    poolId: string,
    text: string,
    consult: ConsultPart,
    auth: { kind: 'case'; token: PseudonymToken; sign(bytes: Uint8Array): Uint8Array } | { kind: 'follow-up'; token: PseudonymToken; sign(bytes: Uint8Array): Uint8Array },
  ): Promise<SendResult> {
    await sodiumReady();
    const message = parseSigned(PseudonymMessageSchema, auth.token.message);
    if (!message) throw new CurbsideError(ErrorCode.INVALID_PAYLOAD, 'This is not a pseudonym token', {});
    const orgId = message.orgId;
    const clientMessageId = auth.kind === 'case' ? await pseudonymNullifier(auth.token) : globalThis.crypto.randomUUID();
    const { messenger } = this.deps;
    let dropped = new Set<string>();
    for (let round = 0; ; round++) {
      const state = await messenger.careTeams.state(poolId);
      if (!state?.pool) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Join this pool before posting in it', { poolId });
      const epoch = state.head;
      const devices = (await messenger.listDevices(Object.keys(state.members))).filter((d) => !dropped.has(d.deviceId));
      const { body: sealed, keyPackage } = sealMessage({ kind: 'text', text, consult }, { conversationId: poolId, senderUserId: SEALED_SENDER, senderDeviceId: SEALED_SENDER, clientMessageId });
      const sodium = getSodium();
      const recipients = devices.map((d) => ({ deviceId: d.deviceId, ciphertext: sodium.crypto_box_seal(keyPackage, identityPublicToX25519(d.identityKey)) }));
      const sentAt = this.now();
      const signature = auth.sign(await sealedPostSignedBytes({ orgId, poolId, clientMessageId, epoch, kind: auth.kind, sentAt, sealed }));
      const header: SealedPostHeader = { v: 1, kind: auth.kind, token: auth.token, sentAt, signature: toBase64Url(signature) };
      const request = sealedPostRequestBody({ orgId, poolId, clientMessageId, epoch, body: encodeSealedPost(header, sealed), recipients });
      try {
        return await this.send(JSON.stringify(request));
      } catch (e) {
        if (!isCurbsideError(e) || round >= MAX_ROUNDS) throw e;
        if (e.code === ErrorCode.STALE_EPOCH) await messenger.hub.catchUp();
        else if (e.code === ErrorCode.DEVICE_LIST_STALE) dropped = new Set([...dropped, ...((e.details as { extra?: string[] } | undefined)?.extra ?? [])]);
        else throw e;
      }
    }
  }

  /** One request, to each hub node in turn while a node cannot be reached. No access token, no cookie: it names nobody. */
  private async send(body: string): Promise<SendResult> {
    const urls = this.deps.hub.nodeUrls();
    for (let i = 0; ; i++) {
      try {
        const res = await restCall(`${urls[i % urls.length]}${SEALED_POST_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, credentials: 'omit' });
        return SendResultSchema.parse(await res.json());
      } catch (e) {
        if (!isCurbsideError(e) || !RETRYABLE_ERROR_CODES.has(e.code) || i + 1 >= Math.max(urls.length, 2)) throw e;
      }
    }
  }

  /**
   * @internal Open a post from the reserved sender: its token must verify under the pinned office key
   * at the time the hub stored the post, the header must be signed by the token's posting key, and
   * this device's share must open the sealed message. Throws what made it fail (reported as a
   * decryption failure); an envelope without a share for this device gives undefined.
   */
  async open(envelope: Envelope, myUserId: string): Promise<ChatMessage | undefined> {
    if (!envelope.ciphertext) return undefined;
    await sodiumReady();
    const frame = envelope.body ? decodeSealedPost(envelope.body) : undefined;
    if (!frame || !envelope.epoch) throw new CurbsideError(ErrorCode.BAD_SIGNATURE, 'Not a sealed post');
    const { header, sealed } = frame;
    let verified = await this.verifyToken(header.token, envelope.sentAt, false);
    // A key the office certified after this device fetched the keys: fetch them again, once.
    if (!verified.ok && verified.reason === 'no-key') verified = await this.verifyToken(header.token, envelope.sentAt, true);
    if (!verified.ok) throw new CurbsideError(ErrorCode.BAD_SIGNATURE, `The post's pseudonym token does not verify (${verified.reason})`);
    const orgId = verified.orgId;
    if (header.kind === 'case' && envelope.clientMessageId !== verified.nullifier) throw new CurbsideError(ErrorCode.BAD_SIGNATURE, 'A case must spend its own token');
    const signed = await sealedPostSignedBytes({ orgId, poolId: envelope.conversationId, clientMessageId: envelope.clientMessageId, epoch: envelope.epoch, kind: header.kind, sentAt: header.sentAt, sealed });
    const postingKey = fromBase64Url(verified.postingKey);
    const signature = fromBase64Url(header.signature);
    if (!postingKey || !signature || !verifySignature(postingKey, signed, signature)) throw new CurbsideError(ErrorCode.BAD_SIGNATURE, 'The post is not signed by its token’s key');
    const identity = (await this.deps.messenger.localKeys()).identity;
    const sodium = getSodium();
    let keyPackage: Uint8Array;
    try {
      keyPackage = sodium.crypto_box_seal_open(envelope.ciphertext, identityPublicToX25519(identity.publicKey), identityPrivateToX25519(identity.privateKey));
    } catch {
      throw new CurbsideError(ErrorCode.BAD_SIGNATURE, 'This device’s share of the post does not open');
    }
    const content = openMessage(sealed, keyPackage, { conversationId: envelope.conversationId, senderUserId: SEALED_SENDER, senderDeviceId: SEALED_SENDER, clientMessageId: envelope.clientMessageId });
    if (content.kind !== 'text') return undefined;
    const extras = extrasOf(content);
    // A pseudonymous post is a consult part without an attachment (the upload would name the poster).
    if (!extras.consult || extras.attachment) throw new CurbsideError(ErrorCode.BAD_SIGNATURE, 'A pseudonymous post carries a consult part and no attachment');
    if ((header.kind === 'case') !== (extras.consult.type === 'case')) throw new CurbsideError(ErrorCode.BAD_SIGNATURE, 'A case spends a token; anything else follows one');
    const caseId = extras.consult.type === 'case' ? envelope.messageId : extras.consult.caseId;
    const mine = (await this.deps.pseudonyms.ownCase(caseId))?.token.message === header.token.message;
    const pseudonym: PseudonymInfo = { specialty: verified.specialty, epoch: verified.epoch, key: verified.postingKey, mine };
    return { ...chatMessageOf(envelope, content.text, myUserId, 'routine', { consult: extras.consult }), outgoing: mine, pseudonym };
  }

  private async verifyToken(token: PseudonymToken, at: number, fresh: boolean) {
    if (fresh || !this.keys || this.now() - this.keys.at > KEYS_TTL_MS) this.keys = { at: this.now(), docs: await this.deps.pseudonyms.verificationKeys() };
    const { result, officeKey } = this.keys.docs;
    return verifyPseudonymToken(token, result, officeKey, at, verifySignature);
  }
}
