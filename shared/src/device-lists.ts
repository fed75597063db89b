import { z } from 'zod';
import { IdSchema, IdentityKeySchema, bytesSchema, type Ack } from './schemas.js';
import { Limits } from './limits.js';
import type { ClientEvent, ServerEvent } from './events.js';

/**
 * Signed device lists (cross-signing). Each clinician's devices are named in a list signed by one
 * of their own devices, with a version that only grows:
 * - version 1 is signed by a device it lists (the first device, at registration);
 * - version n+1 is signed by a device of version n (linking a new device, dropping a lost one).
 * The hub checks every list it is given against the one it holds and keeps the last
 * `Limits.MAX_DEVICE_LIST_HISTORY` versions; clients check the chain again from the last version
 * they verified, and encrypt only to listed devices. A device the list does not name (inserted
 * into the database, or not linked yet) is sent nothing and its sends are refused.
 * The signed bytes are `deviceListMessage` (crypto-contract.ts).
 */

export const ListedDeviceSchema = z.strictObject({ deviceId: IdSchema, identityKey: IdentityKeySchema });
export type ListedDevice = z.output<typeof ListedDeviceSchema>;

export const DeviceListVersionSchema = z.number().int().min(1).max(2 ** 31 - 1);

export const SignedDeviceListSchema = z.strictObject({
  version: DeviceListVersionSchema,
  devices: z
    .array(ListedDeviceSchema)
    .min(1)
    .max(Limits.MAX_DEVICES_PER_USER)
    .refine((ds) => new Set(ds.map((d) => d.deviceId)).size === ds.length, 'a device is listed once'),
  /** The device whose identity key made `signature`. */
  signerDeviceId: IdSchema,
  /** Ed25519 by the signer's identity key over `deviceListMessage(userId, list)`. */
  signature: bytesSchema(64).refine((b) => b.byteLength === 64, 'a signature is 64 bytes'),
});
export type SignedDeviceList = z.output<typeof SignedDeviceListSchema>;

/** `devices:sign`: publish the caller's user's next signed device list (signed by the calling device). */
export const DeviceListPublishRequestSchema = z.strictObject({ list: SignedDeviceListSchema });
export type DeviceListPublishRequest = z.input<typeof DeviceListPublishRequestSchema>;
export const DeviceListPublishResultSchema = z.object({ version: DeviceListVersionSchema });
export type DeviceListPublishResult = z.output<typeof DeviceListPublishResultSchema>;

/** `devices:lists`: the signed lists of some users after the version the caller verified last (0: all kept). */
export const DeviceListsRequestSchema = z.strictObject({
  users: z
    .array(z.strictObject({ userId: IdSchema, after: z.number().int().nonnegative().max(2 ** 31 - 1) }))
    .min(1)
    .max(Limits.MAX_KEY_QUERY_USERS),
});
export type DeviceListsRequest = z.input<typeof DeviceListsRequestSchema>;

/** One user's chain: `version` is the newest; `lists` the versions after `after`, oldest first (at most the history kept). */
export const DeviceListChainSchema = z.object({
  userId: IdSchema,
  version: z.number().int().nonnegative(),
  lists: z.array(SignedDeviceListSchema).max(Limits.MAX_DEVICE_LIST_HISTORY),
});
export type DeviceListChain = z.output<typeof DeviceListChainSchema>;
export const DeviceListsResultSchema = z.object({ chains: z.array(DeviceListChainSchema) });
export type DeviceListsResult = z.output<typeof DeviceListsResultSchema>;

/** Server push `devices:changed`: a user (a contact, or this user) published a new signed device list. */
export const DeviceListChangedSchema = z.object({ userId: IdSchema, version: DeviceListVersionSchema });
export type DeviceListChanged = z.output<typeof DeviceListChangedSchema>;

declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.DEVICE_LIST_PUBLISH]: (req: DeviceListPublishRequest, ack: (res: Ack<DeviceListPublishResult>) => void) => void;
    [ClientEvent.DEVICE_LISTS]: (req: DeviceListsRequest, ack: (res: Ack<DeviceListsResult>) => void) => void;
  }
  interface ServerToClientEvents {
    [ServerEvent.DEVICE_LIST_CHANGED]: (notice: DeviceListChanged) => void;
  }
}
