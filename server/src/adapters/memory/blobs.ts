import { Readable } from 'node:stream';
import type { BlobStore, PutPartResult, StoredPart } from '../../ports/blob-store.js';

/** `BlobStore` in memory: dev mode (which keeps nothing) and fast tests of logic. */
export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Map<number, Buffer>>();

  async init(): Promise<void> {}

  async putPart(input: { blobId: string; index: number; expectedBytes: number; source: Readable | AsyncIterable<Uint8Array> }): Promise<PutPartResult> {
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of input.source as AsyncIterable<Uint8Array>) {
      received += chunk.byteLength;
      if (received > input.expectedBytes) break;
      chunks.push(Buffer.from(chunk));
    }
    const parts = this.blobs.get(input.blobId) ?? new Map<number, Buffer>();
    const existing = parts.get(input.index);
    if (existing) return received === existing.length ? { status: 'exists', bytes: existing.length } : { status: 'wrong_size', received };
    if (received !== input.expectedBytes) return { status: 'wrong_size', received };
    parts.set(input.index, Buffer.concat(chunks));
    this.blobs.set(input.blobId, parts);
    return { status: 'stored', bytes: received };
  }

  async listParts(blobId: string): Promise<StoredPart[]> {
    return [...(this.blobs.get(blobId) ?? new Map<number, Buffer>())].map(([index, b]) => ({ index, bytes: b.length })).sort((a, b) => a.index - b.index);
  }

  async readPart(blobId: string, index: number): Promise<Readable | undefined> {
    const part = this.blobs.get(blobId)?.get(index);
    return part ? Readable.from([part]) : undefined;
  }

  async deleteBlob(blobId: string): Promise<void> {
    this.blobs.delete(blobId);
  }

  async sweepLeftovers(): Promise<number> {
    return 0; // a part is kept whole or not at all
  }

  async close(): Promise<void> {}
}
