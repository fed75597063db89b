// Bundle <curbside-chat> for a one-<script>-tag embed, in two files:
// - widget/dist/curbside-chat.js: an IIFE with the element, the SDK and the socket.io client;
// - widget/dist/curbside-sodium.js: libsodium (WebAssembly inside) as an ES module, which the element
//   imports from next to its own URL when it starts (src/lazy-sodium.ts stands in for the package).
// Prints both files' sizes, raw and gzipped. Run after `tsc -b` (it bundles @curbside/client-sdk from its dist/).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const common = { bundle: true, platform: 'browser', target: 'es2022', minify: true, legalComments: 'eof', sourcemap: false, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: [join(root, 'src', 'index.ts')],
  outfile: join(dist, 'curbside-chat.js'),
  format: 'iife',
  alias: { 'libsodium-wrappers-sumo': join(root, 'src', 'lazy-sodium.ts') },
});
await build({
  ...common,
  stdin: { contents: "export { default } from 'libsodium-wrappers-sumo';", resolveDir: root, loader: 'js', sourcefile: 'curbside-sodium.js' },
  outfile: join(dist, 'curbside-sodium.js'),
  format: 'esm',
});

for (const name of ['curbside-chat.js', 'curbside-sodium.js']) {
  const body = readFileSync(join(dist, name));
  console.log(`widget/dist/${name}: ${(body.length / 1024).toFixed(0)} KB, ${(gzipSync(body, { level: 9 }).length / 1024).toFixed(0)} KB gzipped`);
}
