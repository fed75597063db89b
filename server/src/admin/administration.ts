import type { Credentials } from '../domain/credentials.js';
import type { Pseudonyms } from '../domain/pseudonyms.js';
import {
  ErrorCode,
  type AdminAlertSettings,
  type AdminAlertSettingsRequest,
  type AdminKeysNode,
  type AdminKeysResponse,
  type AdminTeam,
  type AdminTeamsResponse,
  type AdminUsersResponse,
  type AdminUserProfileRequest,
  type AdminUserProfileResult,
  type Conversation,
  type TeamState,
} from '@curbside/shared';
import { HubError, unavailableAfter } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../ports/storage.js';
import type { AuditEntry, AuditLog } from '../audit/port.js';
import { verifyAuditLog, type AuditVerdict } from '../audit/verify.js';
import type { HubSecurity } from '../security/hub-security.js';
import type { KeyRing } from '../auth/key-ring.js';
import type { HubServer } from '../realtime/sockets.js';
import type { AlertsConfig } from '../alerts/config.js';

/** How long a key reload waits for the other nodes' answers. */
const RELOAD_WAIT_MS = 5_000;
const DEFAULT_PAGE = 100;
const AUDIT_PAGE = 1000;

export interface AdministrationDeps {
  storage: Storage;
  security: HubSecurity;
  audit: AuditLog;
  keys: KeyRing;
  logger: Logger;
  /** Whether other nodes share this one's Redis (fan-out); without it a reload is this node's only. */
  clustered: boolean;
  /** The deployment's alert settings (ALERT_*), which an organisation's own override. */
  alertDefaults: AlertsConfig;
  /** Verified credentials: the credentialing office's key, attestations and revocations. */
  credentials: Credentials;
  /** Pseudonymous posting: the office's token keys, revocations, pending requests and blind signatures. */
  pseudonyms: Pseudonyms;
}

/**
 * The operator actions behind the admin HTTP API (`http/admin.ts`) and so the `curbside-admin` CLI.
 * Reads give metadata only (ids, roles, epochs, counts, times): never a title, a message or a key.
 * The router writes the audit entry of every call.
 */
export class Administration {
  /** The socket.io server: a key reload reaches the other nodes through its Redis adapter. */
  private io: HubServer | undefined;

  constructor(private readonly deps: AdministrationDeps) {}

  /** The credentialing office's signed documents (checked before they are stored). */
  get credentials(): Credentials {
    return this.deps.credentials;
  }

  /** The credentialing office's token keys and blind signatures (checked before they are stored). */
  get pseudonyms(): Pseudonyms {
    return this.deps.pseudonyms;
  }

  /** Drops an organisation's cached alert settings on this node (set once the alerts service exists). */
  private forgetAlertSettings: ((orgId: string) => void) | undefined;

  /** Once the alerts service exists (after the socket.io server). */
  attachAlerts(alerts: { forgetSettings(orgId: string): void }): void {
    this.forgetAlertSettings = (orgId) => alerts.forgetSettings(orgId);
  }

  /** The organisation's alert settings as every node will use them. */
  async alertSettings(orgId: string): Promise<AdminAlertSettings> {
    const own = (await this.deps.storage.getAlertSettings(orgId)) ?? {};
    const d = this.deps.alertDefaults;
    const set = (['urgentMs', 'emergentMs', 'maxRepeats'] as const).filter((k) => own[k] !== undefined);
    return { orgId, urgentMs: own.urgentMs ?? d.repeatMs.urgent, emergentMs: own.emergentMs ?? d.repeatMs.emergent, maxRepeats: own.maxRepeats ?? d.maxRepeats, set };
  }

  /**
   * Change the organisation's alert settings: given fields are set, `null` hands one back to the
   * default, the others stay. An emergent interval longer than the urgent one, as they would then be
   * in force, is refused and nothing changes.
   */
  async setAlertSettings(b: AdminAlertSettingsRequest): Promise<AdminAlertSettings> {
    const d = this.deps.alertDefaults;
    const own = (await this.deps.storage.getAlertSettings(b.orgId)) ?? {};
    const pick = (given: number | null | undefined, current: number | undefined) => (given === null ? undefined : (given ?? current));
    const next = { urgentMs: pick(b.urgentMs, own.urgentMs), emergentMs: pick(b.emergentMs, own.emergentMs), maxRepeats: pick(b.maxRepeats, own.maxRepeats) };
    if ((next.emergentMs ?? d.repeatMs.emergent) > (next.urgentMs ?? d.repeatMs.urgent)) {
      throw new HubError(ErrorCode.INVALID_PAYLOAD, 'An emergent message must be re-notified at least as often as an urgent one (emergentMs ≤ urgentMs, defaults included)', { orgId: b.orgId });
    }
    await this.deps.storage.setAlertSettings(b.orgId, next, Date.now());
    this.forgetAlertSettings?.(b.orgId);
    return this.alertSettings(b.orgId);
  }

  /** Once the socket.io server exists (it is built after the HTTP app). */
  attach(io: HubServer): void {
    this.io = io;
    // Another node's operator rotated the keys: re-read the file here too and answer what this node accepts.
    io.on('admin:keys-reload', (done) => {
      void this.deps.keys.reloadReporting().then(done);
    });
  }

  /**
   * Set a user's directory profile: a value sets the operator's field, `''` clears it (the token's
   * shows again), absent leaves it. Answers the profile clients now see.
   */
  async setUserProfile(b: AdminUserProfileRequest): Promise<AdminUserProfileResult> {
    const clear = (v: string | undefined) => (v === '' ? null : v);
    const change = { displayName: clear(b.displayName), role: clear(b.role), department: clear(b.department) };
    return { orgId: b.orgId, profile: await this.deps.storage.setAdminProfile({ orgId: b.orgId, userId: b.userId, change, now: Date.now() }) };
  }

  /** The organisation's users by id, each with their devices and whether their signed list names them. */
  async listUsers(q: { orgId: string; after?: string | undefined; limit?: number | undefined }): Promise<AdminUsersResponse> {
    const limit = q.limit ?? DEFAULT_PAGE;
    const page = await this.deps.storage.listUsers(q.orgId, { after: q.after, limit: limit + 1 });
    const users = page.slice(0, limit);
    const heads = users.length ? await this.deps.storage.deviceListHeads(q.orgId, users.map((u) => u.userId)) : [];
    const listed = new Map(heads.map((h) => [h.userId, new Set(h.deviceIds)]));
    const out = await Promise.all(
      users.map(async (u) => {
        const devices = await this.deps.storage.listOwnDevices(q.orgId, u.userId);
        return {
          userId: u.userId,
          createdAt: u.createdAt,
          lastSeenAt: u.lastSeenAt,
          ...(u.disabledAt !== undefined ? { disabledAt: u.disabledAt } : {}),
          devices: devices.map((d) => ({
            deviceId: d.deviceId,
            createdAt: d.createdAt,
            lastSeenAt: d.lastSeenAt,
            hasKeys: d.hasKeys,
            listed: (listed.get(u.userId)?.has(d.deviceId) ?? false) && d.revokedAt === undefined,
            ...(d.revokedAt !== undefined ? { revokedAt: d.revokedAt } : {}),
          })),
        };
      }),
    );
    return { orgId: q.orgId, users: out, ...(page.length > limit ? { next: users[users.length - 1]!.userId } : {}) };
  }

  /** One care team (`teamId`), or the care teams a user is in (`userId`): membership metadata only. */
  async teams(q: { orgId: string; teamId?: string | undefined; userId?: string | undefined }): Promise<AdminTeamsResponse> {
    const { storage } = this.deps;
    let conversations: Conversation[];
    if (q.teamId !== undefined) {
      const c = await storage.getConversation(q.orgId, q.teamId);
      if (!c?.signed) throw new HubError(ErrorCode.NOT_FOUND, 'No such care team in this organisation', { teamId: q.teamId });
      conversations = [c];
    } else {
      conversations = (await storage.listConversationsForUser(q.orgId, q.userId!)).filter((c) => c.signed);
    }
    const teams = await Promise.all(conversations.map(async (c) => teamMetadata(c, await storage.getTeamState(q.orgId, c.id))));
    return { orgId: q.orgId, teams };
  }

  /** Every entry of one chain (or of every chain), in index order, after what was recorded so far is stored. */
  async *auditEntries(chain?: string): AsyncGenerator<AuditEntry> {
    const { audit } = this.deps;
    await audit.flush();
    const chains = chain !== undefined ? [chain] : (await audit.chains()).sort();
    for (const name of chains) {
      let after = -1;
      for (;;) {
        const page = await audit.entries(name, after, AUDIT_PAGE);
        for (const e of page) yield e;
        if (page.length < AUDIT_PAGE) break;
        after = page[page.length - 1]!.index;
      }
    }
  }

  /** The hash chains checked from their first entry (`verifyAuditLog`). */
  async verifyAudit(): Promise<AuditVerdict> {
    await this.deps.audit.flush();
    return verifyAuditLog(this.deps.audit);
  }

  /** The verification keys this node accepts. */
  keys(): AdminKeysResponse {
    return { nodes: [this.deps.keys.describe()] };
  }

  /**
   * Rotate: this node re-reads JWT_PUBLIC_KEY_FILE (a bad file is refused, nothing changes anywhere),
   * then asks every other node to do the same and gathers what each accepts now.
   */
  async reloadKeys(): Promise<AdminKeysResponse> {
    const here = await this.deps.keys.reload();
    const nodes: AdminKeysNode[] = [here];
    if (this.deps.clustered && this.io) {
      try {
        // The Redis adapter rejects once its request timeout (5 s by default) passes without every node's answer.
        nodes.push(...(await unavailableAfter(this.io.serverSideEmitWithAck('admin:keys-reload'), RELOAD_WAIT_MS + 1_000, 'other nodes did not answer')));
      } catch (err) {
        this.deps.logger.warn({ err }, 'key reload: not every node answered');
        nodes.push({ node: '(other nodes)', source: here.source, algorithm: here.algorithm, fingerprints: [], error: `not every node answered within ${RELOAD_WAIT_MS} ms; run the reload again` });
      }
    }
    return { nodes };
  }
}

function teamMetadata(c: Conversation, state: TeamState | undefined): AdminTeam {
  const members = Object.entries(state?.members ?? c.roles ?? {})
    .map(([userId, role]) => ({ userId, role }))
    .sort((a, b) => (a.userId < b.userId ? -1 : 1));
  return {
    teamId: c.id,
    createdBy: c.createdBy,
    createdAt: c.createdAt,
    ...(c.epoch !== undefined ? { epoch: c.epoch } : state ? { epoch: state.head } : {}),
    statements: state ? state.index + 1 : 0,
    lastSeq: c.lastSeq,
    members,
    counts: {
      members: members.length,
      owners: members.filter((m) => m.role === 'owner').length,
      admins: members.filter((m) => m.role === 'admin').length,
    },
  };
}
