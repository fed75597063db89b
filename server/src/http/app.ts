import express, { type NextFunction, type Request, type Response } from 'express';
import {
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
  if (options.origins) app.use(options.origins.middleware());
  app.use(express.json({ limit: '16kb' }));

  app.get(RestPath.HEALTH, (_req, res) => {
    const body: HealthResponse = { status: 'ok', node: options.nodeId, mode: options.mode };
    res.json(body);
  });

  app.get(RestPath.READY, async (_req, res) => {
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
    const body: ReadyResponse = { status: ready ? 'ready' : 'not_ready', checks };
    res.status(ready ? 200 : 503).json(body);
  });

  app.post(RestPath.DEV_TOKEN, (req, res) => {
    if (!options.devTokens) {
      return sendError(res, { code: ErrorCode.DISABLED, message: 'Dev tokens exist only in dev mode (no MONGODB_URI and no REDIS_URL)' });
    }
    const parsed = parsePayload(DevTokenRequestSchema, req.body);
    if (!parsed.ok) return sendError(res, parsed.error);
    const { userId, deviceId, orgId, name, ttlSeconds } = parsed.value;
    const minted = options.devTokens.mint({ userId, deviceId, orgId: orgId ?? 'dev-org', name, ttlSeconds: ttlSeconds ?? 3600 });
    const body: DevTokenResponse = minted;
    res.json(body);
  });

  if (options.widgetBundlePath) app.use(widgetRouter({ bundlePath: options.widgetBundlePath, demo: options.devTokens !== undefined }));

  app.use((_req, res) => sendError(res, { code: ErrorCode.NOT_FOUND, message: 'No such endpoint' }));

  // express recognises error handlers by arity: all four parameters must stay.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return sendError(res, { code: ErrorCode.PAYLOAD_TOO_LARGE, message: 'Request body too large' });
    if (type === 'entity.parse.failed' || type === 'encoding.unsupported' || type === 'charset.unsupported') {
      return sendError(res, { code: ErrorCode.INVALID_PAYLOAD, message: 'Request body is not valid JSON' });
    }
    options.logger.error({ err }, 'unhandled HTTP error');
    return sendError(res, { code: ErrorCode.INTERNAL, message: 'Internal error' });
  });

  return app;
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
