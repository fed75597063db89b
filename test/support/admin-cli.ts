import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliJs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'dist', 'cli', 'admin.js');

/** The operator token test hubs are started with (`withAdmin`). */
export const ADMIN = 'operator-secret-'.padEnd(40, 'x');
export const withAdmin = (c: { adminToken?: string | undefined }) => (c.adminToken = ADMIN);

/** Run the `curbside-admin` CLI against a hub; its exit code and output. */
export function cli(url: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliJs, '--url', url, ...args], {
      env: { ...process.env, ADMIN_TOKEN: ADMIN, CURBSIDE_OPERATOR: 'helpdesk-7', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
