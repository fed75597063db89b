/** The two ways a `curbside-admin` command fails (admin.ts turns them into exit codes). */
/** Bad usage: the message and the usage, exit 64 (EX_USAGE). */
export class UsageError extends Error {}
/** The hub answered with an error, or could not be reached. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
