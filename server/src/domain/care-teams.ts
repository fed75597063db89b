import {
  ErrorCode,
  Limits,
  TeamRuleError,
  TeamStatementSchema,
  applyTeamStatement,
  canonicalJson,
  teamRoleOf,
  teamStatementMessage,
  type Conversation,
  type SignedStatement,
  type TeamState,
  type TeamStatement,
} from '@curbside/shared';
import { HubError } from '../errors.js';
import { ed25519Verify } from './ed25519.js';
import type { Storage, StoredEnvelope } from '../ports/storage.js';
import { DeviceDirectory } from './device-directory.js';
import { statementHash } from './team-epoch.js';
import type { Caller } from './message-relay.js';

/** What the gateway pushes after a statement was applied. */
export interface TeamOutcome {
  conversation: Conversation;
  envelope: StoredEnvelope;
  /** Members after the change, plus anyone it removed (they must learn of it). */
  notifyUserIds: string[];
  /** The team's state after the change. */
  state?: TeamState;
}


/**
 * Care-team membership on the hub: every change is a statement signed by the acting device. The
 * hub checks signature, chain and rules (the same rules every client replays, from shared), applies
 * the change, and puts the statement in the conversation's sequence so clients can audit it.
 */
export class CareTeams {
  constructor(
    private readonly storage: Storage,
    private readonly directory: DeviceDirectory,
    private readonly now: () => number = Date.now,
    /**
     * Whether a clinician's device may join a consult pool (a `join` statement): it must hold a
     * verified credential (Credentials.holdsValid). Without it, nobody joins a pool.
     */
    private readonly credentialed: (orgId: string, userIds: readonly string[], deviceId?: string) => Promise<Set<string>> = async () => new Set(),
  ) {}

  async create(caller: Caller, signed: SignedStatement): Promise<TeamOutcome> {
    const statement = await this.verified(caller, signed);
    if (statement.op !== 'create') throw invalid('team:create takes a create statement');
    const state = this.apply(undefined, statement, signed);
    // A pool's owner moderates it: only a credentialed clinician may open one.
    if (state.pool) {
      if (!(await this.credentialed(caller.orgId, [caller.userId], caller.deviceId)).has(caller.userId)) {
        throw new HubError(ErrorCode.FORBIDDEN, 'Opening a consult pool takes a verified credential for this device (from your credentialing office)', { reason: 'credential-required' });
      }
      await this.requireCredentialed(caller.orgId, Object.keys(state.members).filter((u) => u !== caller.userId));
    }
    // One role per name in an organisation: a page meant for "Cardiology on-call" must not find a look-alike.
    const name = state.oncall?.name.toLowerCase();
    if (name !== undefined && (await this.storage.listRoles(caller.orgId)).some((r) => r.oncall?.name.toLowerCase() === name)) {
      throw new HubError(ErrorCode.CONFLICT, 'An on-call role with this name exists already', { roleName: state.oncall!.name });
    }
    const created = await this.storage.createTeam({ orgId: caller.orgId, state, createdBy: caller.userId, now: this.now() });
    if (created.status === 'exists') throw new HubError(ErrorCode.CONFLICT, 'A conversation with this team id exists already; pick a new id');
    const envelope = await this.record(caller, statement, signed);
    return { conversation: { ...created.conversation, lastSeq: envelope.seq }, envelope, notifyUserIds: Object.keys(state.members) };
  }

  async change(caller: Caller, signed: SignedStatement): Promise<TeamOutcome> {
    const statement = await this.verified(caller, signed);
    if (statement.op === 'create') throw invalid('team:change takes a statement other than create');
    // A hand-off counts from its time: one dated far from now would take (or keep) the role out of turn.
    if (statement.op === 'hold' && Math.abs(statement.issuedAt - this.now()) > Limits.MAX_HOLD_CLOCK_SKEW_MS) {
      throw invalid('a hold statement must be dated now (check this device’s clock)', { issuedAt: statement.issuedAt });
    }
    const state = await this.storage.getTeamState(caller.orgId, statement.teamId);
    // A clinician joins a consult pool themselves; everything else is a member's.
    const joining = statement.op === 'join' && state?.pool !== undefined;
    if (!state || (!joining && !teamRoleOf(state.members, caller.userId))) throw new HubError(ErrorCode.FORBIDDEN, 'Not a member of this conversation', { conversationId: statement.teamId });
    if (joining && !(await this.credentialed(caller.orgId, [caller.userId], caller.deviceId)).has(caller.userId)) {
      throw new HubError(ErrorCode.FORBIDDEN, 'Joining a consult pool takes a verified credential for this device (from your credentialing office)', { conversationId: statement.teamId, reason: 'credential-required' });
    }
    const conflict = async () => {
      // The change that won may be this very statement, retried after its tag bump failed: bump again.
      await this.directory.conversationChanged(caller.orgId, statement.teamId);
      return new HubError(ErrorCode.CONFLICT, 'Another membership change was applied first; replay the log and sign again', { index: state.index + 1 });
    };
    if (statement.index <= state.index) throw await conflict();
    if (state.pool && statement.op === 'add' && statement.userId !== undefined) await this.requireCredentialed(caller.orgId, [statement.userId]);
    const next = this.apply(state, statement, signed);
    if ((await this.storage.advanceTeam(caller.orgId, statement.teamId, state.index, next)) === 'conflict') throw await conflict();
    // Stored: every node's cached copy of the team goes before anyone hears of the change.
    await this.directory.conversationChanged(caller.orgId, statement.teamId);
    const envelope = await this.record(caller, statement, signed);
    const conversation = await this.storage.getConversation(caller.orgId, statement.teamId);
    const removed = statement.op === 'remove' && statement.userId ? [statement.userId] : [];
    return { conversation: conversation!, envelope, notifyUserIds: [...new Set([...Object.keys(next.members), ...removed])], state: next };
  }

  /** Members a moderator enrols in a consult pool must each hold a verified credential (on any device). */
  private async requireCredentialed(orgId: string, userIds: string[]): Promise<void> {
    if (userIds.length === 0) return;
    const held = await this.credentialed(orgId, userIds);
    const lacking = userIds.filter((u) => !held.has(u));
    if (lacking.length) throw new HubError(ErrorCode.FORBIDDEN, 'A consult pool’s members each hold a verified credential; these do not', { userIds: lacking.slice(0, 20), reason: 'credential-required' });
  }

  /** Parse, require canonical form, require the caller to be the actor, check the actor device's signature. */
  private async verified(caller: Caller, signed: SignedStatement): Promise<TeamStatement> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(signed.statement);
    } catch {
      throw invalid('statement is not JSON');
    }
    // Said plainly, since it is the one mistake an older client makes: the hub must never store a title it can read.
    if (typeof parsed === 'object' && parsed !== null && Object.hasOwn(parsed, 'title')) {
      throw invalid('a care team title travels sealed (sealedDetails), never in the clear', { field: 'title' });
    }
    const result = TeamStatementSchema.safeParse(parsed);
    if (!result.success) throw invalid('statement does not match the schema', { issues: result.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) });
    if (canonicalJson(result.data) !== signed.statement) throw invalid('statement is not in canonical form');
    const s = result.data;
    if (s.actorUserId !== caller.userId || s.actorDeviceId !== caller.deviceId) throw invalid('a device signs only its own statements');
    // The signing device must be in its user's signed device list (when the user has one): a device
    // inserted into the database signs nothing the hub accepts.
    const { devices, signedUsers } = await this.directory.usersDevices(caller.orgId, [caller.userId]);
    const device = devices.find((d) => d.deviceId === caller.deviceId);
    if (!device && signedUsers.has(caller.userId)) {
      throw new HubError(ErrorCode.DEVICE_NOT_LINKED, "This device is not in its user's signed device list: it cannot sign team statements");
    }
    if (!device) throw invalid('publish this device’s keys before signing team statements');
    if (!signatureValid(device.identityKey, signed)) throw new HubError(ErrorCode.BAD_SIGNATURE, 'The statement signature does not verify under this device’s identity key');
    return s;
  }

  private apply(state: TeamState | undefined, s: TeamStatement, signed: SignedStatement): TeamState {
    try {
      return applyTeamStatement(state, s, statementHash(signed.statement));
    } catch (e) {
      if (e instanceof TeamRuleError) throw invalid(e.message);
      throw e;
    }
  }

  /** The statement goes into the conversation's sequence, where every member's SDK audits it. */
  private async record(caller: Caller, s: TeamStatement, signed: SignedStatement): Promise<StoredEnvelope> {
    const appended = await this.storage.appendEnvelope({
      orgId: caller.orgId,
      conversationId: s.teamId,
      senderUserId: caller.userId,
      senderDeviceId: caller.deviceId,
      clientMessageId: `team:${s.teamId}:${s.index}`,
      membership: signed,
      now: this.now(),
    });
    if (appended.status === 'conflict') throw new HubError(ErrorCode.CONFLICT, 'statement id already used');
    return appended.envelope;
  }
}

function signatureValid(identityKey: Uint8Array, signed: SignedStatement): boolean {
  return ed25519Verify(identityKey, teamStatementMessage(signed.statement), signed.signature);
}

function invalid(message: string, details?: Record<string, unknown>): HubError {
  return new HubError(ErrorCode.INVALID_STATEMENT, message, details);
}
