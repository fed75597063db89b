/**
 * Published vectors for the primitives the E2EE layer is built on, inlined so the suite runs
 * anywhere: RFC 5869 (HKDF-SHA-256), RFC 4231 (HMAC-SHA-256), and a selection of Wycheproof
 * (C2SP, testvectors_v1) hkdf_sha256, hmac_sha256, x25519, ed25519 and xchacha20_poly1305 cases,
 * copied from ../shared/vectors/wycheproof/ by tcId.
 */
import { expect } from 'chai';
import { expectCryptoError } from './helpers.js';
import {
  aeadDecrypt,
  aeadEncrypt,
  fromHex,
  getSodium,
  hkdfExpand,
  hkdfExtract,
  hkdfSha256,
  hmacSha256,
  sodiumReady,
  toHex,
  verifySignature,
  x25519,
} from '../../client-sdk/src/crypto/index.js';

const ascii = (s: string) => new TextEncoder().encode(s);
const h = (s: string) => fromHex(s);


describe('crypto primitives', () => {
  before(async () => {
    await sodiumReady();
  });

  describe('HKDF-SHA-256', () => {
    // RFC 5869 Appendix A, test cases 1-3 (SHA-256), with the intermediate PRK.
    const rfc5869 = [
      {
        name: 'A.1 basic',
        ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
        salt: '000102030405060708090a0b0c',
        info: 'f0f1f2f3f4f5f6f7f8f9',
        length: 42,
        prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
        okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      },
      {
        name: 'A.2 longer inputs and outputs',
        ikm: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f',
        salt: '606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
        info: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff',
        length: 82,
        prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
        okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
      },
      {
        name: 'A.3 zero-length salt and info',
        ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
        salt: '',
        info: '',
        length: 42,
        prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
        okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      },
    ];
    for (const v of rfc5869) {
      it(`RFC 5869 ${v.name}`, () => {
        const prk = hkdfExtract(h(v.salt), h(v.ikm));
        expect(toHex(prk)).to.equal(v.prk);
        expect(toHex(hkdfExpand(prk, h(v.info), v.length))).to.equal(v.okm);
        expect(toHex(hkdfSha256(h(v.ikm), h(v.salt), h(v.info), v.length))).to.equal(v.okm);
      });
    }

    // Wycheproof hkdf_sha256_test.json. okm 'sha256:<hex>' = SHA-256 of the expected 8160-byte output.
    const wycheproof = [
      { tcId: 4, comment: 'Normal,EmptySalt', ikm: '24aeff2645e3e0f5494a9a102778c43a', salt: '', info: '', size: 20, okm: 'd4cca5e416c3d9eb58bd562e922691daff76aa4d', result: 'valid' },
      { tcId: 12, comment: 'Normal', ikm: '529e91a61895f1c4ceb5b6994f48783b', salt: '12e4ae515328983bab2d88da3cb32a95', info: '', size: 64, okm: '76ced999f5f885f9df7d78a9cb0cefd09904bc90dfedd018441f30800a848140f6a4fa057170df6cf33e93aaaa10ccdb09bd114e6f4058ca45b3cb1e453804ad', result: 'valid' },
      { tcId: 22, comment: 'Normal, 64-byte salt', ikm: 'df27ab960ad87bfe2e173a4659e3546b', salt: '1e7ec49981fd4b0b7c20dd4dd5bdfbf2195e707f4d0354611b4893b8a86f61467aca2cf726ccc3ef0b0b4f3240d945ce506197e2be00322b17b48209c312ef9f', info: '', size: 42, okm: 'c298d3a916ac11c05069b613748b6a7fcb8770bba0798e2bbb531359053f84fe191ac98c8af0b72c875e', result: 'valid' },
      { tcId: 26, comment: 'empty salt', ikm: 'd04f44faa4542b34f958d8a863801f2c', salt: '', info: 'ff6b5b655cbf2421a66d2f28408395a2ce57264f76bd60befd51cbfd9474faa47a97a9aa0f0e4338635633023cb36da12a3051f1f369355b687304e74c5218b315', size: 80, okm: 'aa235b487116b1c1e2f68c9a557b396a318ea2aa29c0e6a122645918ba693598e40e5b7c73c92f832530db888d4c53fbf73aff67d129a24263134335c9757da6ff7f386c77f830d1bac3409fb3b834be', result: 'valid' },
      { tcId: 49, comment: 'empty salt', ikm: '8e9dfcf668a8b7e22c8d403c35af78324dafeadf', salt: '', info: 'b4d6ce377ee98d0e1614e3865354cda02dfeb92010ffbade5d1f7e4329f166995a67415d56221128b04de3e8c49437b9e322986b5fe1256c7f8c81021b99ea96ae', size: 80, okm: '01ed7302f611c098f57fe9ec9b8654974bd707981c2b647753cd586cbdd0d7ea1dbc5c76262fdcbe0c355a965a4287eb86e4c97e60bf0e6be0dc898c997b0e73b2888265e8115073bdc5040365736d73', result: 'valid' },
      { tcId: 72, comment: 'Normal, 128-byte output', ikm: '279d9c928e719274379be30bd6feee738f8c53049e99390004b3d9a8745738b8', salt: '9a8080efd34f9d82ae74d750672d2f6d0b055a3af78a4e40888e93466f1641dd', info: 'efaf2275a9a729c0', size: 128, okm: 'd88cec7b19c6332151244accc7adf1009667abb0dacb358d740ca2101bddc610473bf322674fc50e37650a576e81785002b35fd1be18eca5ebf8ac0bae4f416bf1f00411d8f63d84aa4a2859aa574540e6f24a94acd51bb4b11275602144578b2671df502b2fef6ee21e7a47cc0152e7f24608953287661d10392c6e2dac6351', result: 'valid' },
      { tcId: 73, comment: 'maximal output size', ikm: '7a53f6a4fecd584bf9a23eae9eb764b7a65d34bf0cf080f6e505eb450a57d839', salt: 'f669d51642c7721667cc682d1e425dbf3ee5233a12e406cd1ad1889fc556d117', info: '0bb3ed2cb4dd08e7', size: 8160, okm: 'sha256:97afc201208170d2eae0b6c801785203ea6de6d585b4a76864cf08d22e153b32', result: 'valid' },
      { tcId: 74, comment: 'invalid output size', ikm: 'ec106ebf89b6f25180d59b38861f2ad71b68957dc19098dbccffe888b67eebe6', salt: 'b1d1b4ab7025f412dd46fedd0b9ae1c82d45796f1d9ec7ed9ae2c5c6cf9adad8', info: '37f1b3e4f615a76f', size: 8161, okm: '', result: 'invalid' },
      { tcId: 76, comment: 'output collision for different salts (empty)', ikm: '3ee1fc0d8fac49d494c4a1b8cf6bf290a4a2c19a27c3ab1914d0d21c841577e0', salt: '', info: '4dc991623624fadef207587e42776cf3e0fdf4e5', size: 32, okm: 'f41f703259063d401de67cea9192038ddddc71ede5cdb383aad71894c1a39e8c', result: 'valid' },
      { tcId: 77, comment: 'output collision for different salts (32 zero bytes)', ikm: '3ee1fc0d8fac49d494c4a1b8cf6bf290a4a2c19a27c3ab1914d0d21c841577e0', salt: '0000000000000000000000000000000000000000000000000000000000000000', info: '4dc991623624fadef207587e42776cf3e0fdf4e5', size: 32, okm: 'f41f703259063d401de67cea9192038ddddc71ede5cdb383aad71894c1a39e8c', result: 'valid' },
      { tcId: 78, comment: 'salt longer than the block size', ikm: '3ee1fc0d8fac49d494c4a1b8cf6bf290a4a2c19a27c3ab1914d0d21c841577e0', salt: '888815e19321fa618f0ce9800b7c2f6d289ed32c23d9816cc8bb36966bbe413e24db80612bd48c8fd8e791732aed62288c3bf97d7c881b8d80dd48fa31b6f5d0cb', info: '4dc991623624fadef207587e42776cf3e0fdf4e5', size: 32, okm: '52a1d834f372578ccc7b57e9149f4c45f98ff754dbdec0bb3a8f931bd14e4bb1', result: 'valid' },
      { tcId: 80, comment: 'short salt is padded with zeros', ikm: '3ee1fc0d8fac49d494c4a1b8cf6bf290a4a2c19a27c3ab1914d0d21c841577e0', salt: '9962310f7e8c4300', info: '4dc991623624fadef207587e42776cf3e0fdf4e5', size: 32, okm: '909e3925c51ea4b543e30cca4f184452f494b8f20b99f36496e1c8110b48949c', result: 'valid' },
      { tcId: 86, comment: '56-byte salt, same output as tcId 80', ikm: '3ee1fc0d8fac49d494c4a1b8cf6bf290a4a2c19a27c3ab1914d0d21c841577e0', salt: '9962310f7e8c4300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000', info: '4dc991623624fadef207587e42776cf3e0fdf4e5', size: 32, okm: '909e3925c51ea4b543e30cca4f184452f494b8f20b99f36496e1c8110b48949c', result: 'valid' },
    ];
    for (const v of wycheproof) {
      it(`Wycheproof hkdf_sha256 tcId ${v.tcId} (${v.comment}, ${v.result})`, () => {
        const run = () => hkdfSha256(h(v.ikm), h(v.salt), h(v.info), v.size);
        if (v.result === 'invalid') {
          expect(run).to.throw(RangeError);
          return;
        }
        const okm = run();
        expect(okm.length).to.equal(v.size);
        if (v.okm.startsWith('sha256:')) expect(toHex(getSodium().crypto_hash_sha256(okm))).to.equal(v.okm.slice(7));
        else expect(toHex(okm)).to.equal(v.okm);
      });
    }

    it('rejects negative and fractional output lengths', () => {
      expect(() => hkdfSha256(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), -1)).to.throw(RangeError);
      expect(() => hkdfSha256(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), 1.5)).to.throw(RangeError);
      expect(hkdfSha256(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), 0).length).to.equal(0);
    });
  });

  describe('HMAC-SHA-256', () => {
    // RFC 4231 §4.2-4.5, 4.7, 4.8 (test cases 1-4, 6, 7; case 5 is a truncated tag).
    const rfc4231 = [
      { tc: 1, key: '0b'.repeat(20), data: toHexAscii('Hi There'), mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' },
      { tc: 2, key: toHexAscii('Jefe'), data: toHexAscii('what do ya want for nothing?'), mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
      { tc: 3, key: 'aa'.repeat(20), data: 'dd'.repeat(50), mac: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe' },
      { tc: 4, key: '0102030405060708090a0b0c0d0e0f10111213141516171819', data: 'cd'.repeat(50), mac: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b' },
      { tc: 6, key: 'aa'.repeat(131), data: toHexAscii('Test Using Larger Than Block-Size Key - Hash Key First'), mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' },
      {
        tc: 7,
        key: 'aa'.repeat(131),
        data: toHexAscii('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
        mac: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
      },
    ];
    for (const v of rfc4231) {
      it(`RFC 4231 test case ${v.tc} (${v.key.length / 2}-byte key)`, () => {
        expect(toHex(hmacSha256(h(v.key), h(v.data)))).to.equal(v.mac);
      });
    }

    // Wycheproof hmac_sha256_test.json: 32-byte keys take the one-shot path, 16- and 65-byte keys init/update/final.
    const wycheproof = [
      { tcId: 1, key: '1e225cafb90339bba1b24076d4206c3e79c355805d851682bc818baa4f5a7779', msg: '', tag: 'b175b57d89ea6cb606fb3363f2538abd73a4c00b4a1386905bac809004cf1933' },
      { tcId: 2, key: '8159fd15133cd964c9a6964c94f0ea269a806fd9f43f0da58b6cd1b33d189b2a', msg: '77', tag: 'dfc5105d5eecf7ae7b8b8de3930e7659e84c4172f2555142f1e568fc1872ad93' },
      { tcId: 3, key: '85a7cbaae825bb82c9b6f6c5c2af5ac03d1f6daa63d2a93c189948ec41b9ded9', msg: 'a59b', tag: '0fe2f13bba2198f6dda1a084be928e304e9cb16a56bc0b7b939a073280244373' },
      { tcId: 163, key: 'a349ac0a9f9f74e48e099cc3dbf9a9c9', msg: '', tag: '3a8437b877b75cc08a4d8d7559a8fc6869a58c713da63d1d4b350d59b597e30c' },
      { tcId: 169, key: '8a0c46eb8a2959e39865330079763341e7439dab149694ee57e0d61ec73d947e1d5301cd974e18a5e0d1cf0d2c37e8aadd9fd589d57ef32e47024a99bc3f70c077', msg: '', tag: 'f5bfb940561fb4db73ebba49bf2e4893bb0cca618a71b7ecf6aca38231e167ea' },
    ];
    for (const v of wycheproof) {
      it(`Wycheproof hmac_sha256 tcId ${v.tcId} (${v.key.length / 2}-byte key)`, () => {
        expect(toHex(hmacSha256(h(v.key), h(v.msg)))).to.equal(v.tag);
      });
    }
  });

  describe('X25519 (Wycheproof x25519_test.json)', () => {
    // libsodium refuses every public key that yields an all-zero shared secret (low-order points);
    // we must surface that as CryptoError('WEAK_KEY'), and match every other case exactly.
    const cases = [
      { tcId: 1, comment: 'normal case', public: '504a36999f489cd2fdbc08baff3d88fa00569ba986cba22548ffde80f9806829', private: 'c8a9d5a91091ad851c668b0736c1c9a02936c0d3ad62670858088047ba057475', shared: '436a2c040cf45fea9b29a0cb81b1f41458f863d0d61b453d0a982720d6d61320' },
      { tcId: 32, comment: 'public key = 0', public: '0000000000000000000000000000000000000000000000000000000000000000', private: '88227494038f2bb811d47805bcdf04a2ac585ada7f2f23389bfd4658f9ddd45e', shared: 'zero' },
      { tcId: 33, comment: 'public key = 1', public: '0100000000000000000000000000000000000000000000000000000000000000', private: '48232e8972b61c7e61930eb9450b5070eae1c670475685541f0476217e48184f', shared: 'zero' },
      { tcId: 63, comment: 'public key with low order', public: 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', private: 'e0f978dfcd3a8f1a5093418de54136a584c20b7b349afdf6c0520886f95b1272', shared: 'zero' },
      { tcId: 64, comment: 'public key with low order', public: '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', private: '387355d995616090503aafad49da01fb3dc3eda962704eaee6b86f9e20c92579', shared: 'zero' },
      { tcId: 66, comment: 'low order, non-canonical', public: 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880', private: 'c8d74acde5934e64b9895d5ff7afbffd7f704f7dfccff7ac28fa62a1e6410347', shared: 'zero' },
      { tcId: 68, comment: 'low order, non-canonical, twist', public: 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', private: '2064b2f4c9dc97ec7cf58932fdfa3265ba6ea4d11f0259b8efc8afb35db88c48', shared: 'zero' },
      { tcId: 69, comment: 'public key with low order', public: '0000000000000000000000000000000000000000000000000000000000000000', private: '786a33a4f7af297a20e7642925932bf509e7070fa1bc36986af1eb13f4f50b55', shared: 'zero' },
      { tcId: 78, comment: 'low order, twist', public: 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', private: '786a33a4f7af297a20e7642925932bf509e7070fa1bc36986af1eb13f4f50b55', shared: 'zero' },
      { tcId: 84, comment: 'public key == 0 (non-canonical)', public: '0000000000000000000000000000000000000000000000000000000000000080', private: '7887889bac4c629a101d3724f2ed8b98d936fde79e1a1f77d86779626bf8f263', shared: 'zero' },
      { tcId: 117, comment: 'special case public key', public: '0000000000000000000000000000000000000000000000000000000000000000', private: 'c8d07c46bbfb827753b92c70e49583ce8bfa44641a7382258ea903d6a832c96b', shared: 'zero' },
      { tcId: 87, comment: 'non-canonical public key (acceptable)', public: 'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', private: '0016b62af5cabde8c40938ebf2108e05d27fa0533ed85d70015ad4ad39762d54', shared: 'b4d10e832714972f96bd3382e4d082a21a8333a16315b3ffb536061d2482360d' },
      { tcId: 100, comment: 'RFC 7748', public: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', private: 'a046e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449a44', shared: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552' },
      { tcId: 104, comment: 'edge case for shared secret', public: '3b18df1e50b899ebd588c3161cbd3bf98ebcc2c1f7df53b811bd0e91b4d5153d', private: '60a3a4f130b98a5be4b1cedb7cb85584a3520e142d474dc9ccb909a073a9767f', shared: '0900000000000000000000000000000000000000000000000000000000000000' },
      { tcId: 511, comment: 'private key == -1 (mod order)', public: '6c05871352a451dbe182ed5e6ba554f2034456ffe041a054ff9cc56b8e946376', private: 'a023cdd083ef5bb82f10d62e59e15a6800000000000000000000000000000050', shared: '6c05871352a451dbe182ed5e6ba554f2034456ffe041a054ff9cc56b8e946376' },
    ];
    for (const v of cases) {
      it(`tcId ${v.tcId}: ${v.comment} → ${v.shared === 'zero' ? 'WEAK_KEY' : 'expected secret'}`, () => {
        if (v.shared === 'zero') {
          const e = expectCryptoError(() => x25519(h(v.private), h(v.public)), 'WEAK_KEY');
          expect(e.detail).to.match(/low-order/);
        } else {
          expect(toHex(x25519(h(v.private), h(v.public)))).to.equal(v.shared);
        }
      });
    }

    it('a public key of the wrong length is WEAK_KEY, not a TypeError', () => {
      expectCryptoError(() => x25519(new Uint8Array(32).fill(1), new Uint8Array(31)), 'WEAK_KEY');
      expectCryptoError(() => x25519(new Uint8Array(32).fill(1), new Uint8Array(0)), 'WEAK_KEY');
    });
  });

  describe('Ed25519 (Wycheproof ed25519_test.json)', () => {
    const pk = '7d4d0e7f6153a69b6242b522abbee685fda4420f8834b108c3bdae369ef549fa';
    const cases = [
      { tcId: 1, flags: 'Valid', pk, msg: '', sig: 'd4fbdb52bfa726b44d1786a8c0d171c3e62ca83c9e5bbe63de0bb2483f8fd6cc1429ab72cafc41ab56af02ff8fcc43b99bfe4c7ae940f60f38ebaa9d311c4007', valid: true },
      { tcId: 2, flags: 'Valid', pk, msg: '78', sig: 'd80737358ede548acb173ef7e0399f83392fe8125b2ce877de7975d8b726ef5b1e76632280ee38afad12125ea44b961bf92f1178c9fa819d020869975bcbe109', valid: true },
      { tcId: 3, flags: 'Valid', pk, msg: '54657374', sig: '7c38e026f29e14aabd059a0f2db8b0cd783040609a8be684db12f82a27774ab07a9155711ecfaf7f99f277bad0c6ae7e39d4eef676573336a5c51eb6f946b30d', valid: true },
      { tcId: 10, flags: 'InvalidSignature', pk, msg: '3f', sig: '0'.repeat(128), valid: false },
      { tcId: 30, flags: 'TruncatedSignature', pk, msg: '54657374', sig: '', valid: false },
      { tcId: 33, flags: 'SignatureWithGarbage', pk, msg: '54657374', sig: '7c38e026f29e14aabd059a0f2db8b0cd783040609a8be684db12f82a27774ab07a9155711ecfaf7f99f277bad0c6ae7e39d4eef676573336a5c51eb6f946b30d2020', valid: false },
      { tcId: 42, flags: 'InvalidEncoding', pk, msg: '313233343030', sig: '647c1492402ab5ce03e2c3a7f0384d051b9cf3570f1207fc78c1bcc98c281c2b1d125e5538f38afbcc1c84e489521083041d24bc6240767029da063271a1ff0c', valid: false },
      { tcId: 63, flags: 'SignatureMalleability', pk, msg: '54657374', sig: '7c38e026f29e14aabd059a0f2db8b0cd783040609a8be684db12f82a27774ab067654bce3832c2d76f8f6f5dafc08d9339d4eef676573336a5c51eb6f946b31d', valid: false },
      { tcId: 85, flags: 'InvalidKtv', pk: '100fdf47fb94f1536a4f7c3fda27383fa03375a8f527c537e6f1703c47f94f86', msg: '6a0bc2b0057cedfc0fa2e3f7f7d39279b30f454a69dfd1117c758d86b19d85e0', sig: '0971f86d2c9c78582524a103cb9cf949522ae528f8054dc20107d999be673ff4e25ebf2f2928766b1248bec6e91697775f8446639ede46ad4df4053000000010', valid: false },
    ];
    for (const v of cases) {
      it(`tcId ${v.tcId} (${v.flags}) → ${v.valid ? 'valid' : 'invalid'}, never throws`, () => {
        expect(verifySignature(h(v.pk), h(v.msg), h(v.sig))).to.equal(v.valid);
      });
    }
  });

  describe('XChaCha20-Poly1305 (Wycheproof xchacha20_poly1305_test.json)', () => {
    const k20 = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
    const iv0 = '000102030405060708090a0b0c0d0e0f1011121314151617';
    const cases = [
      {
        tcId: 1,
        flags: 'Ktv',
        key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
        iv: '404142434445464748494a4b4c4d4e4f5051525354555657',
        aad: '50515253c0c1c2c3c4c5c6c7',
        msg: '4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a204966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73637265656e20776f756c642062652069742e',
        ct: 'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e',
        tag: 'c0875924c1c7987947deafd8780acf49',
        valid: true,
      },
      { tcId: 2, flags: 'Pseudorandom, empty', key: 'ab1562faea9f47af3ae1c3d6d030e3af230255dff3df583ced6fbbcbf9d606a9', iv: '6a5e0c4617e07091b605a4de2c02dde117de2ebd53b23497', aad: '', msg: '', ct: '', tag: 'e2697ea6877aba39d9555a00e14db041', valid: true },
      { tcId: 4, flags: 'Pseudorandom', key: '303ccb2e1567c3d9f629a5c632dbc62a9a82c525674f67988b31bd1dee990538', iv: '05188738844ab90a8b11beef38eaec3e100d8f4f85ae7a41', aad: '', msg: '62', ct: '45', tag: 'd15734f984d749fa3f0550a70c43dddf', valid: true },
      { tcId: 122, flags: 'EdgeCaseCiphertext', key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', iv: '000102030405060708090a0b0c0d0e0f1011121314151617', aad: '00000000000000000000000000000000', msg: '60e28a8f89adf230daab792c94dfebe766eda542d7c092d97ccb7501486fc6a3', ct: '0'.repeat(64), tag: '52ca5edfb3c4fca83d5776154188a08d', valid: true },
      { tcId: 146, flags: 'ModifiedTag, empty message', key: k20, iv: iv0, aad: '000102', msg: '', ct: '', tag: '0418b3e73e52c3be2eaba76807b784e1', valid: false },
      { tcId: 166, flags: 'ModifiedTag (bit 0 flipped; genuine tag 2564a8ce…)', key: k20, iv: iv0, aad: '000102', msg: '000102030405060708090a0b0c0d0e0f', ct: 'b70886f2313d015e1fe741365f5e35f1', tag: '2464a8ce1a360e8352971c8110885031', valid: false },
      { tcId: 184, flags: 'ModifiedTag (all zero)', key: k20, iv: iv0, aad: '000102', msg: '000102030405060708090a0b0c0d0e0f', ct: 'b70886f2313d015e1fe741365f5e35f1', tag: '0'.repeat(32), valid: false },
      { tcId: 310, flags: 'InvalidNonceSize (12)', key: k20, iv: '000102030405060708090a0b', aad: '', msg: '', ct: '', tag: '', valid: false },
      { tcId: 315, flags: 'InvalidNonceSize (32)', key: k20, iv: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', aad: '', msg: '', ct: '', tag: '', valid: false },
    ];
    for (const v of cases) {
      it(`tcId ${v.tcId} (${v.flags}) → ${v.valid ? 'decrypts, and encrypts to the same bytes' : 'DECRYPT_FAILED'}`, () => {
        if (v.valid) {
          expect(toHex(aeadDecrypt(h(v.key), h(v.iv), h(v.ct + v.tag), h(v.aad)))).to.equal(v.msg);
          expect(toHex(aeadEncrypt(h(v.key), h(v.iv), h(v.msg), h(v.aad)))).to.equal(v.ct + v.tag);
        } else {
          expectCryptoError(() => aeadDecrypt(h(v.key), h(v.iv), h(v.ct + v.tag), h(v.aad)), 'DECRYPT_FAILED');
        }
      });
    }

    it('the genuine tag of tcId 166 verifies (so the failure above is the tag, not the setup)', () => {
      const pt = aeadDecrypt(h(k20), h(iv0), h('b70886f2313d015e1fe741365f5e35f1' + '2564a8ce1a360e8352971c8110885031'), h('000102'));
      expect(toHex(pt)).to.equal('000102030405060708090a0b0c0d0e0f');
    });

    it('tampered associated data fails', () => {
      expectCryptoError(() => aeadDecrypt(h(k20), h(iv0), h('b70886f2313d015e1fe741365f5e35f1' + '2564a8ce1a360e8352971c8110885031'), h('000103')), 'DECRYPT_FAILED');
    });
  });
});

function toHexAscii(s: string): string {
  return Array.from(ascii(s), (b) => b.toString(16).padStart(2, '0')).join('');
}
