/**
 * Regression for docs/faults.md bug 3: a hub node started a second or two before a database restart
 * refused every handshake for minutes, while its database pings worked. Its first revocation check
 * created the DeviceRevocation collection through mongoose's Model.init(), which ran while the
 * database was down; mongoose keeps that first promise, rejected, forever, so every later check
 * failed with the same stale "connection … closed" error. Real FerretDB, restarted on the same port.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoStorage } from '@curbside/server';
import { eventually } from '../support/hub.js';
import { freePort, startFerretDb, uniqueName } from '../support/services.js';

describe('fault regressions: a database restart during a lazy collection init', function () {
  this.timeout(120_000);
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('the revocation check recovers once the database is back (it used to fail until the process restarted)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'curbside-dbrestart-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    let db = await startFerretDb({ port, dir });
    cleanups.push(() => db.stop());
    const storage = new MongoStorage({ uri: `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=1500`, dbName: uniqueName('dbrestart'), writeConcern: 1 });
    cleanups.push(() => storage.close());
    await storage.init(); // the node is up; the revocation collection is made on first use

    await db.stop();
    // First use while the database is down: fails, as it should.
    const down = await storage.deviceRevokedAt('org-a', 'lee-phone').then(
      () => 'answered',
      (e: unknown) => (e instanceof Error ? e.name : String(e)),
    );
    expect(down).to.match(/^Mongo/);

    db = await startFerretDb({ port, dir });
    await storage.ping();
    // The same storage object answers again once the database is back.
    await eventually(
      () => storage.deviceRevokedAt('org-a', 'lee-phone').then(
        (r) => r === undefined,
        () => false,
      ),
      'revocation check answers after the restart',
      20_000,
    );
    await storage.touchDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-phone', now: 900 });
    expect(await storage.revokeDevice({ orgId: 'org-a', userId: 'dr-lee', deviceId: 'lee-phone', now: 1000 })).to.deep.equal({ status: 'revoked' });
    expect(await storage.deviceRevokedAt('org-a', 'lee-phone')).to.equal(1000);
  });
});
