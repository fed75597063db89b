/**
 * Care-team statements on the device: parse, hash, sign and verify. A team's membership is a
 * hash-chained log of statements, each signed by the identity key of the member device that made the
 * change; the hub stores and relays it, and every client checks each statement as it arrives, so it
 * notices a hub that adds, removes or re-roles members on its own, reorders the log, or edits a
 * statement.
 *
 * There is one definition of a statement and one of the rules, in the shared contract: the shape is
 * `TeamStatementSchema`, the rules `applyTeamStatement` (shared/src/team-rules.ts). The hub applies the
 * same two, so a statement it accepts is one every client accepts. This module adds what only a device
 * does: the canonical-form check (exactly one encoding hashes and verifies), the hash, and Ed25519.
 *
 *   prev       hex SHA-256 of the previous statement's canonical UTF-8 bytes; '' for index 0
 *   signature  Ed25519(actor device identity key, "Curbside team statement v1" ‖ 0x00 ‖ UTF-8 canonical statement)
 */
import {
  TEAM_STATEMENT_LABEL,
  TeamStatementSchema,
  applyTeamStatement,
  canonicalJson,
  teamStatementMessage,
  type SignedStatement,
  type TeamState,
  type TeamStatement,
} from '@curbside/shared';
import { CryptoError } from './errors.js';
import { sign, verifySignature } from './keys.js';
import { getSodium, toHex, utf8 } from './sodium.js';

export { canonicalJson };
export type { TeamState, TeamStatement };
/** A statement in canonical JSON and the actor device's signature over it. */
export type SignedTeamStatement = SignedStatement;

/** The signature label; one definition, in the shared contract (the hub checks the same). */
export const TEAM_STATEMENT_SIGNATURE_PREFIX: Uint8Array = TEAM_STATEMENT_LABEL;
/** Largest canonical statement, in UTF-16 code units (the hub's limit). */
export const TEAM_STATEMENT_MAX_LENGTH = 64 * 1024;

/** Hex SHA-256 (libsodium) of the UTF-8 bytes of a canonical statement: a log head, and the next `prev`. */
export function statementHash(canonical: string): string {
  return toHex(getSodium().crypto_hash_sha256(utf8(canonical)));
}

function shapeOf(value: unknown): TeamStatement {
  const parsed = TeamStatementSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'statement'}: ${i.message}`).join('; ');
  throw new CryptoError('BAD_MESSAGE', `team statement: ${why}`);
}

/**
 * Parses a statement's canonical JSON: well-formed by the shared schema and in canonical form.
 * @throws CryptoError BAD_MESSAGE (not JSON, not a statement, not canonical, too long)
 */
export function parseTeamStatement(canonical: string): TeamStatement {
  if (typeof canonical !== 'string') throw new CryptoError('BAD_MESSAGE', 'team statement is not a string');
  if (canonical.length > TEAM_STATEMENT_MAX_LENGTH) throw new CryptoError('BAD_MESSAGE', 'team statement too long');
  let value: unknown;
  try {
    value = JSON.parse(canonical);
  } catch {
    throw new CryptoError('BAD_MESSAGE', 'team statement is not JSON');
  }
  const statement = shapeOf(value);
  if (canonicalJson(statement) !== canonical) throw new CryptoError('BAD_MESSAGE', 'team statement is not in canonical form');
  return statement;
}

/**
 * Canonicalises and signs a statement with the actor device's Ed25519 identity private key (64 bytes).
 * Its shape is checked first; the rules are not (they need the team state: {@link applyStatement}).
 * @throws CryptoError BAD_MESSAGE for a malformed or too long statement
 */
export function signStatement(statement: TeamStatement, identityPrivateKey: Uint8Array): SignedTeamStatement {
  // The schema is strict (no unknown field passes), so the parsed statement is the one signed.
  const canonical = canonicalJson(shapeOf(statement));
  if (canonical.length > TEAM_STATEMENT_MAX_LENGTH) throw new CryptoError('BAD_MESSAGE', 'team statement too long');
  return { statement: canonical, signature: sign(identityPrivateKey, teamStatementMessage(canonical)) };
}

/** Whether `signed.signature` is the identity key's signature over the statement string. Never throws. */
export function verifySignedStatement(signed: SignedTeamStatement, identityPublicKey: Uint8Array): boolean {
  if (typeof signed !== 'object' || signed === null) return false;
  if (typeof signed.statement !== 'string' || !(signed.signature instanceof Uint8Array) || !(identityPublicKey instanceof Uint8Array)) return false;
  return verifySignature(identityPublicKey, teamStatementMessage(signed.statement), signed.signature);
}

/**
 * The team's state after `statement` (the shared rules, with this statement's hash as the new head);
 * `state` is not modified.
 * @throws TeamRuleError (shared) when the statement breaks a rule
 */
export function applyStatement(state: TeamState | undefined, statement: TeamStatement): TeamState {
  return applyTeamStatement(state, statement, statementHash(canonicalJson(statement)));
}
