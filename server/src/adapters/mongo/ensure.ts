/**
 * Create a model's collection (an existing one is fine) and its indexes.
 *
 * Not `Model.init()`: mongoose keeps the first promise it returns forever, a rejected one too, so a
 * model whose first init ran while the database was restarting failed every later call with that
 * same stale error ("connection 18 … closed") until the process restarted (docs/faults.md, bug 3).
 * This asks the database every time, so a retry after a failed attempt can succeed.
 */
export async function ensureCollection(model: { createCollection(): Promise<unknown>; createIndexes(): Promise<unknown> }): Promise<void> {
  await model.createCollection();
  await model.createIndexes();
}

/**
 * `ensureCollection` for these models, once: the first call creates them, later calls share its
 * outcome; after a failure the next call tries again (the database may have been restarting).
 */
export function ensureOnce(...models: Array<Parameters<typeof ensureCollection>[0]>): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () =>
    (ready ??= (async () => {
      for (const model of models) await ensureCollection(model);
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));
}
