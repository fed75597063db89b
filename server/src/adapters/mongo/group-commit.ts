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

/**
 * Group commit: writes submitted while one is in flight (or in the same turn of the event loop) go
 * to the database together as one command. Each submitter still waits for its own outcome: `write`
 * answers one error (or undefined) per item, so an item fails alone when the database says which
 * one failed.
 */
export class GroupCommit<T> {
  private readonly pending: Array<{ item: T; done: (err?: unknown) => void }> = [];
  private flushing = false;

  constructor(
    /** Writes a batch; resolves with one entry per item (undefined = stored), rejects to fail them all. */
    private readonly write: (items: T[]) => Promise<ReadonlyArray<unknown>>,
    private readonly maxBatch: number,
    private readonly lane: WriteLane = new WriteLane(),
  ) {}

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        // Writes that are ready in this turn of the event loop join the group.
        await new Promise((r) => setImmediate(r));
        const batch = this.pending.splice(0, this.maxBatch);
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
