import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import {
  DevTokenRequestSchema,
  ErrorCode,
  HTTP_STATUS_BY_CODE,
  RestPath,
  parsePayload,
  withTimeout,
  type DevTokenResponse,
  type HealthResponse,
  type ReadyResponse,
  type WireError,
} from '@curbside/shared';
import type { Logger } from '../logger.js';
import { HubError, toWireError } from '../errors.js';
import type { DevTokenIssuer } from '../auth/tokens.js';
import type { OriginPolicy } from '../security/origins.js';
import { DEMO_PATH, WIDGET_PATH, widgetRouter } from './widget.js';
import { adminRouter, isAdmin, type AdminRouterOptions } from './admin.js';
import { attachmentRouter, type AttachmentRouterOptions } from './attachments.js';
import { sealedPostRouter, type SealedPostRouterOptions } from './sealed-posts.js';

/** This package's version (server/package.json, two levels up from src/http and dist/http alike). */
const SERVER_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

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
  /** Operator actions behind `adminToken` (http/admin.ts). */
  admin?: Pick<AdminRouterOptions, 'administration' | 'security'> | undefined;
  /** The attachment endpoints (http/attachments.ts). */
  attachments?: Omit<AttachmentRouterOptions, 'logger' | 'isAccepting'> | undefined;
  /** Pseudonymous pool posts without an access token (http/sealed-posts.ts). */
  sealedPosts?: Omit<SealedPostRouterOptions, 'logger' | 'isAccepting'> | undefined;
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
  // Before the 16 kB parser: a sealed post names every device of a pool, so it parses its own larger body.
  if (options.sealedPosts) app.use(sealedPostRouter({ ...options.sealedPosts, logger: options.logger, isAccepting: options.isAccepting }));
  app.use(express.json({ limit: '16kb' }));

  if (options.metrics) {
    const metrics = options.metrics;
    app.get('/metrics', (req, res, next) => void metrics(req, res).catch(next));
  }

  // A person or a load balancer that opens the bare address gets a pointer, not a 404.
  app.get('/', (_req, res) => {
    const links: Record<string, string> = {
      health: RestPath.HEALTH,
      ready: RestPath.READY,
      widget: WIDGET_PATH,
      ...(options.devTokens ? { demo: DEMO_PATH } : {}),
    };
    const docs = 'README.md ("Configuration", "Administration") and docs/ in the Curbside source';
    const body = { name: 'Curbside hub', version: SERVER_VERSION, links, docs };
    res.format({
      'application/json': () => res.json(body),
      'text/html': () =>
        res.type('html').send(
          `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Curbside hub</title></head><body><h1>Curbside hub ${escapeHtml(SERVER_VERSION)}</h1><p>An end-to-end-encrypted messaging hub: clinicians reach it through apps and the chat widget, not this page.</p><ul>${Object.entries(
            links,
          )
            .map(([k, v]) => `<li><a href="${escapeHtml(v)}">${escapeHtml(k)}</a></li>`)
            .join('')}</ul><p>Documentation: ${escapeHtml(docs)}.</p></body></html>`,
        ),
      default: () => res.json(body),
    });
  });

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
          await withTimeout(r.check(), READY_CHECK_TIMEOUT_MS, () => new Error(`${r.name} did not answer within ${READY_CHECK_TIMEOUT_MS} ms`));
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
    const { userId, deviceId, orgId, name, role, department, ttlSeconds } = parsed.value;
    const minted = await options.devTokens.mint({ userId, deviceId, orgId: orgId ?? 'dev-org', name, role, department, ttlSeconds: ttlSeconds ?? 3600 });
    const body: DevTokenResponse = minted;
    res.json(body);
  });

  if (options.attachments) app.use(attachmentRouter({ ...options.attachments, logger: options.logger, isAccepting: options.isAccepting }));

  if (options.admin) app.use(adminRouter({ ...options.admin, adminToken: options.adminToken, logger: options.logger }));

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

