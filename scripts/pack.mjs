// Pack the packages an app installs: @curbside/client-sdk and @curbside/widget, as tarballs that install
// anywhere (an empty project, an offline mirror) without any other @curbside package.
//
//   npm run pack                     # build, then write the tarballs to results/tmp/packages/
//   node scripts/pack.mjs --out DIR  # after `npm run build`; prints one JSON line per tarball
//
// The SDK carries the wire contract it was built against: shared/dist goes inside it (dist/contract/) and
// its imports of `@curbside/shared` become relative paths, in the JavaScript and in the type declarations;
// shared's own dependencies become the SDK's. So the tarball names no @curbside dependency at all: nothing
// for npm to fetch from a public registry under a scope we do not own (docs/operations.md, "Installing the
// SDK"), and no second version of the contract that could drift from the one the SDK was compiled with.
// The widget bundle is self-contained already (SDK and socket.io client inside, and libsodium in
// curbside-sodium.js next to it, which the bundle loads when it starts); its tarball ships both files and
// the type declarations of the element.
//
// Plain `npm pack` in a package directory is refused (its prepack script): that tarball would name the
// unpublished @curbside/shared.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const outDir = resolve(outIndex >= 0 ? args[outIndex + 1] : join(root, 'results', 'tmp', 'packages'));

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
/** Import specifiers in emitted JavaScript and declarations: `from '…'`, `import '…'`, `import('…')`. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"']+)\2/g;

function fail(message) {
  process.stderr.write(`pack: ${message}\n`);
  process.exit(1);
}

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Copy the .js and .d.ts files of a tsc output directory (no maps: they point at sources we do not ship). */
function copyEmitted(from, to) {
  for (const file of filesUnder(from)) {
    if (!file.endsWith('.js') && !file.endsWith('.d.ts')) continue;
    const target = join(to, relative(from, file));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}

/** The published manifest: the workspace one without its scripts and dev dependencies. */
function manifestOf(pkgDir) {
  const { scripts: _scripts, devDependencies: _dev, ...manifest } = readJson(join(pkgDir, 'package.json'));
  return manifest;
}

/** Every import of another @curbside package left in a staged package is a dependency nobody can install. */
function assertSelfContained(stage) {
  const manifest = readJson(join(stage, 'package.json'));
  const named = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies }).filter((d) => d.startsWith('@curbside/'));
  if (named.length) fail(`${manifest.name} still depends on ${named.join(', ')}`);
  for (const file of filesUnder(stage).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const self = m[3] === manifest.name || m[3].startsWith(`${manifest.name}/`);
      if (m[3].startsWith('@curbside/') && !self) fail(`${relative(stage, file)} imports ${m[3]}`);
    }
  }
}

function npmPack(stage) {
  mkdirSync(outDir, { recursive: true });
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], { cwd: stage, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  return { name: info.name, version: info.version, tarball: join(outDir, info.filename), integrity: info.integrity, files: info.entryCount };
}

function stageClientSdk(stage) {
  const sdk = join(root, 'client-sdk');
  const shared = join(root, 'shared');
  for (const dir of [join(sdk, 'dist'), join(shared, 'dist')]) if (!existsSync(join(dir, 'index.js'))) fail(`${relative(root, dir)} is missing: run npm run build first`);
  const dist = join(stage, 'dist');
  copyEmitted(join(sdk, 'dist'), dist);
  const contract = join(dist, 'contract');
  copyEmitted(join(shared, 'dist'), contract);
  for (const file of filesUnder(dist).filter((f) => !f.startsWith(`${contract}/`) && (f.endsWith('.js') || f.endsWith('.d.ts')))) {
    let to = relative(dirname(file), join(contract, 'index.js'));
    if (!to.startsWith('.')) to = `./${to}`;
    const text = readFileSync(file, 'utf8');
    const rewritten = text.replace(SPECIFIER, (whole, lead, quote, spec) => (spec === '@curbside/shared' ? `${lead}${quote}${to}${quote}` : whole));
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
  const manifest = manifestOf(sdk);
  const sharedDeps = readJson(join(shared, 'package.json')).dependencies ?? {};
  const deps = { ...manifest.dependencies };
  delete deps['@curbside/shared'];
  for (const [name, range] of Object.entries(sharedDeps)) {
    if (deps[name] !== undefined && deps[name] !== range) fail(`client-sdk wants ${name}@${deps[name]} and shared ${name}@${range}: align them`);
    deps[name] = range;
  }
  manifest.dependencies = Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  copyFileSync(join(sdk, 'README.md'), join(stage, 'README.md'));
}

/** The declarations reachable from the widget's entry point (the rest describe bundle internals). */
function stageWidget(stage) {
  const widget = join(root, 'widget');
  const bundle = join(widget, 'dist', 'curbside-chat.js');
  if (!existsSync(bundle)) fail('widget/dist/curbside-chat.js is missing: run npm run build first');
  mkdirSync(join(stage, 'dist', 'types'), { recursive: true });
  copyFileSync(bundle, join(stage, 'dist', 'curbside-chat.js'));
  const sodium = join(widget, 'dist', 'curbside-sodium.js');
  if (!existsSync(sodium)) fail('widget/dist/curbside-sodium.js is missing: run npm run build first');
  copyFileSync(sodium, join(stage, 'dist', 'curbside-sodium.js'));
  const types = join(widget, 'dist', 'types');
  const pending = ['index.d.ts'];
  const seen = new Set();
  while (pending.length) {
    const file = pending.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(types, file), 'utf8');
    copyFileSync(join(types, file), join(stage, 'dist', 'types', file));
    for (const m of text.matchAll(SPECIFIER)) if (m[3].startsWith('./')) pending.push(m[3].slice(2).replace(/\.js$/, '.d.ts'));
  }
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifestOf(widget), null, 2)}\n`);
  copyFileSync(join(widget, 'README.md'), join(stage, 'README.md'));
}

const packed = [];
for (const [name, stageFn] of [
  ['client-sdk', stageClientSdk],
  ['widget', stageWidget],
]) {
  const stage = mkdtempSync(join(tmpdir(), `curbside-pack-${name}-`));
  try {
    stageFn(stage);
    assertSelfContained(stage);
    packed.push(npmPack(stage));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
for (const p of packed) process.stdout.write(`${JSON.stringify(p)}\n`);
