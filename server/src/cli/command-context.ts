/**
 * What a `curbside-admin` command gets from the CLI (admin.ts): the admin HTTP client, the argument checks,
 * the office's key, and the printer. How a command fails: errors.ts.
 */
import type { KeyObject } from 'node:crypto';
import type { HubClient } from './hub-client.js';

/** Options a command may require (`need` refuses the command without them). */
export type NeedName = 'org' | 'user' | 'device' | 'team' | 'key' | 'out' | 'identity-key' | 'name' | 'specialty' | 'licence' | 'institution' | 'serial' | 'epoch' | 'keys';

export interface CommandContext {
  hub: Pick<HubClient, 'get' | 'post' | 'stream'>;
  /** The option's value; a missing or empty one is bad usage. */
  need(name: NeedName): string;
  /** An optional option's value. */
  value(name: string): string | undefined;
  /** The office's credentialing key (`--key`); a file that cannot be read is bad usage. */
  officeKey(): Promise<{ privateKey: KeyObject; publicKey: string }>;
  /** Bad usage: never returns. */
  usage(message: string): never;
  /** `json` with `--json`, else the human form. */
  print(json: unknown, human: () => string): void;
}
