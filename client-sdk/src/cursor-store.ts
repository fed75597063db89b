/**
 * Where the SDK remembers, per conversation, the highest sequence number it has handed to the
 * app without gaps. Persist it (IndexedDB, a file) and a restarted app resyncs only what it missed.
 */
export interface CursorStore {
  load(): Promise<Record<string, number>>;
  save(conversationId: string, seq: number): Promise<void>;
}

/** Keeps cursors for the life of the process. @default store of {@link CurbsideClient} */
export class MemoryCursorStore implements CursorStore {
  private readonly cursors = new Map<string, number>();
  async load(): Promise<Record<string, number>> {
    return Object.fromEntries(this.cursors);
  }
  async save(conversationId: string, seq: number): Promise<void> {
    this.cursors.set(conversationId, seq);
  }
}
