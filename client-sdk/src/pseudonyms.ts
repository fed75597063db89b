/**
 * Pseudonymous posting (`client.pseudonyms`, issue #23): one-time tokens that say "a verified clinician
 * of specialty S in this organisation" and nothing else. The credentialing office signs them blind (RSA
 * blind signatures, RFC 9474, `@cloudflare/blindrsa-ts`): it learns who asked for how many, never which
 * token is whose. Blinding state and each token's one-time signing key stay in this device's store.
 */
import { RSABSSA } from '@cloudflare/blindrsa-ts';
import {
  Limits,
  PseudonymCollectResultSchema,
  PseudonymKeysResultSchema,
  PseudonymRequestResultSchema,
  canonicalJson,
  certifiedPseudonymKeys,
  fromBase64Url,
  importPseudonymPublicKey,
  pseudonymRequestMessage,
  toBase64Url,
  verifyPseudonymToken,
  type PseudonymKeysResult,
  type PseudonymToken,
} from '@curbside/shared';
import { getSodium, sign, sodiumReady, verifySignature } from './crypto/index.js';
import { CurbsideError, ErrorCode } from './errors.js';
import type { Credentials } from './credentials.js';
import type { SecureMessenger } from './e2ee/secure-messenger.js';
import type { HubApi } from './hub/api.js';
import { deleteOp, putOp } from './stores/store.js';

export type { PseudonymToken };

/** Where a request's blinding state waits for the office's answer, and where finished tokens are kept (`meta` namespace). */
const REQUEST_PREFIX = 'pseudonym-request:';
const TOKEN_PREFIX = 'pseudonym-token:';
/** Tokens spent on this device's pseudonymous cases, kept (with their one-time keys) for the asker's follow-ups. */
const CASE_PREFIX = 'pseudonym-case:';
/** Tokens asked for by default in one request. */
const DEFAULT_BATCH = 10;

interface PendingItem {
  message: string;
  /** `prefix ‖ message`, as RFC 9474's prepare made it. */
  prepared: Uint8Array;
  inv: Uint8Array;
  secretKey: Uint8Array;
}
interface PendingRequest {
  orgId: string;
  epoch: string;
  specialty: string;
  publicKey: string;
  items: PendingItem[];
}
interface HeldToken {
  token: PseudonymToken;
  specialty: string;
  epoch: string;
  notAfter: number;
  secretKey: Uint8Array;
}

/** A token taken for one pseudonymous post. */
export interface PseudonymHandle {
  /** Goes with the post: readers verify it with `verifyPseudonymToken`. */
  token: PseudonymToken;
  specialty: string;
  epoch: string;
  /** Sign the post's bytes with the token's one-time key (Ed25519; readers check it under the token's `key`). */
  sign(bytes: Uint8Array): Uint8Array;
  /** The post was accepted: forget the token and its key (a token is spent once). */
  consume(): Promise<void>;
  /**
   * The post was a case, accepted as `caseId`: keep the token and its key for the asker's follow-ups
   * (replies, helpful marks, the summary are signed by the same key) instead of forgetting them.
   */
  keepForCase(caseId: string): Promise<void>;
}

/** A case this device asked pseudonymously: its spent token and one-time key sign the asker's follow-ups. */
export interface OwnPseudonymousCase {
  token: PseudonymToken;
  specialty: string;
  sign(bytes: Uint8Array): Uint8Array;
}

/**
 * Pseudonymous posting tokens (`client.pseudonyms`). A device with a verified credential asks the
 * office for a batch ({@link Pseudonyms.request}), picks up the answers once the office has signed them
 * ({@link Pseudonyms.collect}), and takes one token per pseudonymous post ({@link Pseudonyms.take}).
 * @example
 * ```ts
 * await client.pseudonyms.request(10);
 * // … once the office has run `curbside-admin credentials sign-pseudonyms`:
 * await client.pseudonyms.collect();
 * const t = await client.pseudonyms.take();
 * if (t) { const signature = t.sign(caseBytes); await post(caseBytes, t.token, signature); await t.consume(); }
 * ```
 */
export class Pseudonyms {
  private readonly suite = RSABSSA.SHA384.PSS.Randomized();

  /** @internal */
  constructor(
    private readonly deps: {
      api: HubApi;
      messenger: SecureMessenger;
      credentials: Credentials;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * Ask the office for `count` tokens (default 10, at most 20 per request) for this device's verified
   * specialty, under the newest token key valid now. Each token gets a fresh one-time Ed25519 key; the
   * hub and the office see only blinded messages. The request is signed by this device's identity key.
   * @param count - tokens to ask for
   * @returns the request's id, epoch and specialty
   * @throws CurbsideError FORBIDDEN when this device holds no verified credential or the cap is reached,
   *   NOT_FOUND when the office has no token key for the specialty
   */
  async request(count = DEFAULT_BATCH): Promise<{ requestId: string; epoch: string; specialty: string; count: number }> {
    await sodiumReady();
    const self = this.deps.messenger.self();
    const check = await this.deps.credentials.check(self.userId, { fresh: true });
    if (check.status !== 'verified' || check.credential?.deviceId !== self.deviceId) {
      throw new CurbsideError(ErrorCode.FORBIDDEN, 'This device holds no verified credential: tokens are issued only to a verified clinician', { status: check.status });
    }
    const { orgId, specialty } = check.credential;
    const { keys, revocations } = await this.certified(orgId);
    const now = this.now();
    const key = keys
      .filter((k) => k.specialty === specialty && k.notBefore <= now && now < k.notAfter && !revocations.some((r) => r.epoch === k.epoch && r.specialty === k.specialty))
      .sort((a, b) => b.notBefore - a.notBefore)[0];
    if (!key) throw new CurbsideError(ErrorCode.NOT_FOUND, `The office has no token key for ${specialty} now`, { specialty });
    const publicKey = (await importPseudonymPublicKey(key.publicKey))!;
    const sodium = getSodium();
    const items: PendingItem[] = [];
    const blinded: string[] = [];
    for (let i = 0; i < count; i++) {
      const pair = sodium.crypto_sign_keypair();
      const message = canonicalJson({ v: 1, type: 'pseudonym', orgId, epoch: key.epoch, specialty, key: toBase64Url(pair.publicKey) });
      const prepared = this.suite.prepare(new TextEncoder().encode(message));
      const { blindedMsg, inv } = await this.suite.blind(publicKey, prepared);
      items.push({ message, prepared, inv, secretKey: pair.privateKey });
      blinded.push(toBase64Url(blindedMsg));
    }
    const requestId = globalThis.crypto.randomUUID();
    const request = canonicalJson({ v: 1, type: 'pseudonym-request', requestId, orgId, userId: self.userId, deviceId: self.deviceId, epoch: key.epoch, specialty, blinded, createdAt: now });
    const identity = (await this.deps.messenger.localKeys()).identity;
    const signature = toBase64Url(sign(identity.privateKey, pseudonymRequestMessage(request)));
    // Kept before it is sent: an answer must find its blinding state even if this device restarts meanwhile.
    await this.deps.messenger.store.put('meta', REQUEST_PREFIX + requestId, { orgId, epoch: key.epoch, specialty, publicKey: key.publicKey, items });
    try {
      const res = PseudonymRequestResultSchema.parse(await this.deps.api.pseudonymRequest({ request, signature }));
      return { requestId: res.requestId, epoch: key.epoch, specialty, count: res.count };
    } catch (err) {
      await this.deps.messenger.store.delete('meta', REQUEST_PREFIX + requestId);
      throw err;
    }
  }

  /**
   * Finish the tokens of every request the office has answered: unblind each signature, verify the
   * token against the office's certified key (a bad answer is dropped), and keep it with its one-time key.
   * @returns how many tokens were added
   */
  async collect(): Promise<number> {
    await sodiumReady();
    const store = this.deps.messenger.store;
    const waiting = (await store.list('meta')).map(([k]) => k).filter((k) => k.startsWith(REQUEST_PREFIX)).map((k) => k.slice(REQUEST_PREFIX.length));
    let added = 0;
    const answers = [];
    for (let i = 0; i < waiting.length; i += Limits.MAX_PSEUDONYM_COLLECT) {
      answers.push(...PseudonymCollectResultSchema.parse(await this.deps.api.pseudonymCollect(waiting.slice(i, i + Limits.MAX_PSEUDONYM_COLLECT))).answers);
    }
    let docs: { result: PseudonymKeysResult; officeKey: string } | undefined;
    for (const answer of answers) {
      const pending = await store.get<PendingRequest>('meta', REQUEST_PREFIX + answer.requestId);
      if (!pending) continue;
      docs ??= await this.keyDocuments();
      const publicKey = (await importPseudonymPublicKey(pending.publicKey))!;
      const key = (await certifiedPseudonymKeys(docs.result, pending.orgId, docs.officeKey, verifySignature)).keys.find((k) => k.publicKey === pending.publicKey);
      const ops = [deleteOp('meta', REQUEST_PREFIX + answer.requestId)];
      for (const [i, item] of pending.items.entries()) {
        const blindSig = answer.blindSignatures[i] !== undefined ? fromBase64Url(answer.blindSignatures[i]) : undefined;
        if (!blindSig) continue;
        let signature: Uint8Array;
        try {
          signature = await this.suite.finalize(publicKey, item.prepared, blindSig, item.inv);
        } catch {
          continue; // Not a signature under the certified key: the hub or the office sent something else.
        }
        const token: PseudonymToken = { message: item.message, prefix: toBase64Url(item.prepared.subarray(0, 32)), signature: toBase64Url(signature) };
        const v = await verifyPseudonymToken(token, docs.result, docs.officeKey, this.now(), verifySignature);
        if (!v.ok) continue;
        ops.push(putOp('meta', TOKEN_PREFIX + v.nullifier, { token, specialty: pending.specialty, epoch: pending.epoch, notAfter: key?.notAfter ?? 0, secretKey: item.secretKey }));
        added++;
      }
      await store.transaction(ops);
    }
    return added;
  }

  /**
   * Requests this device made that the office has not answered yet (as far as this device knows: call
   * {@link Pseudonyms.collect} first), with how many tokens each asked for.
   */
  async pending(): Promise<Array<{ requestId: string; specialty: string; epoch: string; count: number }>> {
    return (await this.deps.messenger.store.list<PendingRequest>('meta'))
      .filter(([k]) => k.startsWith(REQUEST_PREFIX))
      .map(([k, r]) => ({ requestId: k.slice(REQUEST_PREFIX.length), specialty: r.specialty, epoch: r.epoch, count: r.items.length }));
  }

  /** Unspent tokens on this device, per specialty and epoch (expired ones are not counted). */
  async available(): Promise<Array<{ specialty: string; epoch: string; count: number }>> {
    const counts = new Map<string, { specialty: string; epoch: string; count: number }>();
    for (const [, t] of await this.held()) {
      const k = JSON.stringify([t.specialty, t.epoch]);
      const entry = counts.get(k) ?? { specialty: t.specialty, epoch: t.epoch, count: 0 };
      entry.count++;
      counts.set(k, entry);
    }
    return [...counts.values()];
  }

  /**
   * One unspent token (of `specialty`, if given), the one closest to expiry, with its one-time key.
   * Undefined when none is left: {@link Pseudonyms.request} more. Call `consume()` once the post is accepted.
   */
  async take(specialty?: string): Promise<PseudonymHandle | undefined> {
    await sodiumReady();
    const candidates = (await this.held()).filter(([, t]) => specialty === undefined || t.specialty === specialty).sort(([, a], [, b]) => a.notAfter - b.notAfter);
    const [entry] = candidates;
    if (!entry) return undefined;
    const [storeKey, held] = entry;
    const store = this.deps.messenger.store;
    return {
      token: held.token,
      specialty: held.specialty,
      epoch: held.epoch,
      sign: (bytes) => sign(held.secretKey, bytes),
      consume: () => store.delete('meta', storeKey),
      keepForCase: (caseId) => store.transaction([deleteOp('meta', storeKey), putOp('meta', CASE_PREFIX + caseId, held)]),
    };
  }

  /** @internal The case `caseId` if this device asked it pseudonymously (it holds the case's key). */
  async ownCase(caseId: string): Promise<OwnPseudonymousCase | undefined> {
    await sodiumReady();
    const held = await this.deps.messenger.store.get<HeldToken>('meta', CASE_PREFIX + caseId);
    if (!held) return undefined;
    return { token: held.token, specialty: held.specialty, sign: (bytes) => sign(held.secretKey, bytes) };
  }

  /** @internal The certified token keys and the pinned office key, to verify a pseudonymous post. */
  verificationKeys(): Promise<{ result: PseudonymKeysResult; officeKey: string }> {
    return this.keyDocuments();
  }

  private async held(): Promise<Array<[string, HeldToken]>> {
    const now = this.now();
    return (await this.deps.messenger.store.list<HeldToken>('meta')).filter(([k, t]) => k.startsWith(TOKEN_PREFIX) && t.notAfter > now);
  }

  /** The certified keys and revocations, checked against the credentialing key this device pinned. */
  private async certified(orgId: string) {
    const { result, officeKey } = await this.keyDocuments();
    return certifiedPseudonymKeys(result, orgId, officeKey, verifySignature);
  }

  private async keyDocuments(): Promise<{ result: PseudonymKeysResult; officeKey: string }> {
    const result = PseudonymKeysResultSchema.parse(await this.deps.api.pseudonymKeys());
    // The key this device pinned (on first use, the one the hub presents now, as credential checks do).
    const pinned = await this.deps.credentials.trustedOrgKey(result.orgKey);
    if (!pinned || pinned.hubPresents !== undefined) throw new CurbsideError(ErrorCode.FORBIDDEN, 'No credentialing key this device trusts (or the hub presents another): compare it first', {});
    return { result, officeKey: pinned.publicKey };
  }
}
