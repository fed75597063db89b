import { ensureMongo, ensureRedis, type RunningService } from './services.js';

const started: RunningService[] = [];

/** mocha global fixture: services come up once for the whole run. */
export async function mochaGlobalSetup(): Promise<void> {
  const [redis, mongo] = await Promise.all([ensureRedis(), ensureMongo()]);
  started.push(redis, mongo);
  process.env.CURBSIDE_TEST_REDIS_URL = redis.url;
  process.env.CURBSIDE_TEST_MONGODB_URI = mongo.url;
  console.log(`  services: redis ${redis.url}${redis.owned ? ' (started)' : ''}, mongodb ${mongo.url}${mongo.owned ? ' (FerretDB, started)' : ''}`);
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all(started.map((s) => s.stop()));
}
