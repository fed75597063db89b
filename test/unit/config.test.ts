import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { ConfigError, ENV_DOC, TokenVerifier, loadConfig } from '@curbside/server';
import { readFileSync } from 'node:fs';

const publicPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const production = {
  MONGODB_URI: 'mongodb://db1,db2,db3/curbside?replicaSet=rs0',
  REDIS_URL: 'redis://cache:6379',
  JWT_PUBLIC_KEY: publicPem,
  JWT_ISSUER: 'https://idp.hospital.example',
  JWT_AUDIENCE: 'curbside',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

describe('hub configuration', function () {
  it('no MongoDB and no Redis means dev mode on localhost with memory adapters', () => {
    const c = loadConfig({});
    expect(c).to.include({ mode: 'dev', port: 3000, host: '127.0.0.1' });
    expect(c.mongo).to.equal(undefined);
    expect(c.redis).to.equal(undefined);
    expect(c.jwt, 'dev mode signs its own tokens').to.equal(undefined);
  });

  it('a full production environment parses, with majority writes by default', () => {
    const c = loadConfig({ ...production, PORT: '8443' });
    expect(c).to.include({ mode: 'production', port: 8443, host: '0.0.0.0' });
    expect(c.mongo).to.deep.include({ writeConcern: 'majority' });
    expect(c.jwt).to.include({ algorithm: 'RS256', issuer: production.JWT_ISSUER, audience: 'curbside' });
  });

  it('reads the key from a file, and an escaped one-line PEM from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'curbside-cfg-'));
    const file = join(dir, 'idp.pem');
    writeFileSync(file, publicPem);
    const { JWT_PUBLIC_KEY: _k, ...rest } = production;
    expect(loadConfig({ ...rest, JWT_PUBLIC_KEY_FILE: file }).jwt?.publicKey).to.equal(publicPem);
    expect(loadConfig({ ...production, JWT_PUBLIC_KEY: publicPem.replace(/\n/g, '\\n') }).jwt?.publicKey).to.equal(publicPem);
  });

  it('refuses half a production setup, naming the missing variable', () => {
    const p = problems({ MONGODB_URI: production.MONGODB_URI });
    expect(p.join('\n')).to.match(/REDIS_URL: is not set/);
  });

  it('collects every problem at once, each saying how to fix it', () => {
    const p = problems({
      MONGODB_URI: 'postgres://nope',
      REDIS_URL: 'localhost:6379',
      JWT_ALGORITHM: 'HS256',
      PORT: 'eighty',
      MONGODB_WRITE_CONCERN: '0',
      MONGODB_GROUP_COMMIT_MS: '-1',
      PRESENCE_TTL_MS: '5000',
      PRESENCE_HEARTBEAT_MS: '6000',
      LOG_LEVEL: 'loud',
    });
    const all = p.join('\n');
    for (const expected of [/MONGODB_URI: must start with mongodb:\/\//, /REDIS_URL: must start with redis:\/\//, /JWT_ALGORITHM: must be one of .*HS\* and "none" are refused/, /PORT: must be a whole number/, /MONGODB_WRITE_CONCERN/, /MONGODB_GROUP_COMMIT_MS: must be a number of milliseconds from 0 to 1000/, /PRESENCE_HEARTBEAT_MS: 6000 must be less than PRESENCE_TTL_MS/, /LOG_LEVEL/, /JWT_PUBLIC_KEY: \(or JWT_PUBLIC_KEY_FILE\) is required/, /JWT_ISSUER: is required/, /JWT_AUDIENCE: is required/]) {
      expect(all).to.match(expected);
    }
  });

  it('refuses a private key or a shared secret where the public key belongs', () => {
    const privatePem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(problems({ ...production, JWT_PUBLIC_KEY: privatePem }).join('\n')).to.match(/must be a PEM public key/);
    expect(problems({ ...production, JWT_PUBLIC_KEY: 'hunter2' }).join('\n')).to.match(/must be a PEM public key/);
  });

  it('every variable the hub reads is in the README table', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const { name } of ENV_DOC) for (const part of name.split(' / ')) expect(readme, part).to.include(`\`${part}\``);
  });

  it('checks the JWT key against JWT_ALGORITHM: type, curve, RSA size; several keys for a rotation, each checked', () => {
    const pem = (k: ReturnType<typeof generateKeyPairSync>) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const p256 = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const p384 = pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }));
    const rsa1024 = pem(generateKeyPairSync('rsa', { modulusLength: 1024 }));
    const ok = (env: Record<string, string>) => expect(problems({ ...production, ...env }), JSON.stringify(env).slice(0, 80)).to.deep.equal([]);
    ok({ JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY: p256 });
    ok({ JWT_ALGORITHM: 'ES384', JWT_PUBLIC_KEY: p384 });
    ok({ JWT_ALGORITHM: 'PS256', JWT_PUBLIC_KEY: publicPem });
    ok({ JWT_PUBLIC_KEY: `${publicPem}${pem(generateKeyPairSync('rsa', { modulusLength: 2048 }))}` });
    expect(problems({ ...production, JWT_ALGORITHM: 'ES384', JWT_PUBLIC_KEY: p256 })).to.deep.equal(['JWT_PUBLIC_KEY: the key is on curve prime256v1, but JWT_ALGORITHM=ES384 needs secp384r1']);
    expect(problems({ ...production, JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY: publicPem })).to.deep.equal(['JWT_PUBLIC_KEY: the key is an rsa key, but JWT_ALGORITHM=ES256 needs an EC key on prime256v1']);
    expect(problems({ ...production, JWT_PUBLIC_KEY: rsa1024 })).to.deep.equal(['JWT_PUBLIC_KEY: the key is a 1024-bit RSA key; RS256 needs at least 2048 bits']);
    expect(problems({ ...production, JWT_PUBLIC_KEY: `${publicPem}${p256}` })).to.deep.equal(['JWT_PUBLIC_KEY: key 2 of 2 is an ec key, but JWT_ALGORITHM=RS256 needs an RSA key']);
    expect(problems({ ...production, JWT_PUBLIC_KEY: publicPem.repeat(5) })[0]).to.match(/^JWT_PUBLIC_KEY: holds 5 keys; at most 4/);
  });

  it('a token verifier with two keys accepts tokens signed by either, and refuses a third', async () => {
    const [a, b, c] = [0, 1, 2].map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const pemOf = (k: typeof a) => k!.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const verifier = new TokenVerifier({ publicKey: `${pemOf(a)}${pemOf(b)}`, algorithm: 'ES256', issuer: 'i', audience: 'aud', clockToleranceSec: 0 });
    const token = (k: typeof a) => jwt.sign({ sub: 'dr-lee', org: 'org-a', dev: 'phone' }, k!.privateKey, { algorithm: 'ES256', issuer: 'i', audience: 'aud', expiresIn: 60 });
    const refusal = (t: string) => verifier.verify(t).then(() => 'accepted', (e: Error) => e.message);
    expect((await verifier.verify(token(a))).userId).to.equal('dr-lee');
    expect((await verifier.verify(token(b))).userId).to.equal('dr-lee');
    expect(await refusal(token(c))).to.match(/invalid signature/);
    verifier.setKeys([b!.publicKey]);
    expect(await refusal(token(a)), 'retired').to.match(/invalid signature/);
    expect((await verifier.verify(token(b))).deviceId).to.equal('phone');
  });
});
