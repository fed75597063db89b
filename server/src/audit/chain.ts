import { createHash, randomUUID } from 'node:crypto';
import { backoffMs, sleep } from '@curbside/shared';
import type { Logger } from '../logger.js';
import { GENESIS_HASH, UNAUTHENTICATED_CHAIN, type AuditEntry, type AuditEvent, type AuditLog } from './port.js';

/**
 * The canonical form an entry's hash covers: JSON of every field but `hash`, keys sorted, undefined
 * fields left out. Stable across storage round trips (numbers stay numbers, arrays keep order).
 */
export function canonicalAuditEntry(entry: Omit<AuditEntry, 'hash'> | AuditEntry): string {
  const { hash: _hash, ...rest } = entry as AuditEntry;
  return stableJson(rest);
}

export function hashAuditEntry(entry: Omit<AuditEntry, 'hash'> | AuditEntry): string {
  return createHash('sha256').update(canonicalAuditEntry(entry), 'utf8').digest('hex');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined && obj[k] !== null)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Storage of chains. `insert` appends entries that continue the chain; the unique (chain, index) rule refuses a stale head. */
export interface AuditBackend {
  init(): Promise<void>;
  close(): Promise<void>;
  chains(): Promise<string[]>;
  entries(chain: string, afterIndex: number, limit: number): Promise<AuditEntry[]>;
  recordedHead(chain: string): Promise<number | undefined>;
  /** The last stored entry of the chain. */
  tail(chain: string): Promise<Pick<AuditEntry, 'index' | 'hash'> | undefined>;
  /**
   * Store `entries` (consecutive indexes) in order. Stops at the first index another writer took:
   * `inserted` entries from the start were stored, `conflict` says whether one was refused.
   */
  insert(chain: string, entries: AuditEntry[]): Promise<{ inserted: number; conflict: boolean }>;
}

export interface ChainedAuditLogOptions {
  logger?: Pick<Logger, 'error' | 'warn'> | undefined;
  /** Entries appended per write. @default 200 */
  batchSize?: number;
  /** Events queued per chain before new ones are dropped (and logged). @default 100000 */
  maxBacklog?: number;
  /**
   * How long a chain's writer waits for more events before writing a batch smaller than `batchSize`.
   * Each write is an insert and a head update, so under load this turns two database writes per
   * audited request into two per batch. `flush()` and `close()` cut the wait short. @default 0
   */
  lingerMs?: number;
  /**
   * This writer's name (the hub node). With one, each organisation gets a chain per writer
   * (`chainName`), so hub nodes never contend for one chain's next index; without, one chain per
   * organisation that every writer appends to.
   */
  writer?: string | undefined;
}

const MAX_CONFLICT_RETRIES = 100;

/** The chain an event goes to: its organisation's (or `UNAUTHENTICATED_CHAIN`), per writer if named. */
export function chainName(orgId: string | undefined, writer?: string): string {
  const base = orgId ?? UNAUTHENTICATED_CHAIN;
  // Organisation ids contain no spaces; the writer's are replaced so the name splits one way only.
  return writer === undefined ? base : `${base} @${writer.replace(/\s/g, '-')}`;
}

/**
 * An audit log over any backend: events are queued per chain and appended in batches by one
 * writer per chain per process. Several hub nodes may append to the same chain: each computes the
 * next index from the tail it knows, and when another node took that index first (unique index
 * violation, code 11000 on MongoDB) it re-reads the tail and recomputes the rest. No transactions
 * needed, so it works on FerretDB.
 */
export class ChainedAuditLog implements AuditLog {
  private readonly queues = new Map<string, AuditEvent[]>();
  private readonly drains = new Map<string, Promise<void>>();
  private readonly tails = new Map<string, Pick<AuditEntry, 'index' | 'hash'>>();
  private readonly batchSize: number;
  private readonly maxBacklog: number;
  private readonly lingerMs: number;
  /** Lingering writers wait on this; `flush()` and `close()` resolve it. */
  private hurry: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Callers inside `flush()`: while any, writers do not linger. */
  private flushing = 0;
  private closed = false;

  constructor(
    protected readonly backend: AuditBackend,
    private readonly options: ChainedAuditLogOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 200;
    this.maxBacklog = options.maxBacklog ?? 100_000;
    this.lingerMs = options.lingerMs ?? 0;
  }

  /** Wait up to `lingerMs` for a batch to fill (not at all once flushing or closing). */
  private async linger(queue: AuditEvent[]): Promise<void> {
    if (this.lingerMs <= 0 || this.closed || this.flushing > 0 || queue.length >= this.batchSize) return;
    if (!this.hurry) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.hurry = { promise, resolve };
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.hurry.promise, new Promise<void>((r) => (timer = setTimeout(r, this.lingerMs)))]);
    clearTimeout(timer);
  }

  private wakeLingerers(): void {
    this.hurry?.resolve();
    this.hurry = undefined;
  }

  init(): Promise<void> {
    return this.backend.init();
  }

  record(event: AuditEvent): void {
    if (this.closed) {
      this.options.logger?.error({ action: event.action }, 'audit event after close dropped');
      return;
    }
    const chain = chainName(event.orgId, this.options.writer);
    const queue = this.queues.get(chain) ?? [];
    if (queue.length >= this.maxBacklog) {
      this.options.logger?.error({ chain, action: event.action }, 'audit backlog full: event dropped');
      return;
    }
    queue.push(event);
    this.queues.set(chain, queue);
    if (!this.drains.has(chain)) {
      const run = this.drain(chain).finally(() => this.drains.delete(chain));
      this.drains.set(chain, run);
    }
  }

  private async drain(chain: string): Promise<void> {
    const queue = this.queues.get(chain)!;
    let conflicts = 0;
    let failures = 0;
    while (queue.length > 0) {
      await this.linger(queue);
      const batch = queue.slice(0, this.batchSize);
      try {
        let tail = this.tails.get(chain) ?? (await this.backend.tail(chain));
        const entries: AuditEntry[] = batch.map((event) => {
          const base: Omit<AuditEntry, 'hash'> = {
            ...clean(event),
            id: randomUUID(),
            chain,
            index: tail ? tail.index + 1 : 0,
            prevHash: tail ? tail.hash : GENESIS_HASH,
          };
          const entry: AuditEntry = { ...base, hash: hashAuditEntry(base) };
          tail = { index: entry.index, hash: entry.hash };
          return entry;
        });
        const { inserted, conflict } = await this.backend.insert(chain, entries);
        queue.splice(0, inserted);
        if (inserted > 0) this.tails.set(chain, { index: entries[inserted - 1]!.index, hash: entries[inserted - 1]!.hash });
        failures = 0;
        if (conflict) {
          // Another node appended meanwhile: re-read the tail and go on.
          this.tails.delete(chain);
          if (++conflicts > MAX_CONFLICT_RETRIES) throw new Error(`audit chain ${chain}: ${conflicts} conflicts in a row`);
        } else {
          conflicts = 0;
        }
      } catch (err) {
        this.tails.delete(chain);
        failures += 1;
        this.options.logger?.warn({ err, chain, pending: queue.length, failures }, 'audit append failed; retrying');
        if (this.closed && failures >= 3) {
          this.options.logger?.error({ chain, lost: queue.length }, 'audit log closing with unwritten events');
          queue.length = 0;
          break;
        }
        await sleep(backoffMs(failures, { baseMs: 50, maxMs: 2000, jitter: false }));
      }
    }
    this.queues.delete(chain);
  }

  /** Wait until every event recorded so far is stored (or given up on at close). */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      this.wakeLingerers();
      while (this.drains.size > 0) await Promise.allSettled([...this.drains.values()]);
    } finally {
      this.flushing--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    await this.backend.close();
  }

  chains(): Promise<string[]> {
    return this.backend.chains();
  }
  entries(chain: string, afterIndex: number, limit: number): Promise<AuditEntry[]> {
    return this.backend.entries(chain, afterIndex, limit);
  }
  recordedHead(chain: string): Promise<number | undefined> {
    return this.backend.recordedHead(chain);
  }
}

/** Only the declared fields, without undefined ones. */
function clean(event: AuditEvent): AuditEvent {
  const out: Record<string, unknown> = {};
  for (const k of AUDIT_EVENT_FIELDS) {
    const v = event[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out as unknown as AuditEvent;
}

export const AUDIT_EVENT_FIELDS = [
  'at',
  'action',
  'outcome',
  'orgId',
  'userId',
  'deviceId',
  'ip',
  'conversationId',
  'messageId',
  'seq',
  'clientMessageId',
  'targetDeviceId',
  'targetUserIds',
  'messageIds',
  'note',
  'count',
] as const satisfies ReadonlyArray<keyof AuditEvent>;
