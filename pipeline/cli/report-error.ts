// The CLI's one top-level error report (used by cli/main.ts): an expected error (UserError and its
// InputError / WriteError, no GPU, a file-system error that carries its path) is one line
// `cellseg: ...` and its exit code; anything else is a bug: one line with "this is a bug, please
// report it", exit 70, and the stack trace only with --verbose. Control characters in messages are
// escaped, so that a NUL or an escape sequence from an input file never reaches the terminal raw.
import { GpuUnavailableError } from '../../runtime/device';
import { UserError } from '../../runtime/errors';

/** Exit code of an unexpected error (EX_SOFTWARE of sysexits.h). */
export const BUG_EXIT_CODE = 70;

/** Control characters other than newlines escaped (a hostile input cannot write raw bytes to the
 *  terminal), and at most 4000 characters. */
function printable(message: string): string {
  // eslint-disable-next-line no-control-regex
  const esc = message.replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, (c) => (c === '\0' ? '\\0' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  return esc.length > 4000 ? `${esc.slice(0, 4000)}... (message cut at 4000 characters)` : esc;
}

const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/** Prints `err` as the one-line report described above and returns the exit code. */
export function reportError(err: unknown, opts: { verbose: boolean; print?: (line: string) => void }): number {
  const print = opts.print ?? ((l: string) => console.error(l));
  if (err instanceof UserError) {
    print(`cellseg: ${printable(err.message)}`);
    if (opts.verbose && err.stack) print(err.stack);
    return err.exitCode;
  }
  if (err instanceof GpuUnavailableError) {
    print(`cellseg: ${printable(err.message)}`);
    return 3;
  }
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.code === 'string' && typeof e.path === 'string' && /^E[A-Z]+$/.test(e.code)) {
    // A file-system error that escaped a reader: the environment's, not a bug.
    print(`cellseg: ${printable(e.path)}: ${ERRNO_WORDS[e.code] ?? e.code}${e.syscall ? ` (${e.syscall})` : ''}`);
    if (opts.verbose && e.stack) print(e.stack);
    return 1;
  }
  const first = printable(String(err instanceof Error ? `${err.name}: ${err.message}` : err).split('\n')[0]!);
  print(`cellseg: internal error: ${first} -- this is a bug, please report it${opts.verbose ? '' : ' (run again with --verbose for the stack trace)'}`);
  if (opts.verbose && err instanceof Error && err.stack) print(err.stack);
  return BUG_EXIT_CODE;
}

