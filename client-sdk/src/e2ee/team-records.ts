/**
 * What the care-team messenger keeps and sends, as data: the per-team record (verified state,
 * membership epochs, past members), this device's sender key and who confirmed it, the team-keys
 * payload carried over 1:1 sessions, where keys live in the device store, and the associated data of a
 * team message. Pure functions and types; the messenger (team-messenger.ts) acts on them.
 */
import { teamRoleOf, type TeamState } from '@curbside/shared';
import { CryptoError, TEAM_DETAILS_KEY_BYTES, decodeDistribution, encodeDistribution, toHex } from '../crypto/index.js';

/** First byte of a 1:1 payload that carries a sender key (message key packages start with 1). */
export const SENDER_KEY_PAYLOAD = 2;
/** First byte of a 1:1 payload that carries a team's keys: its details key and/or a sender key. */
export const TEAM_KEYS_PAYLOAD = 3;

/** What this device keeps per care team. */
export interface TeamRecord {
  state: TeamState;
  /** Seq of the statement that made this user a member (messages before it are history they never had). */
  joinedAtSeq: number | null;
  /** A member was removed since this device last made its sender key: make a new one before sending. */
  rotate: boolean;
  /** Seq of the statement from which each current member belongs (absent in records made before it was kept). */
  memberSince?: Record<string, number>;
  /**
   * Members who left, with the seqs they belonged between (the newest 200). A message they sent is
   * judged by the membership at its own seq: this device may apply its own removal statement before
   * it has handled messages sequenced ahead of it.
   */
  pastMembers?: Array<{ userId: string; fromSeq: number; untilSeq: number }>;
  /**
   * Membership epochs: each statement's seq and the log head after it, oldest first (the newest
   * 1000). A message at seq S must be bound to the head of the last statement before S.
   */
  epochs?: Array<{ seq: number; head: string }>;
}

/** Tries of one send whose device list the hub said was stale (each with the list fixed). */
export const MAX_STALE_RETRIES = 3;
export const MAX_PAST_MEMBERS = 200;
export const MAX_EPOCHS = 1000;

/**
 * The membership epoch a message at `seq` must be bound to: the head after the last statement
 * sequenced before it. Records kept before epochs were (or history past the kept window): the
 * current head, which is what every message sent since has been bound to.
 */
export function epochAt(record: TeamRecord, seq: number): string {
  const before = (record.epochs ?? []).filter((e) => e.seq < seq);
  return before.at(-1)?.head ?? record.state.head;
}

/** Whether `userId` belonged to the team at `seq`: a member now, or one who left after `seq`. */
export function memberAt(record: TeamRecord, userId: string, seq: number): boolean {
  if (teamRoleOf(record.state.members, userId)) return true;
  return (record.pastMembers ?? []).some((p) => p.userId === userId && p.fromSeq < seq && seq < p.untilSeq);
}

export interface OwnSenderKey {
  state: Uint8Array;
  /**
   * Devices that have this key: each once it confirmed a message that carried the key (other users'
   * devices with their delivered receipt, this user's own with a receipt of their own, see
   * `confirmSiblingShare`).
   */
  distributedTo: string[];
  /**
   * Devices sent this key along with a message (by message id) that have not confirmed it yet. They
   * get it again with the next message: a share damaged on its way must not cost every later message.
   */
  awaiting?: Record<string, string[]>;
}

/** Messages whose key shares wait for a receipt, per sender key (oldest dropped first). */
export const MAX_AWAITING_MESSAGES = 64;

/** What one 1:1 share to a member device carries for a team. */
export interface TeamKeys {
  distribution?: ReturnType<typeof decodeDistribution>;
  detailsKey?: Uint8Array;
}

/**
 * A team's keys as sent over a 1:1 session: `3 ‖ u16 length ‖ team id ‖ u8 has-details-key ‖
 * [details key (32)] ‖ [sender key distribution]`. Naming the team inside the authenticated payload
 * stops a hub from filing one team's keys under another. (`2 ‖ u16 length ‖ team id ‖ distribution`,
 * a sender key alone, is still read.)
 */
export function teamKeysPayload(teamId: string, keys: { distribution?: Parameters<typeof encodeDistribution>[0]; detailsKey?: Uint8Array | undefined }): Uint8Array {
  const team = new TextEncoder().encode(teamId);
  const details = keys.detailsKey ?? new Uint8Array(0);
  const dist = keys.distribution ? encodeDistribution(keys.distribution) : new Uint8Array(0);
  const out = new Uint8Array(4 + team.length + details.length + dist.length);
  out[0] = TEAM_KEYS_PAYLOAD;
  new DataView(out.buffer).setUint16(1, team.length);
  out.set(team, 3);
  out[3 + team.length] = details.length ? 1 : 0;
  out.set(details, 4 + team.length);
  out.set(dist, 4 + team.length + details.length);
  return out;
}

export function readTeamKeysPayload(payload: Uint8Array, expectedTeamId: string): TeamKeys {
  const kind = payload[0];
  if (payload.length < 3 || (kind !== SENDER_KEY_PAYLOAD && kind !== TEAM_KEYS_PAYLOAD)) throw new CryptoError('BAD_MESSAGE', 'expected team keys');
  const length = new DataView(payload.buffer, payload.byteOffset + 1, 2).getUint16(0);
  if (payload.length < 3 + length) throw new CryptoError('BAD_MESSAGE', 'truncated team keys payload');
  const teamId = new TextDecoder().decode(payload.subarray(3, 3 + length));
  if (teamId !== expectedTeamId) throw new CryptoError('BAD_MESSAGE', 'team keys name another team');
  let rest = payload.subarray(3 + length);
  if (kind === SENDER_KEY_PAYLOAD) return { distribution: decodeDistribution(rest) };
  const hasDetailsKey = rest[0];
  if (hasDetailsKey !== 0 && hasDetailsKey !== 1) throw new CryptoError('BAD_MESSAGE', 'bad team keys flags');
  rest = rest.subarray(1);
  const keys: TeamKeys = {};
  if (hasDetailsKey) {
    if (rest.length < TEAM_DETAILS_KEY_BYTES) throw new CryptoError('BAD_MESSAGE', 'truncated team details key');
    keys.detailsKey = rest.slice(0, TEAM_DETAILS_KEY_BYTES);
    rest = rest.subarray(TEAM_DETAILS_KEY_BYTES);
  }
  if (rest.length) keys.distribution = decodeDistribution(rest);
  // No key at all: a session repair (`repairSession`), whose work was done by opening the share.
  return keys;
}

/** Where a team details key is kept (in the `senderKeys` namespace, by the key id its statement names). */
export function detailsKeyName(teamId: string, keyId: string): string {
  return `details\n${teamId}\n${keyId}`;
}

export function ownKeyName(teamId: string): string {
  return `own\n${teamId}`;
}

export function receivedKeyName(teamId: string, userId: string, deviceId: string, keyId: Uint8Array): string {
  return `recv\n${teamId}\n${userId}\n${deviceId}\n${toHex(keyId)}`;
}

/**
 * Associated data of a team message: who sent it, under which id, for which membership epoch.
 * @internal Exported for the attacker-side checks in the tests (what a removed member could try).
 */
export function groupAd(teamId: string, userId: string, deviceId: string, clientMessageId: string, epoch: string): Uint8Array {
  return new TextEncoder().encode(['curbside-group-v2', teamId, userId, deviceId, clientMessageId, epoch].join('\n'));
}
