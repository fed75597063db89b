import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { DEVICE_ID_HEADER, ErrorCode, HTTP_STATUS_BY_CODE, USER_ID_HEADER } from '@curbside/shared';
import type { SecurityConfig } from './config.js';

const LOCALHOST = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

/**
 * The Origin allow-list, used by socket.io (`cors` and `allowRequest`) and by express.
 *
 * A request without an Origin header is not a cross-site browser request (native apps, servers,
 * the Node SDK, curl): it is allowed here and still has to authenticate. A request with an Origin
 * that is not on the list is refused before anything else runs: that stops other web pages from
 * using a clinician's browser against the hub.
 */
export class OriginPolicy {
  private readonly exact: ReadonlySet<string>;
  private readonly localhost: boolean;

  constructor(origins: SecurityConfig['corsOrigins']) {
    this.localhost = origins === 'dev-localhost';
    this.exact = new Set(origins === 'dev-localhost' ? [] : origins.map((o) => o.toLowerCase()));
  }

  allows(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    const o = origin.toLowerCase();
    return this.exact.has(o) || (this.localhost && LOCALHOST.test(o));
  }

  /** socket.io server options: CORS headers for allowed origins, and refusal of the rest at the engine.io handshake. */
  socketOptions() {
    return {
      cors: {
        origin: (origin: string | undefined, cb: (err: Error | null, allow?: boolean) => void) => cb(null, this.allows(origin)),
        credentials: false,
        methods: ['GET', 'POST'],
      },
      // Runs for every new engine.io connection (polling handshake and direct WebSocket upgrade).
      allowRequest: (req: IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void) => {
        const origin = req.headers.origin;
        cb(this.allows(origin) ? null : 'Origin not allowed', this.allows(origin));
      },
    };
  }

  /** express middleware: CORS for allowed origins, 403 FORBIDDEN for disallowed ones (preflights included). */
  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      const origin = req.headers.origin;
      if (origin === undefined) return next();
      res.vary('Origin');
      if (!this.allows(origin)) {
        res.status(HTTP_STATUS_BY_CODE.FORBIDDEN).json({ error: { code: ErrorCode.FORBIDDEN, message: 'Origin not allowed' } });
        return;
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      if (req.method === 'OPTIONS') {
        // PUT and the device and user headers: attachment parts (http/attachments.ts).
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT');
        res.setHeader('Access-Control-Allow-Headers', `content-type, authorization, ${DEVICE_ID_HEADER}, ${USER_ID_HEADER}`);
        res.setHeader('Access-Control-Max-Age', '600');
        res.status(204).end();
        return;
      }
      next();
    };
  }
}
