/**
 * Issue #18, configuration errors: every misconfiguration is one line on stderr naming the setting
 * (`config error: SETTING: reason`), then exit code 78 (EX_CONFIG), within seconds. Each case starts
 * the real entry point (`server/dist/main.js`) as a child process.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bareEnv } from '../support/main-process.js';
import { serviceUrls } from '../support/services.js';

const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'dist', 'main.js');
/** The issue's bound: a misconfigured hub says so within 10 s. */
const EXIT_WITHIN_MS = 10_000;

const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ecPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** A production environment against the test run's real Redis and database, with `extra` on top. */
function production(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { mongoUri, redisUrl } = serviceUrls();
  return bareEnv({
    MONGODB_URI: mongoUri,
    MONGODB_DB: 'curbside_config_errors',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: 'config-errors-test:',
    JWT_PUBLIC_KEY: rsaPem,
    JWT_ISSUER: 'https://idp.hospital.example',
    JWT_AUDIENCE: 'curbside',
    LOG_LEVEL: 'info',
    ...extra,
  });
}

/** Run the hub until it exits; fail if it is still running after EXIT_WITHIN_MS. */
function run(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainJs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the hub was still running after ${EXIT_WITHIN_MS} ms; stderr: ${stderr} stdout: ${stdout}`));
    }, EXIT_WITHIN_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

/** Exit 78 and stderr made of exactly `settings.length` lines, the i-th naming settings[i]. */
async function expectConfigError(env: NodeJS.ProcessEnv, settings: string[], reason?: RegExp): Promise<string[]> {
  const { code, stderr, stdout } = await run(env);
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(code, `exit code; stderr: ${stderr}`).to.equal(78);
  expect(lines.map((l) => /^config error: ([A-Z_]+): \S/.exec(l)?.[1]), stderr).to.deep.equal(settings);
  expect(stdout, 'nothing on stdout (no banner, no log)').to.equal('');
  if (reason) expect(lines.join('\n')).to.match(reason);
  return lines;
}

describe('regression: a misconfiguration is one line naming the setting, then exit 78 (issue #18)', function () {
  this.timeout(EXIT_WITHIN_MS + 5_000);

  it('a malformed MONGODB_URI', async () => {
    await expectConfigError(production({ MONGODB_URI: 'mongodb://db1:notaport/curbside' }), ['MONGODB_URI'], /not a valid connection string/);
  });

  it('an unreachable database names the host tried', async () => {
    await expectConfigError(production({ MONGODB_URI: 'mongodb://127.0.0.1:1/curbside', CONNECT_TIMEOUT_MS: '2000' }), ['MONGODB_URI'], /127\.0\.0\.1:1/);
  });

  it('a database host that never answers (no refusal either) within CONNECT_TIMEOUT_MS', async () => {
    // 192.0.2.0/24 is TEST-NET-1: documentation only, never routed; connecting hangs until the timeout.
    await expectConfigError(production({ MONGODB_URI: 'mongodb://192.0.2.1:27017/curbside', CONNECT_TIMEOUT_MS: '1000' }), ['MONGODB_URI'], /192\.0\.2\.1:27017 within 1000 ms/);
  });

  it('an unreachable Redis names the host tried', async () => {
    await expectConfigError(production({ REDIS_URL: 'redis://127.0.0.1:1', CONNECT_TIMEOUT_MS: '2000' }), ['REDIS_URL'], /127\.0\.0\.1:1/);
  });

  it('a key that does not match JWT_ALGORITHM (an EC key for RS256, an RSA key for ES256)', async () => {
    await expectConfigError(production({ JWT_PUBLIC_KEY: ecPem }), ['JWT_PUBLIC_KEY'], /ec key, but JWT_ALGORITHM=RS256 needs an RSA key/);
    await expectConfigError(production({ JWT_ALGORITHM: 'ES256' }), ['JWT_PUBLIC_KEY'], /rsa key, but JWT_ALGORITHM=ES256 needs an EC key/);
  });

  it('missing required settings in production mode: one line each', async () => {
    await expectConfigError(production({ JWT_PUBLIC_KEY: '', JWT_ISSUER: '', JWT_AUDIENCE: '' }), ['JWT_PUBLIC_KEY', 'JWT_ISSUER', 'JWT_AUDIENCE'], /required outside dev mode/);
    await expectConfigError(production({ REDIS_URL: '' }), ['REDIS_URL'], /is not set/);
  });

  it('a port already in use', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expectConfigError(bareEnv({ PORT: String(port), HOST: '127.0.0.1' }), ['PORT'], /already in use \(EADDRINUSE\)/);
    } finally {
      taken.close();
    }
  });
});
