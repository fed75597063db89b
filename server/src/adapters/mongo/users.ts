/**
 * Users and devices as the hub first sees them (the `Storage` port's directory part): upserted on
 * each connection, read by id. Keys, revocation and administration live in prekeys.ts,
 * device-admin.ts and user-admin.ts.
 */
import type { DeviceRecord, UserRecord } from '../../ports/storage.js';
import { retryOnDuplicateKey } from './duplicate-key.js';
import { docKey, type DeviceDoc, type StorageModels, type UserDoc } from './models.js';

export class MongoUsers {
  constructor(private readonly models: Pick<StorageModels, 'User' | 'Device'>) {}

  async touchDevice(input: { orgId: string; userId: string; deviceId: string; displayName?: string | undefined; now: number }): Promise<{ user: UserRecord; device: DeviceRecord }> {
    const { User, Device } = this.models;
    const user = await retryOnDuplicateKey(() =>
      User.findOneAndUpdate(
        { _id: docKey(input.orgId, input.userId) },
        {
          $set: { lastSeenAt: input.now, ...(input.displayName !== undefined ? { displayName: input.displayName } : {}) },
          $setOnInsert: { orgId: input.orgId, userId: input.userId, createdAt: input.now },
        },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<UserDoc>()
        .exec(),
    );
    // The owner is set only when the device is first seen: a token naming another user for the same
    // device does not move it (the hub compares and refuses).
    const device = await retryOnDuplicateKey(() =>
      Device.findOneAndUpdate(
        { _id: docKey(input.orgId, input.deviceId) },
        { $set: { lastSeenAt: input.now }, $setOnInsert: { orgId: input.orgId, deviceId: input.deviceId, userId: input.userId, createdAt: input.now } },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<DeviceDoc>()
        .exec(),
    );
    if (!user || !device) throw new Error('upsert returned no document');
    return { user: toUser(user), device: toDevice(device) };
  }

  async getUser(orgId: string, userId: string): Promise<UserRecord | undefined> {
    const u = await this.models.User.findOne({ _id: docKey(orgId, userId) }).lean<UserDoc>().exec();
    return u ? toUser(u) : undefined;
  }

  async listDevices(orgId: string, userId: string): Promise<DeviceRecord[]> {
    const docs = await this.models.Device.find({ orgId, userId }).lean<DeviceDoc[]>().exec();
    // Same order as the memory adapter (localeCompare, not the database's binary order).
    return docs.map(toDevice).sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }
}

function toUser(d: UserDoc): UserRecord {
  return { orgId: d.orgId, userId: d.userId, displayName: d.displayName ?? undefined, createdAt: d.createdAt, lastSeenAt: d.lastSeenAt };
}

function toDevice(d: DeviceDoc): DeviceRecord {
  return { orgId: d.orgId, userId: d.userId, deviceId: d.deviceId, createdAt: d.createdAt, lastSeenAt: d.lastSeenAt };
}
