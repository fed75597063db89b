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
import { MongoAuditBackend } from '../server/src/audit/mongo.js';
import { formatVerdict, verifyAuditLog } from '../server/src/audit/verify.js';

const uri = process.env.MONGODB_URI?.trim();
if (!uri) {
  process.stderr.write('audit:verify: set MONGODB_URI (and MONGODB_DB if the database is not in the URI)\n');
  process.exit(2);
}
const expectedHeads: Record<string, string> = {};
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--expect' && args[i + 1]) {
    const [chain, hash] = args[++i]!.split('=');
    if (chain && hash) expectedHeads[chain] = hash;
  } else {
    process.stderr.write(`audit:verify: unknown argument ${args[i]}\n`);
    process.exit(2);
  }
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
