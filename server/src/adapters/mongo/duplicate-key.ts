/** Duplicate keys (code 11000): how MongoDB and FerretDB report a lost race on a unique index. */

/** An unordered insertMany whose only failures were duplicate keys. */
export function isBulkDuplicateOnly(err: unknown): boolean {
  const e = err as { code?: unknown; writeErrors?: Array<{ code?: unknown; err?: { code?: unknown } }> };
  if (Array.isArray(e.writeErrors) && e.writeErrors.length > 0) return e.writeErrors.every((w) => (w.code ?? w.err?.code) === 11000);
  return isDuplicateKey(err);
}

export function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

/**
 * Concurrent upserts of the same new key can fail with a duplicate key once; the retry finds the
 * document. Also for bulk writes, whose duplicate keys may come only as per-statement write errors.
 */
export async function retryOnDuplicateKey<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isDuplicateKey(err) && !isBulkDuplicateOnly(err)) throw err;
    return op();
  }
}

/** A write whose duplicate key means that what it writes is stored already. */
export async function ignoreDuplicateKey(write: Promise<unknown>): Promise<void> {
  try {
    await write;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
}

/**
 * An unordered insertMany: the positions of the documents that were not stored because their key
 * exists already (races lost). Any other failure is thrown.
 */
export async function insertManyLosers(write: Promise<unknown>): Promise<Set<number>> {
  try {
    await write;
    return new Set();
  } catch (err) {
    const raw = (err as { writeErrors?: unknown }).writeErrors;
    const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ index?: number; code?: number; err?: { code?: number } }>;
    if (writeErrors.length === 0 || writeErrors.some((w) => typeof w.index !== 'number' || (w.code ?? w.err?.code) !== 11000)) {
      if (writeErrors.length === 0 && isDuplicateKey(err) && typeof (err as { index?: unknown }).index === 'number') return new Set([(err as { index: number }).index]);
      throw err;
    }
    return new Set(writeErrors.map((w) => w.index!));
  }
}
