import { createPublicKey, verify } from 'node:crypto';

/**
 * Ed25519 verification under a raw 32-byte public key (a device's identity key): the one check
 * behind signed prekeys, care-team statements and signed device lists. False for a key that is not
 * a valid point, as for a bad signature.
 */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
