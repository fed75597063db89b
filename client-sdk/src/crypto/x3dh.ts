/**
 * X3DH (Signal's "Extended Triple Diffie-Hellman", revision 1) on libsodium.
 *
 *     DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   [DH4 = DH(EK_A, OPK_B)]
 *     SK  = HKDF-SHA-256(IKM = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], salt = 0x00×32, info = "Curbside X3DH v1", L = 32)
 *     AD  = IK_A ‖ IK_B        (Ed25519 identity public keys, initiator first: 64 bytes)
 *
 * IK are Ed25519 identity keys, converted to X25519 for DH (see keys.ts). The signed prekey's
 * signature is checked before the prekey is used. X3DH has no key confirmation: the session counts
 * as confirmed once the initiator has received a reply (see session-cipher.ts).
 */
import { CryptoError } from './errors.js';
import { hkdfSha256 } from './hkdf.js';
import {
  ED25519_PUBLIC_BYTES,
  X25519_BYTES,
  generateKeyPairSync,
  identityPrivateToX25519,
  identityPublicToX25519,
  verifySignedPrekey,
  x25519,
  type IdentityKeyPair,
  type KeyPair,
  type PublicPrekey,
  type PublicSignedPrekey,
} from './keys.js';
import { concatBytes, sodiumReady, utf8, wipe } from './sodium.js';

export const X3DH_INFO = utf8('Curbside X3DH v1');
export const X3DH_SHARED_KEY_BYTES = 32;

/** What the hub hands out for a device: its identity key, signed prekey and (if any left) one one-time prekey. */
export interface PrekeyBundle {
  identityKey: Uint8Array;
  signedPrekey: PublicSignedPrekey;
  oneTimePrekey?: PublicPrekey;
}

export interface X3dhInitiatorResult {
  /** SK: 32 bytes, the Double Ratchet's initial root key. */
  sharedKey: Uint8Array;
  /** AD = IK_A ‖ IK_B. */
  associatedData: Uint8Array;
  /** EK_A public, sent to the responder. */
  ephemeralPublic: Uint8Array;
  signedPrekeyId: number;
  oneTimePrekeyId?: number;
}

export interface X3dhResponderResult {
  sharedKey: Uint8Array;
  associatedData: Uint8Array;
}

function deriveSharedKey(dhs: Uint8Array[]): Uint8Array {
  const ikm = concatBytes(new Uint8Array(32).fill(0xff), ...dhs);
  const sk = hkdfSha256(ikm, new Uint8Array(32), X3DH_INFO, X3DH_SHARED_KEY_BYTES);
  wipe(ikm, ...dhs);
  return sk;
}

/**
 * Initiator side. Verifies the signed prekey's signature under the bundle's identity key first
 * (CryptoError('BAD_SIGNATURE') otherwise); a low-order key anywhere is CryptoError('WEAK_KEY').
 */
export async function x3dhInitiate(ourIdentity: IdentityKeyPair, bundle: PrekeyBundle): Promise<X3dhInitiatorResult> {
  await sodiumReady();
  if (bundle.identityKey.length !== ED25519_PUBLIC_BYTES) throw new CryptoError('BAD_MESSAGE', 'bundle identity key must be 32 bytes');
  if (!verifySignedPrekey(bundle.identityKey, bundle.signedPrekey)) {
    throw new CryptoError('BAD_SIGNATURE', `signed prekey ${bundle.signedPrekey.keyId} has no valid signature by the bundle identity key`);
  }
  if (bundle.oneTimePrekey !== undefined && bundle.oneTimePrekey.publicKey.length !== X25519_BYTES) {
    throw new CryptoError('BAD_MESSAGE', 'one-time prekey must be 32 bytes');
  }
  const theirIdentityX = identityPublicToX25519(bundle.identityKey);
  const ourIdentityX = identityPrivateToX25519(ourIdentity.privateKey);
  const ephemeral = generateKeyPairSync();
  try {
    const dhs = [
      x25519(ourIdentityX, bundle.signedPrekey.publicKey),
      x25519(ephemeral.privateKey, theirIdentityX),
      x25519(ephemeral.privateKey, bundle.signedPrekey.publicKey),
    ];
    if (bundle.oneTimePrekey !== undefined) dhs.push(x25519(ephemeral.privateKey, bundle.oneTimePrekey.publicKey));
    const result: X3dhInitiatorResult = {
      sharedKey: deriveSharedKey(dhs),
      associatedData: concatBytes(ourIdentity.publicKey, bundle.identityKey),
      ephemeralPublic: ephemeral.publicKey,
      signedPrekeyId: bundle.signedPrekey.keyId,
    };
    if (bundle.oneTimePrekey !== undefined) result.oneTimePrekeyId = bundle.oneTimePrekey.keyId;
    return result;
  } finally {
    wipe(ourIdentityX, ephemeral.privateKey);
  }
}

/**
 * Responder side, from the initiator's identity key and ephemeral key (carried by the first
 * message) and our own signed prekey pair and, if the initiator used one, one-time prekey pair.
 */
export async function x3dhRespond(
  ourIdentity: IdentityKeyPair,
  ourSignedPrekey: KeyPair,
  ourOneTimePrekey: KeyPair | undefined,
  theirIdentityPublic: Uint8Array,
  theirEphemeralPublic: Uint8Array,
): Promise<X3dhResponderResult> {
  await sodiumReady();
  if (theirIdentityPublic.length !== ED25519_PUBLIC_BYTES) throw new CryptoError('BAD_MESSAGE', 'initiator identity key must be 32 bytes');
  const theirIdentityX = identityPublicToX25519(theirIdentityPublic);
  const ourIdentityX = identityPrivateToX25519(ourIdentity.privateKey);
  try {
    const dhs = [
      x25519(ourSignedPrekey.privateKey, theirIdentityX),
      x25519(ourIdentityX, theirEphemeralPublic),
      x25519(ourSignedPrekey.privateKey, theirEphemeralPublic),
    ];
    if (ourOneTimePrekey !== undefined) dhs.push(x25519(ourOneTimePrekey.privateKey, theirEphemeralPublic));
    return { sharedKey: deriveSharedKey(dhs), associatedData: concatBytes(theirIdentityPublic, ourIdentity.publicKey) };
  } finally {
    wipe(ourIdentityX);
  }
}
