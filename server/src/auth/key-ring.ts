import { readFile } from 'node:fs/promises';
import type { AdminKeysNode } from '@curbside/shared';
import { ErrorCode } from '@curbside/shared';
import { HubError } from '../errors.js';
import type { JwtAlgorithm } from './keys.js';
import { keyFingerprint, parseVerificationKeys } from './keys.js';
import type { TokenVerifier } from './tokens.js';

/**
 * The identity provider's verification keys this node accepts, and their rotation.
 *
 * A hospital's identity provider rotates its signing key now and then: it publishes the new key, signs
 * with it from some moment on, and retires the old one later. Tokens signed by either are valid in
 * between, so the hub accepts both for that window:
 *   1. append the new PEM to JWT_PUBLIC_KEY_FILE on every node, then `curbside-admin keys reload`;
 *   2. the identity provider switches to the new key;
 *   3. once the old key's last tokens expired (JWT_MAX_LIFETIME_SEC), remove it from the file and reload.
 * Reload re-reads the file on every node (through the Redis adapter) and answers each node's fingerprints.
 * A file that does not parse, or holds a key that does not fit JWT_ALGORITHM, is refused and the keys in
 * force stay as they were.
 */
export class KeyRing {
  constructor(
    private readonly options: {
      verifier: TokenVerifier;
      nodeId: string;
      /** JWT_ALGORITHM; with an OpenID Connect provider, a description (its keys say their algorithm). */
      algorithm: JwtAlgorithm | string;
      /** JWT_PUBLIC_KEY_FILE; unset: keys from the environment (or dev mode's own), fixed until restart. */
      keyFile: string | undefined;
      source: AdminKeysNode['source'];
    },
  ) {}

  /** What this node accepts now. */
  describe(error?: string): AdminKeysNode {
    return {
      node: this.options.nodeId,
      source: this.options.source,
      algorithm: this.options.algorithm,
      fingerprints: this.options.verifier.currentKeys().map(keyFingerprint),
      ...(error !== undefined ? { error } : {}),
    };
  }

  /**
   * Re-read JWT_PUBLIC_KEY_FILE and accept exactly the keys it holds; with an OpenID Connect provider,
   * fetch its key set again now. @throws HubError DISABLED, INVALID_PAYLOAD or UNAVAILABLE; nothing changes then.
   */
  async reload(): Promise<AdminKeysNode> {
    const { keyFile, verifier } = this.options;
    if (this.options.source === 'oidc') {
      try {
        await verifier.refreshKeys();
      } catch (err) {
        throw new HubError(ErrorCode.UNAVAILABLE, `The identity provider's key set could not be fetched: ${(err as Error).message}; the keys in force are unchanged`, { node: this.options.nodeId });
      }
      return this.describe();
    }
    const algorithm = this.options.algorithm as JwtAlgorithm;
    if (keyFile === undefined) {
      throw new HubError(
        ErrorCode.DISABLED,
        this.options.source === 'dev' ? 'Dev mode signs its own tokens; there is no identity provider key to rotate' : 'The keys come from JWT_PUBLIC_KEY: set JWT_PUBLIC_KEY_FILE to rotate without a restart',
      );
    }
    let text: string;
    try {
      text = await readFile(keyFile, 'utf8');
    } catch (err) {
      throw new HubError(ErrorCode.INVALID_PAYLOAD, `JWT_PUBLIC_KEY_FILE cannot be read: ${(err as Error).message}; the keys in force are unchanged`, { node: this.options.nodeId });
    }
    const parsed = parseVerificationKeys(text, algorithm);
    if (!parsed.ok) throw new HubError(ErrorCode.INVALID_PAYLOAD, `JWT_PUBLIC_KEY_FILE ${parsed.reason}; the keys in force are unchanged`, { node: this.options.nodeId });
    verifier.setKeys(parsed.keys);
    return this.describe();
  }

  /** `reload`, with a failure answered as this node's state plus the reason (for the answers gathered from every node). */
  async reloadReporting(): Promise<AdminKeysNode> {
    try {
      return await this.reload();
    } catch (err) {
      return this.describe(err instanceof Error ? err.message : String(err));
    }
  }
}
