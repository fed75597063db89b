import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import type { SignedCredential } from '@curbside/shared';
import type { CredentialStore, StoredAttestation } from '../../ports/credentials.js';
import { collectionOptions, docKey } from './models.js';
import { ensureOnce } from './ensure.js';
import { isDuplicateKey } from './duplicate-key.js';

/**
 * `CredentialStore` for `MongoStorage`: three collections, each document inserted once (an insert
 * under a unique `_id` is atomic on MongoDB and on FerretDB; nothing here is updated):
 * - `credential_keys`: the organisation's credentialing public key (`_id` the organisation);
 * - `credentials`: the signed attestations (`_id` (organisation, serial));
 * - `credential_revocations`: the signed revocations (`_id` (organisation, serial)).
 */
interface KeyDoc {
  _id: string;
  publicKey: string;
  setAt: number;
}
interface AttestationDoc extends StoredAttestation {
  _id: string;
  orgId: string;
  /** Lower-cased, for search. */
  specialtyLower: string;
}
interface RevocationDoc {
  _id: string;
  orgId: string;
  serial: string;
  document: SignedCredential;
}

const documentSchema = new Schema({ signed: { type: String, required: true }, signature: { type: String, required: true } }, { _id: false });
const keySchema = new Schema<KeyDoc>({ _id: { type: String, required: true }, publicKey: { type: String, required: true }, setAt: { type: Number, required: true } }, collectionOptions('credential_keys'));
const attestationSchema = new Schema<AttestationDoc>(
  {
    _id: { type: String, required: true },
    orgId: { type: String, required: true },
    serial: { type: String, required: true },
    userId: { type: String, required: true },
    specialty: { type: String, required: true },
    specialtyLower: { type: String, required: true },
    issuedAt: { type: Number, required: true },
    document: { type: documentSchema, required: true },
  },
  collectionOptions('credentials'),
);
attestationSchema.index({ orgId: 1, userId: 1 });
attestationSchema.index({ orgId: 1, issuedAt: -1 });
const revocationSchema = new Schema<RevocationDoc>(
  { _id: { type: String, required: true }, orgId: { type: String, required: true }, serial: { type: String, required: true }, document: { type: documentSchema, required: true } },
  collectionOptions('credential_revocations'),
);

/** Candidates a search reads before the word rule filters them. */
const SEARCH_SCAN = 500;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class MongoCredentials implements CredentialStore {
  private readonly Key: Model<KeyDoc>;
  private readonly Attestation: Model<AttestationDoc>;
  private readonly Revocation: Model<RevocationDoc>;
  private readonly init: () => Promise<void>;

  constructor(conn: Connection) {
    this.Key = conn.models.CredentialKey ?? conn.model<KeyDoc>('CredentialKey', keySchema);
    this.Attestation = conn.models.Credential ?? conn.model<AttestationDoc>('Credential', attestationSchema);
    this.Revocation = conn.models.CredentialRevocation ?? conn.model<RevocationDoc>('CredentialRevocation', revocationSchema);
    this.init = ensureOnce(this.Key, this.Attestation, this.Revocation);
  }

  async getCredentialKey(orgId: string): Promise<string | undefined> {
    await this.init();
    return (await this.Key.findOne({ _id: orgId }).lean<KeyDoc>().exec())?.publicKey;
  }

  async setCredentialKey(orgId: string, publicKey: string, now: number): Promise<'set' | 'same' | 'conflict'> {
    await this.init();
    try {
      await this.Key.collection.insertOne({ _id: orgId, publicKey, setAt: now } as never);
      return 'set';
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return (await this.getCredentialKey(orgId)) === publicKey ? 'same' : 'conflict';
    }
  }

  async putAttestation(orgId: string, a: StoredAttestation): Promise<'stored' | 'exists'> {
    await this.init();
    try {
      await this.Attestation.collection.insertOne({ _id: docKey(orgId, a.serial), orgId, ...a, specialtyLower: a.specialty.toLowerCase(), document: { ...a.document } } as never);
      return 'stored';
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return 'exists';
    }
  }

  async putRevocation(orgId: string, serial: string, document: SignedCredential): Promise<void> {
    await this.init();
    try {
      await this.Revocation.collection.insertOne({ _id: docKey(orgId, serial), orgId, serial, document: { ...document } } as never);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async hasAttestation(orgId: string, serial: string): Promise<boolean> {
    await this.init();
    return (await this.Attestation.countDocuments({ _id: docKey(orgId, serial) }).exec()) > 0;
  }

  async credentialsOf(orgId: string, userIds: readonly string[]) {
    await this.init();
    const docs = await this.Attestation.find({ orgId, userId: mongoose.trusted({ $in: [...userIds] }) }).sort({ issuedAt: -1 }).lean<AttestationDoc[]>().exec();
    return this.answer(orgId, docs);
  }

  async searchCredentials(orgId: string, words: readonly string[], limit: number) {
    await this.init();
    const filter = words.length ? { orgId, $and: words.map((w) => ({ specialtyLower: mongoose.trusted({ $regex: escapeRegex(w) }) })) } : { orgId };
    const docs = await this.Attestation.find(mongoose.trusted(filter)).sort({ issuedAt: -1 }).limit(SEARCH_SCAN).lean<AttestationDoc[]>().exec();
    return this.answer(orgId, docs.filter((d) => words.every((w) => d.specialtyLower.includes(w))).slice(0, limit));
  }

  private async answer(orgId: string, docs: AttestationDoc[]) {
    const revocations = docs.length
      ? await this.Revocation.find({ _id: mongoose.trusted({ $in: docs.map((d) => docKey(orgId, d.serial)) }) }).lean<RevocationDoc[]>().exec()
      : [];
    const doc = (d: { document: SignedCredential }) => ({ signed: d.document.signed, signature: d.document.signature });
    return { attestations: docs.map(doc), revocations: revocations.map(doc) };
  }
}
