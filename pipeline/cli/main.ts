// The `cellseg` command line. Each subcommand lives in pipeline/cli/commands/<name>.ts and exports
// a `register(program)` function; this file wires them together and is the one top-level error
// handler: an expected error (UserError, InputError, WriteError, no GPU, a file-system error with a
// path) prints one line `cellseg: ...` and exits non-zero (1 user error, 2 bad input, 3 no GPU);
// anything else is a bug: one line, "this is a bug, please report it", exit 70, and the stack trace
// only with the global flag --verbose. Commands that use the GPU run with Dawn's native log lines
// filtered out of stderr (cli/native-stderr.ts) unless --verbose.
import { Command } from 'commander';
import { GpuUnavailableError } from '../../runtime/device';
import { UserError } from '../../runtime/errors';
import { adoptParentTty, runFilteredChild, wantsFilteredChild } from './native-stderr';

if (wantsFilteredChild(process.argv)) process.exit(await runFilteredChild());
adoptParentTty();

const verbose = process.argv.slice(2).includes('--verbose');

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
export function reportError(err: unknown, opts: { verbose: boolean } = { verbose }): number {
  if (err instanceof UserError) {
    console.error(`cellseg: ${printable(err.message)}`);
    if (opts.verbose && err.stack) console.error(err.stack);
    return err.exitCode;
  }
  if (err instanceof GpuUnavailableError) {
    console.error(`cellseg: ${printable(err.message)}`);
    return 3;
  }
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.code === 'string' && typeof e.path === 'string' && /^E[A-Z]+$/.test(e.code)) {
    // A file-system error that escaped a reader: the environment's, not a bug.
    console.error(`cellseg: ${printable(e.path)}: ${ERRNO_WORDS[e.code] ?? e.code}${e.syscall ? ` (${e.syscall})` : ''}`);
    if (opts.verbose && e.stack) console.error(e.stack);
    return 1;
  }
  const first = printable(String(err instanceof Error ? `${err.name}: ${err.message}` : err).split('\n')[0]!);
  console.error(`cellseg: internal error: ${first} -- this is a bug, please report it${opts.verbose ? '' : ' (run again with --verbose for the stack trace)'}`);
  if (opts.verbose && err instanceof Error && err.stack) console.error(err.stack);
  return BUG_EXIT_CODE;
}

// Errors outside the awaited command (a stray rejected promise, an exception in a callback) get the
// same one-line report.
process.on('uncaughtException', (err) => process.exit(reportError(err)));
process.on('unhandledRejection', (err) => process.exit(reportError(err)));

// Loaded after the stderr decision above, and only the command named (all for help or an unknown
// name), so that a command starts without compiling the other seventeen.
const COMMANDS: Record<string, () => Promise<{ register(program: Command): void }>> = {
  'convert-weights': () => import('./commands/convert-weights'),
  'analyze': () => import('./commands/analyze'),
  'coco': () => import('./commands/coco'),
  'doctor': () => import('./commands/doctor'),
  'evaluate': () => import('./commands/evaluate'),
  'model-summary': () => import('./commands/model-summary'),
  'predict': () => import('./commands/predict'),
  'fuse-boxes': () => import('./commands/fuse-boxes'),
  'run': () => import('./commands/run'),
  'score': () => import('./commands/score'),
  'split': () => import('./commands/split'),
  'submit': () => import('./commands/submit'),
  'synth': () => import('./commands/synth'),
  'train': () => import('./commands/train'),
  'validate-submission': () => import('./commands/validate-submission'),
  'plot': () => import('./commands/plot'),
  'overlay': () => import('./commands/overlay'),
  'export-model': () => import('./commands/export-model'),
};
const named = process.argv.slice(2).find((a) => !a.startsWith('-'));
const commands = await Promise.all(named !== undefined && COMMANDS[named] ? [COMMANDS[named]()] : Object.values(COMMANDS).map((load) => load()));

const program = new Command();
program
  .name('cellseg')
  .description('cellgpu: CenterMask2 cell instance segmentation on WebGPU')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true })
  .option('--verbose', 'stack traces of unexpected errors, and the native WebGPU (Dawn) log lines');

for (const mod of commands) mod.register(program);

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

const code = await main(process.argv);
// Dawn keeps handles alive; exit explicitly once the command is done.
process.exit(code);
