import {
  ErrorCode,
  TeamRuleError,
  applyTeamStatement,
  teamRoleOf,
  type Envelope,
  type SealedTeamDetails,
  type SendResult,
  type TeamRole,
  type TeamState,
  type TeamStatement,
} from '@curbside/shared';
import {
  CryptoError,
  ReceivedSenderKey,
  SenderKeyState,
  TEAM_DETAILS_KEY_BYTES,
  TeamDetailsError,
  decodeDistribution,
  isCryptoError,
  encodeDistribution,
  generateTeamDetailsKey,
  normalizeTeamDetails,
  openTeamDetails,
  parseGroupMessageHeader,
  parseTeamStatement,
  sealTeamDetails,
  signStatement,
  statementHash,
  teamDetailsKeyId,
  toHex,
  verifySignedStatement,
  type TeamDetails,
} from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { deleteOp, putOp } from '../stores/index.js';
import type { TeamContext } from './types.js';

/** First byte of a 1:1 payload that carries a sender key (message key packages start with 1). */
const SENDER_KEY_PAYLOAD = 2;
/** First byte of a 1:1 payload that carries a team's keys: its details key and/or a sender key. */
const TEAM_KEYS_PAYLOAD = 3;
const MAX_STALE_RETRIES = 3;

/** What this device keeps per care team. */
interface TeamRecord {
  state: TeamState;
  /** Seq of the statement that made this user a member (messages before it are history they never had). */
  joinedAtSeq: number | null;
  /** A member was removed since this device last made its sender key: make a new one before sending. */
  rotate: boolean;
  /** Seq of the statement from which each current member belongs (absent in records made before it was kept). */
  memberSince?: Record<string, number>;
  /**
   * Members who left, with the seqs they belonged between (the newest 200). A message they sent is
   * judged by the membership at its own seq: this device may apply its own removal statement before
   * it has handled messages sequenced ahead of it.
   */
  pastMembers?: Array<{ userId: string; fromSeq: number; untilSeq: number }>;
  /**
   * Membership epochs: each statement's seq and the log head after it, oldest first (the newest
   * 1000). A message at seq S must be bound to the head of the last statement before S.
   */
  epochs?: Array<{ seq: number; head: string }>;
}

const MAX_PAST_MEMBERS = 200;
const MAX_EPOCHS = 1000;
/** Resends of one team message after STALE_EPOCH (each after catching up on the team's statements). */
const MAX_EPOCH_RETRIES = 4;

/**
 * The membership epoch a message at `seq` must be bound to: the head after the last statement
 * sequenced before it. Records kept before epochs were (or history past the kept window): the
 * current head, which is what every message sent since has been bound to.
 */
function epochAt(record: TeamRecord, seq: number): string {
  const before = (record.epochs ?? []).filter((e) => e.seq < seq);
  return before.at(-1)?.head ?? record.state.head;
}

/** Whether `userId` belonged to the team at `seq`: a member now, or one who left after `seq`. */
function memberAt(record: TeamRecord, userId: string, seq: number): boolean {
  if (teamRoleOf(record.state.members, userId)) return true;
  return (record.pastMembers ?? []).some((p) => p.userId === userId && p.fromSeq < seq && seq < p.untilSeq);
}

interface OwnSenderKey {
  state: Uint8Array;
  /**
   * Devices that have this key: each once it confirmed a message that carried the key (other users'
   * devices with their delivered receipt, this user's own with a receipt of their own, see
   * `confirmSiblingShare`).
   */
  distributedTo: string[];
  /**
   * Devices sent this key along with a message (by message id) that have not confirmed it yet. They
   * get it again with the next message: a share damaged on its way must not cost every later message.
   */
  awaiting?: Record<string, string[]>;
}

/** Messages whose key shares wait for a receipt, per sender key (oldest dropped first). */
const MAX_AWAITING_MESSAGES = 64;

type Content = { kind: 'text'; text: string };

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

  constructor(private readonly core: TeamContext) {}

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
  async create(details: TeamDetails, members: Array<{ userId: string; role?: 'admin' | 'member' }>): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    const list = [{ userId: me.userId, role: 'owner' as TeamRole }, ...members.filter((m) => m.userId !== me.userId).map((m) => ({ userId: m.userId, role: (m.role ?? 'member') as TeamRole }))];
    const teamId = globalThis.crypto.randomUUID();
    const sealedDetails = await this.sealNewDetails(teamId, details);
    const statement: TeamStatement = { v: 1, teamId, index: 0, prev: '', op: 'create', actorUserId: me.userId, actorDeviceId: me.deviceId, issuedAt: Date.now(), sealedDetails, members: list };
    const result = await this.forgetKeyOnFailure(teamId, sealedDetails, this.submit('team:create', statement));
    await this.shareDetailsKey(teamId, list.map((m) => m.userId));
    return result;
  }

  async change(teamId: string, op: 'add' | 'remove' | 'role', userId: string, role?: TeamRole): Promise<{ teamId: string; seq: number }> {
    const result = await this.changeWith(teamId, { op, userId, ...(role ? { role } : {}) });
    // A new member gets the key of the details in force (and so the title), not of earlier ones.
    if (op === 'add') await this.shareDetailsKey(teamId, [userId]);
    return result;
  }

  /**
   * New title and description, sealed under a new key that goes to the members of this moment only:
   * someone removed earlier never gets it, whatever the hub does.
   */
  async setDetails(teamId: string, details: TeamDetails): Promise<{ teamId: string; seq: number }> {
    if (!(await this.store.get<TeamRecord>('teams', teamId))) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this care team', { conversationId: teamId });
    const sealedDetails = await this.sealNewDetails(teamId, details);
    const result = await this.forgetKeyOnFailure(teamId, sealedDetails, this.changeWith(teamId, { op: 'details', sealedDetails }));
    const members = (await this.store.get<TeamRecord>('teams', teamId))?.state.members ?? {};
    await this.shareDetailsKey(teamId, Object.keys(members));
    return result;
  }

  /** The team's title and description, if this device holds the key they are sealed under. */
  async details(teamId: string): Promise<TeamDetails | undefined> {
    const record = await this.store.get<TeamRecord>('teams', teamId);
    return record ? this.openDetails(record.state) : undefined;
  }

  private async openDetails(state: TeamState): Promise<TeamDetails | undefined> {
    const sealed = state.sealedDetails;
    if (!sealed) return undefined;
    const key = await this.store.get<Uint8Array>('senderKeys', detailsKeyName(state.teamId, sealed.keyId));
    if (!key) return undefined;
    try {
      return openTeamDetails(state.teamId, key, sealed);
    } catch (e) {
      this.core.logger.warn({ teamId: state.teamId, keyId: sealed.keyId, reason: e instanceof CryptoError ? e.detail : String(e) }, 'team details do not open under their key');
      return undefined;
    }
  }

  /** Seal details under a fresh key, kept on this device before the statement naming it goes out. */
  private async sealNewDetails(teamId: string, details: TeamDetails): Promise<SealedTeamDetails> {
    let clean: TeamDetails;
    try {
      clean = normalizeTeamDetails(details);
    } catch (e) {
      if (!(e instanceof TeamDetailsError)) throw e;
      throw new CurbsideError(e.problem === 'empty' ? ErrorCode.INVALID_PAYLOAD : ErrorCode.PAYLOAD_TOO_LARGE, e.message, { field: e.field });
    }
    const key = generateTeamDetailsKey();
    const sealed = sealTeamDetails(teamId, key, clean);
    await this.store.put('senderKeys', detailsKeyName(teamId, sealed.keyId), key);
    return sealed;
  }

  /** A key whose statement the hub refused opens nothing: it is not kept. */
  private async forgetKeyOnFailure<T>(teamId: string, sealed: SealedTeamDetails, submitted: Promise<T>): Promise<T> {
    try {
      return await submitted;
    } catch (e) {
      const current = (await this.store.get<TeamRecord>('teams', teamId))?.state.sealedDetails;
      if (current?.keyId !== sealed.keyId) await this.store.delete('senderKeys', detailsKeyName(teamId, sealed.keyId));
      throw e;
    }
  }

  /**
   * Hand the key of the team's current details to these members' devices (not this one) over the 1:1
   * sessions, in one envelope that names only them. Best effort: the team change already happened, and
   * every member device also passes the key on with its sender key (see `sendOnce`).
   */
  private async shareDetailsKey(teamId: string, userIds: string[]): Promise<void> {
    const me = this.core.self();
    try {
      const record = await this.store.get<TeamRecord>('teams', teamId);
      const sealed = record?.state.sealedDetails;
      if (!record || !sealed) return;
      const key = await this.store.get<Uint8Array>('senderKeys', detailsKeyName(teamId, sealed.keyId));
      if (!key) return;
      const members: string[] = [];
      for (const userId of new Set(userIds)) {
        // Only members by the signed log, and none whose safety key changed unaccepted.
        if (teamRoleOf(record.state.members, userId) && !(userId !== me.userId && (await this.core.trust.isBlocked(userId)))) members.push(userId);
      }
      if (members.length === 0) return;
      let targets = (await this.core.listDevices(members)).filter((d) => d.deviceId !== me.deviceId);
      const payload = teamKeysPayload(teamId, { detailsKey: key });
      const shares = new Map<string, Uint8Array>();
      const clientMessageId = globalThis.crypto.randomUUID();
      for (let attempt = 0; targets.length > 0; attempt++) {
        await this.core.encryptShares(targets, payload, shares);
        const recipients = targets.filter((d) => shares.has(d.deviceId)).map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
        if (recipients.length === 0) return;
        try {
          await this.core.hub.sendEnvelope(teamId, { recipients, partial: true }, { clientMessageId });
          return;
        } catch (e) {
          if (!isCurbsideError(e) || e.code !== ErrorCode.DEVICE_LIST_STALE || attempt >= MAX_STALE_RETRIES) throw e;
          const extra = new Set((e.details as { extra?: string[] } | undefined)?.extra ?? []);
          targets = targets.filter((d) => !extra.has(d.deviceId));
        }
      }
    } catch (e) {
      this.core.logger.warn({ teamId, code: isCurbsideError(e) ? e.code : undefined }, 'could not hand out the team details key now; members get it with the next team message');
    }
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

  private async changeWith(teamId: string, change: Pick<TeamStatement, 'op' | 'userId' | 'role' | 'sealedDetails'>): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    for (let attempt = 0; ; attempt++) {
      const record = await this.store.get<TeamRecord>('teams', teamId);
      if (!record) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this care team', { conversationId: teamId });
      const statement: TeamStatement = {
        v: 1,
        teamId,
        index: record.state.index + 1,
        prev: record.state.head,
        op: change.op,
        actorUserId: me.userId,
        actorDeviceId: me.deviceId,
        issuedAt: Date.now(),
        ...(change.userId !== undefined ? { userId: change.userId } : {}),
        ...(change.role !== undefined ? { role: change.role } : {}),
        ...(change.sealedDetails !== undefined ? { sealedDetails: change.sealedDetails } : {}),
      };
      try {
        return await this.submit('team:change', statement);
      } catch (e) {
        // Someone changed the team first: our copy catches up through sync, then we sign again.
        if (!isCurbsideError(e) || e.code !== ErrorCode.CONFLICT || attempt >= 2) throw e;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  private async submit(event: 'team:create' | 'team:change', statement: TeamStatement): Promise<{ teamId: string; seq: number }> {
    const keys = await this.core.localKeys();
    const signed = signStatement(statement, keys.identity.privateKey);
    const canonical = signed.statement;
    const { seq } = await this.core.hub.teamRequest(event, { signed });
    // The hub does not echo our own statement back to this device: apply it here, in order.
    try {
      await this.core.exclusive(() => this.applyVerified(statement, canonical, seq));
    } catch (e) {
      // The SDK throws one error class: a broken team rule is INVALID_STATEMENT, like the hub says it.
      if (e instanceof TeamRuleError) throw new CurbsideError(ErrorCode.INVALID_STATEMENT, e.message, { teamId: statement.teamId });
      throw e;
    }
    return { teamId: statement.teamId, seq };
  }

  /** Verify and apply a statement delivered in the sequence. */
  private async receiveStatement(envelope: Envelope): Promise<void> {
    const signed = envelope.membership!;
    const reject = (reason: string) => {
      this.core.logger.warn({ conversationId: envelope.conversationId, seq: envelope.seq, reason }, 'rejected a team statement');
      this.core.events.membershipMismatch({ teamId: envelope.conversationId, unverifiedUserIds: [], rejectedStatements: [{ seq: envelope.seq, reason }] });
    };
    let statement: TeamStatement;
    try {
      statement = parseTeamStatement(signed.statement);
    } catch (e) {
      return reject(isCryptoError(e) ? e.detail : 'malformed statement');
    }
    const record = await this.store.get<TeamRecord>('teams', statement.teamId);
    if (record && statement.index <= record.state.index) return; // already applied (our own, at ack time)
    if (statement.teamId !== envelope.conversationId || statement.actorUserId !== envelope.senderUserId || statement.actorDeviceId !== envelope.senderDeviceId) {
      return reject('statement does not match its envelope');
    }
    const actorKey = await this.identityKeyOf(statement.actorUserId, statement.actorDeviceId);
    if (!actorKey || !verifySignedStatement(signed, actorKey)) return reject('signature does not verify under the actor device’s identity key');
    try {
      await this.core.exclusive(() => this.applyVerified(statement, signed.statement, envelope.seq));
    } catch (e) {
      if (e instanceof TeamRuleError) return reject(e.message);
      throw e;
    }
  }

  /** The identity key we trust for a device: from our trust book, else learned (first use) from the hub. */
  private async identityKeyOf(userId: string, deviceId: string): Promise<Uint8Array | undefined> {
    const known = await this.core.trust.get(userId, deviceId);
    if (known) return known.status === 'changed' ? undefined : known.identityKey;
    // The user's current signed list, else the version that listed the device when it signed (a device
    // unlinked since still signed its earlier statements).
    const listed = (await this.core.listDevices([userId])).find((d) => d.deviceId === deviceId)?.identityKey ?? (await this.core.deviceLists.formerKeyOf(userId, deviceId));
    if (!listed) return undefined;
    return (await this.core.trust.observe(userId, deviceId, listed)) === 'changed' ? undefined : listed;
  }

  private async applyVerified(statement: TeamStatement, canonical: string, seq: number): Promise<void> {
    const me = this.core.self();
    const record = await this.store.get<TeamRecord>('teams', statement.teamId);
    if (record && statement.index <= record.state.index) return; // seen (our own, applied at ack time)
    const state = applyTeamStatement(record?.state, statement, statementHash(canonical));
    const wasMember = record ? Boolean(teamRoleOf(record.state.members, me.userId)) : false;
    const isMember = Boolean(teamRoleOf(state.members, me.userId));
    const before = record?.state.members ?? {};
    const memberSince: Record<string, number> = {};
    const pastMembers = [...(record?.pastMembers ?? [])];
    for (const userId of Object.keys(state.members)) memberSince[userId] = userId in before ? (record?.memberSince?.[userId] ?? 0) : seq;
    for (const userId of Object.keys(before)) {
      if (!(userId in state.members)) pastMembers.push({ userId, fromSeq: record?.memberSince?.[userId] ?? 0, untilSeq: seq });
    }
    const next: TeamRecord = {
      state,
      joinedAtSeq: isMember && !wasMember ? seq : (record?.joinedAtSeq ?? null),
      rotate: (record?.rotate ?? false) || statement.op === 'remove',
      memberSince,
      pastMembers: pastMembers.slice(-MAX_PAST_MEMBERS),
      epochs: [...(record?.epochs ?? []), { seq, head: state.head }].slice(-MAX_EPOCHS),
    };
    const previousKeyId = record?.state.sealedDetails?.keyId;
    const detailsChanged = state.sealedDetails?.keyId !== previousKeyId;
    // The key of replaced details opens nothing current: forget it.
    await this.store.transaction([
      putOp('teams', statement.teamId, next),
      ...(detailsChanged && previousKeyId ? [deleteOp('senderKeys', detailsKeyName(statement.teamId, previousKeyId))] : []),
    ]);
    const details = await this.openDetails(state);
    this.core.events.teamChanged({
      teamId: state.teamId,
      ...(details ? { title: details.title } : {}),
      members: { ...state.members },
      op: statement.op,
      ...(statement.userId && statement.op !== 'details' ? { userId: statement.userId } : {}),
      actorUserId: statement.actorUserId,
      seq,
    });
    if (detailsChanged && details) this.core.events.teamDetails({ teamId: state.teamId, ...details });
  }

  // --- messages -------------------------------------------------------------------------------

  /**
   * Encrypt with this device's sender key for the team's current membership epoch and send. When the
   * hub answers STALE_EPOCH (a membership change was sequenced first), catch up on the team's
   * statements, rotate the key if someone was removed, encrypt again and resend under the same client
   * message id: the user sees one message, and a removed member can read none of it.
   */
  sendText(teamId: string, text: string): Promise<SendResult> {
    // One send per team at a time from this device: messages are then sequenced in the order their
    // sender-key iterations were used, and a receiver that first learns the key from a message never
    // meets an earlier iteration it can no longer derive (a concurrent pair used to lose the first).
    const previous = this.sending.get(teamId) ?? Promise.resolve();
    const mine = previous.catch(() => {}).then(() => this.sendSerialized(teamId, text));
    const tail = mine.catch(() => {});
    this.sending.set(teamId, tail);
    void tail.then(() => {
      if (this.sending.get(teamId) === tail) this.sending.delete(teamId);
    });
    return mine;
  }

  private async sendSerialized(teamId: string, text: string): Promise<SendResult> {
    const clientMessageId = globalThis.crypto.randomUUID();
    const content: Content = { kind: 'text', text };
    for (let round = 0; ; round++) {
      try {
        return await this.sendOnce(teamId, clientMessageId, content);
      } catch (e) {
        if (!isCurbsideError(e) || e.code !== ErrorCode.STALE_EPOCH || round >= MAX_EPOCH_RETRIES) throw e;
        this.core.logger.debug({ teamId, clientMessageId, round }, 'team membership changed before the send was sequenced; encrypting again');
        // The hub may have applied a change whose statement is not sequenced yet: wait a little longer each time.
        if (round > 0) await new Promise((r) => setTimeout(r, 50 * round));
        await this.core.hub.catchUp();
      }
    }
  }

  private async sendOnce(teamId: string, clientMessageId: string, content: Content): Promise<SendResult> {
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
        throw new CurbsideError(ErrorCode.UNTRUSTED_IDENTITY, `The safety key of ${userId} changed; accept or verify it before sending`, { userId });
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
        const ack = await this.core.hub.sendEnvelope(teamId, recipients.length ? { body, recipients, partial: true, epoch } : { body, epoch }, { clientMessageId });
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
    if (envelope.membership) return this.receiveStatement(envelope);
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
        this.core.events.message({
          conversationId: envelope.conversationId,
          messageId: envelope.messageId,
          seq: envelope.seq,
          senderUserId: envelope.senderUserId,
          senderDeviceId: envelope.senderDeviceId,
          sentAt: envelope.sentAt,
          text: content.text,
          outgoing: envelope.senderUserId === me.userId,
        });
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
    const details = await this.openDetails(learned);
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

/** What one 1:1 share to a member device carries for a team. */
interface TeamKeys {
  distribution?: ReturnType<typeof decodeDistribution>;
  detailsKey?: Uint8Array;
}

/**
 * A team's keys as sent over a 1:1 session: `3 ‖ u16 length ‖ team id ‖ u8 has-details-key ‖
 * [details key (32)] ‖ [sender key distribution]`. Naming the team inside the authenticated payload
 * stops a hub from filing one team's keys under another. (`2 ‖ u16 length ‖ team id ‖ distribution`,
 * a sender key alone, is still read.)
 */
function teamKeysPayload(teamId: string, keys: { distribution?: Parameters<typeof encodeDistribution>[0]; detailsKey?: Uint8Array | undefined }): Uint8Array {
  const team = new TextEncoder().encode(teamId);
  const details = keys.detailsKey ?? new Uint8Array(0);
  const dist = keys.distribution ? encodeDistribution(keys.distribution) : new Uint8Array(0);
  const out = new Uint8Array(4 + team.length + details.length + dist.length);
  out[0] = TEAM_KEYS_PAYLOAD;
  new DataView(out.buffer).setUint16(1, team.length);
  out.set(team, 3);
  out[3 + team.length] = details.length ? 1 : 0;
  out.set(details, 4 + team.length);
  out.set(dist, 4 + team.length + details.length);
  return out;
}

function readTeamKeysPayload(payload: Uint8Array, expectedTeamId: string): TeamKeys {
  const kind = payload[0];
  if (payload.length < 3 || (kind !== SENDER_KEY_PAYLOAD && kind !== TEAM_KEYS_PAYLOAD)) throw new CryptoError('BAD_MESSAGE', 'expected team keys');
  const length = new DataView(payload.buffer, payload.byteOffset + 1, 2).getUint16(0);
  if (payload.length < 3 + length) throw new CryptoError('BAD_MESSAGE', 'truncated team keys payload');
  const teamId = new TextDecoder().decode(payload.subarray(3, 3 + length));
  if (teamId !== expectedTeamId) throw new CryptoError('BAD_MESSAGE', 'team keys name another team');
  let rest = payload.subarray(3 + length);
  if (kind === SENDER_KEY_PAYLOAD) return { distribution: decodeDistribution(rest) };
  const hasDetailsKey = rest[0];
  if (hasDetailsKey !== 0 && hasDetailsKey !== 1) throw new CryptoError('BAD_MESSAGE', 'bad team keys flags');
  rest = rest.subarray(1);
  const keys: TeamKeys = {};
  if (hasDetailsKey) {
    if (rest.length < TEAM_DETAILS_KEY_BYTES) throw new CryptoError('BAD_MESSAGE', 'truncated team details key');
    keys.detailsKey = rest.slice(0, TEAM_DETAILS_KEY_BYTES);
    rest = rest.subarray(TEAM_DETAILS_KEY_BYTES);
  }
  if (rest.length) keys.distribution = decodeDistribution(rest);
  // No key at all: a session repair (`repairSession`), whose work was done by opening the share.
  return keys;
}

/** Where a team details key is kept (in the `senderKeys` namespace, by the key id its statement names). */
function detailsKeyName(teamId: string, keyId: string): string {
  return `details\n${teamId}\n${keyId}`;
}

function ownKeyName(teamId: string): string {
  return `own\n${teamId}`;
}

function receivedKeyName(teamId: string, userId: string, deviceId: string, keyId: Uint8Array): string {
  return `recv\n${teamId}\n${userId}\n${deviceId}\n${toHex(keyId)}`;
}

/**
 * Associated data of a team message: who sent it, under which id, for which membership epoch.
 * @internal Exported for the attacker-side checks in the tests (what a removed member could try).
 */
export function groupAd(teamId: string, userId: string, deviceId: string, clientMessageId: string, epoch: string): Uint8Array {
  return new TextEncoder().encode(['curbside-group-v2', teamId, userId, deviceId, clientMessageId, epoch].join('\n'));
}
