import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/** Asymmetric algorithms only: a shared-secret (HS*) key in a hub config invites key-confusion bugs. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** At most this many verification keys at once: a rotation needs two; more is a mistake. */
export const MAX_VERIFICATION_KEYS = 4;

/** The curve each ES algorithm signs on (node's names). */
const EC_CURVE: Partial<Record<JwtAlgorithm, string>> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/**
 * The identity provider's verification keys: one or more PEM public keys, one after the other
 * (during a signing-key rotation, the old and the new one). Each must be a public key of the kind
 * `algorithm` signs with (RSA of at least 2048 bits for RS and PS, the matching curve for ES),
 * or every token would be refused after a "ready" start.
 *
 * @returns the parsed keys, or why the text is not acceptable (without echoing key material).
 */
export function parseVerificationKeys(pemText: string, algorithm: JwtAlgorithm): { ok: true; keys: KeyObject[] } | { ok: false; reason: string } {
  const blocks = pemText.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
  if (blocks.length === 0) return { ok: false, reason: 'must be a PEM public key ("-----BEGIN PUBLIC KEY-----")' };
  if (blocks.length > MAX_VERIFICATION_KEYS) return { ok: false, reason: `holds ${blocks.length} keys; at most ${MAX_VERIFICATION_KEYS} (old and new during a rotation)` };
  const keys: KeyObject[] = [];
  for (const [i, pem] of blocks.entries()) {
    const which = blocks.length > 1 ? `key ${i + 1} of ${blocks.length}` : 'the key';
    if (!/^-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem)) {
      return { ok: false, reason: `${which} must be a PEM public key ("-----BEGIN PUBLIC KEY-----"); a private key or shared secret does not belong in the hub` };
    }
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      return { ok: false, reason: `${which} is not a readable PEM public key` };
    }
    const mismatch = algorithmMismatch(key, algorithm);
    if (mismatch) return { ok: false, reason: `${which} ${mismatch}` };
    keys.push(key);
  }
  return { ok: true, keys };
}

/** Why `key` cannot verify `algorithm` signatures, or undefined when it can. */
function algorithmMismatch(key: KeyObject, algorithm: JwtAlgorithm): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (algorithm.startsWith('RS') || algorithm.startsWith('PS')) {
    const fits = type === 'rsa' || (algorithm.startsWith('PS') && type === 'rsa-pss');
    if (!fits) return `is an ${type ?? 'unknown'} key, but JWT_ALGORITHM=${algorithm} needs an RSA key`;
    if ((details.modulusLength ?? 0) < 2048) return `is a ${details.modulusLength ?? '?'}-bit RSA key; ${algorithm} needs at least 2048 bits`;
    return undefined;
  }
  const curve = EC_CURVE[algorithm];
  if (type !== 'ec') return `is an ${type ?? 'unknown'} key, but JWT_ALGORITHM=${algorithm} needs an EC key on ${curve}`;
  if (details.namedCurve !== curve) return `is on curve ${details.namedCurve ?? '?'}, but JWT_ALGORITHM=${algorithm} needs ${curve}`;
  return undefined;
}

/** A key's fingerprint for operators: SHA-256 of its SubjectPublicKeyInfo, hex, first 16 bytes. */
export function keyFingerprint(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex').slice(0, 32)}`;
}
