import { ensureMongo, ensureRedis, startFerretDbPostgres, type RunningService } from './services.js';

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
  process.env.CURBSIDE_TEST_MONGODB_URI = mongoService.url;
  process.env.CURBSIDE_TEST_FERRETDB_PG_URI = postgresService.url;
  console.log(
    `  services: redis ${redisService.url}${redisService.owned ? ' (started)' : ''}, mongodb ${mongoService.url}${mongoService.owned ? ' (FerretDB-SQLite, started)' : ''}, ` +
      `FerretDB-PostgreSQL ${postgresService.url} (database ${postgresService.database})`,
  );
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all(started.splice(0).map((s) => s.stop()));
}
