/**
 * Care-team membership as a hash-chained log of statements, each signed by the identity key of the
 * member device that made the change. The hub stores and relays the log; every client replays it
 * ({@link replayTeamLog}) and so notices a hub that adds, removes or re-roles members on its own
 * (the 2022–23 Matrix attacks), reorders the log, or edits a statement.
 *
 * Statement (canonical JSON, {@link canonicalJson}: keys sorted, no whitespace):
 *
 *   { v: 1, teamId, index, prev, op, actorUserId, actorDeviceId, issuedAt,
 *     sealedDetails? (create, details: required; the title and description sealed, see team-details.ts),
 *     members? (create: required, the full initial list, the actor as the one owner),
 *     userId?  (add / remove / role: required, the target),  role? (add: defaults to 'member'; role: required) }
 *
 *   A field another op uses is allowed and ignored (as the hub's schema allows it); unknown fields are refused.
 *
 *   prev       hex SHA-256 of the previous statement's canonical UTF-8 bytes; '' for index 0
 *   signature  Ed25519(actor device identity key, "Curbside team statement v1" ‖ 0x00 ‖ UTF-8 canonical statement)
 *
 * Rules ({@link applyStatement}):
 *   create  only as index 0 of a team that does not exist; members unique; exactly one owner, the actor
 *   add     by an owner or admin; the target is not a member; role admin or member; only the owner adds admins
 *   remove  the target is a member; anyone may remove themselves (leave); otherwise by an owner or admin,
 *           never the owner, and only the owner removes admins
 *   role    only the owner; never their own role; the target is a member; the new role is admin or member
 *   details by an owner or admin: new sealed details (a title no longer travels in the clear)
 *   all     teamId, index = previous + 1, prev = hash of the previous statement; the actor is a member
 *
 * Violations are CryptoError('BAD_MESSAGE') with a precise `detail`. These are the hub's rules too
 * (shared `applyTeamStatement` and `TeamStatementSchema`); they must stay in step, since a statement the
 * hub accepts and clients refuse breaks the log for everyone: test/crypto/team-log.test.ts compares
 * the two on random histories. Member lookups here use own properties only (a userId such as
 * "constructor" or "__proto__" is an ordinary id).
 *
 * What this cannot catch: a hub that withholds the newest statements (clients see an older state), and
 * a hub that invents a device for a member in the key directory: the lookup given to
 * {@link replayTeamLog} must only return device keys the client trusts (verified safety numbers).
 */
import { Limits, TEAM_STATEMENT_LABEL, canonicalJson as sharedCanonicalJson, type SealedTeamDetails } from '@curbside/shared';
import { CryptoError, isCryptoError, type CryptoErrorCode } from './errors.js';
import { sign, verifySignature } from './keys.js';
import { concatBytes, getSodium, toHex, utf8 } from './sodium.js';

export type TeamRole = 'owner' | 'admin' | 'member';
export type TeamOp = 'create' | 'add' | 'remove' | 'role' | 'details';

export interface TeamMember {
  userId: string;
  role: TeamRole;
}

export interface TeamStatement {
  v: 1;
  teamId: string;
  index: number;
  /** Hex SHA-256 of the previous statement's canonical form; '' for index 0. */
  prev: string;
  op: TeamOp;
  actorUserId: string;
  actorDeviceId: string;
  /** Milliseconds since the epoch (the actor's clock; informational, not checked). */
  issuedAt: number;
  /** The title and description, sealed under a team details key (create and details). */
  sealedDetails?: SealedTeamDetails;
  members?: TeamMember[];
  userId?: string;
  role?: TeamRole;
}

export interface SignedTeamStatement {
  /** The statement's canonical JSON. */
  statement: string;
  /** 64-byte Ed25519 signature over {@link TEAM_STATEMENT_SIGNATURE_PREFIX} ‖ UTF-8 statement. */
  signature: Uint8Array;
}

/** Membership after a statement. JSON-safe; `members` has its keys in sorted order. */
export interface TeamState {
  teamId: string;
  /** The sealed title and description in force. */
  sealedDetails?: SealedTeamDetails;
  /** Index of the last applied statement. */
  index: number;
  /** statementHash of the last applied statement. */
  head: string;
  members: Record<string, TeamRole>;
}

export interface TeamLogRejection {
  /** Position in the array given to {@link replayTeamLog}. */
  index: number;
  code: CryptoErrorCode;
  /** For logs: what exactly failed. */
  reason: string;
}

export interface TeamLogReplay {
  /** State after every accepted statement; undefined if no create statement was accepted. */
  state: TeamState | undefined;
  rejected: TeamLogRejection[];
}

/** Returns the Ed25519 identity public key of a device the client trusts, or undefined. */
export type IdentityKeyLookup = (userId: string, deviceId: string) => Uint8Array | undefined;

/** Domain label in front of a statement in its signature (NUL-terminated, see keys.ts). */
/** The signature label; one definition, in the shared contract (the hub checks the same). */
export const TEAM_STATEMENT_SIGNATURE_PREFIX: Uint8Array = TEAM_STATEMENT_LABEL;
/** Largest canonical statement, in UTF-16 code units (the hub's limit). */
export const TEAM_STATEMENT_MAX_LENGTH = 64 * 1024;

const ROLES: readonly string[] = ['owner', 'admin', 'member'];
const OPS: readonly string[] = ['create', 'add', 'remove', 'role', 'details'];
const FIELDS: readonly string[] = ['v', 'teamId', 'index', 'prev', 'op', 'actorUserId', 'actorDeviceId', 'issuedAt', 'sealedDetails', 'members', 'userId', 'role'];
const HASH_PATTERN = /^([0-9a-f]{64})?$/;
const KEY_ID_PATTERN = /^[0-9a-f]{32}$/;
const BOX_PATTERN = /^[A-Za-z0-9_-]+$/;
/** The hub's bounds on a sealed box (shared `SealedTeamDetailsSchema`), in base64url characters. */
const BOX_MIN_CHARS = Math.ceil(((24 + 16 + 64) * 4) / 3);
const BOX_MAX_CHARS = Math.ceil((Limits.MAX_SEALED_TEAM_DETAILS_BYTES * 4) / 3);
const ID_PATTERN = /^[\x21-\x7e]+$/;

/** Canonical JSON: one definition, in the shared contract, so the hub hashes and verifies the same bytes. */
export const canonicalJson: (value: unknown) => string = sharedCanonicalJson;

/** Hex SHA-256 (libsodium) of the UTF-8 bytes of a canonical statement. */
export function statementHash(canonical: string): string {
  return toHex(getSodium().crypto_hash_sha256(utf8(canonical)));
}

function invalid(detail: string): never {
  throw new CryptoError('BAD_MESSAGE', detail);
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= Limits.MAX_ID_LENGTH && ID_PATTERN.test(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks the shape of a statement (not the rules, see {@link applyStatement}); throws
 * CryptoError('BAD_MESSAGE'). Accepts exactly what the hub's schema accepts (shared `TeamStatementSchema`):
 * only the known fields, each well-typed where present, the op's own fields required; a field another
 * op uses (sealed details on an add, say) is allowed and ignored.
 */
function checkShape(s: unknown): asserts s is TeamStatement {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) invalid('team statement is not an object');
  const r = s as Record<string, unknown>;
  const op = r.op;
  if (typeof op !== 'string' || !OPS.includes(op)) invalid('team statement: unknown op');
  for (const k of Object.keys(r)) {
    if (r[k] !== undefined && !FIELDS.includes(k)) invalid(`team statement (${op}): unexpected field ${JSON.stringify(k.slice(0, 40))}`);
  }
  if (r.v !== 1) invalid('team statement: unknown version');
  if (!isId(r.teamId)) invalid('team statement: bad teamId');
  if (!isCount(r.index)) invalid('team statement: bad index');
  if (typeof r.prev !== 'string' || !HASH_PATTERN.test(r.prev)) invalid('team statement: bad prev');
  if (!isId(r.actorUserId)) invalid('team statement: bad actorUserId');
  if (!isId(r.actorDeviceId)) invalid('team statement: bad actorDeviceId');
  if (!isCount(r.issuedAt)) invalid('team statement: bad issuedAt');
  const sealed = r.sealedDetails;
  if (sealed !== undefined) {
    if (typeof sealed !== 'object' || sealed === null || Array.isArray(sealed)) invalid(`team statement (${op}): bad sealedDetails`);
    const d = sealed as Record<string, unknown>;
    if (Object.keys(d).some((k) => k !== 'keyId' && k !== 'box')) invalid(`team statement (${op}): unexpected sealedDetails field`);
    if (typeof d.keyId !== 'string' || !KEY_ID_PATTERN.test(d.keyId)) invalid(`team statement (${op}): bad sealedDetails keyId`);
    if (typeof d.box !== 'string' || d.box.length < BOX_MIN_CHARS || d.box.length > BOX_MAX_CHARS || !BOX_PATTERN.test(d.box)) invalid(`team statement (${op}): bad sealedDetails box`);
  }
  const members = r.members;
  if (members !== undefined) {
    if (!Array.isArray(members) || members.length === 0 || members.length > Limits.MAX_CONVERSATION_MEMBERS) invalid(`team statement (${op}): bad members`);
    for (const m of members as unknown[]) {
      if (typeof m !== 'object' || m === null || Array.isArray(m)) invalid(`team statement (${op}): bad member`);
      const entry = m as Record<string, unknown>;
      if (Object.keys(entry).some((k) => k !== 'userId' && k !== 'role')) invalid(`team statement (${op}): unexpected member field`);
      if (!isId(entry.userId)) invalid(`team statement (${op}): bad member userId`);
      if (typeof entry.role !== 'string' || !ROLES.includes(entry.role)) invalid(`team statement (${op}): bad member role`);
    }
  }
  if (r.userId !== undefined && !isId(r.userId)) invalid(`team statement (${op}): bad userId`);
  if (r.role !== undefined && (typeof r.role !== 'string' || !ROLES.includes(r.role))) invalid(`team statement (${op}): bad role`);
  if (op === 'create' || op === 'details') {
    if (sealed === undefined) invalid(`team statement (${op}): no sealedDetails`);
    if (op === 'create' && members === undefined) invalid('team statement (create): no members');
  } else if (r.userId === undefined) {
    invalid(`team statement (${op}): no userId`);
  }
  if (op === 'role' && r.role === undefined) invalid('team statement (role): no role');
}

/**
 * Parses a statement's canonical JSON. Not JSON, not a well-formed statement, or not in canonical
 * form (so exactly one encoding hashes and verifies): CryptoError('BAD_MESSAGE').
 */
export function parseTeamStatement(canonical: string): TeamStatement {
  if (typeof canonical !== 'string') invalid('team statement is not a string');
  if (canonical.length > TEAM_STATEMENT_MAX_LENGTH) invalid('team statement too long');
  let value: unknown;
  try {
    value = JSON.parse(canonical);
  } catch {
    invalid('team statement is not JSON');
  }
  checkShape(value);
  if (canonicalJson(value) !== canonical) invalid('team statement is not in canonical form');
  return value;
}

function signedMessage(canonical: string): Uint8Array {
  return concatBytes(TEAM_STATEMENT_SIGNATURE_PREFIX, utf8(canonical));
}

/**
 * Canonicalises and signs a statement with the actor device's Ed25519 identity private key (64 bytes).
 * The statement's shape is checked first (CryptoError('BAD_MESSAGE')); the rules are not (that
 * needs the team state: call {@link applyStatement} on your own state first).
 */
export function signStatement(statement: TeamStatement, identityPrivateKey: Uint8Array): SignedTeamStatement {
  checkShape(statement);
  const canonical = canonicalJson(statement);
  if (canonical.length > TEAM_STATEMENT_MAX_LENGTH) invalid('team statement too long');
  return { statement: canonical, signature: sign(identityPrivateKey, signedMessage(canonical)) };
}

/** Whether `signed.signature` is the identity key's signature over the statement string. Never throws. */
export function verifySignedStatement(signed: SignedTeamStatement, identityPublicKey: Uint8Array): boolean {
  if (typeof signed !== 'object' || signed === null) return false;
  if (typeof signed.statement !== 'string' || !(signed.signature instanceof Uint8Array) || !(identityPublicKey instanceof Uint8Array)) return false;
  return verifySignature(identityPublicKey, signedMessage(signed.statement), signed.signature);
}

function roleOf(members: Record<string, TeamRole>, userId: string): TeamRole | undefined {
  return Object.hasOwn(members, userId) ? members[userId] : undefined;
}

function sortedMembers(entries: Iterable<[string, TeamRole]>): Record<string, TeamRole> {
  // Object.fromEntries defines own properties (a userId "__proto__" stays data).
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Applies one statement to a team's state (undefined before its create statement) and returns the new
 * state; `state` is not modified. Any rule violation (module comment): CryptoError('BAD_MESSAGE').
 * Does not check signatures: {@link replayTeamLog} does.
 */
export function applyStatement(state: TeamState | undefined, statement: TeamStatement): TeamState {
  checkShape(statement);
  const s = statement;
  const fail = (why: string): never => invalid(`team statement ${s.index} (${s.op}) of ${s.teamId}: ${why}`);
  const head = statementHash(canonicalJson(s));

  if (s.op === 'create') {
    if (state !== undefined) fail('the team already exists');
    if (s.index !== 0) fail('create must be index 0');
    if (s.prev !== '') fail('create has no previous statement');
    const members = new Map<string, TeamRole>();
    for (const m of s.members!) {
      if (members.has(m.userId)) fail(`${m.userId} is listed twice`);
      members.set(m.userId, m.role);
    }
    const owners = s.members!.filter((m) => m.role === 'owner');
    if (owners.length !== 1) fail(`create needs exactly one owner, has ${owners.length}`);
    if (owners[0]!.userId !== s.actorUserId) fail('the creator must be the owner');
    return { teamId: s.teamId, sealedDetails: s.sealedDetails!, index: 0, head, members: sortedMembers(members) };
  }

  if (state === undefined) return fail('the team does not exist yet');
  if (s.teamId !== state.teamId) fail(`statement is for team ${s.teamId}, not ${state.teamId}`);
  if (s.index !== state.index + 1) fail(`expected index ${state.index + 1}`);
  if (s.prev !== state.head) fail('does not chain from the previous statement (prev is not its hash)');
  const actorRole = roleOf(state.members, s.actorUserId) ?? fail(`the actor ${s.actorUserId} is not a member`);
  if (s.op === 'details') {
    if (actorRole === 'member') fail('only an owner or admin changes the title');
    return { teamId: state.teamId, sealedDetails: s.sealedDetails!, index: s.index, head, members: state.members };
  }
  const target = s.userId!;
  const targetRole = roleOf(state.members, target);
  const members = new Map(Object.entries(state.members));

  switch (s.op) {
    case 'add': {
      const role = s.role ?? 'member';
      if (targetRole !== undefined) fail(`${target} is already a member`);
      if (actorRole === 'member') fail('only an owner or admin adds members');
      if (role === 'owner') fail('a team has one owner: add as admin or member');
      if (role === 'admin' && actorRole !== 'owner') fail('only the owner adds admins');
      members.set(target, role);
      break;
    }
    case 'remove': {
      if (targetRole === undefined) fail(`${target} is not a member`);
      if (target !== s.actorUserId) {
        if (actorRole === 'member') fail('only an owner or admin removes others');
        if (targetRole === 'owner') fail('the owner cannot be removed by others');
        if (targetRole === 'admin' && actorRole !== 'owner') fail('only the owner removes admins');
      }
      members.delete(target);
      break;
    }
    case 'role': {
      if (actorRole !== 'owner') fail('only the owner changes roles');
      if (target === s.actorUserId) fail('the owner cannot change their own role');
      if (targetRole === undefined) fail(`${target} is not a member`);
      if (s.role === 'owner') fail('a role change sets admin or member (a team has one owner)');
      members.set(target, s.role!);
      break;
    }
  }
  return { teamId: state.teamId, ...(state.sealedDetails ? { sealedDetails: state.sealedDetails } : {}), index: s.index, head, members: sortedMembers(members) };
}

/**
 * Verifies and applies a team's log in order. Each entry is checked: well-formed canonical
 * statement, actor device known to `lookupIdentityKey` (else 'BAD_SIGNATURE', "unknown device"),
 * signature by that device's identity key ('BAD_SIGNATURE'), rules ({@link applyStatement}). An entry
 * failing anything is reported in `rejected` and not applied; statements chaining from it then fail too
 * and are reported as well. Exceptions other than CryptoErrors (from the lookup) propagate.
 */
export function replayTeamLog(signedStatements: readonly SignedTeamStatement[], lookupIdentityKey: IdentityKeyLookup): TeamLogReplay {
  let state: TeamState | undefined;
  const rejected: TeamLogRejection[] = [];
  signedStatements.forEach((signed, index) => {
    try {
      if (typeof signed !== 'object' || signed === null || typeof signed.statement !== 'string' || !(signed.signature instanceof Uint8Array)) {
        invalid('not a signed statement');
      }
      const statement = parseTeamStatement(signed.statement);
      const key = lookupIdentityKey(statement.actorUserId, statement.actorDeviceId);
      if (key === undefined) {
        throw new CryptoError('BAD_SIGNATURE', `statement ${statement.index}: signed by unknown device ${statement.actorUserId}/${statement.actorDeviceId}`);
      }
      if (!verifySignedStatement(signed, key)) {
        throw new CryptoError('BAD_SIGNATURE', `statement ${statement.index}: signature by ${statement.actorUserId}/${statement.actorDeviceId} does not verify`);
      }
      state = applyStatement(state, statement);
    } catch (e) {
      if (!isCryptoError(e)) throw e;
      rejected.push({ index, code: e.code, reason: e.detail });
    }
  });
  return { state, rejected };
}
