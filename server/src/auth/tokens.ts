/**
 * Access tokens: the verifier that checks them (against static PEM keys or an OpenID Connect
 * provider's key set, oidc.ts) and turns their claims into who is connecting, and dev mode's issuer.
 */
import { createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ErrorCode, IdSchema, ProfileFieldSchema, isReservedId, type ProfileFields, type SocketData } from '@curbside/shared';
import { HubError } from '../errors.js';
import { JWT_ALGORITHMS, type JwtAlgorithm } from './keys.js';
import { STATIC_CLAIMS, type ClaimMapping } from './config.js';
import { OidcKeys, isFetchFailure, type OidcKeyOptions } from './oidc.js';

interface CommonVerifierOptions {
  issuer: string;
  audience: string;
  clockToleranceSec: number;
  /** The longest lifetime (`exp` − `iat`, or − now without `iat`) accepted; longer tokens are refused. @default 86400 */
  maxLifetimeSec?: number;
  /** Which claims name the user, organisation, device, display name and roles. @default STATIC_CLAIMS (`sub`, `org`, `dev`, `name`) */
  claims?: ClaimMapping;
}

/** A static PEM public key (simple setups, dev mode). */
export interface StaticKeyVerifierOptions extends CommonVerifierOptions {
  /** One key, or (PEM text with several keys, or a list) the old and new keys during a signing-key rotation. */
  publicKey: string | KeyObject | readonly KeyObject[];
  /** The one algorithm accepted. Pinning it is what stops `alg: none` and HS/RS confusion. */
  algorithm: JwtAlgorithm;
}

/** The hospital's OpenID Connect provider: keys from its discovery document's `jwks_uri`. */
export interface OidcVerifierOptions extends CommonVerifierOptions {
  oidc: OidcKeyOptions;
}

export type TokenVerifierOptions = StaticKeyVerifierOptions | OidcVerifierOptions;

/** What the client states in the handshake besides its token. */
export interface StatedIdentity {
  /** This device, when tokens carry no device claim (OIDC): bound to the token's user at registration. */
  deviceId?: string | undefined;
  /** Who the client thinks it is; refused when the token says otherwise (a misconfigured app). */
  userId?: string | undefined;
}

/** @default for `TokenVerifierOptions.maxLifetimeSec` and JWT_MAX_LIFETIME_SEC: a day. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SEC = 86_400;

const MAX_ROLES = 50;
const MAX_ROLE_LENGTH = 100;

/**
 * Verifies access tokens from the hospital's identity provider and extracts who is connecting: one
 * verifier (jose) for a static PEM key and for an OpenID Connect provider's JWKS.
 */
export class TokenVerifier {
  /** The static keys (several during a rotation; a PEM block that did not parse is left out), or the provider's key set. */
  private keys: readonly KeyObject[] | OidcKeys;
  private readonly algorithms: string[];
  private readonly claims: ClaimMapping;

  constructor(private readonly options: TokenVerifierOptions) {
    this.claims = options.claims ?? STATIC_CLAIMS;
    if ('oidc' in options) {
      this.keys = new OidcKeys(options.issuer, options.oidc);
      // Asymmetric algorithms only, whatever the key set says: never HS* or none.
      this.algorithms = [...JWT_ALGORITHMS];
    } else {
      // A PEM that does not parse leaves no key: every token under it is refused (loadConfig refuses such keys first).
      this.keys = asKeys(options.publicKey);
      this.algorithms = [options.algorithm];
    }
  }

  /** Whether keys come from an OpenID Connect provider's key set (rotated there) rather than static PEM keys. */
  get fromProvider(): boolean {
    return this.keys instanceof OidcKeys;
  }

  /** Replace the static verification keys (a signing-key rotation): tokens signed by any of them are accepted. */
  setKeys(keys: readonly KeyObject[]): void {
    if (this.keys instanceof OidcKeys) throw new RangeError('the keys come from the OpenID Connect provider');
    if (keys.length === 0) throw new RangeError('at least one verification key');
    this.keys = [...keys];
  }

  /** The keys in force as key objects: the static ones, or the provider's key set as last fetched. */
  currentKeys(): KeyObject[] {
    if (!(this.keys instanceof OidcKeys)) return [...this.keys];
    return this.keys.cachedKeys();
  }

  /** OIDC: fetch the provider's key set again now (an operator's `keys reload`). */
  async refreshKeys(): Promise<void> {
    if (this.keys instanceof OidcKeys) await this.keys.warmUp();
  }

  /** OIDC: fetch the discovery document and key set now (at start), so the first handshake does not wait. */
  async warmUp(): Promise<{ jwksUri: string } | undefined> {
    if (!(this.keys instanceof OidcKeys)) return undefined;
    return this.keys.warmUp();
  }

  /**
   * @throws HubError AUTH_INVALID (the token, a missing device id, a stated device or user the token
   *   contradicts), AUTH_EXPIRED, UNAVAILABLE (the identity provider could not be reached, or the
   *   token's key is new and the key set was fetched too recently: retry). Messages never echo the token.
   */
  async verify(token: string, stated: StatedIdentity = {}): Promise<SocketData> {
    let payload: JWTPayload;
    let coolingDown = false;
    try {
      const options = {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSec,
        requiredClaims: ['exp'],
      };
      if (this.keys instanceof OidcKeys) {
        const getKey = await this.keys.keySet();
        // jose fetches the key set again on an unknown kid only once its cooldown has passed.
        coolingDown = (getKey as unknown as { coolingDown?: boolean }).coolingDown === true;
        ({ payload } = await jwtVerify(token, getKey, options));
      } else {
        payload = await verifyWithAny(token, this.keys, options);
      }
    } catch (e) {
      if (e instanceof joseErrors.JWKSNoMatchingKey && coolingDown) {
        // A key the provider may have just rotated in: not a verdict on the token while the hub's
        // copy of the key set is too fresh to fetch again. The client retries (the SDK does).
        const retryAfterMs = (this.keys as OidcKeys).cooldownMs;
        throw new HubError(ErrorCode.UNAVAILABLE, "The token's signing key is not known here yet; retry shortly", { retryAfterMs });
      }
      throw refusal(e);
    }
    return this.identity(payload, stated);
  }

  private identity(payload: JWTPayload, stated: StatedIdentity): SocketData {
    const { claims } = this;
    const missing: string[] = [];
    const id = (claim: string): string | undefined => {
      const v = claimAt(payload, claim);
      if (typeof v === 'string' && IdSchema.safeParse(v).success) return v;
      missing.push(claim);
      return undefined;
    };
    const userId = id(claims.userClaim);
    const orgId = 'fixed' in claims.org ? claims.org.fixed : id(claims.org.claim);
    const claimedDevice = claims.deviceClaim !== undefined ? claimAt(payload, claims.deviceClaim) : undefined;
    if (claimedDevice !== undefined && (typeof claimedDevice !== 'string' || !IdSchema.safeParse(claimedDevice).success)) missing.push(claims.deviceClaim!);
    const jti = payload.jti;
    const authTime = payload['auth_time'];
    if (jti !== undefined && (typeof jti !== 'string' || jti.length > 200)) missing.push('jti');
    if (authTime !== undefined && !Number.isInteger(authTime)) missing.push('auth_time');
    if (payload.iat !== undefined && !Number.isInteger(payload.iat)) missing.push('iat');
    if (!Number.isInteger(payload.exp)) missing.push('exp');
    const deviceId = typeof claimedDevice === 'string' ? claimedDevice : stated.deviceId;
    if (missing.length || !userId || !orgId || (deviceId === undefined && claims.deviceClaim !== undefined)) {
      if (deviceId === undefined && claims.deviceClaim !== undefined && !missing.includes(claims.deviceClaim)) missing.push(claims.deviceClaim);
      const required = [claims.userClaim, ...('claim' in claims.org ? [claims.org.claim] : []), ...(claims.deviceClaim ? [claims.deviceClaim] : []), 'exp'];
      throw new HubError(ErrorCode.AUTH_INVALID, `Access token rejected: claims ${required.join(', ')} are required`, { missing });
    }
    if (deviceId === undefined) {
      throw new HubError(ErrorCode.AUTH_INVALID, 'No device id: state this device in the handshake auth field `deviceId`', { missing: ['deviceId'] });
    }
    // `~sealed` and every id starting with `~` are the hub's own senders (sealed posts): no account may be one.
    if (isReservedId(userId) || isReservedId(deviceId) || isReservedId(orgId)) {
      throw new HubError(ErrorCode.AUTH_INVALID, 'Access token rejected: user, device and organisation ids may not start with "~" (reserved by the hub)');
    }
    if (stated.deviceId !== undefined && stated.deviceId !== deviceId) {
      throw new HubError(ErrorCode.AUTH_INVALID, 'The handshake names another device than the access token');
    }
    if (stated.userId !== undefined && stated.userId !== userId) {
      throw new HubError(ErrorCode.AUTH_INVALID, 'The handshake names another user than the access token');
    }
    const exp = payload.exp!;
    const nowSec = Math.floor(Date.now() / 1000);
    const maxLifetimeSec = this.options.maxLifetimeSec ?? DEFAULT_MAX_TOKEN_LIFETIME_SEC;
    if (exp - Math.min(payload.iat ?? nowSec, nowSec) > maxLifetimeSec) {
      throw new HubError(ErrorCode.AUTH_INVALID, `Access token rejected: it lives longer than this hub accepts (${maxLifetimeSec} s)`);
    }
    const name = claims.nameClaim !== undefined ? claimAt(payload, claims.nameClaim) : undefined;
    const roles = claims.rolesClaim !== undefined ? rolesFrom(claimAt(payload, claims.rolesClaim)) : undefined;
    const profile = profileFrom(payload, claims);
    return {
      orgId,
      userId,
      deviceId,
      tokenId: jti,
      tokenExpiresAt: exp * 1000,
      ...(typeof authTime === 'number' ? { authTime: authTime * 1000 } : {}),
      ...(typeof name === 'string' && name.length <= 200 ? { name } : {}),
      ...(roles ? { roles } : {}),
      ...(profile ? { profile } : {}),
    };
  }
}

/**
 * Verify under the first of `keys` whose signature matches. During a rotation the token may be signed
 * by the next key; every other verdict (expiry, issuer, audience) does not depend on the key.
 */
async function verifyWithAny(token: string, keys: readonly KeyObject[], options: Parameters<typeof jwtVerify>[2]): Promise<JWTPayload> {
  if (keys.length === 0) throw new joseErrors.JWSSignatureVerificationFailed();
  for (const [i, key] of keys.entries()) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (e) {
      if (e instanceof joseErrors.JWSSignatureVerificationFailed && i < keys.length - 1) continue;
      throw e;
    }
  }
  throw new joseErrors.JWSSignatureVerificationFailed();
}

/** A claim by name, or by dotted path into nested objects when no top-level claim has that name. */
function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let at: unknown = payload;
  for (const part of name.split('.')) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/**
 * The directory profile the token states (name, role or specialty, department), each field only if it
 * is a valid profile field (`ProfileFieldSchema`: trimmed, at most 100 characters, no control
 * characters); undefined when it states none.
 */
function profileFrom(payload: JWTPayload, claims: ClaimMapping): ProfileFields | undefined {
  const out: ProfileFields = {};
  const take = (field: keyof ProfileFields, claim: string | undefined) => {
    if (claim === undefined) return;
    const parsed = ProfileFieldSchema.safeParse(claimAt(payload, claim));
    if (parsed.success) out[field] = parsed.data;
  };
  take('displayName', claims.nameClaim);
  take('role', claims.profileRoleClaim);
  take('department', claims.departmentClaim);
  return Object.keys(out).length ? out : undefined;
}

/** Roles from an array of strings or a space-separated string; bounded in number and length. */
function rolesFrom(value: unknown): string[] | undefined {
  const list = typeof value === 'string' ? value.split(' ') : Array.isArray(value) ? value : undefined;
  if (!list) return undefined;
  return list.filter((r): r is string => typeof r === 'string' && r.length > 0 && r.length <= MAX_ROLE_LENGTH).slice(0, MAX_ROLES);
}

/**
 * Why a token was refused, as a typed error whose words are safe to send to whoever presented it:
 * never the issuer or audience the hub expects, which would tell a prober how to forge a plausible
 * token for another deployment.
 */
function refusal(e: unknown): HubError {
  if (e instanceof HubError) return e;
  if (e instanceof joseErrors.JWTExpired) return new HubError(ErrorCode.AUTH_EXPIRED, 'Access token has expired; refresh it and reconnect');
  if (e instanceof joseErrors.JWKSTimeout || isFetchFailure(e)) {
    return new HubError(ErrorCode.UNAVAILABLE, 'The identity provider could not be reached to check this token; retry');
  }
  let reason = 'unverifiable token';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    reason = e.claim === 'iss' ? 'wrong issuer' : e.claim === 'aud' ? 'wrong audience' : e.claim === 'nbf' ? 'not valid yet' : `bad ${e.claim} claim`;
  } else if (e instanceof joseErrors.JWSSignatureVerificationFailed) reason = 'invalid signature';
  else if (e instanceof joseErrors.JOSEAlgNotAllowed || e instanceof joseErrors.JOSENotSupported) reason = 'algorithm not allowed';
  else if (e instanceof joseErrors.JWKSNoMatchingKey) reason = 'unknown signing key';
  else if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) reason = 'malformed token';
  return new HubError(ErrorCode.AUTH_INVALID, `Access token rejected: ${reason}`);
}

/**
 * Dev mode only: the hub plays identity provider with a key pair generated at start, so a
 * developer can mint tokens for any clinician. Never constructed outside dev mode.
 */
export class DevTokenIssuer {
  readonly algorithm: JwtAlgorithm = 'ES256';
  readonly issuer = 'curbside-dev';
  readonly audience = 'curbside';
  readonly publicKey: KeyObject;
  private readonly privateKey: KeyObject;

  constructor() {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.publicKey = pair.publicKey;
    this.privateKey = pair.privateKey;
  }

  verifierOptions(): StaticKeyVerifierOptions {
    return { publicKey: this.publicKey, algorithm: this.algorithm, issuer: this.issuer, audience: this.audience, clockToleranceSec: 5 };
  }

  async mint(input: { orgId: string; userId: string; deviceId: string; name?: string | undefined; role?: string | undefined; department?: string | undefined; ttlSeconds: number }): Promise<{ token: string; expiresAt: number }> {
    const nowSec = Math.floor(Date.now() / 1000);
    const exp = nowSec + input.ttlSeconds;
    const profile = { ...(input.name ? { name: input.name } : {}), ...(input.role ? { profile_role: input.role } : {}), ...(input.department ? { department: input.department } : {}) };
    const token = await new SignJWT({ org: input.orgId, dev: input.deviceId, ...profile, auth_time: nowSec })
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT' })
      .setSubject(input.userId)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(nowSec)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresAt: exp * 1000 };
  }
}

/** Every PEM block parsed into a key object; one that does not parse is left out (no token verifies under it). */
function asKeys(key: StaticKeyVerifierOptions['publicKey']): KeyObject[] {
  if (typeof key !== 'string') return Array.isArray(key) ? [...(key as readonly KeyObject[])] : [key as KeyObject];
  const blocks = key.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [key];
  const keys: KeyObject[] = [];
  for (const pem of blocks) {
    try {
      keys.push(createPublicKey(pem));
    } catch {
      // refused by loadConfig before it gets here; a key built in code that does not parse verifies nothing
    }
  }
  return keys;
}
