#!/usr/bin/env node
/**
 * curbside-admin: the operator's command line, over the admin HTTP API of a running hub (any node).
 *
 *   curbside-admin [--url URL] [--token TOKEN] [--as OPERATOR] [--json] <command>
 *
 * URL: --url, else CURBSIDE_URL, else http://127.0.0.1:3000. Token: --token, else ADMIN_TOKEN.
 * Operator (for the audit log): --as, else CURBSIDE_OPERATOR, else the login name.
 * Exit codes: 0 done; 1 the hub refused or the audit log failed verification; 64 bad usage; 69 hub unreachable.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { alertCommand } from './alert-commands.js';
import { auditCommand } from './audit-commands.js';
import type { CommandContext, NeedName } from './command-context.js';
import { CliError, UsageError } from './errors.js';
import { credentialCommand, type CredentialAction } from './credential-commands.js';
import { loadCredentialKey } from './credentials.js';
import { HubClient } from './hub-client.js';
import { keyCommand } from './key-commands.js';
import { pseudonymCommand, type PseudonymAction } from './pseudonym-commands.js';
import { userCommand, type UserCommand } from './user-commands.js';

const USAGE = `usage: curbside-admin [--url URL] [--token TOKEN] [--as OPERATOR] [--json] <command>

commands:
  users list      --org ORG [--after USER] [--limit N]   users with their devices
  users disable   --org ORG --user USER                  close their sockets on every node, refuse their sign-ins
  users enable    --org ORG --user USER
  users profile   --org ORG --user USER [--name N] [--role R] [--department D]
                                                         directory profile ('' clears the operator's value)
  devices revoke  --org ORG --user USER --device DEVICE  as the owner's own revoke: keys deleted, sockets closed
  devices restore --org ORG --device DEVICE              undo a revocation
  teams show      --org ORG (--team TEAM | --user USER)  care-team membership metadata (never titles or messages)
  audit export    [--chain CHAIN] [--out FILE]           the audit log as NDJSON (stdout by default)
  audit verify    [--file FILE]                          check the hash chains (on the hub, or of an export offline)
  alerts show     --org ORG                              re-notification intervals of urgent and emergent messages
  alerts set      --org ORG [--urgent-ms N] [--emergent-ms N] [--max-repeats N]
                                                         the organisation's own (others unchanged; N = default resets one)
  credentials keygen      --out FILE                     a credentialing key pair: the private key to FILE (keep it offline)
  credentials publish-key --org ORG --key FILE           give the hub the public half (clients pin it)
  credentials issue       --org ORG --key FILE --user USER --device DEVICE --identity-key KEY
                          --name N --specialty S --licence L --institution I [--days N]
                                                         sign an attestation bound to the device's identity key (the
                                                         clinician's app shows KEY; compare it in person); renew: issue again
  credentials revoke      --org ORG --key FILE --serial SERIAL [--reason TEXT]
  credentials show        --org ORG --user USER          a user's attestations and revocations
  credentials pseudonym-key --org ORG --key FILE --epoch E --specialty S --out DIR [--per-user N] [--days N]
                                                         a token key for pseudonymous posting (RSA private half to DIR)
  credentials sign-pseudonyms --org ORG --key FILE --keys DIR   check and blind-sign pending token requests
  credentials revoke-pseudonym-key --org ORG --key FILE --epoch E --specialty S   end an epoch's tokens
  keys show                                              identity provider keys this node accepts
  keys reload                                            re-read JWT_PUBLIC_KEY_FILE on every node (key rotation)

environment: CURBSIDE_URL, ADMIN_TOKEN, CURBSIDE_OPERATOR`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  as: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  org: { type: 'string' },
  user: { type: 'string' },
  device: { type: 'string' },
  name: { type: 'string' },
  'urgent-ms': { type: 'string' },
  'emergent-ms': { type: 'string' },
  'max-repeats': { type: 'string' },
  role: { type: 'string' },
  department: { type: 'string' },
  team: { type: 'string' },
  after: { type: 'string' },
  limit: { type: 'string' },
  chain: { type: 'string' },
  out: { type: 'string' },
  file: { type: 'string' },
  key: { type: 'string' },
  'identity-key': { type: 'string' },
  specialty: { type: 'string' },
  licence: { type: 'string' },
  institution: { type: 'string' },
  days: { type: 'string' },
  serial: { type: 'string' },
  reason: { type: 'string' },
  epoch: { type: 'string' },
  'per-user': { type: 'string' },
  keys: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/**
 * An option that takes a value takes the next argument, whatever it starts with (as getopt does):
 * identity keys are base64url and may start with '-', which parseArgs alone reads as another option
 * (one key in 64 could not be given as `--identity-key KEY`).
 */
function attachValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...out, ...argv.slice(i)];
    const option = arg.startsWith('--') && !arg.includes('=') ? (OPTIONS as Record<string, { type: string }>)[arg.slice(2)] : undefined;
    if (option?.type === 'string' && i + 1 < argv.length) out.push(`${arg}=${argv[++i]!}`);
    else out.push(arg);
  }
  return out;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: attachValues(argv), options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    process.stderr.write(`curbside-admin: ${(err as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (values.help) {
    out.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return await run(positionals, values, env, out);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`curbside-admin: ${err.message}\n${USAGE}\n`);
      return 64;
    }
    if (err instanceof CliError) {
      process.stderr.write(`curbside-admin: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

async function run(positionals: string[], v: Values, env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const [group, action, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected argument ${extra[0]}`);
  const need = (name: NeedName): string => {
    const value = v[name];
    if (value === undefined || value === '') throw new UsageError(`${group} ${action} needs --${name}`);
    return value;
  };
  const hub = new HubClient({
    url: (v.url ?? env.CURBSIDE_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    token: v.token ?? env.ADMIN_TOKEN,
    operator: v.as ?? env.CURBSIDE_OPERATOR ?? safeLogin(),
  });
  const print = (json: unknown, human: () => string) => out.write(`${v.json ? JSON.stringify(json, null, 2) : human()}\n`);
  /** The office's private key file: one that cannot be read is bad usage, said plainly. */
  const officeKey = async () => {
    const file = need('key');
    try {
      return await loadCredentialKey(file);
    } catch (err) {
      throw new UsageError(`--key ${file}: ${(err as Error).message}`);
    }
  };
  const ctx: CommandContext = {
    hub,
    need,
    value: (name) => {
      const value = (v as Record<string, string | boolean | undefined>)[name];
      return typeof value === 'string' ? value : undefined;
    },
    officeKey,
    print,
    usage: (message) => {
      throw new UsageError(message);
    },
  };

  switch (`${group ?? ''} ${action ?? ''}`) {
    case 'users list':
    case 'users disable':
    case 'users enable':
    case 'users profile':
    case 'devices revoke':
    case 'devices restore':
    case 'teams show':
      return userCommand(`${group} ${action}` as UserCommand, ctx);
    case 'audit export':
    case 'audit verify':
      return auditCommand(action as 'export' | 'verify', { ...ctx, out });
    case 'alerts show':
    case 'alerts set':
      return alertCommand(action as 'show' | 'set', ctx);
    case 'credentials keygen':
    case 'credentials publish-key':
    case 'credentials issue':
    case 'credentials revoke':
    case 'credentials show':
      return credentialCommand(action as CredentialAction, ctx);
    case 'credentials pseudonym-key':
    case 'credentials sign-pseudonyms':
    case 'credentials revoke-pseudonym-key':
      return pseudonymCommand(action as PseudonymAction, ctx);
    case 'keys show':
    case 'keys reload':
      return keyCommand(action as 'show' | 'reload', ctx);
    default:
      throw new UsageError(group === undefined ? 'no command' : `unknown command: ${[group, action].filter(Boolean).join(' ')}`);
  }
}

function safeLogin(): string {
  try {
    return userInfo().username || 'admin';
  } catch {
    return 'admin';
  }
}

// Run when started as a program (not when a test imports `main`).
// (npm links the bin, so compare real paths.)
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  const code = await main(process.argv.slice(2), process.env, process.stdout);
  process.exitCode = code;
}
