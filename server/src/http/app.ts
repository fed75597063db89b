import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { z } from 'zod';
import {
  AdminDeviceRestoreRequestSchema,
  AdminTokenRevokeRequestSchema,
  DevTokenRequestSchema,
  ErrorCode,
  HTTP_STATUS_BY_CODE,
  RestPath,
  parsePayload,
  type DevTokenResponse,
  type HealthResponse,
  type ReadyResponse,
  type WireError,
} from '@curbside/shared';
import type { Logger } from '../logger.js';
import { HubError, toWireError } from '../errors.js';
import type { DevTokenIssuer } from '../auth/tokens.js';
import type { OriginPolicy } from '../security/origins.js';
import { widgetRouter } from './widget.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface HttpAppOptions {
  /** Browser origin allow-list (CORS); absent: no CORS headers, every origin treated alike. */
  origins?: OriginPolicy | undefined;
  nodeId: string;
  mode: 'dev' | 'production';
  logger: Logger;
  readiness: ReadinessCheck[];
  /** Present only in dev mode. */
  devTokens: DevTokenIssuer | undefined;
  /** False once the hub begins shutting down, so load balancers stop sending traffic. */
  isAccepting: () => boolean;
  /** The built `<curbside-chat>` bundle, served at GET /widget/curbside-chat.js (503 while it does not exist). */
  widgetBundlePath?: string | undefined;
  /** Bearer token that unlocks operator details (the checks of /readyz); unset: never shown. */
  adminToken?: string | undefined;
  /** Express `trust proxy` (see `HubConfig.trustProxy`). */
  trustProxy?: string | number | undefined;
  /** GET /metrics on this port (it checks METRICS_TOKEN itself); absent: no such route. */
  metrics?: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  /** Operator actions behind `adminToken`. */
  admin?:
    | {
        revokeToken(input: { orgId: string; tokenId: string; expiresAt: number; by?: string | undefined }): Promise<void>;
        restoreDevice(input: { orgId: string; deviceId: string; by?: string | undefined }): Promise<{ restored: boolean }>;
      }
    | undefined;
}

const READY_CHECK_TIMEOUT_MS = 2000;

function sendError(res: Response, error: WireError): void {
  res.status(HTTP_STATUS_BY_CODE[error.code]).json({ error });
}

/** Probes, the dev token endpoint, the widget bundle (and its dev-mode demo page). Every error body is `{ error: { code, message } }` with a shared code. */
export function createHttpApp(options: HttpAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (options.trustProxy !== undefined) app.set('trust proxy', options.trustProxy);
  app.use(securityHeaders());
  if (options.origins) app.use(options.origins.middleware());
  app.use(express.json({ limit: '16kb' }));

  if (options.metrics) {
    const metrics = options.metrics;
    app.get('/metrics', (req, res, next) => void metrics(req, res).catch(next));
  }

  app.get(RestPath.HEALTH, (_req, res) => {
    const body: HealthResponse = { status: 'ok' };
    res.json(body);
  });

  app.get(RestPath.READY, async (req, res) => {
    const checks: ReadyResponse['checks'] = {};
    await Promise.all(
      options.readiness.map(async (r) => {
        const start = performance.now();
        try {
          await withTimeout(r.check(), READY_CHECK_TIMEOUT_MS, `${r.name} did not answer within ${READY_CHECK_TIMEOUT_MS} ms`);
          checks[r.name] = { ok: true, latencyMs: Math.round(performance.now() - start) };
        } catch (e) {
          checks[r.name] = { ok: false, error: (e as Error).message };
        }
      }),
    );
    const accepting = options.isAccepting();
    if (!accepting) checks.shutdown = { ok: false, error: 'hub is shutting down' };
    const ready = accepting && Object.values(checks).every((c) => c.ok);
    // Latencies and raw dependency errors are for operators, not for whoever can reach the port.
    const body: ReadyResponse = { status: ready ? 'ready' : 'not_ready', ...(isAdmin(req, options.adminToken) ? { checks } : {}) };
    if (!ready) options.logger.warn({ checks }, 'not ready');
    res.status(ready ? 200 : 503).json(body);
  });

  app.post(RestPath.DEV_TOKEN, async (req, res) => {
    if (!options.devTokens) {
      return sendError(res, { code: ErrorCode.DISABLED, message: 'Dev tokens exist only in dev mode (no MONGODB_URI and no REDIS_URL)' });
    }
    // Only the hub's own pages (the demo) may mint from a browser: a page on another origin, even
    // another localhost port, could otherwise mint tokens for anyone.
    const origin = req.get('origin');
    if (origin !== undefined && origin !== `${req.protocol}://${req.get('host') ?? ''}`) {
      return sendError(res, { code: ErrorCode.FORBIDDEN, message: 'Dev tokens are minted only for pages served by this hub' });
    }
    const parsed = parsePayload(DevTokenRequestSchema, req.body);
    if (!parsed.ok) return sendError(res, parsed.error);
    const { userId, deviceId, orgId, name, ttlSeconds } = parsed.value;
    const minted = await options.devTokens.mint({ userId, deviceId, orgId: orgId ?? 'dev-org', name, ttlSeconds: ttlSeconds ?? 3600 });
    const body: DevTokenResponse = minted;
    res.json(body);
  });

  /** An operator endpoint: the admin token, then the body's schema; the action's answer as JSON (204 when none). */
  const adminRoute = <S extends z.ZodType>(path: string, schema: S, action: (admin: NonNullable<HttpAppOptions['admin']>, input: z.output<S>) => Promise<unknown>) =>
    app.post(path, async (req, res, next) => {
      if (!options.admin || !isAdmin(req, options.adminToken)) {
        return sendError(res, { code: ErrorCode.AUTH_REQUIRED, message: 'Operator endpoint: send Authorization: Bearer <ADMIN_TOKEN>' });
      }
      const parsed = parsePayload(schema, req.body);
      if (!parsed.ok) return sendError(res, parsed.error);
      try {
        const answer = await action(options.admin, parsed.value);
        if (answer === undefined) res.status(204).end();
        else res.json(answer);
      } catch (err) {
        next(err);
      }
    });
  adminRoute(RestPath.ADMIN_REVOKE_TOKEN, AdminTokenRevokeRequestSchema, (admin, input) => admin.revokeToken(input));
  adminRoute(RestPath.ADMIN_RESTORE_DEVICE, AdminDeviceRestoreRequestSchema, (admin, input) => admin.restoreDevice(input));

  if (options.widgetBundlePath) app.use(widgetRouter({ bundlePath: options.widgetBundlePath, demo: options.devTokens !== undefined }));

  app.use((_req, res) => sendError(res, { code: ErrorCode.NOT_FOUND, message: 'No such endpoint' }));

  // express recognises error handlers by arity: all four parameters must stay.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return sendError(res, { code: ErrorCode.PAYLOAD_TOO_LARGE, message: 'Request body too large' });
    if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      return sendError(res, { code: ErrorCode.UNSUPPORTED_MEDIA_TYPE, message: 'Unsupported Content-Encoding or charset: send UTF-8 JSON, uncompressed or gzip, deflate, br' });
    }
    if (type === 'entity.parse.failed' || (err as { status?: number }).status === 400) {
      // Includes a compressed body that does not decompress.
      return sendError(res, { code: ErrorCode.INVALID_PAYLOAD, message: 'Request body is not valid JSON' });
    }
    if (err instanceof HubError) return sendError(res, toWireError(err));
    options.logger.error({ err }, 'unhandled HTTP error');
    return sendError(res, { code: ErrorCode.INTERNAL, message: 'Internal error' });
  });

  return app;
}

/**
 * Security headers on every response (helmet): nosniff, a deny-all CSP with `frame-ancestors 'none'` for
 * the API (the widget and demo routes set their own), no referrer, and HSTS only on requests that came
 * over TLS (directly or through a trusted proxy), so a plain-HTTP dev hub never pins itself to HTTPS.
 * `Cross-Origin-Resource-Policy: cross-origin`: hospital pages load the widget bundle from the hub.
 */
function securityHeaders(): express.RequestHandler {
  const headers = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'cross-origin' },
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'no-referrer' },
  });
  const hsts = helmet.strictTransportSecurity({ maxAge: 31_536_000, includeSubDomains: true });
  return (req, res, next) =>
    headers(req, res, (err?: unknown) => {
      if (err || !req.secure) return next(err);
      hsts(req, res, next);
    });
}

function isAdmin(req: Request, adminToken: string | undefined): boolean {
  if (!adminToken) return false;
  const presented = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
  const a = Buffer.from(presented);
  const b = Buffer.from(adminToken);
  return a.length === b.length && timingSafeEqual(a, b);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}
