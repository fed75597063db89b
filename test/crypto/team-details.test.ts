import { expect } from 'chai';
import { Limits, SealedTeamDetailsSchema } from '@curbside/shared';
import {
  CryptoError,
  TeamDetailsError,
  generateTeamDetailsKey,
  getSodium,
  openTeamDetails,
  sealTeamDetails,
  sodiumReady,
  teamDetailsKeyId,
  toHex,
} from '../../client-sdk/src/crypto/index.js';
import { expectCryptoError } from './helpers.js';

const TEAM = 'team-1';
const b64 = {
  decode: (s: string) => getSodium().from_base64(s, getSodium().base64_variants.URLSAFE_NO_PADDING),
  encode: (b: Uint8Array) => getSodium().to_base64(b, getSodium().base64_variants.URLSAFE_NO_PADDING),
};

describe('sealed care-team details (title and description)', () => {
  before(() => sodiumReady());

  it('round-trips, trimmed, and the sealed form is what the hub schema takes', () => {
    const key = generateTeamDetailsKey();
    const sealed = sealTeamDetails(TEAM, key, { title: '  Ward 4B discharge - Mr J. Smith bed 12 ', description: ' MRN 00412345 ' });
    expect(SealedTeamDetailsSchema.safeParse(sealed).success).to.equal(true);
    expect(sealed.keyId).to.equal(teamDetailsKeyId(key));
    expect(JSON.stringify(sealed)).to.not.match(/Smith|00412345/);
    expect(openTeamDetails(TEAM, key, sealed)).to.deep.equal({ title: 'Ward 4B discharge - Mr J. Smith bed 12', description: 'MRN 00412345' });
    expect(openTeamDetails(TEAM, key, sealTeamDetails(TEAM, key, { title: 'ICU', description: '   ' }))).to.deep.equal({ title: 'ICU' });
  });

  it('the key id is SHA-256 over a label and the key, so it names the key and commits to it', () => {
    const key = new Uint8Array(32).fill(7);
    const label = new TextEncoder().encode('Curbside team details key v1\u0000');
    const expected = toHex(getSodium().crypto_hash_sha256(new Uint8Array([...label, ...key])).subarray(0, 16));
    expect(teamDetailsKeyId(key)).to.equal(expected).and.to.match(/^[0-9a-f]{32}$/);
    expect(teamDetailsKeyId(generateTeamDetailsKey())).to.not.equal(expected);
  });

  it('only the length in 64-byte steps shows: titles of similar length seal to the same size', () => {
    const key = generateTeamDetailsKey();
    const size = (title: string) => b64.decode(sealTeamDetails(TEAM, key, { title }).box).length;
    expect(size('ICU')).to.equal(size('Ward 4B discharge bed 12'));
    expect(size('x'.repeat(150))).to.be.greaterThan(size('ICU'));
    expect((size('ICU') - 24 - 16) % 64).to.equal(0);
  });

  it('refuses another key, another team, another key id, a tampered box and junk, as typed errors', () => {
    const key = generateTeamDetailsKey();
    const other = generateTeamDetailsKey();
    const sealed = sealTeamDetails(TEAM, key, { title: 'Ward 4B' });
    expectCryptoError(() => openTeamDetails(TEAM, other, sealed), 'DECRYPT_FAILED');
    expectCryptoError(() => openTeamDetails('team-2', key, sealed), 'DECRYPT_FAILED');
    // A box presented under the key id of another key the reader holds: the key id is in the associated data.
    expectCryptoError(() => openTeamDetails(TEAM, other, { ...sealed, keyId: teamDetailsKeyId(other) }), 'DECRYPT_FAILED');
    const bytes = b64.decode(sealed.box);
    bytes[bytes.length - 1]! ^= 1;
    expectCryptoError(() => openTeamDetails(TEAM, key, { ...sealed, box: b64.encode(bytes) }), 'DECRYPT_FAILED');
    expectCryptoError(() => openTeamDetails(TEAM, key, { ...sealed, box: 'not base64url!' }), 'BAD_MESSAGE');
    expectCryptoError(() => openTeamDetails(TEAM, key, { ...sealed, box: 'AAAA' }), 'DECRYPT_FAILED');
    expect(() => openTeamDetails(TEAM, key, sealed)).to.not.throw();
  });

  it('a well-sealed box that holds no well-formed details is BAD_MESSAGE', () => {
    // What a member could seal by hand: authenticates, but is not details.
    const key = generateTeamDetailsKey();
    const keyId = teamDetailsKeyId(key);
    const nonce = new Uint8Array(24);
    const seal = (text: string) => {
      const ad = new TextEncoder().encode(`Curbside team details v1\u0000${TEAM}\u0000${keyId}`);
      const ct = getSodium().crypto_aead_xchacha20poly1305_ietf_encrypt(new TextEncoder().encode(text), ad, null, nonce, key);
      return { keyId, box: b64.encode(new Uint8Array([...nonce, ...ct])) };
    };
    expect(openTeamDetails(TEAM, key, seal('{"title":"ICU","v":1}'))).to.deep.equal({ title: 'ICU' });
    for (const junk of ['{"title":"","v":1}', '{"title":"ICU","v":2}', '[1]', 'not json', `{"title":"${'x'.repeat(Limits.MAX_TITLE_LENGTH + 1)}","v":1}`]) {
      expectCryptoError(() => openTeamDetails(TEAM, key, seal(junk)), 'BAD_MESSAGE');
    }
  });

  it('details over the limits are a TeamDetailsError naming the field', () => {
    const key = generateTeamDetailsKey();
    const attempt = (d: { title: string; description?: string }) => {
      try {
        sealTeamDetails(TEAM, key, d);
        return 'sealed';
      } catch (e) {
        expect(e).to.be.instanceOf(TeamDetailsError).and.not.instanceOf(CryptoError);
        return `${(e as TeamDetailsError).field}:${(e as TeamDetailsError).problem}`;
      }
    };
    expect(attempt({ title: '   ' })).to.equal('title:empty');
    expect(attempt({ title: 'x'.repeat(Limits.MAX_TITLE_LENGTH + 1) })).to.equal('title:too-long');
    expect(attempt({ title: 'ICU', description: 'x'.repeat(Limits.MAX_TEAM_DESCRIPTION_LENGTH + 1) })).to.equal('description:too-long');
    // The worst case within the limits (every character JSON-escaped to six bytes) still fits the hub's bound.
    const worst = sealTeamDetails(TEAM, key, { title: `a${'\u0001'.repeat(Limits.MAX_TITLE_LENGTH - 2)}a`, description: `a${'\u0001'.repeat(Limits.MAX_TEAM_DESCRIPTION_LENGTH - 2)}a` });
    expect(SealedTeamDetailsSchema.safeParse(worst).success).to.equal(true);
  });
});
