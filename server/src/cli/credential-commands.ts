/**
 * `curbside-admin credentials keygen | publish-key | issue | revoke | show`: the credentialing office's
 * key and its attestations (cli/credentials.ts does the signing; the private key never leaves this machine).
 */
import { AdminPath, CredentialsResultSchema } from '@curbside/shared';
import { z } from 'zod';
import type { CommandContext } from './command-context.js';
import { generateCredentialKey, signAttestation, signRevocation } from './credentials.js';

export type CredentialAction = 'keygen' | 'publish-key' | 'issue' | 'revoke' | 'show';

export async function credentialCommand(action: CredentialAction, ctx: CommandContext): Promise<number> {
  const { hub, need, print, officeKey } = ctx;
  const v = { out: ctx.value('out'), days: ctx.value('days'), reason: ctx.value('reason') };
  switch (action) {
    case 'keygen': {
      const publicKey = await generateCredentialKey(need('out')).catch((err: unknown) => {
        ctx.usage(`--out ${v.out}: ${(err as Error).message} (an existing file is never overwritten)`);
      });
      print({ publicKey }, () => `private key written to ${v.out} (keep it offline); public key: ${publicKey}`);
      return 0;
    }
    case 'publish-key': {
      const { publicKey } = await officeKey();
      const res = await hub.post(AdminPath.CREDENTIAL_KEY, { orgId: need('org'), publicKey }, z.object({ orgId: z.string(), publicKey: z.string(), changed: z.boolean() }));
      print(res, () => `${res.orgId}: credentialing key ${res.publicKey}${res.changed ? ' published' : ' (already published)'}`);
      return 0;
    }
    case 'issue': {
      const days = v.days === undefined ? 365 : Number(v.days);
      if (!Number.isInteger(days) || days < 1 || days > 3650) ctx.usage('--days must be a whole number from 1 to 3650');
      const { privateKey } = await officeKey();
      const fields = { orgId: need('org'), userId: need('user'), deviceId: need('device'), identityKey: need('identity-key'), displayName: need('name'), specialty: need('specialty'), licence: need('licence'), institution: need('institution'), days };
      let document;
      try {
        document = signAttestation(privateKey, fields);
      } catch (err) {
        ctx.usage(`not an attestation: ${(err as Error).message}`);
      }
      const res = await hub.post(AdminPath.CREDENTIALS, { orgId: fields.orgId, document }, z.object({ serial: z.string(), userId: z.string(), expiresAt: z.number() }));
      print(res, () => `${res.userId}: attestation ${res.serial}, valid until ${new Date(res.expiresAt).toISOString()}`);
      return 0;
    }
    case 'revoke': {
      const { privateKey } = await officeKey();
      const document = signRevocation(privateKey, { orgId: need('org'), serial: need('serial'), reason: v.reason });
      const res = await hub.post(AdminPath.CREDENTIAL_REVOKE, { orgId: need('org'), document }, z.object({ serial: z.string() }));
      print(res, () => `attestation ${res.serial} revoked`);
      return 0;
    }
    case 'show': {
      const res = await hub.get(AdminPath.CREDENTIALS, { orgId: need('org'), userId: need('user') }, CredentialsResultSchema);
      const revoked = new Set(res.revocations.map((r) => (JSON.parse(r.signed) as { serial: string }).serial));
      print(res, () =>
        res.attestations
          .map((a) => JSON.parse(a.signed) as { serial: string; specialty: string; deviceId: string; expiresAt: number })
          .map((c) => `${c.serial}  ${c.specialty}  device ${c.deviceId}  until ${new Date(c.expiresAt).toISOString()}${revoked.has(c.serial) ? '  REVOKED' : ''}`)
          .join('\n') || 'no attestations',
      );
      return 0;
    }
  }
}
