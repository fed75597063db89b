/**
 * A credentialing office for tests: an Ed25519 key made in a temporary directory with the CLI's own
 * functions, published and used through the hub's admin HTTP API (what `curbside-admin credentials`
 * calls), so tests with many credentialed clinicians need no process per attestation.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { ADMIN_OPERATOR_HEADER, AdminPath } from '@curbside/shared';
import type { CurbsideClient } from '@curbside/client-sdk';
import { generateCredentialKey, loadCredentialKey, signAttestation, signRevocation } from '../../server/src/cli/credentials.js';
import { ADMIN } from './admin-cli.js';

export interface Office {
  keyFile: string;
  publicKey: string;
  privateKey: KeyObject;
  /** Attest the client's connected device (its identity key) for `specialty`; the serial. */
  attest(client: CurbsideClient, userId: string, deviceId: string, specialty: string): Promise<string>;
  /** Attest a device by the identity key it published (base64url), e.g. a browser's read from the database. */
  attestKey(identityKey: string, userId: string, deviceId: string, specialty: string, displayName?: string): Promise<string>;
  revoke(serial: string): Promise<void>;
}

async function post(url: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, [ADMIN_OPERATOR_HEADER]: 'credentialing-office', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json: unknown = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** An office for `orgId` whose key the hub at `url` (started `withAdmin`) publishes. */
export async function credentialOffice(url: string, orgId: string): Promise<Office> {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'curbside-office-')), 'office.pem');
  await generateCredentialKey(keyFile);
  const { privateKey, publicKey } = await loadCredentialKey(keyFile);
  await post(url, AdminPath.CREDENTIAL_KEY, { orgId, publicKey });
  const attestKey: Office['attestKey'] = async (identityKey, userId, deviceId, specialty, displayName = `Dr ${userId}`) => {
    const document = signAttestation(privateKey, { orgId, userId, deviceId, identityKey, displayName, specialty, licence: `GMC ${userId.length}${deviceId.length}`, institution: 'St Elsewhere', days: 30 });
    return ((await post(url, AdminPath.CREDENTIALS, { orgId, document })) as { serial: string }).serial;
  };
  return {
    keyFile,
    publicKey,
    privateKey,
    attestKey,
    async attest(client, userId, deviceId, specialty) {
      return attestKey(await client.credentials.myIdentityKey(), userId, deviceId, specialty);
    },
    async revoke(serial) {
      await post(url, AdminPath.CREDENTIAL_REVOKE, { orgId, document: signRevocation(privateKey, { orgId, serial }) });
    },
  };
}
