/**
 * Runs writes one at a time. Group commits that share a lane never have two commands in flight, so
 * they are never rival writers (on FerretDB's SQLite a rival writer waits in SQLite's busy handler,
 * which sleeps for up to 100 ms at a time), and their batches grow while the lane is busy.
 */
export class WriteLane {
  private tail: Promise<unknown> = Promise.resolve();

  run<R>(fn: () => Promise<R>): Promise<R> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => {});
    return result;
  }
}

export interface GroupCommitOptions {
  /** Items written by one command at most. */
  maxBatch: number;
  /** Shared with other group commits whose commands must not overlap. Default: a lane of its own. */
  lane?: WriteLane | undefined;
  /**
   * The bounded wait: a batch goes out once its oldest item has waited this long (or it is full),
   * so that items arriving a moment apart (concurrent senders, each a network round trip behind the
   * last ack) share one command. 0: only what is ready in the same turn of the event loop, and what
   * queued behind a write in flight. @default 0
   */
  waitMs?: number | undefined;
}

/**
 * Group commit: writes submitted while one is in flight, in the same turn of the event loop, or
 * within the bounded wait go to the database together as one command. Each submitter still waits
 * for its own outcome: `write` answers one error (or undefined) per item, so an item fails alone
 * when the database says which one failed, and nobody is answered before its batch's command is.
 */
export class GroupCommit<T> {
  private readonly pending: Array<{ item: T; at: number; done: (err?: unknown) => void }> = [];
  private flushing = false;
  private readonly maxBatch: number;
  private readonly lane: WriteLane;
  private readonly waitMs: number;
  private batches = 0;
  private items = 0;

  constructor(
    /** Writes a batch; resolves with one entry per item (undefined = stored), rejects to fail them all. */
    private readonly write: (items: T[]) => Promise<ReadonlyArray<unknown>>,
    options: GroupCommitOptions,
  ) {
    this.maxBatch = options.maxBatch;
    this.lane = options.lane ?? new WriteLane();
    this.waitMs = options.waitMs ?? 0;
  }

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, at: performance.now(), done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (this.pending.length >= this.maxBatch) this.wake?.();
      if (!this.flushing) void this.flush();
    });
  }

  /** Batches written and items in them since start (items ÷ batches = the mean batch size). */
  stats(): { batches: number; items: number } {
    return { batches: this.batches, items: this.items };
  }

  /** Ends the current bounded wait early (the batch is full). */
  private wake: (() => void) | undefined;

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        // Writes that are ready in this turn of the event loop join the group; with a bounded wait,
        // so do those that come until the oldest has waited `waitMs`.
        await new Promise((r) => setImmediate(r));
        const left = this.waitMs - (performance.now() - this.pending[0]!.at);
        if (left > 0 && this.pending.length < this.maxBatch) {
          await new Promise<void>((r) => {
            const t = setTimeout(r, left);
            this.wake = () => {
              clearTimeout(t);
              r();
            };
          });
          this.wake = undefined;
        }
        const batch = this.pending.splice(0, this.maxBatch);
        this.batches++;
        this.items += batch.length;
        let errors: ReadonlyArray<unknown>;
        try {
          errors = await this.lane.run(() => this.write(batch.map((b) => b.item)));
        } catch (err) {
          for (const b of batch) b.done(err);
          continue;
        }
        batch.forEach((b, i) => b.done(errors[i]));
      }
    } finally {
      this.flushing = false;
    }
  }
}
