import type { Logger } from '../logger.js';
import { ChainedAuditLog, type AuditBackend } from './chain.js';
import type { AuditEntry } from './port.js';

/** In-process chains for dev mode and fast tests. */
export class MemoryAuditBackend implements AuditBackend {
  readonly store = new Map<string, AuditEntry[]>();
  private readonly heads = new Map<string, number>();

  async init(): Promise<void> {}
  async close(): Promise<void> {}

  async chains(): Promise<string[]> {
    return [...this.store.keys()].sort();
  }

  async entries(chain: string, afterIndex: number, limit: number): Promise<AuditEntry[]> {
    return (this.store.get(chain) ?? [])
      .filter((e) => e.index > afterIndex)
      .sort((a, b) => a.index - b.index)
      .slice(0, limit)
      .map((e) => structuredClone(e));
  }

  async recordedHead(chain: string): Promise<number | undefined> {
    return this.heads.get(chain);
  }

  async tail(chain: string) {
    const list = this.store.get(chain);
    const last = list?.[list.length - 1];
    return last && { index: last.index, hash: last.hash };
  }

  async insert(chain: string, entries: AuditEntry[]): Promise<{ inserted: number; conflict: boolean }> {
    const list = this.store.get(chain) ?? [];
    this.store.set(chain, list);
    let inserted = 0;
    for (const e of entries) {
      const last = list[list.length - 1];
      if (last ? e.index !== last.index + 1 : e.index !== 0) return { inserted, conflict: true };
      list.push(structuredClone(e));
      this.heads.set(chain, Math.max(this.heads.get(chain) ?? -1, e.index));
      inserted++;
    }
    return { inserted, conflict: false };
  }
}

export class MemoryAuditLog extends ChainedAuditLog {
  constructor(options: { logger?: Pick<Logger, 'error' | 'warn'> | undefined } = {}) {
    super(new MemoryAuditBackend(), options);
  }

  /** The backing store, for tests that tamper with it. */
  get memory(): MemoryAuditBackend {
    return this.backend as MemoryAuditBackend;
  }
}
