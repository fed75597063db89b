#!/usr/bin/env node
import { ConfigError, DANGEROUS_DEV_EXPOSURE, isLoopbackHost, loadConfig, type HubConfig } from './config.js';
import { createHubFromConfig, type Hub } from './hub.js';
import { checkDependencies } from './startup.js';

/** A misconfiguration: one line per problem, naming the setting, then EX_CONFIG. */
function exitConfig(e: ConfigError): never {
  process.stderr.write(`${e.lines().join('\n')}\n`);
  process.exit(78); // EX_CONFIG
}

let config: HubConfig;
try {
  config = loadConfig();
  await checkDependencies(config);
} catch (e) {
  if (e instanceof ConfigError) exitConfig(e);
  throw e;
}

// EX_UNAVAILABLE: the watchdog gave up on the database; the supervisor starts a fresh process.
const hub: Hub = createHubFromConfig(config, {
  onFatal: (reason) => {
    hub.logger.fatal({ reason }, 'hub node gave up; exiting for a restart');
    process.exit(69);
  },
});
let url: string;
try {
  ({ url } = await hub.listen());
} catch (e) {
  const code = (e as { code?: unknown }).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    const setting = code === 'EADDRNOTAVAIL' ? 'HOST' : 'PORT';
    const why = code === 'EADDRINUSE' ? 'is already in use' : code === 'EACCES' ? 'needs privileges this process lacks' : 'is not an address of this machine';
    exitConfig(new ConfigError([{ setting, reason: `${config.host}:${config.port} ${why} (${code})` }]));
  }
  throw e;
}
if (config.mode === 'dev') {
  // Dev tokens are on only when no identity provider key is configured (see createHubFromConfig).
  const devTokens = config.jwt === undefined;
  const exposed = !isLoopbackHost(config.host);
  const banner = [
    '',
    '  Curbside hub — DEV MODE',
    '  Memory storage and presence: nothing is kept, restart loses every message.',
    `  Listening on ${url}  (health: ${url}/healthz)`,
    ...(devTokens
      ? [
          `  Chat widget demo (two clinicians side by side): ${url}/demo`,
          `  Mint a token:  curl -s -X POST ${url}/dev/token -H 'content-type: application/json' -d '{"userId":"dr-lee","deviceId":"laptop"}'`,
        ]
      : ['  Dev tokens are OFF: JWT_PUBLIC_KEY is set, so tokens come from your identity provider (no /dev/token, no /demo).']),
    ...(exposed && devTokens ? [`  WARNING: listening on ${config.host} with dev tokens on (${DANGEROUS_DEV_EXPOSURE}): anyone who reaches this port can mint a token for any clinician.`] : []),
    '  For production set MONGODB_URI, REDIS_URL and JWT_* (README.md, "Configuration").',
    '',
  ].join('\n');
  process.stdout.write(`${banner}\n`);
  hub.logger.warn({ mode: 'dev', devTokens, host: config.host }, `dev mode: memory adapters, nothing persisted, dev tokens ${devTokens ? 'enabled' : 'off'}`);
} else {
  hub.logger.info({ url }, 'hub listening'); // the node's name is on every line already
}

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    hub.logger.info({ signal }, 'shutting down');
    hub.close().then(
      () => process.exit(0),
      (err: unknown) => {
        hub.logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  });
}
