import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { PROFILE_FIELDS, profileMatches, type DirectoryProfile, type ProfileFields } from '@curbside/shared';
import { effectiveProfile, hasProfileFields, type ProfileChange, type ProfileDirectory } from '../../ports/profiles.js';
import { collectionOptions, docKey } from './models.js';
import { ensureOnce } from './ensure.js';
import { retryOnDuplicateKey } from './duplicate-key.js';

/** A user's directory profile: the token's fields and the operator's, kept apart. */
export interface ProfileDoc {
  /** `docKey(orgId, userId)`. */
  _id: string;
  orgId: string;
  userId: string;
  token?: ProfileFields;
  admin?: ProfileFields;
  updatedAt: number;
}

const fields = { displayName: { type: String }, role: { type: String }, department: { type: String } };
const profileSchema = new Schema<ProfileDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    userId: { type: String, required: true },
    token: { type: new Schema(fields, { _id: false }), required: false },
    admin: { type: new Schema(fields, { _id: false }), required: false },
    updatedAt: { type: Number, required: true },
  },
  collectionOptions('profiles'),
);
profileSchema.index({ orgId: 1, _id: 1 });

/** Fields a search looks in (each word must occur in one of them). */
const SEARCHED = ['userId', ...(['token', 'admin'] as const).flatMap((src) => PROFILE_FIELDS.map((f) => `${src}.${f}`))];
/** Candidates a search reads before the exact rule (`profileMatches` on the effective profile) filters them. */
const SEARCH_SCAN = 500;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `ProfileDirectory` for `MongoStorage`, in its own `profiles` collection on the storage's connection. */
export class MongoProfiles implements ProfileDirectory {
  private readonly Profile: Model<ProfileDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.Profile = conn.models.Profile ?? conn.model<ProfileDoc>('Profile', profileSchema);
    this.init = ensureOnce(this.Profile);
  }


  async recordTokenProfile(input: { orgId: string; userId: string; profile: ProfileFields; now: number }): Promise<void> {
    await this.init();
    const { orgId, userId, profile, now } = input;
    await retryOnDuplicateKey(() =>
      this.Profile.updateOne(
        { _id: docKey(orgId, userId) },
        { $set: { token: profile, updatedAt: now }, $setOnInsert: { orgId, userId } },
        { upsert: true },
      ).exec(),
    );
  }

  async setAdminProfile(input: { orgId: string; userId: string; change: ProfileChange; now: number }): Promise<DirectoryProfile> {
    await this.init();
    const { orgId, userId, change, now } = input;
    const set: Record<string, unknown> = { updatedAt: now };
    const unset: Record<string, ''> = {};
    for (const [field, value] of Object.entries(change)) {
      if (value === null) unset[`admin.${field}`] = '';
      else if (value !== undefined) set[`admin.${field}`] = value;
    }
    const doc = await retryOnDuplicateKey(() =>
      this.Profile.findOneAndUpdate(
        { _id: docKey(orgId, userId) },
        { $set: set, ...(Object.keys(unset).length ? { $unset: unset } : {}), $setOnInsert: { orgId, userId } },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<ProfileDoc>()
        .exec(),
    );
    return effectiveProfile(userId, doc?.token, doc?.admin);
  }

  async lookupProfiles(orgId: string, userIds: readonly string[]): Promise<DirectoryProfile[]> {
    await this.init();
    const unique = [...new Set(userIds)];
    const docs = await this.Profile.find({ _id: mongoose.trusted({ $in: unique.map((u) => docKey(orgId, u)) }) })
      .lean<ProfileDoc[]>()
      .exec();
    const byUser = new Map(docs.filter((d) => d.orgId === orgId).map((d) => [d.userId, effectiveProfile(d.userId, d.token, d.admin)]));
    return unique.map((u) => byUser.get(u)).filter((p): p is DirectoryProfile => p !== undefined && hasProfileFields(p));
  }

  async searchProfiles(orgId: string, words: readonly string[], limit: number): Promise<DirectoryProfile[]> {
    await this.init();
    const filter = {
      orgId,
      ...(words.length ? { $and: words.map((w) => ({ $or: SEARCHED.map((f) => ({ [f]: new RegExp(escapeRegex(w), 'i') })) })) } : {}),
    };
    const docs = await this.Profile.find(mongoose.trusted(filter)).sort({ _id: 1 }).limit(SEARCH_SCAN).lean<ProfileDoc[]>().exec();
    // The database narrows; the shared rule decides (an operator's value hides the token's).
    return docs
      .map((d) => effectiveProfile(d.userId, d.token, d.admin))
      .filter((p) => hasProfileFields(p) && profileMatches(p, words))
      .slice(0, limit);
  }
}
