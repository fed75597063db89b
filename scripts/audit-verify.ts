/**
 * npm run audit:verify — verify the hash chains of a hub's audit log.
 *
 *   MONGODB_URI=mongodb://db1,db2,db3/curbside?replicaSet=rs0 npm run audit:verify
 *   MONGODB_URI=... MONGODB_DB=curbside npm run audit:verify -- --expect org-a=<head hash from last time>
 *
 * Reads only. Prints one line per chain (organisation) and a verdict; exits 0 when every chain is
 * intact, 1 when any entry was changed, inserted or removed, 2 when it could not check.
 * Keep the printed head hashes somewhere else (a ticket, a signed e-mail): passing them back with
 * --expect also detects a rewrite of a whole chain by someone with write access to the database.
 */
import { parseArgs } from 'node:util';
import { MongoAuditBackend } from '../server/src/audit/mongo.js';
import { formatVerdict, verifyAuditLog } from '../server/src/audit/verify.js';

const uri = process.env.MONGODB_URI?.trim();
if (!uri) {
  process.stderr.write('audit:verify: set MONGODB_URI (and MONGODB_DB if the database is not in the URI)\n');
  process.exit(2);
}
const expectedHeads: Record<string, string> = {};
let expect: string[] = [];
try {
  expect = parseArgs({ options: { expect: { type: 'string', multiple: true } } }).values.expect ?? [];
} catch (e) {
  process.stderr.write(`audit:verify: ${(e as Error).message}\n`);
  process.exit(2);
}
for (const pair of expect) {
  const [chain, hash] = pair.split('=');
  if (chain && hash) expectedHeads[chain] = hash;
}

const backend = new MongoAuditBackend({ uri, dbName: process.env.MONGODB_DB?.trim() || undefined });
try {
  const verdict = await verifyAuditLog(backend, { expectedHeads });
  process.stdout.write(`${formatVerdict(verdict)}\n`);
  await backend.close();
  process.exit(verdict.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`audit:verify: could not read the audit log: ${(err as Error).message}\n`);
  await backend.close().catch(() => {});
  process.exit(2);
}
