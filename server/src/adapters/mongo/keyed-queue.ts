/**
 * Runs async work one at a time per key, in call order; different keys run concurrently. The Mongo
 * storage queues appends to a conversation and its team changes on the conversation's key, so within
 * one hub node they never race (between nodes the unique indexes decide).
 */
export class KeyedQueue {
  /** Tail of the queue per key; a key with nothing queued has no entry. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Run `fn` after every earlier call for the same key has finished (failed ones too). */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with work queued or running (for tests: the map does not grow with keys seen). */
  get size(): number {
    return this.tails.size;
  }
}
