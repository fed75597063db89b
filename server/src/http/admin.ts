/**
 * The operator API: one handler per action, each behind `Authorization: Bearer <ADMIN_TOKEN>`, its
 * input (body or query) checked by its schema from `@curbside/shared` (admin.ts), its answer JSON (204
 * when there is none) and every error typed. Every call, answered or refused, writes an audit entry:
 * who (the operator named by `by` or the X-Curbside-Operator header, else `admin`), what
 * (`admin:<action>`), the target and the outcome.
 */
import { once } from 'node:events';
import { timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import {
  ADMIN_OPERATOR_HEADER,
  AdminAuditExportQuerySchema,
  AdminCredentialKeyRequestSchema,
  AdminCredentialsQuerySchema,
  AdminSignedCredentialRequestSchema,
  AdminPseudonymAnswerRequestSchema,
  AdminPseudonymDocumentRequestSchema,
  AdminPseudonymRequestsQuerySchema,
  AdminDeviceRestoreRequestSchema,
  AdminDeviceRevokeRequestSchema,
  AdminKeysReloadRequestSchema,
  AdminPath,
  AdminTeamsQuerySchema,
  AdminTokenRevokeRequestSchema,
  AdminUserActionSchema,
  AdminUserProfileRequestSchema,
  PROFILE_FIELDS,
  AdminAlertSettingsQuerySchema,
  AdminAlertSettingsRequestSchema,
  AdminUsersQuerySchema,
  ErrorCode,
  HTTP_STATUS_BY_CODE,
  parsePayload,
  type WireError,
} from '@curbside/shared';
import { HubError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuditEvent } from '../audit/port.js';
import type { Administration } from '../admin/administration.js';
import type { HubSecurity } from '../security/hub-security.js';

export interface AdminRouterOptions {
  /** Unset: every operator endpoint answers AUTH_REQUIRED. */
  adminToken: string | undefined;
  administration: Administration;
  security: HubSecurity;
  logger: Logger;
}

/** What one action's audit entry names besides who and what. */
type Target = Pick<AuditEvent, 'orgId' | 'targetUserIds' | 'targetDeviceId' | 'conversationId' | 'note'>;

interface Ctx {
  /** The operator, for the audit log. */
  by: string;
}

const OPERATOR = /^[\x20-\x7e]{1,200}$/;

export function adminRouter(options: AdminRouterOptions): Router {
  const router = Router();
  const { administration: admin, security } = options;

  const audit = (req: Request, name: string, outcome: string, by: string | undefined, target: Target) =>
    security.record({ action: `admin:${name}`, outcome, userId: by ?? 'admin', ip: req.ip, ...target });

  /**
   * One action: authenticate, validate, run, audit. `target` says what the entry names (from the
   * validated input, and the answer when there is one).
   */
  const route = <S extends z.ZodType, A>(
    method: 'get' | 'post',
    path: string,
    name: string,
    schema: S,
    run: (input: z.output<S>, ctx: Ctx, res: Response) => Promise<A>,
    target: (input: z.output<S>, answer: A | undefined) => Target,
    status: (answer: A) => number = () => 200,
  ) =>
    router[method](path, async (req, res) => {
      if (!isAdmin(req, options.adminToken)) {
        audit(req, name, ErrorCode.AUTH_REQUIRED, undefined, {});
        return sendError(res, { code: ErrorCode.AUTH_REQUIRED, message: 'Operator endpoint: send Authorization: Bearer <ADMIN_TOKEN>' });
      }
      const header = req.get(ADMIN_OPERATOR_HEADER);
      if (header !== undefined && !OPERATOR.test(header)) {
        audit(req, name, ErrorCode.INVALID_PAYLOAD, undefined, {});
        return sendError(res, { code: ErrorCode.INVALID_PAYLOAD, message: `${ADMIN_OPERATOR_HEADER} must be 1 to 200 printable ASCII characters` });
      }
      const parsed = parsePayload(schema, method === 'get' ? { ...req.query } : (req.body ?? {}));
      if (!parsed.ok) {
        audit(req, name, parsed.error.code, header, {});
        return sendError(res, parsed.error);
      }
      const input = parsed.value;
      const by = (input as { by?: string }).by ?? header ?? 'admin';
      let answer: A;
      try {
        answer = await run(input, { by }, res);
      } catch (err) {
        const wire = toWireError(err);
        if (wire.code === ErrorCode.INTERNAL) options.logger.error({ err, action: name }, 'admin action failed');
        audit(req, name, wire.code, by, target(input, undefined));
        if (res.headersSent) return void res.destroy();
        return sendError(res, wire);
      }
      audit(req, name, 'ok', by, target(input, answer));
      if (res.headersSent) return; // streamed
      if (answer === undefined) res.status(204).end();
      else res.status(status(answer)).json(answer);
    });

  route('get', AdminPath.USERS, 'list-users', AdminUsersQuerySchema, (q) => admin.listUsers(q), (q, a) => ({ orgId: q.orgId, note: a ? `${a.users.length} users` : undefined }));
  route(
    'post',
    AdminPath.USER_DISABLE,
    'disable-user',
    AdminUserActionSchema,
    async (b) => ({ orgId: b.orgId, userId: b.userId, ...(await security.disableUser(b)) }),
    (b, a) => ({ orgId: b.orgId, targetUserIds: [b.userId], note: a?.status }),
  );
  route(
    'post',
    AdminPath.USER_PROFILE,
    'set-user-profile',
    AdminUserProfileRequestSchema,
    (b) => admin.setUserProfile(b),
    (b) => ({ orgId: b.orgId, targetUserIds: [b.userId], note: PROFILE_FIELDS.filter((f) => b[f] !== undefined).join(',') }),
  );
  route(
    'post',
    AdminPath.USER_ENABLE,
    'enable-user',
    AdminUserActionSchema,
    async (b) => ({ orgId: b.orgId, userId: b.userId, ...(await security.enableUser(b)) }),
    (b, a) => ({ orgId: b.orgId, targetUserIds: [b.userId], note: a?.status }),
  );
  route(
    'post',
    AdminPath.DEVICE_REVOKE,
    'revoke-device',
    AdminDeviceRevokeRequestSchema,
    (b) => security.adminRevokeDevice(b),
    (b, a) => ({ orgId: b.orgId, targetUserIds: [b.userId], targetDeviceId: b.deviceId, note: a ? (a.revoked ? 'revoked' : 'already') : undefined }),
  );
  route(
    'post',
    AdminPath.DEVICE_RESTORE,
    'restore-device',
    AdminDeviceRestoreRequestSchema,
    (b) => security.restoreDevice(b),
    (b, a) => ({ orgId: b.orgId, targetDeviceId: b.deviceId, note: a ? (a.restored ? 'restored' : 'not_revoked') : undefined }),
  );
  route(
    'post',
    AdminPath.TOKEN_REVOKE,
    'revoke-token',
    AdminTokenRevokeRequestSchema,
    (b) => security.revokeToken(b),
    (b) => ({ orgId: b.orgId, note: 'token revoked' }),
  );
  route('get', AdminPath.TEAMS, 'show-teams', AdminTeamsQuerySchema, (q) => admin.teams(q), (q, a) => ({
    orgId: q.orgId,
    ...(q.teamId !== undefined ? { conversationId: q.teamId } : {}),
    ...(q.userId !== undefined ? { targetUserIds: [q.userId] } : {}),
    note: a ? `${a.teams.length} teams` : undefined,
  }));
  route(
    'get',
    AdminPath.AUDIT_EXPORT,
    'export-audit',
    AdminAuditExportQuerySchema,
    async (q, _ctx, res) => {
      let count = 0;
      for await (const entry of admin.auditEntries(q.chain)) {
        if (count === 0) res.status(200).type('application/x-ndjson');
        count++;
        if (!res.write(`${JSON.stringify(entry)}\n`)) {
          // A reader that went away never drains: stop instead of waiting for ever.
          await Promise.race([once(res, 'drain'), once(res, 'close')]);
          if (res.destroyed || res.writableEnded) throw new HubError(ErrorCode.UNAVAILABLE, 'The reader of the export went away');
        }
      }
      if (count === 0) res.status(200).type('application/x-ndjson');
      res.end();
      return { count };
    },
    (q, a) => ({ note: `${a?.count ?? 0} entries${q.chain !== undefined ? ' of one chain' : ''}` }),
  );
  route(
    'get',
    AdminPath.AUDIT_VERIFY,
    'verify-audit',
    AdminAuditExportQuerySchema.pick({}),
    () => admin.verifyAudit(),
    (_q, a) => ({ note: a ? (a.ok ? 'intact' : 'tampered') : undefined }),
    (a) => (a.ok ? 200 : 409),
  );
  route('get', AdminPath.ALERT_SETTINGS, 'show-alert-settings', AdminAlertSettingsQuerySchema, (q) => admin.alertSettings(q.orgId), (q) => ({ orgId: q.orgId }));
  route(
    'post',
    AdminPath.ALERT_SETTINGS,
    'set-alert-settings',
    AdminAlertSettingsRequestSchema,
    (b) => admin.setAlertSettings(b),
    (b, a) => ({ orgId: b.orgId, note: a ? `urgent ${a.urgentMs} ms, emergent ${a.emergentMs} ms, ${a.maxRepeats} repeats` : undefined }),
  );
  route('post', AdminPath.CREDENTIAL_KEY, 'set-credential-key', AdminCredentialKeyRequestSchema, (b) => admin.credentials.setKey(b.orgId, b.publicKey), (b, a) => ({ orgId: b.orgId, note: a ? (a.changed ? 'set' : 'unchanged') : undefined }));
  route('post', AdminPath.CREDENTIALS, 'attest-credential', AdminSignedCredentialRequestSchema, (b) => admin.credentials.attest(b.orgId, b.document), (b, a) => ({ orgId: b.orgId, ...(a ? { userId: a.userId, note: a.serial } : {}) }));
  route('post', AdminPath.CREDENTIAL_REVOKE, 'revoke-credential', AdminSignedCredentialRequestSchema, (b) => admin.credentials.revoke(b.orgId, b.document), (b, a) => ({ orgId: b.orgId, note: a?.serial }));
  route('get', AdminPath.CREDENTIALS, 'show-credentials', AdminCredentialsQuerySchema, (q) => admin.credentials.get({ orgId: q.orgId }, { userIds: [q.userId] }), (q) => ({ orgId: q.orgId, userId: q.userId }));
  route('post', AdminPath.PSEUDONYM_KEYS, 'publish-pseudonym-key', AdminPseudonymDocumentRequestSchema, (b) => admin.pseudonyms.publishKey(b.orgId, b.document), (b, a) => ({ orgId: b.orgId, note: a ? `${a.epoch}${a.changed ? '' : ' (unchanged)'}` : undefined }));
  route('post', AdminPath.PSEUDONYM_REVOKE, 'revoke-pseudonym-key', AdminPseudonymDocumentRequestSchema, (b) => admin.pseudonyms.revokeKey(b.orgId, b.document), (b, a) => ({ orgId: b.orgId, note: a?.epoch }));
  route('get', AdminPath.PSEUDONYM_REQUESTS, 'list-pseudonym-requests', AdminPseudonymRequestsQuerySchema, (q) => admin.pseudonyms.pending(q.orgId, q.limit), (q, a) => ({ orgId: q.orgId, note: a ? `${a.requests.length} pending` : undefined }));
  route('post', AdminPath.PSEUDONYM_ANSWERS, 'answer-pseudonym-request', AdminPseudonymAnswerRequestSchema, (b) => admin.pseudonyms.answer(b.orgId, b.requestId, b.blindSignatures), (b, a) => ({ orgId: b.orgId, note: a ? `${a.count} tokens` : undefined }));
  route('get', AdminPath.KEYS, 'show-keys', AdminKeysReloadRequestSchema.pick({}), async () => admin.keys(), () => ({}));
  route(
    'post',
    AdminPath.KEYS_RELOAD,
    'reload-keys',
    AdminKeysReloadRequestSchema,
    () => admin.reloadKeys(),
    (_b, a) => ({ note: a ? a.nodes.map((n) => `${n.node}: ${n.error ? 'failed' : n.fingerprints.join(' ')}`).join('; ').slice(0, 500) : undefined }),
  );
  return router;
}

function sendError(res: Response, error: WireError): void {
  res.status(HTTP_STATUS_BY_CODE[error.code]).json({ error });
}

/** Whether the request carries the admin token (compared in constant time). */
export function isAdmin(req: Request, adminToken: string | undefined): boolean {
  if (!adminToken) return false;
  const presented = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
  const a = Buffer.from(presented);
  const b = Buffer.from(adminToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
