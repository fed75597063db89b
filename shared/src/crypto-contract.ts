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

/** Domain separation for signed device lists: Ed25519(signer identity, deviceListMessage(...)). */
export const DEVICE_LIST_SIGNATURE_PREFIX: Uint8Array = new TextEncoder().encode('Curbside device list v1\u0000');

/** What a signed device list commits to (everything but the signature). */
export interface DeviceListContent {
  version: number;
  devices: ReadonlyArray<{ deviceId: string; identityKey: Uint8Array }>;
  signerDeviceId: string;
}

/**
 * The bytes a device-list signature covers: prefix ‖ userId ‖ version ‖ signer ‖ devices sorted by
 * id, each string and key length-prefixed (u32 big-endian), so no two lists share an encoding.
 */
export function deviceListMessage(userId: string, list: DeviceListContent): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [DEVICE_LIST_SIGNATURE_PREFIX];
  const field = (bytes: Uint8Array) => parts.push(u32be(bytes.length), bytes);
  field(enc.encode(userId));
  parts.push(u32be(list.version));
  field(enc.encode(list.signerDeviceId));
  const devices = [...list.devices].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  parts.push(u32be(devices.length));
  for (const d of devices) {
    field(enc.encode(d.deviceId));
    field(d.identityKey);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** `n` as 4 bytes, big-endian: the length prefix of the encodings signed here. */
export function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}
