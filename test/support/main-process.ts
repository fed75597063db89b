/** `npm start` as a child process: the hub's real entry point (`server/dist/main.js`), for tests of its start-up. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const mainJs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'dist', 'main.js');

/** The environment of a machine with neither MongoDB nor Redis configured (nor an identity provider, a HOST or the dev-mode switches). */
export function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(MONGODB_|REDIS_|JWT_|CURBSIDE_TEST_|HOST$|DANGEROUSLY_|ADMIN_TOKEN$|AUDIT_)/.test(k)) delete env[k];
  return { ...env, PORT: '0', LOG_LEVEL: 'warn', ...extra };
}

/** Start the hub; `url` resolves with its address once it listens, or rejects with its output if it exits first. */
export function startMain(env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; url: Promise<string> } {
  const child = spawn(process.execPath, [mainJs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start: ${out}`)), 15_000);
    child.stdout!.on('data', () => {
      const m = /Listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code}: ${out}`));
    });
  });
  return { child, output: () => out, url };
}
