/**
 * End-to-end encryption for 1:1 sessions: X3DH, Double Ratchet, safety numbers, all on libsodium.
 * `await sodiumReady()` once before using the synchronous functions.
 */
export { CryptoError, isCryptoError, type CryptoErrorCode } from './errors.js';
export {
  sodiumReady,
  getSodium,
  concatBytes,
  constantTimeEqual,
  bytesEqual,
  randomBytes,
  wipe,
  toHex,
  fromHex,
  aeadEncrypt,
  aeadDecrypt,
  sha512,
  type Sodium,
} from './sodium.js';
export { hmacSha256, hkdfSha256, hkdfExtract, hkdfExpand, HKDF_SHA256_MAX_OUTPUT } from './hkdf.js';
export {
  generateIdentityKeyPair,
  generateKeyPairSync,
  generatePrekey,
  generatePrekeys,
  generateSignedPrekey,
  verifySignedPrekey,
  sign,
  verifySignature,
  identityPublicToX25519,
  identityPrivateToX25519,
  x25519,
  SIGNED_PREKEY_CONTEXT,
  type IdentityKeyPair,
  type KeyPair,
  type Prekey,
  type SignedPrekey,
  type PublicPrekey,
  type PublicSignedPrekey,
} from './keys.js';
export { x3dhInitiate, x3dhRespond, X3DH_INFO, type PrekeyBundle, type X3dhInitiatorResult, type X3dhResponderResult } from './x3dh.js';
export {
  RatchetSession,
  chainStep,
  rootStep,
  messageKeyMaterial,
  MAX_GAP,
  MAX_SKIPPED_KEYS,
  MAX_OLD_RECEIVING_CHAINS,
  MAX_RETIRED_CHAINS,
  RATCHET_HEADER_BYTES,
  RATCHET_MESSAGE_VERSION,
  type PendingPreKey,
} from './ratchet.js';
export {
  encodeSessionMessage,
  decodeSessionMessage,
  startSession,
  acceptSession,
  encryptSessionMessage,
  decryptSessionMessage,
  preKeyMessageMatchesSession,
  type PreKeyMessage,
  type RatchetMessage,
  type SessionMessage,
  type PrekeyLookup,
  type StartSessionOptions,
  type AcceptSessionOptions,
} from './session-cipher.js';
export {
  fingerprintHash,
  fingerprintDigits,
  displayableFingerprint,
  scannableFingerprint,
  compareScannableFingerprints,
  fingerprintKeyBytes,
  computeFingerprint,
  safetyNumber,
  FINGERPRINT_ITERATIONS,
  type Fingerprint,
} from './fingerprint.js';
