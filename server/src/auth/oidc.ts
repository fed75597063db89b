/**
 * An OpenID Connect provider's signing keys for the token verifier (tokens.ts): discovery, the
 * remote key set and its refetching, and which failures mean the provider could not be reached.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, type JWK, type JWTVerifyGetKey } from 'jose';

/** How the provider's key set is fetched. */
export interface OidcKeyOptions {
  /** After a JWKS fetch, an unknown `kid` triggers no new fetch for this long. @default 30000 */
  jwksCooldownMs?: number;
  /** The JWKS is fetched again after this long anyway. @default 600000 */
  jwksMaxAgeMs?: number;
  /** How long a discovery or JWKS request may take. @default 5000 */
  timeoutMs?: number;
}

/** A key set or discovery request that failed on the network or with a non-200 answer. */
export function isFetchFailure(e: unknown): boolean {
  if (e instanceof OidcUnavailable) return true;
  if (e instanceof TypeError && /fetch/i.test(e.message)) return true;
  return e instanceof joseErrors.JOSEError && e.code === joseErrors.JOSEError.code && /HTTP response|200 OK/.test(e.message);
}

class OidcUnavailable extends Error {}

/**
 * The provider's keys: the discovery document (`/.well-known/openid-configuration`) read once, its
 * `issuer` checked, then jose's remote key set on its `jwks_uri`, which caches the keys and fetches
 * them again on an unknown `kid` (at most once per cooldown) and when they are older than the max age.
 * A failed discovery is tried again at the next handshake.
 */
export class OidcKeys {
  private jwks: { getKey: JWTVerifyGetKey; jwksUri: string } | undefined;
  private pending: Promise<{ getKey: JWTVerifyGetKey; jwksUri: string }> | undefined;

  constructor(
    private readonly issuer: string,
    private readonly options: OidcKeyOptions,
  ) {}

  get cooldownMs(): number {
    return this.options.jwksCooldownMs ?? 30_000;
  }

  async keySet(): Promise<JWTVerifyGetKey> {
    return (await this.discovered()).getKey;
  }

  /** The key set as last fetched, as key objects (none before the first fetch; keys that do not import are left out). */
  cachedKeys(): KeyObject[] {
    const set = (this.jwks?.getKey as unknown as { jwks?: () => { keys: JWK[] } | undefined } | undefined)?.jwks?.();
    const keys: KeyObject[] = [];
    for (const jwk of set?.keys ?? []) {
      try {
        keys.push(createPublicKey({ key: jwk, format: 'jwk' }));
      } catch {
        // a key type node cannot import: not shown
      }
    }
    return keys;
  }

  async warmUp(): Promise<{ jwksUri: string }> {
    const { getKey, jwksUri } = await this.discovered();
    await (getKey as JWTVerifyGetKey & { reload: () => Promise<void> }).reload();
    return { jwksUri };
  }

  private discovered(): Promise<{ getKey: JWTVerifyGetKey; jwksUri: string }> {
    if (this.jwks) return Promise.resolve(this.jwks);
    this.pending ??= this.discover().then(
      (jwks) => {
        this.jwks = jwks;
        this.pending = undefined;
        return jwks;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    return this.pending;
  }

  private async discover(): Promise<{ getKey: JWTVerifyGetKey; jwksUri: string }> {
    const url = `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let doc: unknown;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000), headers: { accept: 'application/json' }, redirect: 'error' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = await res.json();
    } catch (e) {
      throw new OidcUnavailable(`OIDC discovery at ${url} failed: ${(e as Error).message}`);
    }
    const meta = (doc ?? {}) as { issuer?: unknown; jwks_uri?: unknown };
    // The issuer in the document must be the one configured (OpenID Connect Discovery 1.0, 4.3).
    if (meta.issuer !== this.issuer) throw new OidcUnavailable(`OIDC discovery at ${url} names another issuer`);
    if (typeof meta.jwks_uri !== 'string') throw new OidcUnavailable(`OIDC discovery at ${url} has no jwks_uri`);
    const jwksUri = new URL(meta.jwks_uri);
    const issuerUrl = new URL(this.issuer);
    if (jwksUri.protocol !== 'https:' && !(jwksUri.protocol === 'http:' && issuerUrl.protocol === 'http:' && jwksUri.hostname === issuerUrl.hostname)) {
      throw new OidcUnavailable('OIDC jwks_uri must be https (plain http only for a loopback test provider, on its host)');
    }
    const getKey = createRemoteJWKSet(jwksUri, {
      cooldownDuration: this.options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: this.options.jwksMaxAgeMs ?? 600_000,
      timeoutDuration: this.options.timeoutMs ?? 5_000,
    });
    return { getKey, jwksUri: jwksUri.href };
  }
}
