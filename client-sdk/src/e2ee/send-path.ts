/**
 * The send path of the pairwise layer: sealing one message for the devices of a conversation (or of
 * some users) and sending it, with the Sesame retry when the hub calls the device list stale; and
 * the 1:1 shares under it (`encryptShares`), which start sessions from claimed prekey bundles. Every
 * change to session state here runs under the messenger's `exclusive()`.
 */
import { ErrorCode, type DeviceIdentity, type SendResult } from '@curbside/shared';
import { encryptSessionMessage, isCryptoError, startSession } from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import type { AlertPayload } from '../hub/outbox.js';
import { sealMessage, type MessageContent } from './message-crypto.js';
import type { SessionBook } from './peer-state.js';
import { untrustedIdentity, type TeamContext } from './types.js';

const MAX_STALE_RETRIES = 3;

/** What the send path uses of the messenger that owns it (its side of the {@link TeamContext}). */
export type SendCore = Pick<TeamContext, 'store' | 'hub' | 'self' | 'events' | 'logger' | 'trust' | 'deviceLists' | 'localKeys' | 'exclusive' | 'listDevices'>;

/** How a sealed message goes out (see {@link SendPath.send}). */
export interface SealedSendOptions {
  toUserIds?: string[];
  clientMessageId?: string;
  alert?: AlertPayload;
  handoff?: { seqs: number[] };
  attachmentIds?: string[];
}

export class SendPath {
  constructor(
    private readonly core: SendCore,
    private readonly sessions: SessionBook,
  ) {}

  /**
   * Seal `content` and send it. By default to every device of every member; with `toUserIds`, a
   * partial send to those users' devices (and this user's other devices) only.
   */
  async send(conversationId: string, content: MessageContent, options: SealedSendOptions = {}): Promise<SendResult> {
    const { hub } = this.core;
    const me = this.core.self();
    const members = options.toUserIds ? [...new Set([...options.toUserIds, me.userId])] : await hub.conversationMembers(conversationId);
    const partial = options.toUserIds !== undefined;
    const kind = content.kind === 'receipt' ? ('receipt' as const) : undefined;
    for (const userId of members) {
      if (userId !== me.userId && (await this.core.trust.isBlocked(userId))) throw untrustedIdentity(userId);
    }
    const clientMessageId = options.clientMessageId ?? globalThis.crypto.randomUUID();
    const { body, keyPackage } = sealMessage(content, { conversationId, senderUserId: me.userId, senderDeviceId: me.deviceId, clientMessageId });
    let targets = (await this.core.listDevices(members)).filter((d) => d.deviceId !== me.deviceId);
    const shares = new Map<string, Uint8Array>();
    for (let attempt = 0; ; attempt++) {
      await this.encryptShares(targets, keyPackage, shares);
      const recipients = targets.map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
      try {
        const alert = { ...(options.alert ? { alert: options.alert } : {}), ...(options.handoff ? { handoff: options.handoff } : {}), ...(options.attachmentIds ? { attachmentIds: options.attachmentIds } : {}) };
        if (recipients.length === 0) return await hub.sendEnvelope(conversationId, { body, ...(kind ? { kind } : {}), ...alert }, { clientMessageId });
        return await hub.sendEnvelope(conversationId, { body, recipients, ...(partial ? { partial } : {}), ...(kind ? { kind } : {}), ...alert }, { clientMessageId });
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.DEVICE_LIST_STALE || attempt >= MAX_STALE_RETRIES) throw e;
        // Sesame: fix the device list the hub says is stale, keep the shares already made.
        const details = e.details as { missing?: Array<{ userId: string; deviceId: string }>; extra?: string[] } | undefined;
        const extra = new Set(details?.extra ?? []);
        targets = targets.filter((d) => !extra.has(d.deviceId));
        const missingUsers = [...new Set((details?.missing ?? []).map((m) => m.userId))];
        if (missingUsers.length) {
          const fresh = await this.core.listDevices(missingUsers);
          const missingIds = new Set((details?.missing ?? []).map((m) => m.deviceId));
          targets.push(...fresh.filter((d) => missingIds.has(d.deviceId) && !targets.some((t) => t.deviceId === d.deviceId)));
        }
        this.core.logger.debug({ conversationId, attempt, missing: details?.missing?.length ?? 0, extra: extra.size }, 'device list was stale, retrying');
      }
    }
  }

  /**
   * Ratchet-encrypt `keyPackage` (a 1:1 payload) for each target that has no share yet, starting
   * sessions as needed.
   */
  async encryptShares(targets: DeviceIdentity[], keyPackage: Uint8Array, shares: Map<string, Uint8Array>): Promise<void> {
    const { trust, events } = this.core;
    const todo = targets.filter((d) => !shares.has(d.deviceId));
    if (todo.length === 0) return;
    // Trust first: a key the hub presents that differs from the one we know blocks the whole user.
    for (const d of todo) {
      const seen = await trust.observe(d.userId, d.deviceId, d.identityKey);
      if (seen === 'changed') {
        events.identityChanged({ userId: d.userId, deviceIds: [d.deviceId] });
        throw untrustedIdentity(d.userId);
      }
    }
    const withoutSession: DeviceIdentity[] = [];
    for (const d of todo) if ((await this.sessions.load(d.userId, d.deviceId)).length === 0) withoutSession.push(d);
    const bundles = withoutSession.length
      ? await this.core.hub.claimBundles({ userIds: [...new Set(withoutSession.map((d) => d.userId))], deviceIds: withoutSession.map((d) => d.deviceId) })
      : [];
    const keys = await this.core.localKeys();
    await this.core.exclusive(async () => {
      for (const d of todo) {
        let sessions = await this.sessions.load(d.userId, d.deviceId);
        if (sessions.length === 0) {
          const bundle = bundles.find((b) => b.deviceId === d.deviceId && b.userId === d.userId);
          if (!bundle) continue; // the device vanished meanwhile: the hub will call the list stale
          try {
            // `d` comes from the user's signed device list: its key is the one a bundle must carry.
            const started = await startSession(keys.identity, bundle, { trustedIdentityKey: d.identityKey });
            sessions = [started.session];
          } catch (e) {
            if (isCryptoError(e, 'IDENTITY_MISMATCH')) {
              // The hub's bundle is for another key than the signed list gives: it is refused, not offered to the user to accept.
              events.deviceListRejected({ userId: d.userId, problem: 'substituted-key', version: (await this.core.deviceLists.pinned(d.userId))?.version ?? 0, deviceId: d.deviceId });
              throw new CurbsideError(ErrorCode.UNTRUSTED_IDENTITY, `The hub offered a key for ${d.userId}/${d.deviceId} that their signed device list does not give; nothing was sent`, { userId: d.userId, deviceId: d.deviceId });
            }
            // A bundle whose signed prekey does not verify: the hub (or someone) substituted it.
            throw new CurbsideError(ErrorCode.BAD_SIGNATURE, `Refusing a prekey bundle for ${d.userId}/${d.deviceId} that does not verify`, { userId: d.userId, deviceId: d.deviceId });
          }
        }
        const current = sessions[0]!;
        shares.set(d.deviceId, encryptSessionMessage(current, keyPackage));
        await this.core.store.transaction([this.sessions.saveOp(d.userId, d.deviceId, sessions)]);
      }
    });
  }
}
