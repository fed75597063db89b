/**
 * A care team's title and description keys: each version of the details is sealed under a new random
 * key, kept on this device before the statement naming it goes out, forgotten if the hub refuses that
 * statement, and handed to the members of the moment over the 1:1 sessions (a member removed earlier
 * never receives it). Opening the details needs the key their statement names.
 */
import { ErrorCode, teamRoleOf, type SealedTeamDetails, type TeamState } from '@curbside/shared';
import { CryptoError, TeamDetailsError, generateTeamDetailsKey, normalizeTeamDetails, openTeamDetails, sealTeamDetails, type TeamDetails } from '../crypto/index.js';
import { CurbsideError, isCurbsideError } from '../errors.js';
import { MAX_STALE_RETRIES, detailsKeyName, teamKeysPayload, type TeamRecord } from './team-records.js';
import type { TeamContext } from './types.js';

export class TeamDetailsKeys {
  constructor(private readonly core: TeamContext) {}

  async open(state: TeamState): Promise<TeamDetails | undefined> {
    const sealed = state.sealedDetails;
    if (!sealed) return undefined;
    const key = await this.core.store.get<Uint8Array>('senderKeys', detailsKeyName(state.teamId, sealed.keyId));
    if (!key) return undefined;
    try {
      return openTeamDetails(state.teamId, key, sealed);
    } catch (e) {
      this.core.logger.warn({ teamId: state.teamId, keyId: sealed.keyId, reason: e instanceof CryptoError ? e.detail : String(e) }, 'team details do not open under their key');
      return undefined;
    }
  }

  /** Seal details under a fresh key, kept on this device before the statement naming it goes out. */
  async sealNew(teamId: string, details: TeamDetails): Promise<SealedTeamDetails> {
    let clean: TeamDetails;
    try {
      clean = normalizeTeamDetails(details);
    } catch (e) {
      if (!(e instanceof TeamDetailsError)) throw e;
      throw new CurbsideError(e.problem === 'empty' ? ErrorCode.INVALID_PAYLOAD : ErrorCode.PAYLOAD_TOO_LARGE, e.message, { field: e.field });
    }
    const key = generateTeamDetailsKey();
    const sealed = sealTeamDetails(teamId, key, clean);
    await this.core.store.put('senderKeys', detailsKeyName(teamId, sealed.keyId), key);
    return sealed;
  }

  /** A key whose statement the hub refused opens nothing: it is not kept. */
  async forgetOnFailure<T>(teamId: string, sealed: SealedTeamDetails, submitted: Promise<T>): Promise<T> {
    try {
      return await submitted;
    } catch (e) {
      const current = (await this.core.store.get<TeamRecord>('teams', teamId))?.state.sealedDetails;
      if (current?.keyId !== sealed.keyId) await this.core.store.delete('senderKeys', detailsKeyName(teamId, sealed.keyId));
      throw e;
    }
  }

  /**
   * Hand the key of the team's current details to these members' devices (not this one) over the 1:1
   * sessions, in one envelope that names only them. Best effort: the team change already happened, and
   * every member device also passes the key on with its sender key (see `sendOnce`).
   */
  async share(teamId: string, userIds: string[]): Promise<void> {
    const me = this.core.self();
    try {
      const record = await this.core.store.get<TeamRecord>('teams', teamId);
      const sealed = record?.state.sealedDetails;
      if (!record || !sealed) return;
      const key = await this.core.store.get<Uint8Array>('senderKeys', detailsKeyName(teamId, sealed.keyId));
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
}
