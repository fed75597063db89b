import { expect } from 'chai';
import fc from 'fast-check';
import { deviceListMessage } from '@curbside/shared';
import {
  deviceLinkCode,
  generateIdentityKeyPair,
  signDeviceList,
  sodiumReady,
  verifyDeviceListChain,
  type IdentityKeyPair,
  type SignedDeviceListData,
} from '../../client-sdk/src/crypto/index.js';

describe('signed device lists (crypto)', function () {
  let phone: IdentityKeyPair;
  let laptop: IdentityKeyPair;
  let tablet: IdentityKeyPair;
  let mallory: IdentityKeyPair;
  const dev = (id: string, k: IdentityKeyPair) => ({ deviceId: id, identityKey: k.publicKey });

  before(async () => {
    await sodiumReady();
    [phone, laptop, tablet, mallory] = await Promise.all([generateIdentityKeyPair(), generateIdentityKeyPair(), generateIdentityKeyPair(), generateIdentityKeyPair()]);
  });

  /** v1 phone; v2 phone+laptop (by phone); v3 laptop+tablet (by laptop: the phone was lost). */
  function history(): SignedDeviceListData[] {
    return [
      signDeviceList(phone, 'dr-lee', 'phone', 1, [dev('phone', phone)]),
      signDeviceList(phone, 'dr-lee', 'phone', 2, [dev('phone', phone), dev('laptop', laptop)]),
      signDeviceList(laptop, 'dr-lee', 'laptop', 3, [dev('laptop', laptop), dev('tablet', tablet)]),
    ];
  }

  it('accepts a chain from nothing, and from any version pinned, with what was added and removed', () => {
    const h = history();
    const fromStart = verifyDeviceListChain('dr-lee', undefined, h, 3);
    expect(fromStart).to.deep.include({ ok: true, added: ['laptop', 'tablet'], removed: [], changed: true });
    const fromTwo = verifyDeviceListChain('dr-lee', h[1], h.slice(2), 3);
    expect(fromTwo).to.deep.include({ ok: true, added: ['tablet'], removed: ['phone'], changed: true });
    expect(verifyDeviceListChain('dr-lee', h[2], [], 3)).to.deep.include({ ok: true, added: [], removed: [], changed: false });
  });

  it('refuses a rollback, a gap, a chain short of the version the hub claims, a foreign signer and a bad signature', () => {
    const h = history();
    expect(verifyDeviceListChain('dr-lee', h[2], [], 2)).to.deep.equal({ ok: false, problem: 'rollback', version: 2 });
    expect(verifyDeviceListChain('dr-lee', h[0], [h[2]!], 3)).to.deep.equal({ ok: false, problem: 'gap', version: 3 });
    expect(verifyDeviceListChain('dr-lee', h[0], [h[1]!], 3)).to.deep.equal({ ok: false, problem: 'gap', version: 3 });
    // Nothing pinned: the hub cannot start a user's history at a later version.
    expect(verifyDeviceListChain('dr-lee', undefined, h.slice(1), 3)).to.deep.equal({ ok: false, problem: 'gap', version: 2 });
    // Mallory signs a version 3 adding her device, claiming to be the laptop.
    const forged = signDeviceList(mallory, 'dr-lee', 'laptop', 3, [dev('laptop', laptop), dev('mallory', mallory)]);
    expect(verifyDeviceListChain('dr-lee', h[1], [forged], 3)).to.deep.equal({ ok: false, problem: 'bad-signature', version: 3 });
    // Signed by a device not in the previous version (the tablet signs itself in).
    const selfSigned = signDeviceList(tablet, 'dr-lee', 'tablet', 3, [dev('phone', phone), dev('laptop', laptop), dev('tablet', tablet)]);
    expect(verifyDeviceListChain('dr-lee', h[1], [selfSigned], 3)).to.deep.equal({ ok: false, problem: 'unknown-signer', version: 3 });
    // Another user's list replayed as this one's.
    const kims = signDeviceList(phone, 'dr-kim', 'phone', 1, [dev('phone', phone)]);
    expect(verifyDeviceListChain('dr-lee', undefined, [kims], 1)).to.deep.equal({ ok: false, problem: 'bad-signature', version: 1 });
  });

  it('one flipped bit anywhere in a signed list makes it fail', () => {
    const list = history()[1]!;
    fc.assert(
      fc.property(fc.nat({ max: 64 * 8 - 1 }), fc.boolean(), (bit, inKey) => {
        const tampered = structuredClone(list);
        const target = inKey ? tampered.devices[1]!.identityKey : tampered.signature;
        target[(bit >> 3) % target.length]! ^= 1 << (bit & 7);
        const result = verifyDeviceListChain('dr-lee', history()[0], [tampered], 2);
        return !result.ok;
      }),
      { numRuns: 100 },
    );
  });

  it('the signed bytes are injective: distinct lists never share an encoding', () => {
    const id = fc.string({ minLength: 1, maxLength: 6 });
    const listArb = fc.record({
      userId: id,
      version: fc.integer({ min: 1, max: 5 }),
      signerDeviceId: id,
      devices: fc.uniqueArray(fc.record({ deviceId: id, identityKey: fc.uint8Array({ minLength: 32, maxLength: 32 }) }), { selector: (d) => d.deviceId, minLength: 1, maxLength: 3 }),
    });
    const canonical = (l: { userId: string; version: number; signerDeviceId: string; devices: Array<{ deviceId: string; identityKey: Uint8Array }> }) =>
      JSON.stringify([l.userId, l.version, l.signerDeviceId, [...l.devices].sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1)).map((d) => [d.deviceId, [...d.identityKey]])]);
    fc.assert(
      fc.property(listArb, listArb, (a, b) => {
        const same = Buffer.from(deviceListMessage(a.userId, a)).equals(Buffer.from(deviceListMessage(b.userId, b)));
        return same === (canonical(a) === canonical(b));
      }),
      { numRuns: 300 },
    );
  });

  it('link codes are 30 digits that change with the user, the device and every key', () => {
    const code = deviceLinkCode('dr-lee', 'laptop', laptop.publicKey);
    expect(code).to.match(/^\d{5}( \d{5}){5}$/);
    expect(deviceLinkCode('dr-lee', 'laptop', laptop.publicKey)).to.equal(code);
    expect(deviceLinkCode('dr-kim', 'laptop', laptop.publicKey)).to.not.equal(code);
    expect(deviceLinkCode('dr-lee', 'tablet', laptop.publicKey)).to.not.equal(code);
    expect(deviceLinkCode('dr-lee', 'laptop', tablet.publicKey)).to.not.equal(code);
  });
});
