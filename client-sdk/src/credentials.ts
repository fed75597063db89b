import {
  CredentialRevocationSchema,
  CredentialSchema,
  CredentialsResultSchema,
  credentialMessage,
  parseSigned,
  type Credential,
  type CredentialsResult,
} from '@curbside/shared';
import { bytesEqual, fingerprintDigits, fingerprintHash, fingerprintKeyBytes, sodiumReady, verifySignature } from './crypto/index.js';
import { CurbsideError, ErrorCode } from './errors.js';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { HubApi } from './hub/api.js';
import { base64UrlToBytes, bytesToBase64Url } from './stores/codec.js';

export type { Credential };

/**
 * What this device concluded about a user's credentials:
 * - `verified`: an attestation signed by the organisation's pinned credentialing key, not expired, not
 *   revoked, bound to the identity key of a device the user's signed device list names (`credential` is it);
 * - `expired`, `revoked`: the newest such attestation is no longer valid (`credential` is it);
 * - `key-changed`: an attestation names a device key the user's signed device list does not give (the
 *   device was re-keyed, or someone tried to move the credential to another key);
 * - `org-key-changed`: the hub presents another credentialing key than the one pinned here: nothing is
 *   verified until the user compares and accepts it ({@link Credentials.acceptOrgKey});
 * - `none`: no attestation that verifies (none, or only forged or malformed ones).
 */
export interface CredentialCheck {
  userId: string;
  status: 'verified' | 'expired' | 'revoked' | 'key-changed' | 'org-key-changed' | 'none';
  credential?: Credential;
}

/** How long a check is used before it is made again. */
const CHECK_TTL_MS = 5 * 60_000;
/** Where the pinned credentialing key is kept. */
const PINNED = 'credentialOrgKey';

interface Pinned {
  publicKey: string;
  /** The user compared its fingerprint (e.g. with the hospital's intranet) and confirmed it. */
  verified: boolean;
}

/**
 * Verified credentials (`client.credentials`): an organisation's credentialing office signs who a
 * clinician is (name, specialty, licence, institution), bound to the identity key of one of their
 * devices. This device checks every attestation itself before calling it verified: the office's key is
 * pinned like a contact's identity key (on first use, or from `CurbsideClientOptions.credentialKey`),
 * and an attestation counts only for a key the user's signed device list gives. A hub can withhold a
 * credential, not forge one or move it to another key.
 */
export class Credentials {
  private readonly cache = new Map<string, { check: CredentialCheck; at: number }>();

  /** @internal */
  constructor(
    private readonly deps: {
      api: HubApi;
      messenger: SecureMessenger;
      /** The key the app was configured with (base64url), if any: pinned over anything the hub says. */
      configuredKey: string | undefined;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * A user's credentials as this device verifies them (cached five minutes).
   * @example
   * ```ts
   * const c = await client.credentials.check('dr-okafor');
   * if (c.status === 'verified') badge.textContent = `Verified ${c.credential!.specialty}`;
   * ```
   */
  async check(userId: string, options: { fresh?: boolean } = {}): Promise<CredentialCheck> {
    const hit = this.cache.get(userId);
    if (hit && !options.fresh && this.now() - hit.at < CHECK_TTL_MS) return hit.check;
    const result = CredentialsResultSchema.parse(await this.deps.api.credentials([userId]));
    const [check] = await this.judge(result, [userId]);
    this.cache.set(userId, { check: check!, at: this.now() });
    return check!;
  }

  /** Verified clinicians whose attested specialty contains every word of `query`, newest attestation first. */
  async search(query: string): Promise<CredentialCheck[]> {
    const result = CredentialsResultSchema.parse(await this.deps.api.credentialSearch(query));
    const userIds = [...new Set(result.attestations.map((a) => parseSigned(CredentialSchema, a.signed)?.userId).filter((u): u is string => u !== undefined))];
    return (await this.judge(result, userIds)).filter((c) => c.status === 'verified');
  }

  /**
   * The organisation's credentialing key as pinned here (`fingerprint`: 30 digits in groups of five, to
   * compare with what the credentialing office publishes), and whether the hub now presents another.
   */
  async orgKey(): Promise<{ publicKey: string; fingerprint: string; verified: boolean; hubPresents?: string } | undefined> {
    const pinned = await this.pinned();
    const presented = CredentialsResultSchema.parse(await this.deps.api.credentials([this.deps.messenger.self().userId])).orgKey;
    const current = pinned ?? (presented ? { publicKey: presented, verified: false } : undefined);
    if (!current) return undefined;
    await sodiumReady();
    const digits = fingerprintDigits(fingerprintHash(fingerprintKeyBytes(base64UrlToBytes(current.publicKey)), new TextEncoder().encode('Curbside credentialing key')));
    const fingerprint = digits.replace(/(\d{5})(?=\d)/g, '$1 ');
    return { ...current, fingerprint, ...(presented && presented !== current.publicKey ? { hubPresents: presented } : {}) };
  }

  /**
   * @internal The credentialing key this device trusts: the pinned one or, on first use, `presented`
   * (the key the hub presents), pinned now. `hubPresents` when the hub presents another than the pinned one.
   */
  async trustedOrgKey(presented: string | undefined): Promise<{ publicKey: string; hubPresents?: string } | undefined> {
    let pinned = await this.pinned();
    if (!pinned && presented) {
      pinned = { publicKey: presented, verified: false };
      await this.deps.messenger.store.put('meta', PINNED, pinned);
    }
    if (!pinned) return undefined;
    return { publicKey: pinned.publicKey, ...(presented && presented !== pinned.publicKey ? { hubPresents: presented } : {}) };
  }

  /** The user compared the fingerprint with the office's and it matched: mark the pinned key verified. */
  async markOrgKeyVerified(): Promise<void> {
    const pinned = await this.pinned();
    if (!pinned) throw new CurbsideError(ErrorCode.NOT_FOUND, 'No credentialing key pinned yet');
    await this.deps.messenger.store.put('meta', PINNED, { ...pinned, verified: true });
  }

  /** Accept the key the hub now presents (after comparing it with the office's), replacing the pinned one. */
  async acceptOrgKey(publicKey: string): Promise<void> {
    await this.deps.messenger.store.put('meta', PINNED, { publicKey, verified: true });
    this.cache.clear();
  }

  /** This device's identity key (base64url), for the credentialing office to bind an attestation to. */
  async myIdentityKey(): Promise<string> {
    return bytesToBase64Url(await this.deps.messenger.identityKey());
  }

  private async pinned(): Promise<Pinned | undefined> {
    if (this.deps.configuredKey) return { publicKey: this.deps.configuredKey, verified: true };
    return this.deps.messenger.store.get<Pinned>('meta', PINNED);
  }

  /** Judge every user's attestations against the pinned key (pinning the hub's on first use). */
  private async judge(result: CredentialsResult, userIds: string[]): Promise<CredentialCheck[]> {
    await sodiumReady();
    const pinned = await this.trustedOrgKey(result.orgKey);
    if (pinned?.hubPresents !== undefined) return userIds.map((userId) => ({ userId, status: 'org-key-changed' as const }));
    const key = pinned ? base64UrlToBytes(pinned.publicKey) : undefined;
    const valid = (signed: string, signature: string) => key !== undefined && verifySignature(key, credentialMessage(signed), base64UrlToBytes(signature));
    const revoked = new Set(
      result.revocations.flatMap((r) => {
        const revocation = parseSigned(CredentialRevocationSchema, r.signed);
        return revocation && valid(r.signed, r.signature) ? [`${revocation.orgId} ${revocation.serial}`] : [];
      }),
    );
    const now = this.now();
    const checks: CredentialCheck[] = [];
    for (const userId of userIds) {
      const mine = result.attestations
        .map((a) => ({ a, c: parseSigned(CredentialSchema, a.signed) }))
        .filter((x): x is { a: (typeof result.attestations)[number]; c: Credential } => x.c !== undefined && x.c.userId === userId && valid(x.a.signed, x.a.signature))
        .map((x) => x.c)
        .sort((a, b) => b.issuedAt - a.issuedAt);
      let best: CredentialCheck = { userId, status: 'none' };
      for (const c of mine) {
        const status = revoked.has(`${c.orgId} ${c.serial}`) ? 'revoked' : c.expiresAt <= now ? 'expired' : (await this.boundToListedKey(c)) ? 'verified' : 'key-changed';
        if (status === 'verified') {
          best = { userId, status, credential: c };
          break;
        }
        if (best.status === 'none') best = { userId, status, credential: c };
      }
      checks.push(best);
    }
    return checks;
  }

  /** Whether the user's signed device list gives the attested device the attested key. */
  private async boundToListedKey(c: Credential): Promise<boolean> {
    const listed = await this.deps.messenger.deviceLists.keyOf(c.userId, c.deviceId).catch(() => undefined);
    return listed !== undefined && bytesEqual(listed, base64UrlToBytes(c.identityKey));
  }
}
