import {
  generateIdentityKeyPair,
  generatePrekeys,
  generateSignedPrekey,
  type IdentityKeyPair,
  type KeyPair,
  type PrekeyLookup,
} from '../crypto/index.js';
import { putOp, deleteOp, type DeviceStore } from '../stores/index.js';

/** Refill when the hub holds fewer than this many one-time prekeys. */
export const PREKEY_LOW_WATER = 20;
/** One upload (Signal's batch size). */
export const PREKEY_BATCH = 100;
/** A signed prekey is replaced after this long... */
export const SIGNED_PREKEY_ROTATE_MS = 7 * 24 * 3600 * 1000;
/** ...and its private half kept this much longer for messages still in flight. */
export const SIGNED_PREKEY_GRACE_MS = 30 * 24 * 3600 * 1000;

interface StoredSignedPrekey {
  keyId: number;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  signature: Uint8Array;
  createdAt: number;
}

interface StoredPrekey {
  keyId: number;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** What one `keys:publish` carries. */
export interface KeyUpload {
  identityKey: Uint8Array;
  signedPrekey: { keyId: number; publicKey: Uint8Array; signature: Uint8Array };
  oneTimePrekeys: Array<{ keyId: number; publicKey: Uint8Array }>;
}

/**
 * This device's own key material, kept in its {@link DeviceStore}: the Ed25519 identity key,
 * signed prekeys (current and recent), and the private halves of one-time prekeys it uploaded.
 */
export class LocalKeys implements PrekeyLookup {
  private constructor(
    private readonly store: DeviceStore,
    readonly identity: IdentityKeyPair,
    /** When this device made its identity (epoch ms); absent for identities made before it was kept. */
    readonly createdAt: number | undefined,
  ) {}

  /** Load this device's identity, creating it (once, ever) if the store has none. */
  static async open(store: DeviceStore): Promise<LocalKeys> {
    let identity = await store.get<IdentityKeyPair & { createdAt?: number }>('identity', 'self');
    if (!identity) {
      const fresh = await generateIdentityKeyPair();
      identity = { publicKey: fresh.publicKey, privateKey: fresh.privateKey, createdAt: Date.now() };
      await store.put('identity', 'self', identity);
    }
    return new LocalKeys(store, { publicKey: identity.publicKey, privateKey: identity.privateKey }, identity.createdAt);
  }

  /**
   * The upload for this connect: the identity key, the current signed prekey (rotated when old),
   * and a fresh batch of one-time prekeys if the hub reported fewer than {@link PREKEY_LOW_WATER}.
   */
  async prepareUpload(hubPrekeyCount: number, now = Date.now()): Promise<KeyUpload> {
    const spk = await this.currentSignedPrekey(now);
    let oneTimePrekeys: KeyUpload['oneTimePrekeys'] = [];
    if (hubPrekeyCount < PREKEY_LOW_WATER) {
      const first = ((await this.store.get<number>('meta', 'nextPrekeyId')) ?? 1) >>> 0;
      const fresh = await generatePrekeys(first, PREKEY_BATCH);
      // Private halves are stored before the public ones leave the device.
      await this.store.transaction([
        ...fresh.map((k) => putOp('prekeys', String(k.keyId), { keyId: k.keyId, publicKey: k.publicKey, privateKey: k.privateKey })),
        putOp('meta', 'nextPrekeyId', (first + PREKEY_BATCH) % 2 ** 31),
      ]);
      oneTimePrekeys = fresh.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));
    }
    return {
      identityKey: this.identity.publicKey,
      signedPrekey: { keyId: spk.keyId, publicKey: spk.publicKey, signature: spk.signature },
      oneTimePrekeys,
    };
  }

  private async currentSignedPrekey(now: number): Promise<StoredSignedPrekey> {
    const all = await this.store.list<StoredSignedPrekey>('signedPrekeys');
    const newest = all.map(([, v]) => v).sort((a, b) => b.createdAt - a.createdAt)[0];
    if (newest && now - newest.createdAt < SIGNED_PREKEY_ROTATE_MS) return newest;
    const keyId = newest ? (newest.keyId + 1) % 2 ** 31 : 1;
    const spk = await generateSignedPrekey(this.identity, keyId);
    const record: StoredSignedPrekey = { keyId, publicKey: spk.publicKey, privateKey: spk.privateKey, signature: spk.signature, createdAt: now };
    const expired = all.filter(([, v]) => now - v.createdAt > SIGNED_PREKEY_ROTATE_MS + SIGNED_PREKEY_GRACE_MS).map(([k]) => deleteOp('signedPrekeys', k));
    await this.store.transaction([putOp('signedPrekeys', String(keyId), record), ...expired]);
    return record;
  }

  async signedPrekey(keyId: number): Promise<KeyPair | undefined> {
    const spk = await this.store.get<StoredSignedPrekey>('signedPrekeys', String(keyId));
    return spk && { publicKey: spk.publicKey, privateKey: spk.privateKey };
  }

  async oneTimePrekey(keyId: number): Promise<KeyPair | undefined> {
    const k = await this.store.get<StoredPrekey>('prekeys', String(keyId));
    return k && { publicKey: k.publicKey, privateKey: k.privateKey };
  }
}
