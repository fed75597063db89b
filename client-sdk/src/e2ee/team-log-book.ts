/**
 * A care team's membership log on this device: statements this device signs and submits, and those
 * the hub sequences, each verified (canonical form, the actor device's key from the trust book or the
 * user's signed device list, its signature) and applied with the shared rules before anything trusts
 * it. The record kept per team (members since when, past members, epochs) lets messages be judged by
 * the membership at their own seq.
 */
import { ErrorCode, TeamRuleError, applyTeamStatement, teamRoleOf, type Envelope, type SignedStatement, type TeamState, type TeamStatement } from '@curbside/shared';
import { isCryptoError, parseTeamStatement, signStatement, statementHash, verifySignedStatement } from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { deleteOp, putOp } from '../stores/index.js';
import { MAX_EPOCHS, MAX_PAST_MEMBERS, detailsKeyName, type TeamRecord } from './team-records.js';
import type { TeamDetailsKeys } from './team-details-keys.js';
import type { TeamContext } from './types.js';

export class TeamLogBook {
  constructor(
    private readonly core: TeamContext,
    private readonly detailsKeys: TeamDetailsKeys,
  ) {}

  async change(teamId: string, change: Pick<TeamStatement, 'op' | 'userId' | 'role' | 'sealedDetails' | 'shifts' | 'escalation' | 'messageId'>): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    for (let attempt = 0; ; attempt++) {
      const record = await this.core.store.get<TeamRecord>('teams', teamId);
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
        ...(change.shifts !== undefined ? { shifts: change.shifts } : {}),
        ...(change.escalation !== undefined ? { escalation: change.escalation } : {}),
        ...(change.messageId !== undefined ? { messageId: change.messageId } : {}),
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

  /**
   * Join a consult pool from its verified log (`base`): one try per head; a CONFLICT (someone changed
   * the pool first) is the caller's to retry with the log replayed again.
   */
  async join(poolId: string, base: TeamState): Promise<{ teamId: string; seq: number }> {
    const me = this.core.self();
    const statement: TeamStatement = { v: 1, teamId: poolId, index: base.index + 1, prev: base.head, op: 'join', actorUserId: me.userId, actorDeviceId: me.deviceId, issuedAt: Date.now() };
    return this.submit('team:change', statement, base);
  }

  async submit(event: 'team:create' | 'team:change', statement: TeamStatement, base?: TeamState): Promise<{ teamId: string; seq: number }> {
    const keys = await this.core.localKeys();
    const signed = signStatement(statement, keys.identity.privateKey);
    const canonical = signed.statement;
    const { seq } = await this.core.hub.teamRequest(event, { signed });
    // The hub does not echo our own statement back to this device: apply it here, in order.
    try {
      await this.core.exclusive(() => this.applyVerified(statement, canonical, seq, base));
    } catch (e) {
      // The SDK throws one error class: a broken team rule is INVALID_STATEMENT, like the hub says it.
      if (e instanceof TeamRuleError) throw new CurbsideError(ErrorCode.INVALID_STATEMENT, e.message, { teamId: statement.teamId });
      throw e;
    }
    return { teamId: statement.teamId, seq };
  }

  /** Verify and apply a statement delivered in the sequence. */
  async receive(envelope: Envelope): Promise<void> {
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
    const record = await this.core.store.get<TeamRecord>('teams', statement.teamId);
    if (record && statement.index <= record.state.index) return; // already applied (our own, at ack time)
    if (statement.teamId !== envelope.conversationId || statement.actorUserId !== envelope.senderUserId || statement.actorDeviceId !== envelope.senderDeviceId) {
      return reject('statement does not match its envelope');
    }
    const actorKey = await statementSignerKey(this.core, statement.actorUserId, statement.actorDeviceId);
    if (!actorKey || !verifySignedStatement(signed, actorKey)) return reject('signature does not verify under the actor device’s identity key');
    try {
      await this.core.exclusive(() => this.applyVerified(statement, signed.statement, envelope.seq));
    } catch (e) {
      if (e instanceof TeamRuleError) return reject(e.message);
      throw e;
    }
  }

  /** `base`: a log verified from the hub's `pool:log` that this device holds no record of (it is joining). */
  private async applyVerified(statement: TeamStatement, canonical: string, seq: number, base?: TeamState): Promise<void> {
    const me = this.core.self();
    const record = await this.core.store.get<TeamRecord>('teams', statement.teamId);
    if (record && statement.index <= record.state.index) return; // seen (our own, applied at ack time)
    const state = applyTeamStatement(record?.state ?? base, statement, statementHash(canonical));
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
    await this.core.store.transaction([
      putOp('teams', statement.teamId, next),
      ...(detailsChanged && previousKeyId ? [deleteOp('senderKeys', detailsKeyName(statement.teamId, previousKeyId))] : []),
    ]);
    const details = await this.detailsKeys.open(state);
    if (state.oncall) this.core.roleChanged(state.teamId, record?.state, state, statement.issuedAt);
    this.core.events.teamChanged({
      teamId: state.teamId,
      ...(details ? { title: details.title } : {}),
      members: { ...state.members },
      op: statement.op,
      ...(statement.userId && statement.op !== 'details' ? { userId: statement.userId } : {}),
      ...(statement.op === 'join' ? { userId: statement.actorUserId } : {}),
      ...(statement.op === 'hide' && statement.messageId ? { messageId: statement.messageId } : {}),
      actorUserId: statement.actorUserId,
      seq,
    });
    if (detailsChanged && details) this.core.events.teamDetails({ teamId: state.teamId, ...details });
  }
}

/**
 * A team's log as the hub hands it out (`role:log`, `pool:log`), verified statement by statement on top
 * of `base` (undefined: from the start): canonical form, the actor device's listed key, its signature,
 * and the shared rules.
 * @throws CurbsideError INVALID_STATEMENT (malformed, or breaks a rule), BAD_SIGNATURE
 */
export async function replayLog(core: TeamContext, teamId: string, base: TeamState | undefined, statements: readonly SignedStatement[]): Promise<TeamState | undefined> {
  await learnSignerKeys(core, statements);
  let state = base;
  for (const signed of statements) {
    let statement: TeamStatement;
    try {
      statement = parseTeamStatement(signed.statement);
    } catch (e) {
      throw new CurbsideError(ErrorCode.INVALID_STATEMENT, `The hub's log of ${teamId} holds a malformed statement: ${isCryptoError(e) ? e.detail : 'unreadable'}`, { teamId });
    }
    if (statement.teamId !== teamId) throw new CurbsideError(ErrorCode.INVALID_STATEMENT, `The hub's log of ${teamId} holds another team's statement`, { teamId });
    const key = await statementSignerKey(core, statement.actorUserId, statement.actorDeviceId);
    if (!key || !verifySignedStatement(signed, key)) {
      throw new CurbsideError(ErrorCode.BAD_SIGNATURE, `A statement of ${teamId} does not verify under its device's listed key`, { teamId, index: statement.index });
    }
    try {
      state = applyTeamStatement(state, statement, statementHash(signed.statement));
    } catch (e) {
      if (e instanceof TeamRuleError) throw new CurbsideError(ErrorCode.INVALID_STATEMENT, e.message, { teamId });
      throw e;
    }
  }
  return state;
}

/**
 * Before replaying a long log (a pool hundreds joined): the signing devices this device has no trust
 * entry for, learned from their users' signed device lists in one batch, as `statementSignerKey` would
 * learn each (first use). Statements that do not parse are left to the replay to report.
 */
async function learnSignerKeys(core: TeamContext, statements: readonly SignedStatement[]): Promise<void> {
  const actors = new Map<string, Set<string>>();
  for (const signed of statements) {
    try {
      const s = parseTeamStatement(signed.statement);
      if (!actors.has(s.actorUserId)) actors.set(s.actorUserId, new Set());
      actors.get(s.actorUserId)!.add(s.actorDeviceId);
    } catch {
      // reported by the replay, in order
    }
  }
  const unknown: string[] = [];
  for (const [userId, devices] of actors) {
    for (const deviceId of devices) {
      if (!(await core.trust.get(userId, deviceId))) {
        unknown.push(userId);
        break;
      }
    }
  }
  if (unknown.length < 2) return;
  for (const d of await core.listDevices(unknown)) {
    if (actors.get(d.userId)?.has(d.deviceId) && !(await core.trust.get(d.userId, d.deviceId))) await core.trust.observe(d.userId, d.deviceId, d.identityKey);
  }
}

/**
 * The identity key a statement's signing device is trusted with: from the trust book, else learned
 * (first use) from the user's current signed device list, else from the version that listed the device
 * when it signed (a device unlinked since still signed its earlier statements). Undefined when the key
 * changed and was not accepted, or no list names the device.
 */
export async function statementSignerKey(core: TeamContext, userId: string, deviceId: string): Promise<Uint8Array | undefined> {
  const known = await core.trust.get(userId, deviceId);
  if (known) return known.status === 'changed' ? undefined : known.identityKey;
  const listed = (await core.listDevices([userId])).find((d) => d.deviceId === deviceId)?.identityKey ?? (await core.deviceLists.formerKeyOf(userId, deviceId));
  if (!listed) return undefined;
  return (await core.trust.observe(userId, deviceId, listed)) === 'changed' ? undefined : listed;
}
