/**
 * A care team's title and description, sealed end to end so the hub never holds them in the clear
 * (a title like "Ward 4B discharge - Mr J. Smith bed 12" is patient data).
 *
 *   key       32 random bytes, made afresh by the device that sets the details (create, `details`)
 *   keyId     hex of SHA-256("Curbside team details key v1" ‖ 0x00 ‖ key)[0..16): names the key in the
 *             signed statement and commits to it, so a share of another key under the same id is refused
 *   plaintext canonical JSON {"description"?, "title", "v":1}, padded with spaces to a multiple of 64 bytes
 *             (the hub learns the length in 64-byte steps only)
 *   box       base64url(nonce(24) ‖ XChaCha20-Poly1305(key, nonce, plaintext, ad))
 *   ad        "Curbside team details v1" ‖ 0x00 ‖ teamId ‖ 0x00 ‖ keyId: a box cannot be moved to another
 *             team or presented under another key id
 *
 * One key seals one version of the details. Member devices get it over their 1:1 sessions (like sender
 * keys); details set after a member's removal are sealed under a key the removed member never receives.
 */
import { Limits, canonicalJson, type SealedTeamDetails } from '@curbside/shared';
import { CryptoError } from './errors.js';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, aeadDecrypt, aeadEncrypt, concatBytes, getSodium, randomBytes, toHex, utf8 } from './sodium.js';

/** What a care team's members see as its name. */
export interface TeamDetails {
  /** Trimmed, 1 to `Limits.MAX_TITLE_LENGTH` characters. */
  title: string;
  /** Up to `Limits.MAX_TEAM_DESCRIPTION_LENGTH` characters; absent when empty. */
  description?: string;
}

export const TEAM_DETAILS_KEY_BYTES = AEAD_KEY_BYTES;
const PAD_BLOCK = 64;
const KEY_ID_LABEL = utf8('Curbside team details key v1\u0000');
const AD_LABEL = 'Curbside team details v1\u0000';

/** A new random team details key. */
export function generateTeamDetailsKey(): Uint8Array {
  return randomBytes(TEAM_DETAILS_KEY_BYTES);
}

/** The key id of a team details key (32 hex digits). */
export function teamDetailsKeyId(key: Uint8Array): string {
  if (key.length !== TEAM_DETAILS_KEY_BYTES) throw new CryptoError('BAD_MESSAGE', 'a team details key is 32 bytes');
  return toHex(getSodium().crypto_hash_sha256(concatBytes(KEY_ID_LABEL, key)).subarray(0, 16));
}

/** Details a clinician typed that cannot be sealed: which field, and whether it was empty or too long. */
export class TeamDetailsError extends RangeError {
  override readonly name = 'TeamDetailsError';
  constructor(
    readonly field: 'title' | 'description',
    readonly problem: 'empty' | 'too-long',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Trims and checks details as a clinician typed them. A title that is empty after trimming, or either
 * field longer than its limit: {@link TeamDetailsError} (the SDK turns it into a typed CurbsideError).
 */
export function normalizeTeamDetails(details: TeamDetails): TeamDetails {
  const title = typeof details?.title === 'string' ? details.title.trim() : '';
  if (title.length === 0) throw new TeamDetailsError('title', 'empty', 'A care team needs a title');
  if (title.length > Limits.MAX_TITLE_LENGTH) throw new TeamDetailsError('title', 'too-long', `A care team title has at most ${Limits.MAX_TITLE_LENGTH} characters`);
  const description = typeof details.description === 'string' ? details.description.trim() : '';
  if (description.length > Limits.MAX_TEAM_DESCRIPTION_LENGTH) {
    throw new TeamDetailsError('description', 'too-long', `A care team description has at most ${Limits.MAX_TEAM_DESCRIPTION_LENGTH} characters`);
  }
  return description ? { title, description } : { title };
}

function associatedData(teamId: string, keyId: string): Uint8Array {
  return utf8(`${AD_LABEL}${teamId}\u0000${keyId}`);
}

/** Seals (normalised) details for a team under `key`. Details that break the limits: {@link TeamDetailsError}. */
export function sealTeamDetails(teamId: string, key: Uint8Array, details: TeamDetails): SealedTeamDetails {
  const clean = normalizeTeamDetails(details);
  const json = utf8(canonicalJson({ v: 1, title: clean.title, description: clean.description }));
  const padded = new Uint8Array(Math.ceil((json.length + 1) / PAD_BLOCK) * PAD_BLOCK).fill(0x20);
  padded.set(json, 0);
  const keyId = teamDetailsKeyId(key);
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const sealed = concatBytes(nonce, aeadEncrypt(key, nonce, padded, associatedData(teamId, keyId)));
  // Unreachable within the character limits (at most 6 bytes per escaped character); kept as the hub's bound.
  if (sealed.length > Limits.MAX_SEALED_TEAM_DETAILS_BYTES) throw new TeamDetailsError('description', 'too-long', 'The title and description are too long together');
  return { keyId, box: getSodium().to_base64(sealed, getSodium().base64_variants.URLSAFE_NO_PADDING) };
}

/**
 * Opens sealed details with `key`. A key that is not the one named (`keyId`), a box that does not
 * authenticate for this team and key id: CryptoError('DECRYPT_FAILED'); a box that authenticates but
 * does not hold well-formed details: CryptoError('BAD_MESSAGE').
 */
export function openTeamDetails(teamId: string, key: Uint8Array, sealed: SealedTeamDetails): TeamDetails {
  if (teamDetailsKeyId(key) !== sealed.keyId) throw new CryptoError('DECRYPT_FAILED', 'the team details are sealed under another key');
  let bytes: Uint8Array;
  try {
    bytes = getSodium().from_base64(sealed.box, getSodium().base64_variants.URLSAFE_NO_PADDING);
  } catch {
    throw new CryptoError('BAD_MESSAGE', 'sealed team details are not base64url');
  }
  if (bytes.length < AEAD_NONCE_BYTES) throw new CryptoError('DECRYPT_FAILED', 'sealed team details are truncated');
  const plaintext = aeadDecrypt(key, bytes.subarray(0, AEAD_NONCE_BYTES), bytes.subarray(AEAD_NONCE_BYTES), associatedData(teamId, sealed.keyId));
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    throw new CryptoError('BAD_MESSAGE', 'sealed team details are not JSON');
  }
  const r = value as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || r.v !== 1 || typeof r.title !== 'string' || (r.description !== undefined && typeof r.description !== 'string')) {
    throw new CryptoError('BAD_MESSAGE', 'sealed team details are not well formed');
  }
  try {
    return normalizeTeamDetails({ title: r.title, ...(typeof r.description === 'string' ? { description: r.description } : {}) });
  } catch {
    throw new CryptoError('BAD_MESSAGE', 'sealed team details break the limits');
  }
}
