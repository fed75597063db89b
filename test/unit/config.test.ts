import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ENV_DOC, loadConfig } from '@curbside/server';
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
      PRESENCE_TTL_MS: '5000',
      PRESENCE_HEARTBEAT_MS: '6000',
      LOG_LEVEL: 'loud',
    });
    const all = p.join('\n');
    for (const expected of [/MONGODB_URI: must start with mongodb:\/\//, /REDIS_URL: must start with redis:\/\//, /JWT_ALGORITHM: must be one of .*HS\* and "none" are refused/, /PORT: must be a whole number/, /MONGODB_WRITE_CONCERN/, /PRESENCE_HEARTBEAT_MS: 6000 must be less than PRESENCE_TTL_MS/, /LOG_LEVEL/, /JWT_PUBLIC_KEY: \(or JWT_PUBLIC_KEY_FILE\) is required/, /JWT_ISSUER: is required/, /JWT_AUDIENCE: is required/]) {
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
});
