import {
  ErrorCode,
  teamRoleOf,
  type AlertPriority,
  type Envelope,
  type SendResult,
  type TeamRole,
  type TeamState,
  type TeamStatement,
  type Shift,
  type EscalationPolicy,
} from '@curbside/shared';
import {
  ReceivedSenderKey,
  SenderKeyState,
  parseGroupMessageHeader,
  teamDetailsKeyId,
  type TeamDetails,
} from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { putOp } from '../stores/index.js';
import { chatMessageOf, untrustedIdentity, type TeamContext } from './types.js';
import { extrasOf, type SealedExtras } from './message-crypto.js';
import type { AlertPayload } from '../hub/outbox.js';
import { TeamDetailsKeys } from './team-details-keys.js';
import { TeamLogBook } from './team-log-book.js';
import {
  MAX_AWAITING_MESSAGES,
  MAX_STALE_RETRIES,
  detailsKeyName,
  epochAt,
  groupAd,
  memberAt,
  ownKeyName,
  readTeamKeysPayload,
  receivedKeyName,
  teamKeysPayload,
  type OwnSenderKey,
  type TeamRecord,
} from './team-records.js';


/** Resends of one team message after STALE_EPOCH (each after catching up on the team's statements). */
const MAX_EPOCH_RETRIES = 4;

type Content = { kind: 'text'; text: string; priority?: AlertPriority } & SealedExtras;

/** A group message whose sender key this device does not hold. */
class NoSenderKey extends Error {}
/** A group message from someone the verified log does not make a member. */
class NotAMember extends Error {}
/** A group message bound to another membership epoch than the one in force at its seq. */
class StaleEpoch extends Error {}
/** A group message sent before this device existed, that carried no key for it. */
class BeforeThisDevice extends Error {}

/**
 * Care teams in the SDK: signed membership statements and sender-key messages.
 *
 * Membership is what the signed log says, replayed here with the same rules the hub uses — never
 * the hub's word alone. A member the hub lists but the log does not is reported and gets no key.
 * Each device sends with its own sender key, handed to every member device (over the 1:1 sessions)
 * along with the first message it can read; after any removal each device makes a new one, so a
 * removed member cannot read what follows. A new member gets current keys only: earlier messages
 * stay unreadable to them and are reported as `before-you-joined`.
 *
 * The title and description are sealed under a team details key, new for every version (create and
 * each rename); the statement carries ciphertext only. The key goes to member devices over the 1:1
 * sessions: from the device that set the details, from whoever adds a member, and with every sender key
 * this device hands out. Details set after a removal are sealed under a key the removed member never gets.
 */
export class TeamMessenger {
  /** Tail of this device's sends per team (see `sendText`). */
  private readonly sending = new Map<string, Promise<unknown>>();

  private readonly detailsKeys: TeamDetailsKeys;
  private readonly log: TeamLogBook;

  constructor(private readonly core: TeamContext) {
    this.detailsKeys = new TeamDetailsKeys(core);
    this.log = new TeamLogBook(core, this.detailsKeys);
  }

  private get store() {
    return this.core.store;
  }

  async isTeam(conversationId: string): Promise<boolean> {
    return (await this.store.get<TeamRecord>('teams', conversationId)) !== undefined;
  }

  /** The team as this device verified it, or undefined. */
  async state(teamId: string): Promise<TeamState | undefined> {
    return (await this.store.get<TeamRecord>('teams', teamId))?.state;
  }

  // --- membership ---------------------------------------------------------------------------

  /**
   * Create a team. Its title and description are sealed under a new team details key (the statement
   * carries ciphertext only); once the hub accepted the team, the key goes to every member device.
   */
  async create(details: TeamDetails, members: Array<{ userId: string; role?: 'admin' | 'member' }>, kind: { roleName?: string; poolTopic?: string } = {}): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    const list = [{ userId: me.userId, role: 'owner' as TeamRole }, ...members.filter((m) => m.userId !== me.userId).map((m) => ({ userId: m.userId, role: (m.role ?? 'member') as TeamRole }))];
    const teamId = globalThis.crypto.randomUUID();
    const sealedDetails = await this.detailsKeys.sealNew(teamId, details);
    const statement: TeamStatement = { v: 1, teamId, index: 0, prev: '', op: 'create', actorUserId: me.userId, actorDeviceId: me.deviceId, issuedAt: Date.now(), sealedDetails, members: list, ...(kind.roleName !== undefined ? { roleName: kind.roleName } : {}), ...(kind.poolTopic !== undefined ? { poolTopic: kind.poolTopic } : {}) };
    const result = await this.detailsKeys.forgetOnFailure(teamId, sealedDetails, this.log.submit('team:create', statement));
    await this.detailsKeys.share(teamId, list.map((m) => m.userId));
    return result;
  }

  async change(teamId: string, op: 'add' | 'remove' | 'role', userId: string, role?: TeamRole): Promise<{ teamId: string; seq: number }> {
    const result = await this.log.change(teamId, { op, userId, ...(role ? { role } : {}) });
    // A new member gets the key of the details in force (and so the title), not of earlier ones.
    if (op === 'add') await this.detailsKeys.share(teamId, [userId]);
    return result;
  }

  /**
   * An on-call role: this member takes it now (`hold`), or an owner or admin sets its shifts
   * (`schedule`); any team or role: an owner or admin sets the escalation policy (`policy`).
   */
  signed(teamId: string, change: { op: 'hold' } | { op: 'schedule'; shifts: Shift[] } | { op: 'policy'; escalation: EscalationPolicy } | { op: 'hide'; messageId: string }): Promise<{ teamId: string; seq: number }> {
    return this.log.change(teamId, change);
  }

  /**
   * Join a consult pool whose log this device verified (`base`, from `pool:log`): this user adds
   * themselves; the hub accepts it only from a device with a verified credential.
   */
  join(poolId: string, base: TeamState): Promise<{ teamId: string; seq: number }> {
    return this.log.join(poolId, base);
  }

  /**
   * New title and description, sealed under a new key that goes to the members of this moment only:
   * someone removed earlier never gets it, whatever the hub does.
   */
  async setDetails(teamId: string, details: TeamDetails): Promise<{ teamId: string; seq: number }> {
    if (!(await this.store.get<TeamRecord>('teams', teamId))) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this care team', { conversationId: teamId });
    const sealedDetails = await this.detailsKeys.sealNew(teamId, details);
    const result = await this.detailsKeys.forgetOnFailure(teamId, sealedDetails, this.log.change(teamId, { op: 'details', sealedDetails }));
    const members = (await this.store.get<TeamRecord>('teams', teamId))?.state.members ?? {};
    await this.detailsKeys.share(teamId, Object.keys(members));
    return result;
  }

  /** The team's title and description, if this device holds the key they are sealed under. */
  async details(teamId: string): Promise<TeamDetails | undefined> {
    const record = await this.store.get<TeamRecord>('teams', teamId);
    return record ? this.detailsKeys.open(record.state) : undefined;
  }

  /**
   * @internal The 1:1 session with a member device is lost (a share from it could not be opened, on
   * evidence): start a new one with an empty share addressed to that device alone. The device keeps
   * sending its sender key with each message until this one confirms it, so the next one reads.
   */
  async repairSession(teamId: string, userId: string, deviceId: string): Promise<void> {
    const record = await this.store.get<TeamRecord>('teams', teamId);
    if (!record || !teamRoleOf(record.state.members, userId)) return;
    const target = (await this.core.listDevices([userId])).find((d) => d.deviceId === deviceId);
    if (!target) return;
    const shares = new Map<string, Uint8Array>();
    await this.core.encryptShares([target], teamKeysPayload(teamId, {}), shares);
    const ciphertext = shares.get(deviceId);
    if (!ciphertext) return;
    await this.core.hub.sendEnvelope(teamId, { recipients: [{ deviceId, ciphertext }], partial: true }, { clientMessageId: globalThis.crypto.randomUUID() });
  }

  // --- messages -------------------------------------------------------------------------------

  /**
   * Encrypt with this device's sender key for the team's current membership epoch and send. When the
   * hub answers STALE_EPOCH (a membership change was sequenced first), catch up on the team's
   * statements, rotate the key if someone was removed, encrypt again and resend under the same client
   * message id: the user sees one message, and a removed member can read none of it.
   */
  sendText(teamId: string, text: string, clientMessageId: string = globalThis.crypto.randomUUID(), alert?: AlertPayload, extras: SealedExtras = {}): Promise<SendResult> {
    // One send per team at a time from this device: messages are then sequenced in the order their
    // sender-key iterations were used, and a receiver that first learns the key from a message never
    // meets an earlier iteration it can no longer derive (a concurrent pair used to lose the first).
    const previous = this.sending.get(teamId) ?? Promise.resolve();
    const mine = previous.catch(() => {}).then(() => this.sendSerialized(teamId, text, clientMessageId, alert, extras));
    const tail = mine.catch(() => {});
    this.sending.set(teamId, tail);
    void tail.then(() => {
      if (this.sending.get(teamId) === tail) this.sending.delete(teamId);
    });
    return mine;
  }

  private async sendSerialized(teamId: string, text: string, clientMessageId: string, alert: AlertPayload | undefined, extras: SealedExtras): Promise<SendResult> {
    const content: Content = { kind: 'text', text, ...(alert ? { priority: alert.priority } : {}), ...extras };
    for (let round = 0; ; round++) {
      try {
        return await this.sendOnce(teamId, clientMessageId, content, alert);
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.STALE_EPOCH || round >= MAX_EPOCH_RETRIES) throw e;
        this.core.logger.debug({ teamId, clientMessageId, round }, 'team membership changed before the send was sequenced; encrypting again');
        // The hub may have applied a change whose statement is not sequenced yet: wait a little longer each time.
        if (round > 0) await new Promise((r) => setTimeout(r, 50 * round));
        await this.core.hub.catchUp();
      }
    }
  }

  private async sendOnce(teamId: string, clientMessageId: string, content: Content, alert: AlertPayload | undefined): Promise<SendResult> {
    const me = this.core.self();
    const record = await this.store.get<TeamRecord>('teams', teamId);
    if (!record || !teamRoleOf(record.state.members, me.userId)) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this care team', { conversationId: teamId });
    const verified = Object.keys(record.state.members);
    // Ask the hub each time: comparing its routing with the signed log is how a hub-made member shows up.
    const hubMembers = await this.core.hub.conversationMembers(teamId, true);
    const unverified = hubMembers.filter((u) => !teamRoleOf(record.state.members, u));
    if (unverified.length) {
      // The hub routes to someone the signed log never added: say so, and give them nothing.
      this.core.logger.warn({ teamId, unverified }, 'hub lists members the signed log does not');
      this.core.events.membershipMismatch({ teamId, unverifiedUserIds: unverified, rejectedStatements: [] });
    }
    for (const userId of verified) {
      if (userId !== me.userId && (await this.core.trust.isBlocked(userId))) {
        throw untrustedIdentity(userId);
      }
    }
    const epoch = record.state.head;
    // Encrypt with this device's sender key (new one after a removal); note who still needs it.
    const { body, distribution, distributedTo } = await this.core.exclusive(async () => {
      const own = await this.ownKey(teamId, record);
      const state = SenderKeyState.deserialize(own.state);
      const distribution = state.distribution(); // before encrypting: new devices need this message's key
      const body = state.encrypt(new TextEncoder().encode(JSON.stringify(content)), groupAd(teamId, me.userId, me.deviceId, clientMessageId, epoch));
      await this.store.put('senderKeys', ownKeyName(teamId), { state: state.serialize(), distributedTo: own.distributedTo });
      return { body, distribution, distributedTo: new Set(own.distributedTo) };
    });
    // Whoever lacks this device's sender key (a new member, a new device) gets the details key with it.
    const sealed = record.state.sealedDetails;
    const detailsKey = sealed ? await this.store.get<Uint8Array>('senderKeys', detailsKeyName(teamId, sealed.keyId)) : undefined;
    const payload = teamKeysPayload(teamId, { distribution, detailsKey });
    let targets = (await this.core.listDevices(verified)).filter((d) => d.deviceId !== me.deviceId && !distributedTo.has(d.deviceId));
    const shares = new Map<string, Uint8Array>();
    for (let attempt = 0; ; attempt++) {
      await this.core.encryptShares(targets, payload, shares);
      const recipients = targets.filter((d) => shares.has(d.deviceId)).map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
      try {
        const raise = { ...(alert ? { alert } : {}), ...(content.attachment ? { attachmentIds: [content.attachment.id] } : {}) };
        const ack = await this.core.hub.sendEnvelope(teamId, recipients.length ? { body, recipients, partial: true, epoch, ...raise } : { body, epoch, ...raise }, { clientMessageId });
        await this.core.noteSent(teamId, ack.messageId, verified.filter((u) => u !== me.userId));
        if (recipients.length) {
          await this.core.exclusive(async () => {
            const own = await this.store.get<OwnSenderKey>('senderKeys', ownKeyName(teamId));
            if (!own) return;
            const awaiting = Object.entries({ ...own.awaiting, [ack.messageId]: recipients.map((r) => r.deviceId) }).slice(-MAX_AWAITING_MESSAGES);
            await this.store.put('senderKeys', ownKeyName(teamId), { ...own, awaiting: Object.fromEntries(awaiting) });
          });
        }
        return ack;
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.DEVICE_LIST_STALE || attempt >= MAX_STALE_RETRIES) throw e;
        const extra = new Set((e.details as { extra?: string[] } | undefined)?.extra ?? []);
        targets = targets.filter((d) => !extra.has(d.deviceId));
      }
    }
  }

  /**
   * @internal A member's device (or one of this user's own) sent a receipt for these messages: the
   * sender key shared with them reached it, so it is not sent to that device again.
   */
  async senderKeyConfirmed(teamId: string, deviceId: string, messageIds: string[]): Promise<void> {
    await this.core.exclusive(async () => {
      const own = await this.store.get<OwnSenderKey>('senderKeys', ownKeyName(teamId));
      if (!own?.awaiting || !messageIds.some((id) => own.awaiting![id]?.includes(deviceId))) return;
      const awaiting = Object.fromEntries(
        Object.entries(own.awaiting)
          .map(([id, devices]) => [id, devices.filter((d) => d !== deviceId)] as const)
          .filter(([, devices]) => devices.length > 0),
      );
      await this.store.put('senderKeys', ownKeyName(teamId), { ...own, distributedTo: [...new Set([...own.distributedTo, deviceId])], awaiting });
    });
  }

  /** This device's sender key for the team, made anew when there is none or a member was removed. */
  private async ownKey(teamId: string, record: TeamRecord): Promise<OwnSenderKey> {
    const existing = await this.store.get<OwnSenderKey>('senderKeys', ownKeyName(teamId));
    const current = (await this.store.get<TeamRecord>('teams', teamId)) ?? record;
    if (existing && !current.rotate) return existing;
    const fresh: OwnSenderKey = { state: SenderKeyState.create().serialize(), distributedTo: [] };
    await this.store.transaction([putOp('senderKeys', ownKeyName(teamId), fresh), putOp('teams', teamId, { ...current, rotate: false })]);
    return fresh;
  }

  async receive(envelope: Envelope): Promise<void> {
    if (envelope.membership) return this.log.receive(envelope);
    const me = this.core.self();
    const record = await this.store.get<TeamRecord>('teams', envelope.conversationId);
    const base = { conversationId: envelope.conversationId, messageId: envelope.messageId, seq: envelope.seq, senderUserId: envelope.senderUserId };
    // Judged at the message's own seq: one sent while this user belonged is read even after they left.
    if (!record || !memberAt(record, me.userId, envelope.seq) || (record.joinedAtSeq !== null && envelope.seq < record.joinedAtSeq)) {
      const removed = record?.pastMembers?.some((p) => p.userId === me.userId && p.untilSeq <= envelope.seq) ?? false;
      if (envelope.body) this.core.events.unavailable({ ...base, reason: removed ? 'removed' : 'before-you-joined' });
      return;
    }
    try {
      if (!memberAt(record, envelope.senderUserId, envelope.seq)) throw new NotAMember();
      if (envelope.ciphertext) await this.acceptTeamKeys(envelope);
      if (!envelope.body) return;
      // Bound to the membership in force at its seq, or refused: an honest hub never sequences it otherwise.
      const epoch = epochAt(record, envelope.seq);
      if (envelope.epoch !== epoch) throw new StaleEpoch();
      const header = parseGroupMessageHeader(envelope.body);
      const name = receivedKeyName(envelope.conversationId, envelope.senderUserId, envelope.senderDeviceId, header.keyId);
      const bornAt = (await this.core.localKeys()).createdAt;
      const content = await this.core.exclusive(async () => {
        const stored = await this.store.get<Uint8Array>('senderKeys', name);
        // Sent before this device existed, with no share for it: history it was never meant to have.
        if (!stored && !envelope.ciphertext && bornAt !== undefined && envelope.sentAt < bornAt) throw new BeforeThisDevice();
        if (!stored) throw new NoSenderKey();
        const key = ReceivedSenderKey.deserialize(stored);
        const plaintext = key.decrypt(envelope.body!, groupAd(envelope.conversationId, envelope.senderUserId, envelope.senderDeviceId, envelope.clientMessageId, epoch));
        await this.store.put('senderKeys', name, key.serialize());
        return JSON.parse(new TextDecoder().decode(plaintext)) as Content;
      });
      if (content.kind === 'text' && typeof content.text === 'string') {
        const priority = content.priority === 'urgent' || content.priority === 'emergent' ? content.priority : 'routine';
        this.core.events.message(chatMessageOf(envelope, content.text, me.userId, priority, extrasOf(content)));
      }
      // Other users' devices confirm a share with their delivered receipt; this user's own devices
      // send none for their own messages, so they confirm it here, or the key is never sent again.
      if (envelope.ciphertext && envelope.senderUserId === me.userId) this.core.confirmSiblingShare(envelope.conversationId, envelope.messageId);
    } catch (e) {
      this.onFailure(envelope, e);
    }
  }

  /** A share from a member device: its sender key, the key of the team's details, or both. */
  private async acceptTeamKeys(envelope: Envelope): Promise<void> {
    // (An empty payload is a member device's session repair: opening it set up the new session.)
    const keys = readTeamKeysPayload(await this.core.decryptShare(envelope), envelope.conversationId);
    const teamId = envelope.conversationId;
    const distribution = keys.distribution;
    if (distribution) {
      const name = receivedKeyName(teamId, envelope.senderUserId, envelope.senderDeviceId, distribution.keyId);
      await this.core.exclusive(async () => {
        if (await this.store.get('senderKeys', name)) return; // a repeat: keep our chain position
        await this.store.put('senderKeys', name, ReceivedSenderKey.fromDistribution(distribution).serialize());
      });
    }
    const detailsKey = keys.detailsKey;
    if (!detailsKey) return;
    const keyId = teamDetailsKeyId(detailsKey);
    const learned = await this.core.exclusive(async () => {
      const record = await this.store.get<TeamRecord>('teams', teamId);
      // Only the key of the details in force: an older one opens nothing current, and keys of details
      // this device has not seen yet are handed out again by whoever sets them.
      if (!record || record.state.sealedDetails?.keyId !== keyId) return undefined;
      const name = detailsKeyName(teamId, keyId);
      if (await this.store.get('senderKeys', name)) return undefined;
      await this.store.put('senderKeys', name, detailsKey);
      return record.state;
    });
    if (!learned) return;
    const details = await this.detailsKeys.open(learned);
    if (details) this.core.events.teamDetails({ teamId, ...details });
  }

  private onFailure(envelope: Envelope, e: unknown): void {
    if (e instanceof BeforeThisDevice) {
      this.core.events.unavailable({ conversationId: envelope.conversationId, messageId: envelope.messageId, seq: envelope.seq, senderUserId: envelope.senderUserId, reason: 'before-this-device' });
      return;
    }
    if (e instanceof NoSenderKey) return this.core.onReceiveFailure(envelope, e, 'NO_SENDER_KEY', true);
    if (e instanceof NotAMember) return this.core.onReceiveFailure(envelope, e, 'NOT_A_MEMBER', true);
    if (e instanceof StaleEpoch) return this.core.onReceiveFailure(envelope, e, 'STALE_EPOCH', true);
    this.core.onReceiveFailure(envelope, e, undefined, true);
  }
}
