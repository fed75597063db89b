/**
 * The few cryptographic conventions both sides must agree on. The hub verifies signed-prekey
 * signatures (so a bad upload is refused early); everything else is the SDK's business.
 */

/** Domain separation for signed-prekey signatures: Ed25519(identity, PREFIX ‖ prekeyPublic). */
export const SIGNED_PREKEY_SIGNATURE_PREFIX: Uint8Array = new TextEncoder().encode('Curbside signed prekey v1\u0000');

export function signedPrekeyMessage(prekeyPublic: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNED_PREKEY_SIGNATURE_PREFIX.length + prekeyPublic.length);
  out.set(SIGNED_PREKEY_SIGNATURE_PREFIX, 0);
  out.set(prekeyPublic, SIGNED_PREKEY_SIGNATURE_PREFIX.length);
  return out;
}
