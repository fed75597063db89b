/**
 * Serves the `<curbside-chat>` bundle (built by `npm run build` into widget/dist/) as a static file,
 * with the libsodium module it loads on demand next to it, and in dev mode a demo page with two
 * clinicians side by side. The hub never imports widget or SDK code: it reads files from disk.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type Response } from 'express';
import { ErrorCode, HTTP_STATUS_BY_CODE } from '@curbside/shared';

export const WIDGET_PATH = '/widget/curbside-chat.js';
/** libsodium as an ES module, which the widget imports from next to its own URL when it first needs it. */
export const WIDGET_SODIUM_PATH = '/widget/curbside-sodium.js';
const WIDGET_SODIUM_FILE = 'curbside-sodium.js';
export const DEMO_PATH = '/demo';

/** widget/dist/curbside-chat.js in this repository (server/dist/http/ and server/src/http/ are both three levels down). */
export function defaultWidgetBundlePath(): string {
  return fileURLToPath(new URL('../../../widget/dist/curbside-chat.js', import.meta.url));
}

interface Cached {
  mtimeMs: number;
  size: number;
  body: Buffer;
  etag: string;
}

/** A Content-Security-Policy for the hub's own pages: scripts from the hub only (plus WebAssembly for libsodium). */
const DEMO_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** A file read from disk again only when its size or modification time changed. */
function cachedFile(path: string): () => Promise<Cached | undefined> {
  let cached: Cached | undefined;
  return async () => {
    let info;
    try {
      info = await stat(path);
    } catch {
      return undefined;
    }
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached;
    const body = await readFile(path);
    cached = { mtimeMs: info.mtimeMs, size: info.size, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    return cached;
  };
}

export function widgetRouter(options: { bundlePath: string; demo: boolean }): Router {
  const router = Router();
  serveScript(router, WIDGET_PATH, cachedFile(options.bundlePath), false);
  // A module script from another origin (the host page's) is fetched with CORS: it needs the header.
  serveScript(router, WIDGET_SODIUM_PATH, cachedFile(join(dirname(options.bundlePath), WIDGET_SODIUM_FILE)), true);

  if (options.demo) {
    router.get(DEMO_PATH, (_req, res) => page(res, 'text/html; charset=utf-8', DEMO_HTML));
    router.get(`${DEMO_PATH}/demo.js`, (_req, res) => page(res, 'text/javascript; charset=utf-8', DEMO_JS));
  }
  return router;
}

function serveScript(router: Router, path: string, load: () => Promise<Cached | undefined>, module: boolean): void {
  router.get(path, async (req, res, next) => {
    try {
      const file = await load();
      if (!file) {
        res.status(HTTP_STATUS_BY_CODE[ErrorCode.UNAVAILABLE]).setHeader('cache-control', 'no-store');
        res.json({ error: { code: ErrorCode.UNAVAILABLE, message: 'The chat widget has not been built on this hub: run `npm run build` (or set WIDGET_BUNDLE to the built curbside-chat.js)' } });
        return;
      }
      res.setHeader('content-type', 'text/javascript; charset=utf-8');
      // Short cache plus revalidation: a hub upgrade reaches every open EHR page within minutes.
      res.setHeader('cache-control', 'public, max-age=300, must-revalidate');
      res.setHeader('etag', file.etag);
      res.setHeader('x-content-type-options', 'nosniff');
      // Host pages on other origins load it with a plain <script> tag.
      res.setHeader('cross-origin-resource-policy', 'cross-origin');
      // A public file without credentials: any host page may import it.
      if (module) res.setHeader('access-control-allow-origin', '*');
      if (req.headers['if-none-match'] === file.etag) {
        res.status(304).end();
        return;
      }
      res.status(200).end(file.body);
    } catch (err) {
      next(err);
    }
  });
}

function page(res: Response, type: string, body: string): void {
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-security-policy', DEMO_CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.status(200).end(body);
}

const DEMO_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Curbside widget demo (dev mode)</title>
<style>
  body { margin: 0; padding: 1rem; font-family: system-ui, sans-serif; background: #eef1f5; color: #1b1f24; }
  h1 { font-size: 1.2rem; margin: 0 0 0.25rem; }
  p { margin: 0 0 1rem; color: #454d57; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
  section h2 { font-size: 1rem; margin: 0 0 0.4rem; }
  curbside-chat { height: 560px; }
  #patel curbside-chat { --curbside-accent: #6a1b9a; }
</style>
<script src="${WIDGET_PATH}" defer></script>
<script src="${DEMO_PATH}/demo.js" defer></script>
</head>
<body>
<h1>Curbside chat widget — dev-mode demo</h1>
<p>Two clinicians side by side, each with their own device keys in this browser's IndexedDB and a token from <code>POST /dev/token</code>.
Start a conversation with <code>dr-patel</code> from the left, or a care team with <code>dr-patel, rn-ortiz</code>.</p>
<main>
  <section id="lee" aria-labelledby="lee-h"><h2 id="lee-h">dr-lee (laptop)</h2><curbside-chat store="demo-dr-lee" label="Curbside chat for dr-lee" data-user="dr-lee" data-name="Daniel Lee" data-role="Emergency physician" data-department="Emergency" data-device="demo-laptop"></curbside-chat></section>
  <section id="patel" aria-labelledby="patel-h"><h2 id="patel-h">dr-patel (workstation)</h2><curbside-chat store="demo-dr-patel" label="Curbside chat for dr-patel" data-user="dr-patel" data-name="Anita Patel" data-role="Cardiology registrar" data-department="Cardiology" data-device="demo-workstation"></curbside-chat></section>
</main>
</body>
</html>
`;

const DEMO_JS = `// Each widget asks the hub's dev token endpoint for its clinician's token (again on every reconnect).
// Device ids get a suffix kept in this browser: a device id belongs to one set of keys, and another
// browser (with keys of its own) opening the demo is another device.
let suffix = localStorage.getItem('curbside-demo-device');
if (!suffix) {
  suffix = crypto.randomUUID().slice(0, 8);
  localStorage.setItem('curbside-demo-device', suffix);
}
for (const el of document.querySelectorAll('curbside-chat')) {
  const deviceId = el.dataset.device + '-' + suffix;
  el.getToken = async () => {
    const res = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: el.dataset.user, deviceId, name: el.dataset.name, role: el.dataset.role, department: el.dataset.department }),
    });
    if (!res.ok) throw new Error('dev token endpoint answered ' + res.status);
    return (await res.json()).token;
  };
}
`;
