/**
 * deploy/ without a Docker engine: docker-compose.yml's hub environment is one the hub's own config loader
 * accepts, the Dockerfile's final stage is non-root with a health check, and its start command, run as a
 * plain process from the built workspace with the compose environment (pointed at the test Redis and
 * database), becomes healthy, serves a clinician and stops cleanly on SIGTERM.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CurbsideClient } from '@curbside/client-sdk';
import { ConfigError, ENV_DOC, loadConfig } from '@curbside/server';
import { ReadyResponseSchema } from '@curbside/shared';
import { TestIdp } from '../support/hub.js';
import { freePort, serviceUrls, uniqueName } from '../support/services.js';
import {
  composeVariables,
  deployDir,
  execForm,
  hubServices,
  lastOf,
  readCompose,
  readDockerfile,
  readEnvFile,
  repoRoot,
  serviceEnvironment,
  stageEnv,
  type ComposeFile,
} from './deploy-files.js';

const SECRETS_DIR = '/run/secrets/';

/** .env.example with its empty secrets filled the way the operator is told to (`openssl rand -hex 32`). */
function exampleVars(): Record<string, string> {
  const vars = readEnvFile();
  for (const [k, v] of Object.entries(vars)) if (v === '') vars[k] = randomBytes(32).toString('hex');
  return vars;
}

/**
 * Compose mounts each secret a service names at /run/secrets/<name>; outside a container the same value
 * points at a local file holding the secret's content.
 */
function mountSecrets(env: Record<string, string>, files: Record<string, string>): Record<string, string> {
  const out = { ...env };
  for (const [k, v] of Object.entries(out)) {
    if (!v.startsWith(SECRETS_DIR)) continue;
    const local = files[v.slice(SECRETS_DIR.length)];
    if (!local) throw new Error(`${k}=${v}: no local file for this secret`);
    out[k] = local;
  }
  return out;
}

const knownSettings = new Set(ENV_DOC.flatMap(({ name }) => name.split(' / ')));

describe('deploy/docker-compose.yml', () => {
  const { text, file } = readCompose();
  const hubs = hubServices(file);
  let scratch: string;
  let idp: TestIdp;
  let secretFiles: Record<string, string>;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'curbside-deploy-'));
    idp = new TestIdp();
    writeFileSync(join(scratch, 'jwt-public-key.pem'), idp.publicKeyPem);
    secretFiles = { jwt_public_key: join(scratch, 'jwt-public-key.pem') };
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs two hub nodes from deploy/Dockerfile, and every variable it uses is in deploy/.env.example', () => {
    expect(hubs.map(([name]) => name)).to.have.length(2);
    const example = readEnvFile();
    const missing = [...composeVariables(text)].filter((v) => !(v in example));
    expect(missing, 'variables docker-compose.yml uses that .env.example does not list').to.deep.equal([]);
    expect(Object.keys(file.secrets ?? {})).to.include('jwt_public_key');
  });

  it("gives each hub only settings the hub knows, and the hub's config loader accepts them (FerretDB and MongoDB profiles)", () => {
    const vars = exampleVars();
    const nodeIds = new Set<string>();
    for (const mongoUri of [vars.MONGODB_URI!, 'mongodb://mongo:27017/curbside?replicaSet=rs0']) {
      for (const [name, service] of hubs) {
        const env = serviceEnvironment(service, { ...vars, MONGODB_URI: mongoUri });
        const unknown = Object.keys(env).filter((k) => !knownSettings.has(k));
        expect(unknown, `${name}: settings the hub does not read (README "Configuration")`).to.deep.equal([]);
        for (const secret of service.secrets ?? []) expect(file.secrets, `${name} uses secret ${secret}`).to.have.property(secret);

        let config;
        try {
          config = loadConfig(mountSecrets(env, secretFiles));
        } catch (e) {
          throw e instanceof ConfigError ? new Error(`${name}: ${e.message}`) : e;
        }
        expect(config.mode, name).to.equal('production');
        expect(config.jwt?.publicKey, `${name} reads the identity provider's key from its secret`).to.equal(idp.publicKeyPem);
        expect(config.auditClientIp?.mode).to.equal('hash');
        expect(config.security?.corsOrigins).to.deep.equal([vars.CORS_ORIGINS]);
        nodeIds.add(config.nodeId);

        // The hosts the hub is pointed at are services of this file, on a network the hub is on.
        const host = (url: string) => new URL(url).hostname;
        for (const target of [host(config.redis!.url), host(config.mongo!.uri)]) {
          expect(file.services, `${name} connects to ${target}`).to.have.property(target);
          const shared = networksOf(file, target).filter((n) => networksOf(file, name).includes(n));
          expect(shared, `${name} and ${target} share a network`).to.not.be.empty;
        }
      }
    }
    expect([...nodeIds].sort(), 'a stable, distinct NODE_ID per node (docs/security.md)').to.deep.equal(hubs.map(([n]) => n).sort());
  });

  it('puts Caddy, at the one address TRUST_PROXY names, in front of the hubs; the databases are on an internal network', () => {
    const proxy = file.services.proxy!;
    const edge = (proxy.networks as Record<string, { ipv4_address?: string }>).edge!;
    for (const [name, service] of hubs) {
      const config = loadConfig(mountSecrets(serviceEnvironment(service, exampleVars()), secretFiles));
      expect(config.trustProxy, `${name} trusts the proxy alone`).to.equal(edge.ipv4_address);
      expect(service.ports, `${name} publishes no port: clients come through the proxy`).to.equal(undefined);
    }
    const caddyfile = readFileSync(join(deployDir, 'Caddyfile'), 'utf8');
    const upstreams = /reverse_proxy\s+([^{\n]+)\{/.exec(caddyfile)![1]!.trim().split(/\s+/);
    expect(upstreams.sort()).to.deep.equal(hubs.map(([n]) => `${n}:3000`).sort());
    expect(caddyfile).to.match(/lb_policy cookie/);
    expect(caddyfile).to.match(/health_uri \/readyz/);
    expect(file.networks?.data?.internal, 'Redis and the databases are not reachable from outside').to.equal(true);
    for (const name of ['redis', 'postgres', 'ferretdb', 'mongo']) expect(networksOf(file, name), name).to.deep.equal(['data']);
  });

  it('pins every image to a version', () => {
    for (const [name, service] of Object.entries(file.services)) {
      expect(service.image, name).to.match(/:[0-9][^:]*$/);
    }
    for (const stage of readDockerfile()) expect(stage.image).to.satisfy((img: string) => img.startsWith('${NODE_IMAGE}') || /:[0-9]/.test(img));
    expect(readFileSync(join(deployDir, 'Dockerfile'), 'utf8')).to.match(/ARG NODE_IMAGE=node:\d+\.\d+\.\d+-/);
  });
});

describe('deploy/Dockerfile', () => {
  const stages = readDockerfile();
  const final = stages.at(-1)!;
  const build = stages.find((s) => s.name === 'build')!;

  it('ends in a stage that runs as a non-root user, with a health check and exec-form CMD, holding files the build makes', () => {
    expect(stages.length, 'multi-stage').to.be.greaterThan(1);
    const user = lastOf(final, 'USER')?.args;
    expect(user, 'final stage sets USER').to.be.a('string');
    expect(['root', '0', '0:0']).to.not.include(user);
    expect(lastOf(final, 'HEALTHCHECK')?.args).to.match(/CMD \[/);
    expect(execForm(lastOf(final, 'CMD')!.args)[0]).to.equal('node');
    expect(lastOf(final, 'ENTRYPOINT'), 'no ENTRYPOINT: CMD is the command').to.equal(undefined);
    // What the final stage copies out of the build stage is what `npm run build` makes in this workspace.
    const buildDir = lastOf(build, 'WORKDIR')!.args;
    for (const copy of final.instructions.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=build '))) {
      const source = copy.args.split(/\s+/)[1]!;
      expect(source.startsWith(`${buildDir}/`), source).to.equal(true);
      expect(existsSync(join(repoRoot, source.slice(buildDir.length + 1))), `${source} exists after npm run build`).to.equal(true);
    }
  });

  it("runs its CMD as a plain process with hub1's compose environment: it becomes healthy, serves a clinician and stops with 0 on SIGTERM", async function () {
    this.timeout(60_000);
    const { redisUrl, mongoUri } = serviceUrls();
    const idp = new TestIdp();
    const scratch = mkdtempSync(join(tmpdir(), 'curbside-deploy-'));
    const keyFile = join(scratch, 'jwt-public-key.pem');
    writeFileSync(keyFile, idp.publicKeyPem);
    const { file } = readCompose();
    const [, hub1] = hubServices(file)[0]!;
    const port = await freePort();
    // The container's environment: the image's ENV, then the service's; the network addresses become
    // this machine's services and a free loopback port.
    const env: Record<string, string> = {
      ...stageEnv(final),
      ...mountSecrets(serviceEnvironment(hub1, exampleVars()), { jwt_public_key: keyFile }),
      MONGODB_URI: mongoUri,
      MONGODB_DB: uniqueName('deploy'),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: `${uniqueName('deploy')}:`,
      PORT: String(port),
      HOST: '127.0.0.1',
    };
    const [cmd, ...args] = execForm(lastOf(final, 'CMD')!.args);
    const [hcCmd, ...hcArgs] = execForm(lastOf(final, 'HEALTHCHECK')!.args.replace(/^.*?CMD\s+/, ''));
    expect([cmd, hcCmd]).to.deep.equal(['node', 'node']);
    const healthcheck = () => spawnSync(process.execPath, hcArgs, { cwd: repoRoot, env, encoding: 'utf8', timeout: 10_000 });

    expect(healthcheck().status, 'the health check fails while nothing listens').to.equal(1);
    const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Docker's HEALTHCHECK: the command is retried until it passes (start period 20 s).
      const deadline = Date.now() + 20_000;
      let last = healthcheck();
      while (last.status !== 0 && child.exitCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        last = healthcheck();
      }
      expect(last.status, `health check: ${last.stderr}\nhub output:\n${output}`).to.equal(0);

      const url = `http://127.0.0.1:${port}`;
      const ready = await fetch(`${url}/readyz`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } });
      const body = ReadyResponseSchema.parse(await ready.json());
      expect(ready.status, JSON.stringify(body)).to.equal(200);
      expect(Object.keys(body.checks ?? {}).length, 'checks shown to the admin token from .env').to.be.greaterThan(0);

      const token = idp.mint({ userId: 'dr-lee', deviceId: 'phone' }, { issuer: env.JWT_ISSUER!, audience: env.JWT_AUDIENCE! });
      const lee = new CurbsideClient({ url, token, transports: ['websocket'] });
      try {
        await lee.connect();
        expect(lee.linkState).to.equal('linked');
      } finally {
        await lee.close();
      }
    } finally {
      child.kill('SIGTERM');
      const code = await exited;
      rmSync(scratch, { recursive: true, force: true });
      expect(code, `SIGTERM exits 0; output:\n${output}`).to.equal(0);
    }
  });
});

describe('deploy/curbside-hub.service', () => {
  it('is a unit systemd accepts, and starts what the image starts', () => {
    const unitPath = join(deployDir, 'curbside-hub.service');
    const unit = readFileSync(unitPath, 'utf8');
    const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
    if (verify.error) throw new Error('This test needs systemd-analyze: install systemd (Debian/Ubuntu: `apt-get install -y systemd`).');
    // A missing User= or binary on this machine is not the unit's fault; anything else is.
    const problems = verify.stderr.split('\n').filter((l) => l.trim() && !/does not exist|not found|Failed to resolve user/i.test(l));
    expect(problems, verify.stderr).to.deep.equal([]);

    const execStart = /^ExecStart=(.+)$/m.exec(unit)![1]!.split(/\s+/);
    const cmd = execForm(lastOf(readDockerfile().at(-1)!, 'CMD')!.args);
    expect(execStart.slice(1), 'ExecStart runs the same entry point as the image').to.deep.equal(cmd.slice(1));
    expect(execStart[0]).to.match(/\/node$/);
    expect(unit).to.match(/^RestartPreventExitStatus=78$/m);
    expect(unit).to.match(/^User=(?!root)\S+$/m);
    // Docker's exit and restart rules agree: 69 (storage watchdog) restarts, 78 (configuration) does not.
    expect(unit).to.match(/^Restart=on-failure$/m);
  });
});

function networksOf(file: ComposeFile, service: string): string[] {
  const n = file.services[service]?.networks;
  if (!n) return ['default'];
  return Array.isArray(n) ? n : Object.keys(n);
}
