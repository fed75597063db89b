/**
 * Sealed posts on the hub (shared/src/sealed-posts.ts): pseudonymous cases in consult pools, sent
 * without an account. What authorises one is in its body: a pseudonym token the office signed blind,
 * and a signature by the token's one-time posting key over the post. A `case` spends the token (its
 * client message id is the nullifier); a `follow-up` (the asker's reply, helpful mark or summary)
 * names a token already spent, signed by the same key. The envelope is stored and delivered as sent by
 * `~sealed`: nothing the hub keeps of it names a clinician, a device or an identity key.
 */
import {
  ErrorCode,
  SEALED_POST_MAX_SKEW_MS,
  SEALED_SENDER,
  decodeSealedPost,
  sealedPostSignedBytes,
  type SealedPostRequestSchema,
} from '@curbside/shared';
import type { z } from 'zod';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import { ed25519Verify } from './ed25519.js';
import type { MessageRelay, SendOutcome } from './message-relay.js';
import type { Pseudonyms } from './pseudonyms.js';

/** Tokens are spent once across all of an organisation's pools: one token, one case. */
export const SEALED_POST_SCOPE = 'pool-case';

export class SealedPosts {
  constructor(
    private readonly deps: {
      storage: Pick<Storage, 'withdrawEnvelope'>;
      relay: Pick<MessageRelay, 'sendSealed'>;
      pseudonyms: Pick<Pseudonyms, 'verify' | 'spend'>;
      now?: () => number;
    },
  ) {}

  /**
   * Check a sealed post and sequence it in its pool. Refusals: INVALID_PAYLOAD (not a sealed post
   * frame, a case whose client message id is not its token's nullifier, a time too far from the hub's),
   * NOT_FOUND (no such pool: the relay reads the pool once, from the node's directory), BAD_SIGNATURE (the token or the posting key's signature), PSEUDONYM_SPENT
   * (a case with a spent token), FORBIDDEN (a follow-up whose token posted no case), and what a member's
   * send meets (STALE_EPOCH, DEVICE_LIST_STALE). A retry of a stored post is answered as a duplicate.
   */
  async post(req: z.output<typeof SealedPostRequestSchema>): Promise<SendOutcome> {
    const { orgId, poolId, clientMessageId, epoch, body, recipients } = req;
    const frame = decodeSealedPost(body);
    if (!frame) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'The body is not a sealed post', {});
    const { header, sealed } = frame;
    const now = (this.deps.now ?? Date.now)();
    if (Math.abs(now - header.sentAt) > SEALED_POST_MAX_SKEW_MS) {
      throw new HubError(ErrorCode.INVALID_PAYLOAD, 'The post’s time is too far from the hub’s clock (an old post replayed, or a wrong clock)', { maxSkewMs: SEALED_POST_MAX_SKEW_MS });
    }
    const token = await this.deps.pseudonyms.verify(orgId, header.token);
    if (header.kind === 'case' && clientMessageId !== token.nullifier) {
      throw new HubError(ErrorCode.INVALID_PAYLOAD, 'A case’s client message id is its token’s nullifier', {});
    }
    const signed = await sealedPostSignedBytes({ orgId, poolId, clientMessageId, epoch, kind: header.kind, sentAt: header.sentAt, sealed });
    if (!ed25519Verify(Buffer.from(token.postingKey, 'base64url'), signed, Buffer.from(header.signature, 'base64url'))) {
      throw new HubError(ErrorCode.BAD_SIGNATURE, 'The post is not signed by its token’s posting key', {});
    }
    if (header.kind === 'follow-up') {
      // Only the holder of a token that posted a case speaks for its asker. (A token never spent is
      // spent now, for nothing: its holder cannot post a case with it after that.)
      if ((await this.deps.pseudonyms.spend(orgId, SEALED_POST_SCOPE, token.nullifier)) !== 'spent') {
        throw new HubError(ErrorCode.FORBIDDEN, 'This token posted no case', {});
      }
      return this.deps.relay.sendSealed(orgId, { conversationId: poolId, clientMessageId, body, recipients, partial: true, epoch });
    }
    // A case: sequenced first, then spent. A post refused for a stale device list or epoch keeps its
    // token for the retry; a retry of a stored case is a duplicate of it, spent or not. A token spent
    // before (a replay once the first post was swept) takes its envelope back before anyone hears of it.
    const outcome = await this.deps.relay.sendSealed(orgId, { conversationId: poolId, clientMessageId, body, recipients, partial: true, epoch });
    const spent = await this.deps.pseudonyms.spend(orgId, SEALED_POST_SCOPE, token.nullifier);
    if (spent === 'spent' && !outcome.result.duplicate) {
      await this.deps.storage.withdrawEnvelope(orgId, SEALED_SENDER, clientMessageId);
      throw new HubError(ErrorCode.PSEUDONYM_SPENT, 'This pseudonym token was used already', {});
    }
    return outcome;
  }
}
