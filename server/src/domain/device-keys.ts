import {
  ErrorCode,
  Limits,
  signedPrekeyMessage,
  type DeviceIdentity,
  type KeysClaimRequestSchema,
  type KeysPublishRequestSchema,
  type PrekeyBundle,
  type SignedPrekey,
  type UserListRequestSchema,
} from '@curbside/shared';
import type { z } from 'zod';
import { HubError } from '../errors.js';
import type { Storage } from '../ports/storage.js';
import type { Caller } from './message-relay.js';
import { DeviceDirectory } from './device-directory.js';
import { ed25519Verify } from './ed25519.js';

/** Ed25519 verification of a signed prekey under a raw 32-byte identity key. */
export function signedPrekeyIsValid(identityKey: Uint8Array, spk: SignedPrekey): boolean {
  return ed25519Verify(identityKey, signedPrekeyMessage(spk.publicKey), spk.signature);
}

/**
 * The public half of X3DH on the hub: devices publish identity keys and prekeys, peers claim
 * bundles. The hub checks signatures so a corrupt upload fails at once, but clients verify again:
 * they never trust the hub with key authenticity.
 */
export class DeviceKeys {
  constructor(
    private readonly storage: Storage,
    private readonly directory: DeviceDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  /** @returns whether this was the device's first publish (its contacts should hear of it). */
  async publish(caller: Caller, req: z.output<typeof KeysPublishRequestSchema>): Promise<{ firstPublish: boolean; oneTimePrekeys: number }> {
    // A publish racing the device's revocation must not bring its keys back.
    if ((await this.storage.deviceRevokedAt(caller.orgId, caller.deviceId)) !== undefined) {
      throw new HubError(ErrorCode.AUTH_REVOKED, 'This device was revoked');
    }
    if (req.signedPrekey && !signedPrekeyIsValid(req.identityKey, req.signedPrekey)) {
      throw new HubError(ErrorCode.BAD_SIGNATURE, 'The signed prekey signature does not verify under this identity key');
    }
    const result = await this.storage.publishKeys({
      orgId: caller.orgId,
      deviceId: caller.deviceId,
      identityKey: req.identityKey,
      signedPrekey: req.signedPrekey,
      oneTimePrekeys: req.oneTimePrekeys,
      maxStored: Limits.MAX_STORED_PREKEYS,
      now: this.now(),
    });
    switch (result.status) {
      case 'ok':
        // Every time, not only on the first publish: a retry after a failed bump must bump.
        await this.directory.changed(caller.orgId, caller.userId);
        return { firstPublish: result.firstPublish, oneTimePrekeys: result.oneTimePrekeys };
      case 'identity_mismatch':
        throw new HubError(ErrorCode.IDENTITY_MISMATCH, 'This device already has another identity key; register a new device id for a new key');
      case 'signed_prekey_required':
        throw new HubError(ErrorCode.INVALID_PAYLOAD, "A device's first key publish must include its signed prekey");
      case 'too_many_prekeys':
        throw new HubError(ErrorCode.PAYLOAD_TOO_LARGE, `The hub keeps at most ${Limits.MAX_STORED_PREKEYS} one-time prekeys per device`, { stored: result.stored });
    }
  }

  count(caller: Caller): Promise<number> {
    return this.storage.countOneTimePrekeys(caller.orgId, caller.deviceId);
  }

  /** `devices:list`: the devices (listed ones, for users with a signed list) and each signed list's version. */
  async list(caller: Caller, req: z.output<typeof UserListRequestSchema>): Promise<{ devices: DeviceIdentity[]; listVersions: Array<{ userId: string; version: number }> }> {
    const { devices, listVersions } = await this.directory.usersDevices(caller.orgId, req.userIds);
    return { devices, listVersions };
  }

  /** Bundles for the users' devices; never one for the caller's own device. */
  async claim(caller: Caller, req: z.output<typeof KeysClaimRequestSchema>): Promise<PrekeyBundle[]> {
    // Resolve the devices first: claiming for our own device would burn one of its one-time prekeys.
    const candidates = req.deviceIds ?? (await this.directory.identities(caller.orgId, req.userIds)).map((d) => d.deviceId);
    const deviceIds = candidates.filter((d) => d !== caller.deviceId);
    if (deviceIds.length === 0) return [];
    return this.storage.claimBundles(caller.orgId, req.userIds, deviceIds);
  }

  /** Users who share a conversation with this one (and the user themself): who hears about a new device. */
  async contactsOf(caller: Caller): Promise<string[]> {
    const conversations = await this.storage.listConversationsForUser(caller.orgId, caller.userId);
    return [...new Set([caller.userId, ...conversations.flatMap((c) => c.memberUserIds)])];
  }
}
