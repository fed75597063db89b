import type { Storage } from '@curbside/server';

/**
 * A hub turned hostile: wraps real storage and lets a test change what it hands out, the way a
 * compromised server would. Switches are off until a test flips them.
 */
export function evilStorage(inner: Storage) {
  const evil = {
    /** Replace what the hub says about devices and bundles. */
    rewriteIdentity: undefined as undefined | ((userId: string, deviceId: string, key: Uint8Array) => Uint8Array),
    rewriteBundle: undefined as undefined | ((b: Awaited<ReturnType<Storage['claimBundles']>>[number]) => Awaited<ReturnType<Storage['claimBundles']>>[number]),
    /** Change an envelope on its way out (live fan-out and sync). */
    tamper: undefined as undefined | ((e: Awaited<ReturnType<Storage['envelopesAfter']>>[number]) => Awaited<ReturnType<Storage['envelopesAfter']>>[number]),
  };
  const storage: Storage = Object.create(inner) as Storage;
  Object.assign(storage, {
    init: () => inner.init(),
    ping: () => inner.ping(),
    close: () => inner.close(),
    listDeviceIdentities: async (orgId: string, userIds: readonly string[]) => {
      const list = await inner.listDeviceIdentities(orgId, userIds);
      const f = evil.rewriteIdentity;
      return f ? list.map((d) => ({ ...d, identityKey: f(d.userId, d.deviceId, d.identityKey) })) : list;
    },
    claimBundles: async (orgId: string, userIds: readonly string[], deviceIds?: readonly string[]) => {
      const bundles = await inner.claimBundles(orgId, userIds, deviceIds);
      const f = evil.rewriteBundle;
      return f ? bundles.map(f) : bundles;
    },
    appendEnvelope: async (input: Parameters<Storage['appendEnvelope']>[0]) => {
      const r = await inner.appendEnvelope(input);
      const f = evil.tamper;
      return f && r.status !== 'conflict' ? { ...r, envelope: f(r.envelope) } : r;
    },
    envelopesAfter: async (orgId: string, conversationId: string, afterSeq: number, limit: number) => {
      const list = await inner.envelopesAfter(orgId, conversationId, afterSeq, limit);
      const f = evil.tamper;
      return f ? list.map(f) : list;
    },
  });
  return { storage, evil };
}
