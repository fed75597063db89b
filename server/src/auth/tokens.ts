import { createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { AccessTokenClaimsSchema, ErrorCode, type SocketData } from '@curbside/shared';
import { HubError } from '../errors.js';
import type { JwtAlgorithm } from '../config.js';

export interface TokenVerifierOptions {
  /** One key, or (PEM text with several keys, or a list) the old and new keys during a signing-key rotation. */
  publicKey: string | KeyObject | readonly KeyObject[];
  /** The one algorithm accepted. Pinning it is what stops `alg: none` and HS/RS confusion. */
  algorithm: JwtAlgorithm;
  issuer: string;
  audience: string;
  clockToleranceSec: number;
  /** The longest lifetime (`exp` − `iat`, or − now without `iat`) accepted; longer tokens are refused. @default 86400 */
  maxLifetimeSec?: number;
}

/** @default for `TokenVerifierOptions.maxLifetimeSec` and JWT_MAX_LIFETIME_SEC: a day. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SEC = 86_400;

/** Verifies access tokens from the hospital's identity provider and extracts who is connecting. */
export class TokenVerifier {
  /** Parsed once: given a PEM string, jsonwebtoken would parse it into a key object on every handshake. */
  private keys: ReadonlyArray<KeyObject | string>;

  constructor(private readonly options: TokenVerifierOptions) {
    this.keys = asKeys(options.publicKey);
  }

  /** Replace the verification keys (a signing-key rotation): tokens signed by any of them are accepted. */
  setKeys(keys: readonly KeyObject[]): void {
    if (keys.length === 0) throw new RangeError('at least one verification key');
    this.keys = [...keys];
  }

  /** The keys in force, as parsed key objects (a PEM that did not parse is left out). */
  currentKeys(): KeyObject[] {
    return this.keys.filter((k): k is KeyObject => typeof k !== 'string');
  }

  /** @throws HubError AUTH_INVALID or AUTH_EXPIRED. Messages never echo the token. */
  verify(token: string): SocketData {
    let payload: unknown;
    for (const [i, key] of this.keys.entries()) {
      try {
        payload = jwt.verify(token, key, {
          algorithms: [this.options.algorithm],
          issuer: this.options.issuer,
          audience: this.options.audience,
          clockTolerance: this.options.clockToleranceSec,
          complete: false,
        });
        break;
      } catch (e) {
        // During a rotation the token may be signed by the next key; every other verdict does not depend on the key.
        if (e instanceof jwt.JsonWebTokenError && e.message === 'invalid signature' && i < this.keys.length - 1) continue;
        if (e instanceof jwt.TokenExpiredError) throw new HubError(ErrorCode.AUTH_EXPIRED, 'Access token has expired; refresh it and reconnect');
        throw new HubError(ErrorCode.AUTH_INVALID, `Access token rejected: ${safeReason(e)}`);
      }
    }
    const claims = AccessTokenClaimsSchema.safeParse(payload);
    if (!claims.success) {
      throw new HubError(ErrorCode.AUTH_INVALID, 'Access token rejected: claims sub, org, dev and exp are required', {
        missing: claims.error.issues.map((i) => i.path.join('.')),
      });
    }
    const nowSec = Math.floor(Date.now() / 1000);
    const maxLifetimeSec = this.options.maxLifetimeSec ?? DEFAULT_MAX_TOKEN_LIFETIME_SEC;
    if (claims.data.exp - Math.min(claims.data.iat ?? nowSec, nowSec) > maxLifetimeSec) {
      throw new HubError(ErrorCode.AUTH_INVALID, `Access token rejected: it lives longer than this hub accepts (${maxLifetimeSec} s)`);
    }
    return {
      orgId: claims.data.org,
      userId: claims.data.sub,
      deviceId: claims.data.dev,
      tokenId: claims.data.jti,
      tokenExpiresAt: claims.data.exp * 1000,
      ...(claims.data.auth_time !== undefined ? { authTime: claims.data.auth_time * 1000 } : {}),
    };
  }
}

/**
 * Why a token was refused, in words safe to send to whoever presented it: jsonwebtoken's messages
 * name the issuer and audience the hub expects ("jwt audience invalid. expected: …"), which tells a
 * prober how to forge a plausible token for another deployment.
 */
function safeReason(e: unknown): string {
  if (!(e instanceof jwt.JsonWebTokenError)) return 'unverifiable token';
  if (e.message.startsWith('jwt issuer invalid')) return 'wrong issuer';
  if (e.message.startsWith('jwt audience invalid')) return 'wrong audience';
  if (e.message.startsWith('jwt subject invalid') || e.message.startsWith('jwt jwtid invalid')) return 'wrong claims';
  return e.message.split('. expected')[0]!;
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

  verifierOptions(): TokenVerifierOptions {
    return { publicKey: this.publicKey, algorithm: this.algorithm, issuer: this.issuer, audience: this.audience, clockToleranceSec: 5 };
  }

  mint(input: { orgId: string; userId: string; deviceId: string; name?: string | undefined; ttlSeconds: number }): { token: string; expiresAt: number } {
    const nowSec = Math.floor(Date.now() / 1000);
    const exp = nowSec + input.ttlSeconds;
    const token = jwt.sign(
      { sub: input.userId, org: input.orgId, dev: input.deviceId, ...(input.name ? { name: input.name } : {}), iat: nowSec, auth_time: nowSec, exp },
      this.privateKey,
      { algorithm: this.algorithm, issuer: this.issuer, audience: this.audience, jwtid: randomUUID() },
    );
    return { token, expiresAt: exp * 1000 };
  }
}

/** Every PEM block parsed into a key object; one that does not parse stays as it is (verify refuses tokens under it; loadConfig refuses such keys first). */
function asKeys(key: TokenVerifierOptions['publicKey']): Array<KeyObject | string> {
  if (typeof key !== 'string') return Array.isArray(key) ? [...(key as readonly KeyObject[])] : [key as KeyObject];
  const blocks = key.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [key];
  return blocks.map((pem) => {
    try {
      return createPublicKey(pem);
    } catch {
      return pem;
    }
  });
}
