/**
 * CPU of every process a variant's messages pass through, per step: the hub (or relay) processes,
 * the load generators, and for D and E the database (FerretDB, and the PostgreSQL backends serving
 * its database) and the run's own Redis. On a machine where all of them share the same cores, this
 * is what bounds a variant's rate whatever its code does: `coresBoundMsgPerS` is the rate at which
 * the whole stack would fill every core, and `withoutHubMsgPerS` the same with the hub's share
 * replaced by another variant's (the bare relay's): the best any hub could do on this machine.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { procCpuMs } from './server-process.js';

export interface StackParts {
  hub: number[];
  generators: number[];
  ferretdb?: number | undefined;
  redis?: number | undefined;
  /** The PostgreSQL database FerretDB stores into: its backends are found in pg_stat_activity. */
  postgresDatabase?: string | undefined;
}

export interface StackCpu {
  /** CPU ms per sent message, by part, and their sum. */
  msPerMsg: { hub: number; generators: number; ferretdb?: number; postgres?: number; redis?: number; total: number };
  /** nproc × 1000 ÷ total: the rate at which this stack fills every core of the machine. */
  coresBoundMsgPerS: number | null;
  nproc: number;
}

type Part = Exclude<keyof StackCpu['msPerMsg'], 'total'>;

function cpuOr0(pid: number): number {
  try {
    return procCpuMs(pid);
  } catch {
    return 0; // gone (a PostgreSQL backend that closed): its CPU since the start is lost, which undercounts
  }
}

/** The PostgreSQL backends serving `database` now (empty when psql is missing or refuses). */
function postgresBackends(database: string): number[] {
  const url = process.env.POSTGRESQL_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  if (!/^[a-z0-9_]+$/.test(database)) return [];
  const r = spawnSync('psql', ['-X', '-A', '-t', '-d', url, '-c', `SELECT pid FROM pg_stat_activity WHERE datname = '${database}'`], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** The cores this process may run on (what `nproc` prints). */
export function nproc(): number {
  return availableParallelism();
}

/** Start counting now; `stop(sent)` gives the CPU per message since. */
export function startStackCpu(parts: StackParts): { stop(sent: number): StackCpu } {
  const groups: Array<[Part, number[]]> = [
    ['hub', parts.hub],
    ['generators', parts.generators],
    ...(parts.ferretdb ? [['ferretdb', [parts.ferretdb]] as [Part, number[]]] : []),
    ...(parts.postgresDatabase ? [['postgres', postgresBackends(parts.postgresDatabase)] as [Part, number[]]] : []),
    ...(parts.redis ? [['redis', [parts.redis]] as [Part, number[]]] : []),
  ];
  const before = groups.map(([, pids]) => pids.map(cpuOr0));
  return {
    stop(sent: number): StackCpu {
      const msPerMsg: StackCpu['msPerMsg'] = { hub: 0, generators: 0, total: 0 };
      groups.forEach(([part, pids], g) => {
        const ms = pids.reduce((a, pid, i) => a + Math.max(0, cpuOr0(pid) - before[g]![i]!), 0);
        msPerMsg[part] = round3(ms / Math.max(1, sent));
      });
      msPerMsg.total = round3(groups.reduce((a, [part]) => a + (msPerMsg[part] ?? 0), 0));
      const n = nproc();
      return { msPerMsg, nproc: n, coresBoundMsgPerS: coresFullAt(n, msPerMsg.total) };
    },
  };
}

/**
 * The best rate any hub could reach with this stack on this machine: every core busy, the hub's
 * own share replaced by `hubMsPerMsg` (the bare relay's, measured in the same run).
 */
export function boundWithHubOf(stack: StackCpu, hubMsPerMsg: number): number | null {
  return coresFullAt(stack.nproc, stack.msPerMsg.total - stack.msPerMsg.hub + hubMsPerMsg);
}

/** The rate at which a relay's whole stack plus one stored document per message (`dbMsPerDoc`) fills the machine. */
export function ceilingWithOneDocument(relay: StackCpu | undefined, dbMsPerDoc: number | undefined): number | null {
  return relay && dbMsPerDoc != null ? coresFullAt(relay.nproc, relay.msPerMsg.total + dbMsPerDoc) : null;
}

function coresFullAt(nproc: number, msPerMsg: number): number | null {
  return msPerMsg > 0 ? Math.round((nproc * 1000) / msPerMsg) : null;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
