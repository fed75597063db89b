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
