import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { SignedDeviceList } from '@curbside/shared';
import type { DeviceListHead } from '../../ports/device-lists.js';
import { docKey, toBytes, collectionOptions } from './models.js';
import { ensureOnce } from './ensure.js';
import { isDuplicateKey } from './duplicate-key.js';

/** One version of one user's signed device list. */
export interface DeviceListDoc {
  /** `docKey(orgId, userId, version)`: unique, so two writers of the same version cannot both win. */
  _id: string;
  orgId: string;
  userId: string;
  version: number;
  devices: Array<{ deviceId: string; identityKey: Buffer }>;
  signerDeviceId: string;
  signature: Buffer;
}

const deviceListSchema = new Schema<DeviceListDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    userId: { type: String, required: true },
    version: { type: Number, required: true },
    devices: { type: [new Schema({ deviceId: { type: String, required: true }, identityKey: { type: Buffer, required: true } }, { _id: false, versionKey: false })], required: true },
    signerDeviceId: { type: String, required: true },
    signature: { type: Buffer, required: true },
  },
  collectionOptions('device_lists'),
);
deviceListSchema.index({ orgId: 1, userId: 1, version: -1 }, { name: 'org_user_version' });

/**
 * `DeviceListStore` for `MongoStorage`: a document per version. The insert of version n+1 is the
 * compare-and-set (its `_id` is unique, and FerretDB's conditional updates are not atomic under
 * concurrency); versions beyond the history kept are deleted after.
 */
export class MongoDeviceLists {
  private readonly DeviceList: Model<DeviceListDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.DeviceList = conn.models.DeviceList ?? conn.model<DeviceListDoc>('DeviceList', deviceListSchema);
    this.init = ensureOnce(this.DeviceList);
  }


  async heads(orgId: string, userIds: readonly string[]): Promise<DeviceListHead[]> {
    await this.init();
    const docs = await this.DeviceList.find({ orgId, userId: mongoose.trusted({ $in: [...new Set(userIds)] }) }, { userId: 1, version: 1, devices: 1 })
      .sort({ userId: 1, version: -1 })
      .lean<DeviceListDoc[]>()
      .exec();
    const heads = new Map<string, DeviceListHead>();
    for (const d of docs) if (!heads.has(d.userId)) heads.set(d.userId, { userId: d.userId, version: d.version, deviceIds: d.devices.map((x) => x.deviceId) });
    return [...heads.values()];
  }

  async history(orgId: string, userId: string): Promise<{ version: number; lists: SignedDeviceList[] } | undefined> {
    await this.init();
    const docs = await this.DeviceList.find({ orgId, userId }).sort({ version: 1 }).lean<DeviceListDoc[]>().exec();
    if (docs.length === 0) return undefined;
    return { version: docs.at(-1)!.version, lists: docs.map(fromStored) };
  }

  async append(input: { orgId: string; userId: string; expectedVersion: number; list: SignedDeviceList; maxHistory: number }): Promise<'ok' | 'conflict'> {
    await this.init();
    const { orgId, userId, expectedVersion, list, maxHistory } = input;
    if (list.version !== expectedVersion + 1) return 'conflict';
    if (expectedVersion > 0 && !(await this.DeviceList.exists({ _id: docKey(orgId, userId, String(expectedVersion)) }).exec())) return 'conflict';
    try {
      await this.DeviceList.create({
        _id: docKey(orgId, userId, String(list.version)),
        orgId,
        userId,
        version: list.version,
        devices: list.devices.map((d) => ({ deviceId: d.deviceId, identityKey: Buffer.from(d.identityKey) })),
        signerDeviceId: list.signerDeviceId,
        signature: Buffer.from(list.signature),
      });
    } catch (err) {
      if (isDuplicateKey(err)) return 'conflict';
      throw err;
    }
    await this.DeviceList.deleteMany({ orgId, userId, version: mongoose.trusted({ $lte: list.version - maxHistory }) }).exec();
    return 'ok';
  }
}

function fromStored(d: DeviceListDoc): SignedDeviceList {
  return {
    version: d.version,
    devices: d.devices.map((x) => ({ deviceId: x.deviceId, identityKey: toBytes(x.identityKey) })),
    signerDeviceId: d.signerDeviceId,
    signature: toBytes(d.signature),
  };
}
