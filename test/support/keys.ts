import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { canonicalJson, deviceListMessage, signedPrekeyMessage, teamStatementMessage, type DeviceListContent, type SignedDeviceList, type OneTimePrekey, type SealedTeamDetails, type SignedPrekey, type SignedStatement } from '@curbside/shared';

/**
 * Public key material shaped like the SDK's, made with Node's crypto, for hub-side tests that
 * should not depend on the SDK's crypto: an Ed25519 identity that really signs its prekey.
 */
export function testDeviceKeys() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const identityKey = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  return {
    identityKey,
    signedPrekey(keyId = 1): SignedPrekey {
      const pub = new Uint8Array(randomBytes(32));
      return { keyId, publicKey: pub, signature: new Uint8Array(sign(null, signedPrekeyMessage(pub), privateKey)) };
    },
    /** Sign a team statement the way the SDK does: Ed25519 over label ‖ canonical JSON. */
    signStatement(statement: object): SignedStatement {
      const canonical = canonicalJson(statement);
      return { statement: canonical, signature: new Uint8Array(sign(null, teamStatementMessage(canonical), privateKey)) };
    },
    /** Sign a device list the way the SDK does: Ed25519 over `deviceListMessage`. */
    signDeviceList(userId: string, content: DeviceListContent): SignedDeviceList {
      const devices = content.devices.map((d) => ({ deviceId: d.deviceId, identityKey: new Uint8Array(d.identityKey) }));
      return { version: content.version, devices, signerDeviceId: content.signerDeviceId, signature: new Uint8Array(sign(null, deviceListMessage(userId, content), privateKey)) };
    },
    oneTimePrekeys(count: number, firstId = 1): OneTimePrekey[] {
      return Array.from({ length: count }, (_, i) => ({ keyId: firstId + i, publicKey: new Uint8Array(randomBytes(32)) }));
    },
  };
}

/**
 * Sealed team details of the right shape (random key id and box), for hub-side tests: the hub never
 * opens them. The real sealing is the SDK's (client-sdk/src/crypto/team-details.ts).
 */
export function opaqueSealedDetails(): SealedTeamDetails {
  return { keyId: randomBytes(16).toString('hex'), box: randomBytes(120).toString('base64url') };
}
