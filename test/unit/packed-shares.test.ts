/**
 * An envelope's per-device ciphertexts as stored by the MongoDB adapter (one binary field,
 * `server/src/adapters/mongo/shares.ts`): what is packed unpacks to the same shares, and bytes that
 * are not such a list, cut short or edited, never throw and never invent a share.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { packShares, unpackShares, type Share } from '../../server/src/adapters/mongo/shares.js';

const share = fc.record({
  deviceId: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
  ciphertext: fc.uint8Array({ maxLength: 300 }),
});

function plain(shares: readonly Share[]): Array<{ deviceId: string; ciphertext: number[] }> {
  return shares.map((s) => ({ deviceId: s.deviceId, ciphertext: [...s.ciphertext] }));
}

describe('packed device shares', function () {
  it('unpack(pack(shares)) is the shares, in order', function () {
    fc.assert(
      fc.property(fc.array(share, { maxLength: 12 }), (shares) => {
        expect(plain(unpackShares(packShares(shares))!)).to.deep.equal(plain(shares));
      }),
    );
  });

  it('bytes cut short give no shares, or the shares wholly before the cut: never a partial one', function () {
    fc.assert(
      fc.property(fc.array(share, { minLength: 1, maxLength: 6 }), fc.nat(), (shares, n) => {
        const packed = packShares(shares);
        const cut = n % packed.length;
        const got = unpackShares(packed.subarray(0, cut));
        if (got === undefined) return;
        expect(plain(got)).to.deep.equal(plain(shares.slice(0, got.length)));
        expect(packShares(got).length).to.equal(cut);
      }),
    );
  });

  it('edited bytes never throw, and anything they give is well formed', function () {
    fc.assert(
      fc.property(fc.array(share, { minLength: 1, maxLength: 6 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (shares, n, flip) => {
        const packed = Buffer.from(packShares(shares));
        packed[n % packed.length]! ^= flip;
        const got = unpackShares(packed);
        if (got === undefined) return;
        expect(packShares(got).equals(packed), 'what was read packs back to the stored bytes').to.equal(true);
      }),
    );
  });

  it('refuses an empty device id, a device id that is not UTF-8, and a length past the end', function () {
    const emptyId = Buffer.from([0, 0, 0, 0, 0, 1, 7]);
    const notUtf8 = Buffer.from([0, 1, 0xff, 0, 0, 0, 1, 7]);
    const pastEnd = Buffer.from([0, 1, 0x61, 0, 0, 0, 9, 7]);
    for (const bytes of [emptyId, notUtf8, pastEnd]) expect(unpackShares(bytes), bytes.toString('hex')).to.equal(undefined);
    expect(unpackShares(new Uint8Array(0))).to.deep.equal([]);
  });
});
