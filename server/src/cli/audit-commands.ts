/**
 * `curbside-admin audit export | verify`: the audit log as NDJSON, and its hash chains checked on the hub
 * or, for an export, offline with the same checks (audit/verify.ts).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { AdminAuditVerdictSchema, AdminPath } from '@curbside/shared';
import { formatVerdict, verifyAuditLog, type AuditVerdict } from '../audit/verify.js';
import type { AuditEntry, AuditReader } from '../audit/port.js';
import type { CommandContext } from './command-context.js';
import { CliError } from './errors.js';

export async function auditCommand(action: 'export' | 'verify', ctx: CommandContext & { out: NodeJS.WritableStream }): Promise<number> {
  const { hub, print, out } = ctx;
  const v = { chain: ctx.value('chain'), out: ctx.value('out'), file: ctx.value('file') };
  switch (action) {
    case 'export': {
      const body = await hub.stream(AdminPath.AUDIT_EXPORT, { chain: v.chain });
      try {
        await pipeline(body, v.out ? createWriteStream(v.out, { mode: 0o600 }) : out, { end: v.out !== undefined });
      } catch (err) {
        // `| head`: the reader had enough.
        if ((err as { code?: string }).code !== 'EPIPE') throw new CliError(`export interrupted: ${(err as Error).message}`, 1);
      }
      return 0;
    }
    case 'verify': {
      const verdict = v.file ? await verifyExport(v.file) : await hub.get(AdminPath.AUDIT_VERIFY, {}, AdminAuditVerdictSchema, [409]);
      print(verdict, () => formatVerdict(verdict as AuditVerdict));
      return verdict.ok ? 0 : 1;
    }
  }
}

/** Verify an NDJSON export offline: the same checks as on the hub, without the recorded heads. */
async function verifyExport(file: string): Promise<AuditVerdict> {
  const chains = new Map<string, AuditEntry[]>();
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      let entry: AuditEntry;
      try {
        entry = JSON.parse(line) as AuditEntry;
      } catch {
        throw new CliError(`${file}:${n}: not a JSON line`, 1);
      }
      if (typeof entry.chain !== 'string' || typeof entry.index !== 'number') throw new CliError(`${file}:${n}: not an audit entry`, 1);
      const list = chains.get(entry.chain) ?? [];
      list.push(entry);
      chains.set(entry.chain, list);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 64);
  }
  for (const list of chains.values()) list.sort((a, b) => a.index - b.index);
  const reader: AuditReader = {
    chains: async () => [...chains.keys()],
    entries: async (chain, afterIndex, limit) => (chains.get(chain) ?? []).filter((e) => e.index > afterIndex).slice(0, limit),
    recordedHead: async () => undefined,
  };
  return verifyAuditLog(reader);
}
