/**
 * Signed device lists (shared/src/device-lists.ts): signing, verifying a chain of versions, and the
 * link code a new device shows so another device of the same user can check its identity key.
 *
 * A chain is trusted from the version this device verified last (`pinned`): each next version must
 * be exactly one higher and signed by a device of the version before it. With nothing pinned
 * (first contact), the first version offered must be version 1, signed by a device it names, and
 * everything after it chains from there: the hub cannot start a user's history anywhere but at its
 * start, so what a peer first trusts is the user's registration (trust on first use, as for
 * identity keys; comparing safety numbers settles it).
 */
import { deviceListMessage, u32be, type DeviceListContent } from '@curbside/shared';
import { fingerprintDigits } from './fingerprint.js';
import { sign, verifySignature, type IdentityKeyPair } from './keys.js';
import { bytesEqual, concatBytes, getSodium, utf8 } from './sodium.js';

export interface ListedDeviceKey {
  deviceId: string;
  identityKey: Uint8Array;
}

/** A device list with its signature, as on the wire. */
export interface SignedDeviceListData extends DeviceListContent {
  devices: ListedDeviceKey[];
  signature: Uint8Array;
}

/** Sign `devices` as version `version` of `userId`'s list, as `signerDeviceId` with its identity key. */
export function signDeviceList(identity: IdentityKeyPair, userId: string, signerDeviceId: string, version: number, devices: ListedDeviceKey[]): SignedDeviceListData {
  const content = { version, devices: devices.map((d) => ({ deviceId: d.deviceId, identityKey: new Uint8Array(d.identityKey) })), signerDeviceId };
  return { ...content, signature: sign(identity.privateKey, deviceListMessage(userId, content)) };
}

/** Why a chain was not accepted. */
export type DeviceListChainProblem = 'rollback' | 'gap' | 'bad-signature' | 'unknown-signer' | 'malformed';

export type DeviceListChainResult =
  | { ok: true; list: SignedDeviceListData; added: string[]; removed: string[]; changed: boolean }
  | { ok: false; problem: DeviceListChainProblem; version: number };

/**
 * Verify `chain` (versions after `pinned`, oldest first) and return the newest list, with the
 * devices it adds and removes compared to `pinned`. `newestVersion` is the version the hub says is
 * current: a chain that stops short of it, or a version below `pinned`, is refused.
 */
export function verifyDeviceListChain(userId: string, pinned: SignedDeviceListData | undefined, chain: readonly SignedDeviceListData[], newestVersion: number): DeviceListChainResult {
  const from = pinned?.version ?? 0;
  if (newestVersion < from) return { ok: false, problem: 'rollback', version: newestVersion };
  let previous = pinned;
  for (const list of chain) {
    if (list.version <= (previous?.version ?? 0)) continue; // already verified (a hub may resend some)
    if (list.version !== (previous?.version ?? 0) + 1) return { ok: false, problem: 'gap', version: list.version };
    const ids = new Set(list.devices.map((d) => d.deviceId));
    if (ids.size !== list.devices.length || list.devices.length === 0) return { ok: false, problem: 'malformed', version: list.version };
    const signer = (previous ?? list).devices.find((d) => d.deviceId === list.signerDeviceId);
    if (!signer) return { ok: false, problem: 'unknown-signer', version: list.version };
    if (!verifySignature(signer.identityKey, deviceListMessage(userId, list), list.signature)) return { ok: false, problem: 'bad-signature', version: list.version };
    previous = list;
  }
  if ((previous?.version ?? 0) !== newestVersion) return { ok: false, problem: 'gap', version: newestVersion };
  if (!previous) return { ok: false, problem: 'gap', version: 0 };
  return { ok: true, list: previous, ...deviceListDiff(pinned, previous), changed: previous.version !== from };
}

/** Devices `after` adds and removes compared to `before`; a device whose key differs counts as both. */
export function deviceListDiff(before: SignedDeviceListData | undefined, after: SignedDeviceListData): { added: string[]; removed: string[] } {
  const was = new Map((before?.devices ?? []).map((d) => [d.deviceId, d.identityKey]));
  const is = new Map(after.devices.map((d) => [d.deviceId, d.identityKey]));
  const missingFrom = (a: Map<string, Uint8Array>, b: Map<string, Uint8Array>) => [...a].filter(([id, key]) => !b.has(id) || !bytesEqual(b.get(id)!, key)).map(([id]) => id);
  return { added: missingFrom(is, was), removed: missingFrom(was, is) };
}

const LINK_CODE_CONTEXT = utf8('Curbside device link code v1\u0000');

/**
 * The code a new device shows (as digits to type, or in a QR code) so another device of the same
 * user can check, before signing it into the list, that the identity key the hub presents is the
 * one on the new device's screen: 30 digits (100 bits) of SHA-512 over user, device and key.
 */
export function deviceLinkCode(userId: string, deviceId: string, identityKey: Uint8Array): string {
  const u = utf8(userId);
  const d = utf8(deviceId);
  const hash = getSodium().crypto_hash_sha512(concatBytes(LINK_CODE_CONTEXT, u32be(u.length), u, u32be(d.length), d, identityKey));
  return fingerprintDigits(hash).replace(/(\d{5})(?=\d)/g, '$1 ');
}
