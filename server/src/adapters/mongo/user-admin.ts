import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { AdminUserRecord, UserAdmin } from '../../ports/user-admin.js';
import { docKey, type StorageModels, type UserDoc, collectionOptions } from './models.js';
import { ensureOnce } from './ensure.js';

/** A disabled user's flag, in its own collection so the user documents keep their schema. */
export interface DisabledUserDoc {
  /** `docKey(orgId, userId)`. */
  _id: string;
  orgId: string;
  userId: string;
  disabledAt: number;
}

const disabledSchema = new Schema<DisabledUserDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    userId: { type: String, required: true },
    disabledAt: { type: Number, required: true },
  },
  collectionOptions('disabled_users'),
);

/** `UserAdmin` for `MongoStorage`, on the storage's own connection and models. */
export class MongoUserAdmin implements UserAdmin {
  private readonly Disabled: Model<DisabledUserDoc>;
  private readonly init: () => Promise<void>;

  constructor(
    conn: Connection,
    private readonly models: StorageModels,
  ) {
    this.Disabled = conn.models.DisabledUser ?? conn.model<DisabledUserDoc>('DisabledUser', disabledSchema);
    this.init = ensureOnce(this.Disabled);
  }


  async listUsers(orgId: string, page: { after?: string | undefined; limit: number }): Promise<AdminUserRecord[]> {
    await this.init();
    // `_id` is docKey(orgId, userId): within one organisation it orders as the user ids do.
    const users = await this.models.User.find({ orgId, _id: mongoose.trusted({ $gt: docKey(orgId, page.after ?? '') }) })
      .sort({ _id: 1 })
      .limit(page.limit)
      .lean<UserDoc[]>()
      .exec();
    const disabled = users.length
      ? await this.Disabled.find({ _id: mongoose.trusted({ $in: users.map((u) => u._id) }) })
          .lean<DisabledUserDoc[]>()
          .exec()
      : [];
    const disabledAt = new Map(disabled.map((d) => [d.userId, d.disabledAt]));
    return users
      .filter((u) => u.orgId === orgId)
      .map((u) => ({ orgId, userId: u.userId, createdAt: u.createdAt, lastSeenAt: u.lastSeenAt, disabledAt: disabledAt.get(u.userId) }));
  }

  async disableUser(input: { orgId: string; userId: string; now: number }): Promise<{ status: 'disabled' | 'already' | 'not_found' }> {
    await this.init();
    const { orgId, userId, now } = input;
    const user = await this.models.User.findOne({ _id: docKey(orgId, userId) }).lean<UserDoc>().exec();
    if (!user) return { status: 'not_found' };
    try {
      const res = await this.Disabled.updateOne({ _id: docKey(orgId, userId) }, { $setOnInsert: { orgId, userId, disabledAt: now } }, { upsert: true }).exec();
      return { status: res.upsertedCount === 0 ? 'already' : 'disabled' };
    } catch (err) {
      // A concurrent disable of the same user inserted first.
      if ((err as { code?: unknown }).code !== 11000) throw err;
      return { status: 'already' };
    }
  }

  async enableUser(orgId: string, userId: string): Promise<{ status: 'enabled' | 'not_disabled' }> {
    await this.init();
    const res = await this.Disabled.deleteOne({ _id: docKey(orgId, userId) }).exec();
    return { status: res.deletedCount > 0 ? 'enabled' : 'not_disabled' };
  }

  async userDisabledAt(orgId: string, userId: string): Promise<number | undefined> {
    await this.init();
    const doc = await this.Disabled.findOne({ _id: docKey(orgId, userId) }).lean<DisabledUserDoc>().exec();
    return doc?.disabledAt;
  }
}
