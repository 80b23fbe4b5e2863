// Errors that carry a complete, actionable message for the user: the CLI prints them without a
// stack trace and exits non-zero. Anything else is a bug and is printed with its stack.

export class UserError extends Error {
  override name = 'UserError';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** Bad input data: names the file, the line/row/key, and what was expected. */
export class InputError extends UserError {
  override name = 'InputError';
  constructor(
    readonly file: string,
    readonly where: string | undefined,
    readonly problem: string,
  ) {
    super(`${file}${where ? `: ${where}` : ''}: ${problem}`, 2);
  }
}

/** A file could not be written (disk full, read-only, no permission, ...): `PATH: could not write:
 *  REASON`. The previous contents of PATH, if any, are untouched and no temporary file remains. */
export class WriteError extends UserError {
  override name = 'WriteError';
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: could not write: ${reason}`);
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}
