/**
 * The attachment endpoints (shared/src/attachments.ts, `AttachmentPath`), behind the same bearer token
 * as the socket: verified by the hub's `TokenVerifier`, refused when the user is disabled or the token
 * or device revoked, charged to the `attachments` rate limit of the device, its user and its
 * organisation. A device id the token does not carry is stated in `X-Curbside-Device` and must be a
 * device of the token's user that has connected before (the socket handshake binds it).
 *
 * Every error is `{ error: WireError }` with a shared code; the part upload streams the request body
 * straight into the blob store and the download streams parts straight out: no attachment is ever
 * held whole in memory.
 */
import { Router, type Request, type Response } from 'express';
import {
  AttachmentCreateRequestSchema,
  AttachmentPath,
  DEVICE_ID_HEADER,
  ErrorCode,
  HTTP_STATUS_BY_CODE,
  IdSchema,
  PartIndexSchema,
  USER_ID_HEADER,
  parsePayload,
  type SocketData,
  type WireError,
} from '@curbside/shared';
import { HubError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { HubSecurity } from '../security/hub-security.js';
import type { Storage } from '../ports/storage.js';
import type { Attachments } from '../attachments/attachments.js';

export interface AttachmentRouterOptions {
  attachments: Attachments;
  verifier: TokenVerifier;
  security: HubSecurity;
  storage: Pick<Storage, 'listDevices'>;
  logger: Logger;
  /** False while the node shuts down: new requests are refused UNAVAILABLE. */
  isAccepting: () => boolean;
}

function sendError(res: Response, error: WireError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(HTTP_STATUS_BY_CODE[error.code]).json({ error });
}

const BEARER = /^Bearer ([\x21-\x7e]{1,8192})$/;

export function attachmentRouter(options: AttachmentRouterOptions): Router {
  const router = Router();
  const { attachments, verifier, security, storage, logger } = options;

  /** Who is asking, verified like a socket handshake. */
  async function caller(req: Request): Promise<SocketData> {
    if (!options.isAccepting()) throw new HubError(ErrorCode.UNAVAILABLE, 'This hub node is shutting down; use another node', { retryAfterMs: 1000 });
    const m = BEARER.exec(req.get('authorization') ?? '');
    if (!m) throw new HubError(ErrorCode.AUTH_REQUIRED, 'Send Authorization: Bearer <access token>');
    const statedDevice = req.get(DEVICE_ID_HEADER);
    const statedUser = req.get(USER_ID_HEADER);
    for (const [name, v] of [
      [DEVICE_ID_HEADER, statedDevice],
      [USER_ID_HEADER, statedUser],
    ] as const) {
      if (v !== undefined && !IdSchema.safeParse(v).success) throw new HubError(ErrorCode.INVALID_PAYLOAD, `${name} must be an id (printable ASCII, at most 128 characters)`);
    }
    let identity: SocketData;
    try {
      identity = await verifier.verify(m[1]!, { deviceId: statedDevice, userId: statedUser });
    } catch (err) {
      return security.handshakeFailed(security.addressOf(req), err);
    }
    await security.rateLimits.consumeScoped('attachments', identity);
    await security.assertNotRevoked(identity);
    // The device must be this user's (bound at its first socket handshake).
    const devices = await storage.listDevices(identity.orgId, identity.userId);
    if (!devices.some((d) => d.deviceId === identity.deviceId)) throw new HubError(ErrorCode.FORBIDDEN, 'Connect this device to the hub once before using attachments');
    return identity;
  }

  const attachmentIdOf = (req: Request): string => {
    const parsed = IdSchema.safeParse(req.params.attachmentId);
    if (!parsed.success) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'Not an attachment id');
    return parsed.data;
  };

  /** One endpoint: authenticate, run, answer JSON (or stream), every failure typed and audited. */
  const handle =
    (action: string, run: (who: SocketData, req: Request, res: Response) => Promise<unknown>) =>
    async (req: Request, res: Response): Promise<void> => {
      let who: SocketData | undefined;
      try {
        who = await caller(req);
        const answer = await run(who, req, res);
        if (answer !== undefined) res.json(answer);
        logger.debug({ action, orgId: who.orgId, deviceId: who.deviceId, attachmentId: req.params.attachmentId }, 'attachment request');
        if (action !== 'status') security.record({ action: `attachment:${action}`, outcome: 'ok', orgId: who.orgId, userId: who.userId, deviceId: who.deviceId, ip: security.addressOf(req), note: typeof req.params.attachmentId === 'string' ? req.params.attachmentId : undefined });
      } catch (err) {
        const wire = toWireError(err);
        if (wire.code === ErrorCode.INTERNAL) logger.error({ err, action }, 'attachment request failed');
        if (who) security.record({ action: `attachment:${action}`, outcome: wire.code, orgId: who.orgId, userId: who.userId, deviceId: who.deviceId, ip: security.addressOf(req) });
        // A part refused before its body was read: do not leave the rest of it on a kept-alive connection.
        if (!req.complete) res.set('connection', 'close');
        sendError(res, wire);
      }
    };

  router.post(
    AttachmentPath.CREATE,
    handle('create', async (who, req, res) => {
      const parsed = parsePayload(AttachmentCreateRequestSchema, req.body ?? {});
      if (!parsed.ok) throw new HubError(parsed.error.code, parsed.error.message, parsed.error.details);
      res.status(201);
      return attachments.create(who, parsed.value);
    }),
  );

  router.get(
    AttachmentPath.STATUS,
    handle('status', (who, req) => attachments.status(who, attachmentIdOf(req))),
  );

  router.put(
    AttachmentPath.PART,
    handle('part', async (who, req) => {
      const id = attachmentIdOf(req);
      const index = PartIndexSchema.safeParse(req.params.index);
      if (!index.success) throw new HubError(ErrorCode.INVALID_PAYLOAD, 'Not a part index');
      const length = req.get('content-length');
      const contentLength = length !== undefined && /^\d{1,10}$/.test(length) ? Number(length) : undefined;
      const type = req.get('content-type');
      if (type !== undefined && type !== 'application/octet-stream') throw new HubError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Send parts as application/octet-stream');
      if (req.get('content-encoding') !== undefined && req.get('content-encoding') !== 'identity') throw new HubError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'Parts are ciphertext: send them without Content-Encoding');
      return attachments.putPart(who, id, index.data, contentLength, req);
    }),
  );

  router.post(
    AttachmentPath.FINISH,
    handle('finish', (who, req) => attachments.finish(who, attachmentIdOf(req))),
  );

  router.get(
    AttachmentPath.CONTENT,
    handle('download', async (who, req, res) => {
      const { size, stream } = await attachments.download(who, attachmentIdOf(req));
      res.status(200).set({ 'content-type': 'application/octet-stream', 'content-length': String(size), 'cache-control': 'no-store' });
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        res.on('close', () => {
          stream.destroy();
          resolve();
        });
        res.on('finish', resolve);
        stream.pipe(res);
      });
      return undefined;
    }),
  );

  return router;
}
