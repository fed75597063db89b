/**
 * `POST /pools/sealed` (shared/src/sealed-posts.ts): pseudonymous consult-pool posts, sent without an
 * access token: the pseudonym token and the posting key's signature in the body authorise them
 * (domain/sealed-posts.ts). Charged to the client address (`sealedPosts` rate limit), which the audit
 * log does not keep for these posts: next to the handshakes it records, it would name the poster.
 */
import express, { Router, type Request, type Response } from 'express';
import { ErrorCode, HTTP_STATUS_BY_CODE, SEALED_POST_PATH, SEALED_SENDER, SealedPostRequestSchema, parsePayload } from '@curbside/shared';
import { HubError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { HubSecurity } from '../security/hub-security.js';
import { rateKey } from '../security/rate-limits.js';
import type { SealedPosts } from '../domain/sealed-posts.js';
import type { SendOutcome } from '../domain/message-relay.js';

export interface SealedPostRouterOptions {
  sealedPosts: SealedPosts;
  security: HubSecurity;
  logger: Logger;
  /** Push a stored post to the pool's devices (the gateway's fan-out). */
  deliver: (orgId: string, outcome: SendOutcome) => void;
  isAccepting: () => boolean;
}

/** A sealed post names up to 500 devices, each with a ~150-byte share in base64url, and a body of up to 64 KiB. */
const BODY_LIMIT = '512kb';

export function sealedPostRouter(options: SealedPostRouterOptions): Router {
  const router = Router();
  const { sealedPosts, security, logger } = options;
  router.post(SEALED_POST_PATH, express.json({ limit: BODY_LIMIT }), async (req: Request, res: Response) => {
    let orgId: string | undefined;
    try {
      if (!options.isAccepting()) throw new HubError(ErrorCode.UNAVAILABLE, 'This hub node is shutting down; use another node', { retryAfterMs: 1000 });
      await security.rateLimits.consume('sealedPosts', rateKey('address', security.addressOf(req)));
      const parsed = parsePayload(SealedPostRequestSchema, req.body ?? {});
      if (!parsed.ok) throw new HubError(parsed.error.code, parsed.error.message, parsed.error.details);
      orgId = parsed.value.orgId;
      const outcome = await sealedPosts.post(parsed.value);
      options.deliver(orgId, outcome);
      const { result } = outcome;
      security.record({ action: 'pool:sealed-post', outcome: 'ok', orgId, userId: SEALED_SENDER, deviceId: SEALED_SENDER, conversationId: result.conversationId, messageId: result.messageId, seq: result.seq });
      res.json(result);
    } catch (err) {
      const wire = toWireError(err);
      if (wire.code === ErrorCode.INTERNAL) logger.error({ err }, 'sealed post failed');
      security.record({ action: 'pool:sealed-post', outcome: wire.code, orgId, userId: SEALED_SENDER, deviceId: SEALED_SENDER });
      res.status(HTTP_STATUS_BY_CODE[wire.code]).json({ error: wire });
    }
  });
  return router;
}
