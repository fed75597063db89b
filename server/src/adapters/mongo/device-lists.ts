import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { SignedDeviceList } from '@curbside/shared';
import type { DeviceListHead } from '../../ports/device-lists.js';
import { docKey, toBytes } from './models.js';
import { ensureCollection } from './ensure.js';
import { isDuplicateKey } from './duplicate-key.js';

interface StoredList {
  version: number;
  devices: Array<{ deviceId: string; identityKey: Buffer }>;
  signerDeviceId: string;
  signature: Buffer;
}

/** One user's signed device lists: the head (version, device ids) and the last versions kept. */
export interface DeviceListDoc {
  /** `docKey(orgId, userId)`. */
  _id: string;
  orgId: string;
  userId: string;
  version: number;
  deviceIds: string[];
  lists: StoredList[];
}

const listSchema = new Schema<StoredList>(
  {
    version: { type: Number, required: true },
    devices: { type: [new Schema({ deviceId: { type: String, required: true }, identityKey: { type: Buffer, required: true } }, { _id: false, versionKey: false })], required: true },
    signerDeviceId: { type: String, required: true },
    signature: { type: Buffer, required: true },
  },
  { _id: false, versionKey: false },
);

const deviceListSchema = new Schema<DeviceListDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    userId: { type: String, required: true },
    version: { type: Number, required: true },
    deviceIds: { type: [String], required: true },
    lists: { type: [listSchema], required: true },
  },
  { versionKey: false, strict: true, strictQuery: true, autoIndex: false, autoCreate: true, collection: 'device_lists' },
);

/**
 * `DeviceListStore` for `MongoStorage`: one document per user, replaced by compare-and-set on its
 * version (an insert for the first), so two devices publishing at once cannot both win.
 */
export class MongoDeviceLists {
  private readonly DeviceList: Model<DeviceListDoc>;
  private ready: Promise<void> | undefined;

  constructor(conn: Connection) {
    this.DeviceList = conn.models.DeviceList ?? conn.model<DeviceListDoc>('DeviceList', deviceListSchema);
  }

  private init(): Promise<void> {
    this.ready ??= ensureCollection(this.DeviceList).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  async heads(orgId: string, userIds: readonly string[]): Promise<DeviceListHead[]> {
    await this.init();
    const ids = [...new Set(userIds)].map((u) => docKey(orgId, u));
    const docs = await this.DeviceList.find({ _id: mongoose.trusted({ $in: ids }) }, { userId: 1, version: 1, deviceIds: 1 }).lean<DeviceListDoc[]>().exec();
    return docs.map((d) => ({ userId: d.userId, version: d.version, deviceIds: [...d.deviceIds] }));
  }

  async history(orgId: string, userId: string): Promise<{ version: number; lists: SignedDeviceList[] } | undefined> {
    await this.init();
    const doc = await this.DeviceList.findById(docKey(orgId, userId)).lean<DeviceListDoc>().exec();
    if (!doc) return undefined;
    return { version: doc.version, lists: doc.lists.map(fromStored) };
  }

  async append(input: { orgId: string; userId: string; expectedVersion: number; list: SignedDeviceList; maxHistory: number }): Promise<'ok' | 'conflict'> {
    await this.init();
    const { orgId, userId, expectedVersion, list, maxHistory } = input;
    if (list.version !== expectedVersion + 1) return 'conflict';
    const _id = docKey(orgId, userId);
    const deviceIds = list.devices.map((d) => d.deviceId);
    if (expectedVersion === 0) {
      try {
        await this.DeviceList.create({ _id, orgId, userId, version: list.version, deviceIds, lists: [toStored(list)] });
        return 'ok';
      } catch (err) {
        if (isDuplicateKey(err)) return 'conflict';
        throw err;
      }
    }
    const current = await this.DeviceList.findById(_id).lean<DeviceListDoc>().exec();
    if (!current || current.version !== expectedVersion) return 'conflict';
    const lists = [...current.lists.map((l) => toStored(fromStored(l))), toStored(list)].slice(-maxHistory);
    const { modifiedCount } = await this.DeviceList.updateOne({ _id, version: expectedVersion }, { $set: { version: list.version, deviceIds, lists } }).exec();
    return modifiedCount === 1 ? 'ok' : 'conflict';
  }
}

function toStored(list: SignedDeviceList): StoredList {
  return {
    version: list.version,
    devices: list.devices.map((d) => ({ deviceId: d.deviceId, identityKey: Buffer.from(d.identityKey) })),
    signerDeviceId: list.signerDeviceId,
    signature: Buffer.from(list.signature),
  };
}

function fromStored(l: StoredList): SignedDeviceList {
  return {
    version: l.version,
    devices: l.devices.map((d) => ({ deviceId: d.deviceId, identityKey: toBytes(d.identityKey) })),
    signerDeviceId: l.signerDeviceId,
    signature: toBytes(l.signature),
  };
}
