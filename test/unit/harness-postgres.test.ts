/**
 * The test harness itself (test/support/services.ts): a missing PostgreSQL fails the run with what to
 * install, and the databases it creates for FerretDB's PostgreSQL backend are dropped again.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createPostgresDatabase, freePort } from '../support/services.js';

function databases(): string[] {
  const r = spawnSync('psql', ['-X', '-A', '-t', '-d', process.env.POSTGRESQL_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', '-c', 'SELECT datname FROM pg_database'], { encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('test harness: PostgreSQL for FerretDB', function () {
  const saved = process.env.POSTGRESQL_URL;
  afterEach(() => {
    if (saved === undefined) delete process.env.POSTGRESQL_URL;
    else process.env.POSTGRESQL_URL = saved;
  });

  it('creates a database of its own and drops it again', () => {
    const db = createPostgresDatabase('curbside_harness');
    expect(db.database).to.match(/^curbside_harness_[a-z0-9_]+$/);
    expect(new URL(db.url).pathname).to.equal(`/${db.database}`);
    expect(databases()).to.include(db.database);
    db.drop();
    expect(databases()).not.to.include(db.database);
  });

  it('fails, naming what to install, when no PostgreSQL answers', async () => {
    process.env.POSTGRESQL_URL = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
    expect(() => createPostgresDatabase()).to.throw(/apt-get install -y postgresql/);
  });
});
