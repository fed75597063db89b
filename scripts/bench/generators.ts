/**
 * The load generators: worker.ts in child processes, and the one way the runner talks to them (a
 * message, then the reply of the named type, or an error when the worker fails, exits or is silent).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './server-process.js';
import type { RunnerToWorker, WorkerToRunner } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface Worker {
  proc: ChildProcess;
  ask<T extends WorkerToRunner>(msg: RunnerToWorker, type: T['type'], timeoutMs?: number): Promise<T>;
}

export function startWorker(): Worker {
  const proc = track(fork(join(here, 'worker.ts'), [], { cwd: join(here, '..', '..'), execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  return {
    proc,
    ask: <T extends WorkerToRunner>(msg: RunnerToWorker, type: T['type'], timeoutMs = 600_000) =>
      new Promise<T>((res, rej) => {
        const t = setTimeout(() => done(new Error(`worker: no ${type} within ${timeoutMs} ms`)), timeoutMs);
        const on = (m: unknown) => {
          const x = m as WorkerToRunner;
          if (x.type === 'error') done(new Error(`worker failed: ${x.message}`));
          else if (x.type === type) done(undefined, x as T);
        };
        const exit = (code: number | null) => done(new Error(`worker exited (code ${code}) while waiting for ${type}`));
        const done = (e?: Error, v?: T) => {
          clearTimeout(t);
          proc.off('message', on);
          proc.off('exit', exit);
          if (e) rej(e);
          else res(v!);
        };
        proc.on('message', on);
        proc.once('exit', exit);
        proc.send(msg);
      }),
  };
}
