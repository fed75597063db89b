/**
 * The identity provider of benchmarks on the real backend: an RS256 key pair, the hub settings that
 * trust it, and access tokens for any clinician and device.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID, sign as rsaSign } from 'node:crypto';

export interface BenchIdp {
  /** JWT_* settings for the hub. */
  hubEnv: Record<string, string>;
  mint(userId: string, deviceId: string, orgId: string): string;
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

export function benchIdp(): BenchIdp {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey = createPrivateKey(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const issuer = 'https://idp.bench.example';
  const audience = 'curbside';
  return {
    hubEnv: { JWT_PUBLIC_KEY: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), JWT_ALGORITHM: 'RS256', JWT_ISSUER: issuer, JWT_AUDIENCE: audience },
    mint: (userId, deviceId, orgId) => {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
      const payload = b64url(JSON.stringify({ sub: userId, org: orgId, dev: deviceId, iss: issuer, aud: audience, iat: now, exp: now + 3600, jti: randomUUID(), auth_time: now }));
      return `${header}.${payload}.${b64url(rsaSign('RSA-SHA256', Buffer.from(`${header}.${payload}`), privateKey))}`;
    },
  };
}
