/**
 * The credentialing office's side of verified credentials (shared/src/credentials.ts), for
 * `curbside-admin credentials …`: its Ed25519 key pair (the private half stays in a file the office
 * keeps; the hub only ever gets the public half) and the documents it signs.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { CredentialRevocationSchema, CredentialSchema, canonicalJson, credentialMessage, type Credential, type CredentialRevocation, type SignedCredential } from '@curbside/shared';

/** A new key pair: the private key as PKCS#8 PEM (written with mode 0600), and the public key in base64url. */
export async function generateCredentialKey(file: string): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  return rawPublicKey(publicKey);
}

export async function loadCredentialKey(file: string): Promise<{ privateKey: KeyObject; publicKey: string }> {
  const privateKey = createPrivateKey(await readFile(file));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${file} is not an Ed25519 private key`);
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an Ed25519 key');
  return jwk.x;
}

function signDocument(privateKey: KeyObject, document: Credential | CredentialRevocation): SignedCredential {
  const signed = canonicalJson(document);
  return { signed, signature: sign(null, credentialMessage(signed), privateKey).toString('base64url') };
}

/** Sign an attestation (a new serial; valid from now for `days`). Its fields are checked against the shared schema first. */
export function signAttestation(privateKey: KeyObject, fields: Omit<Credential, 'v' | 'type' | 'serial' | 'issuedAt' | 'expiresAt'> & { days: number; now?: number }): SignedCredential {
  const now = fields.now ?? Date.now();
  const { days, now: _now, ...rest } = fields;
  const credential = CredentialSchema.parse({ v: 1, type: 'attestation', serial: randomUUID(), ...rest, issuedAt: now, expiresAt: now + days * 86_400_000 });
  return signDocument(privateKey, credential);
}

export function signRevocation(privateKey: KeyObject, fields: { orgId: string; serial: string; reason?: string | undefined }): SignedCredential {
  const revocation = CredentialRevocationSchema.parse({ v: 1, type: 'revocation', orgId: fields.orgId, serial: fields.serial, revokedAt: Date.now(), ...(fields.reason ? { reason: fields.reason } : {}) });
  return signDocument(privateKey, revocation);
}
