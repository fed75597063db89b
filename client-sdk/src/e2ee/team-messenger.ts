import {
  ErrorCode,
  TeamRuleError,
  TeamStatementSchema,
  applyTeamStatement,
  teamRoleOf,
  canonicalJson,
  teamStatementMessage,
  type Envelope,
  type SendResult,
  type SignedStatement,
  type TeamRole,
  type TeamState,
  type TeamStatement,
} from '@curbside/shared';
import {
  CryptoError,
  ReceivedSenderKey,
  SenderKeyState,
  decodeDistribution,
  encodeDistribution,
  getSodium,
  parseGroupMessageHeader,
  sign,
  toHex,
  verifySignature,
} from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { putOp } from '../stores/index.js';
import type { SecureMessenger } from './secure-messenger.js';

/** First byte of a 1:1 payload that carries a sender key (message key packages start with 1). */
const SENDER_KEY_PAYLOAD = 2;
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
  /** Devices that have this key: this user's own, on the hub's ack; others, once they sent a receipt. */
  distributedTo: string[];
  /**
   * Other users' devices sent this key along with a message (by message id) that have not sent a
   * receipt yet. They get it again with the next message: a share damaged on its way must not cost
   * every later message.
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
 */
export class TeamMessenger {
  /** Tail of this device's sends per team (see `sendText`). */
  private readonly sending = new Map<string, Promise<unknown>>();

  constructor(private readonly core: SecureMessenger) {}

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

  async create(title: string, members: Array<{ userId: string; role?: 'admin' | 'member' }>): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    const list = [{ userId: me.userId, role: 'owner' as TeamRole }, ...members.filter((m) => m.userId !== me.userId).map((m) => ({ userId: m.userId, role: (m.role ?? 'member') as TeamRole }))];
    const teamId = globalThis.crypto.randomUUID();
    const statement: TeamStatement = { v: 1, teamId, index: 0, prev: '', op: 'create', actorUserId: me.userId, actorDeviceId: me.deviceId, issuedAt: Date.now(), title, members: list };
    return this.submit('team:create', statement);
  }

  async change(teamId: string, op: 'add' | 'remove' | 'role', userId: string, role?: TeamRole): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    for (let attempt = 0; ; attempt++) {
      const record = await this.store.get<TeamRecord>('teams', teamId);
      if (!record) throw new CurbsideError(ErrorCode.FORBIDDEN, 'Not a member of this care team', { conversationId: teamId });
      const statement: TeamStatement = {
        v: 1,
        teamId,
        index: record.state.index + 1,
        prev: record.state.head,
        op,
        actorUserId: me.userId,
        actorDeviceId: me.deviceId,
        issuedAt: Date.now(),
        userId,
        ...(role ? { role } : {}),
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
    const canonical = canonicalJson(statement);
    const signed: SignedStatement = { statement: canonical, signature: sign(keys.identity.privateKey, teamStatementMessage(canonical)) };
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
      const parsed = TeamStatementSchema.parse(JSON.parse(signed.statement));
      if (canonicalJson(parsed) !== signed.statement) return reject('not canonical');
      statement = parsed;
    } catch {
      return reject('malformed statement');
    }
    const record = await this.store.get<TeamRecord>('teams', statement.teamId);
    if (record && statement.index <= record.state.index) return; // already applied (our own, at ack time)
    if (statement.teamId !== envelope.conversationId || statement.actorUserId !== envelope.senderUserId || statement.actorDeviceId !== envelope.senderDeviceId) {
      return reject('statement does not match its envelope');
    }
    const actorKey = await this.identityKeyOf(statement.actorUserId, statement.actorDeviceId);
    if (!actorKey || !verifySignature(actorKey, teamStatementMessage(signed.statement), signed.signature)) return reject('signature does not verify under the actor device’s identity key');
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
    const listed = (await this.core.listDevices([userId])).find((d) => d.deviceId === deviceId);
    if (!listed) return undefined;
    return (await this.core.trust.observe(userId, deviceId, listed.identityKey)) === 'changed' ? undefined : listed.identityKey;
  }

  private async applyVerified(statement: TeamStatement, canonical: string, seq: number): Promise<void> {
    const me = this.core.self();
    const record = await this.store.get<TeamRecord>('teams', statement.teamId);
    if (record && statement.index <= record.state.index) return; // seen (our own, applied at ack time)
    const hash = toHex(getSodium().crypto_hash_sha256(new TextEncoder().encode(canonical)));
    const state = applyTeamStatement(record?.state, statement, hash);
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
    await this.store.put('teams', statement.teamId, next);
    this.core.events.teamChanged({
      teamId: state.teamId,
      title: state.title,
      members: { ...state.members },
      op: statement.op,
      ...(statement.userId ? { userId: statement.userId } : {}),
      actorUserId: statement.actorUserId,
      seq,
    });
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
    const payload = senderKeyPayload(teamId, distribution);
    let targets = (await this.core.listDevices(verified)).filter((d) => d.deviceId !== me.deviceId && !distributedTo.has(d.deviceId));
    const shares = new Map<string, Uint8Array>();
    for (let attempt = 0; ; attempt++) {
      await this.core.encryptShares(targets, payload, shares);
      const recipients = targets.filter((d) => shares.has(d.deviceId)).map((d) => ({ deviceId: d.deviceId, ciphertext: shares.get(d.deviceId)! }));
      try {
        const ack = await this.core.hub.sendEnvelope(teamId, recipients.length ? { body, recipients, partial: true, epoch } : { body, epoch }, { clientMessageId });
        await this.core.noteSent(teamId, ack.messageId, verified.filter((u) => u !== me.userId));
        if (recipients.length) {
          const mine = new Set(targets.filter((d) => d.userId === me.userId).map((d) => d.deviceId));
          const ours = recipients.map((r) => r.deviceId).filter((id) => mine.has(id));
          const theirs = recipients.map((r) => r.deviceId).filter((id) => !mine.has(id));
          await this.core.exclusive(async () => {
            const own = await this.store.get<OwnSenderKey>('senderKeys', ownKeyName(teamId));
            if (!own) return;
            const awaiting = Object.entries({ ...own.awaiting, ...(theirs.length ? { [ack.messageId]: theirs } : {}) }).slice(-MAX_AWAITING_MESSAGES);
            await this.store.put('senderKeys', ownKeyName(teamId), { ...own, distributedTo: [...new Set([...own.distributedTo, ...ours])], awaiting: Object.fromEntries(awaiting) });
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
   * @internal A member's device sent a receipt for these messages: the sender key shared with them
   * reached it, so it is not sent to that device again.
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
      if (envelope.ciphertext) await this.acceptSenderKey(envelope);
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
    } catch (e) {
      this.onFailure(envelope, e);
    }
  }

  private async acceptSenderKey(envelope: Envelope): Promise<void> {
    const distribution = readSenderKeyPayload(await this.core.decryptShare(envelope), envelope.conversationId);
    const name = receivedKeyName(envelope.conversationId, envelope.senderUserId, envelope.senderDeviceId, distribution.keyId);
    await this.core.exclusive(async () => {
      if (await this.store.get('senderKeys', name)) return; // a repeat: keep our chain position
      await this.store.put('senderKeys', name, ReceivedSenderKey.fromDistribution(distribution).serialize());
    });
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

/**
 * A sender key as sent over a 1:1 session: `2 ‖ u16 length ‖ team id ‖ distribution`. Naming the
 * team inside the authenticated payload stops a hub from filing one team's key under another.
 */
function senderKeyPayload(teamId: string, distribution: Parameters<typeof encodeDistribution>[0]): Uint8Array {
  const team = new TextEncoder().encode(teamId);
  const dist = encodeDistribution(distribution);
  const out = new Uint8Array(3 + team.length + dist.length);
  out[0] = SENDER_KEY_PAYLOAD;
  new DataView(out.buffer).setUint16(1, team.length);
  out.set(team, 3);
  out.set(dist, 3 + team.length);
  return out;
}

function readSenderKeyPayload(payload: Uint8Array, expectedTeamId: string): ReturnType<typeof decodeDistribution> {
  if (payload.length < 3 || payload[0] !== SENDER_KEY_PAYLOAD) throw new CryptoError('BAD_MESSAGE', 'expected a sender key');
  const length = new DataView(payload.buffer, payload.byteOffset + 1, 2).getUint16(0);
  if (payload.length < 3 + length) throw new CryptoError('BAD_MESSAGE', 'truncated sender key payload');
  const teamId = new TextDecoder().decode(payload.subarray(3, 3 + length));
  if (teamId !== expectedTeamId) throw new CryptoError('BAD_MESSAGE', 'sender key names another team');
  return decodeDistribution(payload.subarray(3 + length));
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
