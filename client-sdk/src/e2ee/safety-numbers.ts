/**
 * The safety number two clinicians compare: 60 digits over both users' ids and every listed device's
 * identity key (sorted, so both sides encode them the same way), and what the user did with it.
 */
import type { DeviceIdentity } from '@curbside/shared';
import { FINGERPRINT_ITERATIONS, computeFingerprint, concatBytes, fingerprintKeyBytes } from '../crypto/index.js';
import type { SafetyNumber } from './types.js';

export interface SafetyNumberInput {
  me: { userId: string; deviceId: string };
  /** This device's identity key (the hub may not list it yet). */
  own: Uint8Array;
  mine: DeviceIdentity[];
  userId: string;
  theirs: DeviceIdentity[];
  /** Their devices whose key changed unaccepted. */
  changed: number;
  /** Their devices the user verified. */
  verifiedDevices: number;
}

/** The number, and its state: `changed` after a key change, `verified` when every device was, `devices-changed` when only some were. */
export async function safetyNumberOf(input: SafetyNumberInput): Promise<SafetyNumber> {
  const { me, own, mine, userId, theirs } = input;
  const myKeys = mine.map((d) => (d.deviceId === me.deviceId ? own : d.identityKey));
  if (!mine.some((d) => d.deviceId === me.deviceId)) myKeys.push(own);
  const fingerprint = await computeFingerprint(2, FINGERPRINT_ITERATIONS, utf8(me.userId), combinedKeys(myKeys), utf8(userId), combinedKeys(theirs.map((d) => d.identityKey)));
  // Some devices verified, others not: the signed list gained a device since the user compared numbers.
  const state = input.changed ? 'changed' : theirs.length > 0 && input.verifiedDevices === theirs.length ? 'verified' : input.verifiedDevices > 0 ? 'devices-changed' : 'unverified';
  return { ...fingerprint, state };
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** All of a user's device keys, sorted so both sides encode them the same way. */
function combinedKeys(keys: Uint8Array[]): Uint8Array {
  return concatBytes(...keys.map((k) => fingerprintKeyBytes(k)).sort((a, b) => compareBytes(a, b)));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
