/**
 * Device keys (the `Storage` port's `KeyDirectory`): identity and signed prekeys on the device
 * document, one-time prekeys as documents of their own, each claimed by exactly one caller.
 */
import mongoose from 'mongoose';
import type { DeviceIdentity, PrekeyBundle } from '@curbside/shared';
import type { KeyDirectory, PublishKeysInput, PublishKeysResult } from '../../ports/storage.js';
import { isBulkDuplicateOnly } from './duplicate-key.js';
import { docKey, toBytes, type DeviceDoc, type PrekeyDoc, type StorageModels } from './models.js';

/** Prekey claims: candidates fetched per round, and rounds before giving up under extreme contention. */
const CLAIM_CANDIDATES = 8;
const MAX_CLAIM_ROUNDS = 50;

export class MongoPrekeys implements KeyDirectory {
  constructor(private readonly models: Pick<StorageModels, 'Device' | 'Prekey'>) {}

  async publishKeys(input: PublishKeysInput): Promise<PublishKeysResult> {
    const { Device, Prekey } = this.models;
    const device = await Device.findOne({ _id: docKey(input.orgId, input.deviceId) }).lean<DeviceDoc>().exec();
    if (!device) throw new Error(`device ${input.deviceId} not found`);
    const existing = device.identityKey ? toBytes(device.identityKey) : undefined;
    if (existing && !Buffer.from(existing).equals(Buffer.from(input.identityKey))) return { status: 'identity_mismatch' };
    if (!existing && !input.signedPrekey) return { status: 'signed_prekey_required' };

    const batch = input.oneTimePrekeys ?? [];
    if (batch.length) {
      const known = await Prekey.find({ orgId: input.orgId, deviceId: input.deviceId, keyId: mongoose.trusted({ $in: batch.map((k) => k.keyId) }) })
        .select({ keyId: 1 })
        .lean<Array<Pick<PrekeyDoc, 'keyId'>>>()
        .exec();
      const knownIds = new Set(known.map((k) => k.keyId));
      const fresh = new Set(batch.filter((k) => !knownIds.has(k.keyId)).map((k) => k.keyId));
      const stored = await this.countOneTimePrekeys(input.orgId, input.deviceId);
      if (stored + fresh.size > input.maxStored) return { status: 'too_many_prekeys', stored };
    }

    const set: Record<string, unknown> = {};
    if (!existing) set.identityKey = Buffer.from(input.identityKey);
    if (input.signedPrekey) {
      set.signedPrekey = { keyId: input.signedPrekey.keyId, publicKey: Buffer.from(input.signedPrekey.publicKey), signature: Buffer.from(input.signedPrekey.signature) };
    }
    if (Object.keys(set).length) await Device.updateOne({ _id: docKey(input.orgId, input.deviceId) }, { $set: set }).exec();
    if (batch.length) {
      try {
        await Prekey.insertMany(
          batch.map((k) => ({ orgId: input.orgId, deviceId: input.deviceId, keyId: k.keyId, publicKey: Buffer.from(k.publicKey) })),
          { ordered: false },
        );
      } catch (err) {
        // A key id already stored (a retried upload) is skipped; everything else was inserted.
        if (!isBulkDuplicateOnly(err)) throw err;
      }
    }
    return { status: 'ok', firstPublish: !existing, oneTimePrekeys: await this.countOneTimePrekeys(input.orgId, input.deviceId) };
  }

  async countOneTimePrekeys(orgId: string, deviceId: string): Promise<number> {
    return this.models.Prekey.countDocuments({ orgId, deviceId }).exec();
  }

  async listDeviceIdentities(orgId: string, userIds: readonly string[]): Promise<DeviceIdentity[]> {
    const docs = await this.models.Device.find({ orgId, userId: mongoose.trusted({ $in: [...userIds] }) })
      .sort({ userId: 1, deviceId: 1 })
      .lean<DeviceDoc[]>()
      .exec();
    return docs
      .filter((d) => d.identityKey && d.signedPrekey)
      .map((d) => ({ userId: d.userId, deviceId: d.deviceId, identityKey: toBytes(d.identityKey) }));
  }

  async claimBundles(orgId: string, userIds: readonly string[], deviceIds?: readonly string[]): Promise<PrekeyBundle[]> {
    const filter: Record<string, unknown> = { orgId, userId: mongoose.trusted({ $in: [...userIds] }) };
    if (deviceIds) filter.deviceId = mongoose.trusted({ $in: [...deviceIds] });
    const devices = await this.models.Device.find(filter).sort({ userId: 1, deviceId: 1 }).lean<DeviceDoc[]>().exec();
    const ready = devices.filter((d) => d.identityKey && d.signedPrekey);
    return Promise.all(
      ready.map(async (d) => {
        const otk = await this.claimOneTimePrekey(orgId, d.deviceId);
        const spk = d.signedPrekey!;
        return {
          userId: d.userId,
          deviceId: d.deviceId,
          identityKey: toBytes(d.identityKey),
          signedPrekey: { keyId: spk.keyId, publicKey: toBytes(spk.publicKey), signature: toBytes(spk.signature) },
          ...(otk ? { oneTimePrekey: { keyId: otk.keyId, publicKey: toBytes(otk.publicKey) } } : {}),
        };
      }),
    );
  }

  /**
   * Take one of the device's one-time prekeys so that no other claimer can get it. FerretDB v1's
   * findOneAndDelete is not atomic under concurrency (two callers can receive the same document),
   * so the claim is the `deleteOne` by id: whoever's delete removed the document owns the key.
   */
  private async claimOneTimePrekey(orgId: string, deviceId: string): Promise<PrekeyDoc | undefined> {
    const { Prekey } = this.models;
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      const candidates = await Prekey.find({ orgId, deviceId }).sort({ keyId: 1 }).limit(CLAIM_CANDIDATES).lean<Array<PrekeyDoc & { _id: unknown }>>().exec();
      if (candidates.length === 0) return undefined;
      // Lowest key id first; once contended, the rest in random order to spread concurrent claimers.
      const [lowest, ...rest] = candidates;
      for (const candidate of [lowest!, ...shuffle(rest)]) {
        const { deletedCount } = await Prekey.deleteOne({ _id: candidate._id }).exec();
        if (deletedCount === 1) return candidate;
      }
    }
    throw new Error(`could not claim a one-time prekey of device ${deviceId} after ${MAX_CLAIM_ROUNDS} rounds`);
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
