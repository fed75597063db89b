/**
 * `curbside-admin credentials pseudonym-key | sign-pseudonyms | revoke-pseudonym-key`: the office's
 * pseudonym commands (cli/pseudonyms.ts does the cryptography). Every request is checked with the
 * office's own key before anything is signed: the hub is a mailbox here, not an authority.
 */
import { AdminPath, AdminPseudonymRequestsResponseSchema, CredentialsResultSchema, parseSigned, PseudonymRequestDocSchema } from '@curbside/shared';
import { z } from 'zod';
import type { CommandContext } from './command-context.js';
import { blindSignAll, checkPseudonymRequest, createPseudonymKey, ledgerKey, loadPseudonymKeys, readLedger, signPseudonymKeyRevocation, writeLedger } from './pseudonyms.js';

/** What the commands need of the CLI (admin.ts). */
export type PseudonymAction = 'pseudonym-key' | 'sign-pseudonyms' | 'revoke-pseudonym-key';

function whole(ctx: CommandContext, name: 'per-user' | 'days', fallback: number, max: number): number {
  const raw = ctx.value(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) ctx.usage(`--${name} must be a whole number from 1 to ${max}`);
  return n;
}

export async function pseudonymCommand(action: PseudonymAction, ctx: CommandContext): Promise<number> {
  const { privateKey } = await ctx.officeKey();
  const orgId = ctx.need('org');
  if (action === 'pseudonym-key') {
    const fields = { orgId, epoch: ctx.need('epoch'), specialty: ctx.need('specialty'), perUser: whole(ctx, 'per-user', 20, 1000), days: whole(ctx, 'days', 30, 366) };
    let made;
    try {
      made = await createPseudonymKey(privateKey, ctx.need('out'), fields);
    } catch (err) {
      ctx.usage(`cannot make the token key: ${(err as Error).message} (an existing file is never overwritten)`);
    }
    const res = await ctx.hub.post(AdminPath.PSEUDONYM_KEYS, { orgId, document: made.certificate }, z.object({ epoch: z.string(), specialty: z.string(), changed: z.boolean() }));
    ctx.print({ ...res, perUser: made.key.perUser, notAfter: made.key.notAfter, privateKey: made.files.privateKey }, () => `${res.specialty}, epoch ${res.epoch}: token key published (${made.key.perUser} per clinician, until ${new Date(made.key.notAfter).toISOString()}); private key in ${made.files.privateKey}`);
    return 0;
  }
  if (action === 'revoke-pseudonym-key') {
    const document = signPseudonymKeyRevocation(privateKey, { orgId, epoch: ctx.need('epoch'), specialty: ctx.need('specialty') });
    const res = await ctx.hub.post(AdminPath.PSEUDONYM_REVOKE, { orgId, document }, z.object({ epoch: z.string(), specialty: z.string() }));
    ctx.print(res, () => `${res.specialty}, epoch ${res.epoch}: revoked; none of its tokens is accepted from now on`);
    return 0;
  }
  const dir = ctx.need('keys');
  const held = await loadPseudonymKeys(privateKey, dir).catch((err: unknown) => ctx.usage(`--keys ${dir}: ${(err as Error).message}`));
  const ledger = await readLedger(dir);
  const { requests } = await ctx.hub.get(AdminPath.PSEUDONYM_REQUESTS, { orgId }, AdminPseudonymRequestsResponseSchema);
  const answered: Array<{ requestId: string; count: number }> = [];
  const refused: Array<{ requestId?: string; reason: string }> = [];
  for (const request of requests) {
    const userId = parseSigned(PseudonymRequestDocSchema, request.request)?.userId;
    const credentials = userId ? await ctx.hub.get(AdminPath.CREDENTIALS, { orgId, userId }, CredentialsResultSchema) : { attestations: [], revocations: [] };
    const check = checkPseudonymRequest(request, { orgId, officeKey: privateKey, held, credentials, ledger, now: Date.now() });
    if (!check.ok) {
      refused.push({ ...(check.doc ? { requestId: check.doc.requestId } : {}), reason: check.reason });
      continue;
    }
    let blindSignatures: string[];
    try {
      blindSignatures = await blindSignAll(check.held, check.doc.blinded);
    } catch {
      // One bad request must not stop the office's run: a blinded value out of the key's range is refused.
      refused.push({ requestId: check.doc.requestId, reason: 'a blinded message is not valid for this key' });
      continue;
    }
    // Counted before it leaves the office: a crash after the post must not give anyone a second allowance.
    ledger.answered.push(check.doc.requestId);
    ledger.issued[ledgerKey(check.doc)] = (ledger.issued[ledgerKey(check.doc)] ?? 0) + blindSignatures.length;
    await writeLedger(dir, ledger);
    await ctx.hub.post(AdminPath.PSEUDONYM_ANSWERS, { orgId, requestId: check.doc.requestId, blindSignatures }, z.object({ requestId: z.string(), count: z.number() }));
    answered.push({ requestId: check.doc.requestId, count: blindSignatures.length });
  }
  ctx.print({ answered, refused }, () => [...answered.map((a) => `${a.requestId}: ${a.count} tokens signed`), ...refused.map((r) => `${r.requestId ?? '?'}: refused, ${r.reason}`)].join('\n') || 'no pending requests');
  return 0;
}
