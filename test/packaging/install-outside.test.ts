/**
 * The SDK and the widget as a hospital's developers get them: `npm run pack`'s tarballs installed into an
 * empty project outside this repository (no workspace, no access to its node_modules), a strict
 * TypeScript project type-checked against them, and client-sdk/README.md's snippet compiled against the
 * installed SDK and run against a dev hub: it connects two clinicians, sends, reads, closes and exits.
 */
import { expect } from 'chai';
import { spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bareEnv, startMain } from '../support/main-process.js';
import { repoRoot } from '../deploy/deploy-files.js';

interface Packed {
  name: string;
  version: string;
  tarball: string;
  integrity: string;
}

/** The environment of a developer's shell: none of npm's own variables from a surrounding `npm test`. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(npm_|NODE_PATH$|NODE_OPTIONS$|CURBSIDE_)/i.test(k)) delete env[k];
  return env;
}

const run = (cmd: string, args: string[], cwd: string, timeout: number): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout, maxBuffer: 16 * 1024 * 1024 });

const README_HUB = "const hub = 'http://127.0.0.1:3000';";

/** The SDK README's opening snippet, the one a developer copies first. */
function readmeSnippet(): string {
  const readme = readFileSync(join(repoRoot, 'client-sdk', 'README.md'), 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('client-sdk/README.md has no ```ts snippet');
  return m[1]!;
}

/** A consumer's own code: the SDK's main and Node entries, and the widget's element type in a host page. */
const CONSUMER = `import { CurbsideClient, ErrorCode, isCurbsideError, type ChatMessage, type Envelope } from '@curbside/client-sdk';
import { FileDeviceStore } from '@curbside/client-sdk/node';
import type { CurbsideChatElement } from '@curbside/widget';

export function wire(page: Document, token: () => Promise<string>): CurbsideChatElement | null {
  const el = page.querySelector('curbside-chat'); // typed by the widget's HTMLElementTagNameMap entry
  if (el) el.getToken = token;
  return el;
}

export function describe(m: ChatMessage, e: Envelope): string {
  return \`\${m.senderUserId} in \${e.conversationId}: \${m.text}\`;
}

export function retryable(e: unknown): boolean {
  return isCurbsideError(e) && e.code === ErrorCode.NOT_CONNECTED;
}

console.log(JSON.stringify({ client: typeof CurbsideClient, fileStore: typeof FileDeviceStore.open, code: ErrorCode.NOT_CONNECTED }));
`;

describe('the SDK and the widget install outside this repository', function () {
  this.timeout(240_000);
  let work: string;
  let project: string;
  let packed: Packed[];
  let hub: ChildProcess | undefined;
  let hubUrl: string;
  let compiled: SpawnSyncReturns<string> | undefined;

  before(async function () {
    work = realpathSync(mkdtempSync(join(tmpdir(), 'curbside-consumer-')));
    expect(relative(repoRoot, work).startsWith('..'), 'the project is outside the repository').to.equal(true);
    const pack = run(process.execPath, [join(repoRoot, 'scripts', 'pack.mjs'), '--out', join(work, 'tarballs')], repoRoot, 120_000);
    expect(pack.status, `scripts/pack.mjs: ${pack.stderr}`).to.equal(0);
    packed = pack.stdout.trim().split('\n').map((l) => JSON.parse(l) as Packed);
    expect(packed.map((p) => p.name).sort()).to.deep.equal(['@curbside/client-sdk', '@curbside/widget']);

    project = join(work, 'app');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'hospital-app', private: true, type: 'module' }, null, 2));
    // Third-party dependencies come from the registry (the npm cache first); @types/node as a Node app has it.
    const typesNode = (JSON.parse(readFileSync(join(repoRoot, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;
    const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...packed.map((p) => p.tarball), `@types/node@${typesNode}`], project, 180_000);
    if (install.error || install.status !== 0) {
      throw new Error(`npm install of the tarballs failed (the npm registry must be reachable for libsodium-wrappers-sumo, socket.io-client, zod): ${install.error?.message ?? ''}\n${install.stderr}`);
    }
    const started = startMain(bareEnv());
    hub = started.child;
    hubUrl = await started.url;
  });

  after(() => {
    hub?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  /** One strict compile of the consumer's code and the README snippet, against the installed packages only. */
  function compile(): SpawnSyncReturns<string> {
    if (compiled) return compiled;
    const snippet = readmeSnippet();
    expect(snippet, 'the README snippet names its hub in one line').to.include(README_HUB);
    writeFileSync(join(project, 'src', 'readme.ts'), snippet.replace(README_HUB, `const hub = '${hubUrl}';`));
    writeFileSync(join(project, 'src', 'consumer.ts'), CONSUMER);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          lib: ['ES2023', 'DOM', 'DOM.Iterable'],
          types: ['node'],
          rootDir: 'src',
          outDir: 'out',
        },
        include: ['src'],
      }),
    );
    // The compiler is this repository's; what it resolves is the project's node_modules.
    compiled = run(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project, 120_000);
    return compiled;
  }

  it('their manifests name no @curbside dependency, so installing them fetches no other @curbside package', () => {
    for (const p of packed) {
      const manifest = JSON.parse(readFileSync(join(project, 'node_modules', ...p.name.split('/'), 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
      const deps = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies });
      expect(deps.filter((d) => d.startsWith('@curbside/')), p.name).to.deep.equal([]);
      expect(p.integrity, 'npm pack reports the sha512 a hospital pins').to.match(/^sha512-/);
    }
    expect(readdirSync(join(project, 'node_modules', '@curbside')).sort()).to.deep.equal(['client-sdk', 'widget']);
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { integrity?: string }> };
    for (const p of packed) expect(lock.packages[`node_modules/${p.name}`]?.integrity, `${p.name} pinned by integrity in the app's lockfile`).to.equal(p.integrity);
  });

  it('plain `npm pack` of a workspace package is refused: its tarball would name the unpublished @curbside/shared', () => {
    for (const pkg of ['client-sdk', 'widget']) {
      const r = run('npm', ['pack', '--dry-run', '--workspace', pkg], repoRoot, 60_000);
      expect(r.status, pkg).to.not.equal(0);
      expect(r.stderr, pkg).to.include('npm run pack');
    }
  });

  it('a strict TypeScript project type-checks against them: the SDK, its Node entry and the widget element', () => {
    const result = compile();
    expect(result.status, `tsc:\n${result.stdout}${result.stderr}`).to.equal(0);
    const out = run(process.execPath, ['out/consumer.js'], project, 30_000);
    expect(out.status, out.stderr).to.equal(0);
    expect(JSON.parse(out.stdout)).to.deep.equal({ client: 'function', fileStore: 'function', code: 'NOT_CONNECTED' });
  });

  it("client-sdk/README.md's snippet, compiled against the installed SDK, runs against a dev hub and exits by itself", () => {
    const result = compile();
    expect(result.status, `tsc:\n${result.stdout}${result.stderr}`).to.equal(0);
    // No process.exit in the snippet: it ends only if close() leaves nothing running.
    const snippet = run(process.execPath, ['out/readme.js'], project, 60_000);
    expect(snippet.error, 'the snippet did not exit within 60 s (a client left open?)').to.equal(undefined);
    expect(snippet.status, `${snippet.stdout}\n${snippet.stderr}`).to.equal(0);
    expect(snippet.stdout).to.match(/^stored as seq \d+$/m);
    expect(snippet.stdout).to.include('dr-lee: Troponin 0.42 at 14:05, can you take a look?');
    expect(snippet.stdout, 'the 60-digit safety number').to.match(/^\d{60}$/m);
  });
});
