import { ensureMongo, ensureRedis, startFerretDbPostgres, testDbIsPostgres, type RunningService } from './services.js';

const started: RunningService[] = [];

/** mocha global fixture: services come up once for the whole run. */
export async function mochaGlobalSetup(): Promise<void> {
  const mongo = ensureMongo();
  // After the SQLite one: both would build the FerretDB helper, and two builds at once clobber each other.
  const postgres = mongo.catch(() => undefined).then(() => startFerretDbPostgres());
  const results = await Promise.allSettled([ensureRedis(), mongo, postgres]);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await mochaGlobalTeardown();
    throw failed.reason;
  }
  const [redisService, mongoService, postgresService] = started as [RunningService, RunningService, RunningService & { database: string }];
  process.env.CURBSIDE_TEST_REDIS_URL = redisService.url;
  process.env.CURBSIDE_TEST_FERRETDB_SQLITE_URI = mongoService.url;
  process.env.CURBSIDE_TEST_FERRETDB_PG_URI = postgresService.url;
  // The database every test but the storage contract suites uses: FerretDB-SQLite (or MONGODB_URI), or
  // FerretDB-PostgreSQL with CURBSIDE_TEST_DB=postgresql.
  const onPostgres = testDbIsPostgres();
  process.env.CURBSIDE_TEST_MONGODB_URI = onPostgres ? postgresService.url : mongoService.url;
  console.log(
    `  services: redis ${redisService.url}${redisService.owned ? ' (started)' : ''}, mongodb ${mongoService.url}${mongoService.owned ? ' (FerretDB-SQLite, started)' : ''}, ` +
      `FerretDB-PostgreSQL ${postgresService.url} (database ${postgresService.database}); tests use ${onPostgres ? 'FerretDB-PostgreSQL' : process.env.MONGODB_URI ? 'MONGODB_URI' : 'FerretDB-SQLite'}`,
  );
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all(started.splice(0).map((s) => s.stop()));
}
