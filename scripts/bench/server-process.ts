/**
 * Server processes for the benchmarks (hubs and bare relays): started with `node`, ready once they
 * say where they listen, stopped with SIGTERM (SIGKILL after a grace period), and every one of them
 * killed when the benchmark ends or fails.
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = (() => {
  try {
    return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) a process used so far, in ms (Linux `/proc`). */
export function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** Resident memory of a process, in KB (Linux `/proc`). */
export function procRssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

export interface ServerProcess {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  /** Bytes the child wrote to its stdout and stderr pipes so far. */
  pipeBytes: () => number;
  /** What it wrote (the first 200 KB). */
  output: () => string;
  /** Send `msg` over IPC and wait for the first answer of `type` (only with `ipc: true`). */
  ask<T>(msg: object, type: string): Promise<T>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Keep `c` in the set {@link killChildren} kills. */
export function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

/** Kill every child still running (on exit, on error, on a signal). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/**
 * Run a benchmark script's `main` as the whole life of the process: when it resolves, exit 0; when it
 * throws, print the error (`report`, default `console.error`) and exit 1; on SIGINT or SIGTERM, run
 * `onSignal` (given at most 5 s, e.g. to stop the services it started) and exit 130. Every child still
 * running is killed first in each case, so no hub or relay outlives the script.
 */
export function runBench(main: () => Promise<unknown>, options: { onSignal?: () => Promise<unknown> | undefined; report?: (err: unknown) => void } = {}): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killChildren();
      void Promise.race([options.onSignal?.(), new Promise((r) => setTimeout(r, 5000))]).finally(() => process.exit(130));
    });
  }
  main().then(
    () => {
      killChildren();
      process.exit(0);
    },
    (err: unknown) => {
      (options.report ?? console.error)(err);
      killChildren();
      process.exit(1);
    },
  );
}

/**
 * Start `node ...args` in `cwd` and resolve once it says where it listens: a dev-mode hub's banner
 * (`Listening on <url>`), a production hub's `{"url": ..., "msg":"hub listening"}` log line, or a
 * relay printing `Listening on <url>`.
 */
export function startServer(
  name: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number; ipc?: boolean; stopGraceMs?: number },
): Promise<ServerProcess> {
  const { cwd, env, timeoutMs = 60_000, ipc = false, stopGraceMs = 15_000 } = options;
  const proc = track(spawn(process.execPath, args, { cwd, env, stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'] }));
  let bytes = 0;
  let text = '';
  const keep = (chunk: Buffer) => {
    bytes += chunk.length;
    if (text.length < 200_000) text += chunk.toString('utf8');
  };
  proc.stderr!.on('data', keep);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not say where it listens within ${timeoutMs} ms`)), timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${e.message}\n--- ${name} output ---\n${text.slice(-3000)}`));
    };
    const early = (code: number | null, signal: string | null) => fail(new Error(`${name} exited early (code ${code}, signal ${signal})`));
    proc.once('exit', early);
    let listening = false;
    proc.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (listening) return;
      const url = /Listening on (http:\/\/\S+)/.exec(text)?.[1] ?? /"url":"(http:\/\/[^"]+)"[^\n]*hub listening/.exec(text)?.[1];
      if (!url) return;
      listening = true;
      clearTimeout(timer);
      proc.off('exit', early);
      resolve({
        name,
        proc,
        pid: proc.pid!,
        url,
        pipeBytes: () => bytes,
        output: () => text,
        ask: <T>(msg: object, type: string) =>
          new Promise<T>((res, rej) => {
            if (!ipc) return rej(new Error(`${name} was started without IPC`));
            const t = setTimeout(() => rej(new Error(`${name}: no ${type} answer`)), 30_000);
            const on = (m: unknown) => {
              if ((m as { type?: string })?.type !== type) return;
              clearTimeout(t);
              proc.off('message', on);
              res(m as T);
            };
            proc.on('message', on);
            proc.send(msg);
          }),
        stop: () =>
          new Promise<void>((done) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return done();
            const kill = setTimeout(() => proc.kill('SIGKILL'), stopGraceMs);
            proc.once('exit', () => {
              clearTimeout(kill);
              done();
            });
            proc.kill('SIGTERM');
          }),
      });
    });
  });
}
