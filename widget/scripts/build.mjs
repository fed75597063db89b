// Bundle <curbside-chat> into one self-contained file (SDK, socket.io client and libsodium inside):
// widget/dist/curbside-chat.js, an IIFE that a host page loads with one <script> tag.
// Run after `tsc -b` (it bundles @curbside/client-sdk from its dist/).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'curbside-chat.js');
await build({
  entryPoints: [join(root, 'src', 'index.ts')],
  outfile,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  sourcemap: false,
  logLevel: 'warning',
});
