import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { DeviceAdmin, OwnDeviceRecord } from '../../ports/device-admin.js';
import { docKey, toBytes, type DeviceDoc, type StorageModels, collectionOptions } from './models.js';
import { ensureOnce } from './ensure.js';

/** A revoked device's tombstone. Kept for good: a revoked device id never authenticates again. */
export interface DeviceRevocationDoc {
  /** `docKey(orgId, deviceId)`. */
  _id: string;
  orgId: string;
  deviceId: string;
  userId: string;
  revokedAt: number;
}

const revocationSchema = new Schema<DeviceRevocationDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    deviceId: { type: String, required: true },
    userId: { type: String, required: true },
    revokedAt: { type: Number, required: true },
  },
  collectionOptions('device_revocations'),
);
revocationSchema.index({ orgId: 1, userId: 1 }, { name: 'org_user' });

/** A revoked access token, kept until it would be refused for its expiry anyway (`keepUntil`). */
export interface TokenRevocationDoc {
  /** `docKey(orgId, jti)`. */
  _id: string;
  orgId: string;
  tokenId: string;
  keepUntil: number;
}

const tokenRevocationSchema = new Schema<TokenRevocationDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    tokenId: { type: String, required: true },
    keepUntil: { type: Number, required: true },
  },
  collectionOptions('token_revocations'),
);

/**
 * `DeviceAdmin` for `MongoStorage`, on the storage's own connection and models. Tombstones live in
 * their own collection so the device documents keep their schema; the collection and its indexes
 * are created on first use.
 */
export class MongoDeviceAdmin implements DeviceAdmin {
  private readonly Revocation: Model<DeviceRevocationDoc>;
  private readonly TokenRevocation: Model<TokenRevocationDoc>;
  private readonly init: () => Promise<void>;

  constructor(
    conn: Connection,
    private readonly models: StorageModels,
  ) {
    this.Revocation = conn.models.DeviceRevocation ?? conn.model<DeviceRevocationDoc>('DeviceRevocation', revocationSchema);
    this.TokenRevocation = conn.models.TokenRevocation ?? conn.model<TokenRevocationDoc>('TokenRevocation', tokenRevocationSchema);
    this.init = ensureOnce(this.Revocation, this.TokenRevocation);
  }


  async listOwnDevices(orgId: string, userId: string): Promise<OwnDeviceRecord[]> {
    await this.init();
    const [devices, revoked] = await Promise.all([
      this.models.Device.find({ orgId, userId }).lean<DeviceDoc[]>().exec(),
      this.Revocation.find({ orgId, userId }).lean<DeviceRevocationDoc[]>().exec(),
    ]);
    const revokedAt = new Map(revoked.map((r) => [r.deviceId, r.revokedAt]));
    return devices
      .map((d) => ({
        orgId: d.orgId,
        userId: d.userId,
        deviceId: d.deviceId,
        createdAt: d.createdAt,
        lastSeenAt: d.lastSeenAt,
        hasKeys: Boolean(d.identityKey && d.signedPrekey),
        identityKey: d.identityKey ? toBytes(d.identityKey) : undefined,
        revokedAt: revokedAt.get(d.deviceId),
      }))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  async revokeDevice(input: { orgId: string; userId: string; deviceId: string; now: number }): Promise<{ status: 'revoked' | 'already' | 'not_found' }> {
    await this.init();
    const { orgId, userId, deviceId, now } = input;
    const device = await this.models.Device.findOne({ _id: docKey(orgId, deviceId) }).lean<DeviceDoc>().exec();
    if (!device || device.userId !== userId) return { status: 'not_found' };
    let status: 'revoked' | 'already' = 'revoked';
    try {
      const res = await this.Revocation.updateOne({ _id: docKey(orgId, deviceId) }, { $setOnInsert: { orgId, deviceId, userId, revokedAt: now } }, { upsert: true }).exec();
      if (res.upsertedCount === 0) status = 'already';
    } catch (err) {
      // A concurrent revoke of the same device inserted first.
      if ((err as { code?: unknown }).code !== 11000) throw err;
      status = 'already';
    }
    // Delete the keys every time (also on 'already'): a publish that raced the first revoke is undone.
    await this.models.Device.updateOne({ _id: docKey(orgId, deviceId) }, { $unset: { identityKey: 1, signedPrekey: 1 } }).exec();
    await this.models.Prekey.deleteMany({ orgId, deviceId }).exec();
    return { status };
  }

  async restoreDevice(orgId: string, deviceId: string): Promise<{ status: 'restored' | 'not_revoked' }> {
    await this.init();
    const res = await this.Revocation.deleteOne({ _id: docKey(orgId, deviceId) }).exec();
    return { status: res.deletedCount > 0 ? 'restored' : 'not_revoked' };
  }

  async deviceRevokedAt(orgId: string, deviceId: string): Promise<number | undefined> {
    await this.init();
    const doc = await this.Revocation.findOne({ _id: docKey(orgId, deviceId) }).lean<DeviceRevocationDoc>().exec();
    return doc?.revokedAt;
  }

  async revokeToken(input: { orgId: string; tokenId: string; keepUntil: number; now: number }): Promise<void> {
    await this.init();
    const { orgId, tokenId, keepUntil, now } = input;
    try {
      await this.TokenRevocation.updateOne({ _id: docKey(orgId, tokenId) }, { $setOnInsert: { orgId, tokenId }, $max: { keepUntil } }, { upsert: true }).exec();
    } catch (err) {
      // A concurrent revoke of the same token inserted first: raise its keepUntil on the existing one.
      if ((err as { code?: unknown }).code !== 11000) throw err;
      await this.TokenRevocation.updateOne({ _id: docKey(orgId, tokenId) }, { $max: { keepUntil } }).exec();
    }
    // Revocations are rare (sign-outs, stolen tokens): forgetting the expired ones here keeps the collection small.
    await this.TokenRevocation.deleteMany({ keepUntil: mongoose.trusted({ $lte: now }) }).exec();
  }

  async tokenRevoked(orgId: string, tokenId: string, now: number): Promise<boolean> {
    await this.init();
    const doc = await this.TokenRevocation.findOne({ _id: docKey(orgId, tokenId) }).lean<TokenRevocationDoc>().exec();
    return doc !== null && doc.keepUntil > now;
  }
}
