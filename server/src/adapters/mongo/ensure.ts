import type { Collection, Connection, Schema, mongo } from 'mongoose';

/** What `ensureCollection` needs of a mongoose model. */
export interface EnsuredModel {
  readonly db: Connection;
  readonly schema: Schema;
  readonly collection: Collection;
  createCollection(): Promise<unknown>;
}

/** Names of the indexes that take an array field, by schema (`arrayIndex`). */
const arrayIndexes = new WeakMap<Schema, Set<string>>();

/**
 * Declare an index on `fields`, one of which holds an array: MongoDB indexes each element (a multikey
 * index), so a query for one element is a point read. FerretDB 1.x indexes the whole array as one value,
 * which serves no query for an element (it filters with jsonb containment, which a btree cannot answer)
 * and which PostgreSQL refuses once the entry is over 2,704 bytes: a care team of about 70 members, or a
 * seq mark set of about 60 conversations, failed to store. There `ensureCollection` leaves it out.
 */
export function arrayIndex(schema: Schema, fields: Record<string, 1 | -1>, name: string): void {
  schema.index(fields, { name });
  let names = arrayIndexes.get(schema);
  if (!names) arrayIndexes.set(schema, (names = new Set()));
  names.add(name);
}

/** Per connection: whether its server indexes each element of an array (not FerretDB 1.x). */
const elementIndexing = new WeakMap<Connection, Promise<boolean>>();

/**
 * Whether the server behind `conn` indexes array elements one by one. FerretDB says its version in
 * `buildInfo.ferretdbVersion`; 1.x (and a FerretDB that does not say which) does not.
 */
export function indexesArrayElements(conn: Connection): Promise<boolean> {
  let known = elementIndexing.get(conn);
  if (!known) {
    known = conn.db!.admin()
      .command({ buildInfo: 1 })
      .then((info) => {
        const ferret = info['ferretdbVersion'];
        return ferret === undefined || /^v?([2-9]|\d{2,})\./.test(String(ferret));
      });
    elementIndexing.set(conn, known);
    known.catch(() => elementIndexing.delete(conn));
  }
  return known;
}

/**
 * Create a model's collection (an existing one is fine) and its schema's indexes, but for an
 * `arrayIndex` on a server that does not index array elements: that one is left out, and dropped
 * where an earlier release created it.
 *
 * Not `Model.init()`: mongoose keeps the first promise it returns forever, a rejected one too, so a
 * model whose first init ran while the database was restarting failed every later call with that
 * same stale error ("connection 18 … closed") until the process restarted (docs/faults.md, bug 3).
 * This asks the database every time, so a retry after a failed attempt can succeed.
 */
export async function ensureCollection(model: EnsuredModel): Promise<void> {
  await model.createCollection();
  const arrays = arrayIndexes.get(model.schema);
  const elements = arrays ? await indexesArrayElements(model.db) : true;
  for (const [fields, options] of model.schema.indexes()) {
    const name = options.name;
    if (!elements && name !== undefined && arrays?.has(name)) {
      if (await model.collection.indexExists(name)) await model.collection.dropIndex(name).catch(ignoreIndexNotFound);
      continue;
    }
    await model.collection.createIndex(fields as mongo.IndexSpecification, options as mongo.CreateIndexesOptions);
  }
}

/** Another node dropped it first. */
function ignoreIndexNotFound(err: unknown): void {
  if ((err as { code?: number }).code !== 27) throw err;
}

/**
 * `ensureCollection` for these models, once: the first call creates them, later calls share its
 * outcome; after a failure the next call tries again (the database may have been restarting).
 */
export function ensureOnce(...models: EnsuredModel[]): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () =>
    (ready ??= (async () => {
      for (const model of models) await ensureCollection(model);
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));
}
