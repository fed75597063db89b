import { compositeKey } from './keys.js';
import { z } from 'zod';
import { IdSchema, IdentityKeySchema, TimestampSchema, type Ack } from './schemas.js';
import type { ClientEvent, ServerEvent } from './events.js';

/**
 * Device management: a clinician lists their own devices and revokes a lost one. Revoking drops
 * the device's live sockets on every hub node, deletes its public keys from the directory (no one
 * can start a new session with it), tells its contacts (`device:removed`), and refuses its
 * handshakes from then on (`AUTH_REVOKED`).
 */

/** `devices:mine`: no parameters. */
export const DevicesMineRequestSchema = z.strictObject({});
export type DevicesMineRequest = z.input<typeof DevicesMineRequestSchema>;

/** One of the caller's own devices, as the hub knows it. */
export const OwnDeviceSchema = z.object({
  deviceId: IdSchema,
  createdAt: TimestampSchema,
  lastSeenAt: TimestampSchema,
  /** Whether the device has published keys (others can start sessions with it). */
  hasKeys: z.boolean(),
  /** The device that asked. */
  current: z.boolean(),
  /** Its published identity key (what a link code is checked against). */
  identityKey: IdentityKeySchema.optional(),
  /** Whether the user's signed device list names it (false: waiting to be linked, or no list yet). */
  listed: z.boolean(),
  /** Set once the device was revoked; a revoked device never authenticates again. */
  revokedAt: TimestampSchema.optional(),
});
export type OwnDevice = z.infer<typeof OwnDeviceSchema>;
export const DevicesMineResultSchema = z.object({ devices: z.array(OwnDeviceSchema) });
export type DevicesMineResult = z.infer<typeof DevicesMineResultSchema>;

/** `device:revoke`: revoke one of the caller's own devices (typically a lost one, from another device). */
export const DeviceRevokeRequestSchema = z.strictObject({ deviceId: IdSchema });
export type DeviceRevokeRequest = z.input<typeof DeviceRevokeRequestSchema>;
export const DeviceRevokeResultSchema = z.object({
  deviceId: IdSchema,
  /** False when the device had been revoked already (revoking is idempotent). */
  revoked: z.boolean(),
});
export type DeviceRevokeResult = z.infer<typeof DeviceRevokeResultSchema>;

/** Server push `device:removed`: a contact's (or the user's own) device was revoked; stop encrypting to it. */
export const DeviceRemovedSchema = z.object({ userId: IdSchema, deviceId: IdSchema });
export type DeviceRemoved = z.infer<typeof DeviceRemovedSchema>;

/** Rooms the security layer adds: every socket authenticated with a token that has a `jti` joins its token room. */
export const SecurityRooms = {
  token: (orgId: string, tokenId: string) => compositeKey('t', orgId, tokenId),
} as const;

// The typed socket.io event maps live in socket.ts; these entries extend them (declaration merging),
// so this feature does not edit the shared maps.
declare module './socket.js' {
  interface ClientToServerEvents {
    [ClientEvent.DEVICES_MINE]: (req: DevicesMineRequest, ack: (res: Ack<DevicesMineResult>) => void) => void;
    [ClientEvent.DEVICE_REVOKE]: (req: DeviceRevokeRequest, ack: (res: Ack<DeviceRevokeResult>) => void) => void;
  }
  interface ServerToClientEvents {
    [ServerEvent.DEVICE_REMOVED]: (device: DeviceRemoved) => void;
  }
}
