// The `cellseg` command line. Each subcommand lives in pipeline/cli/commands/<name>.ts and exports
// a `register(program)` function; this file wires them together and is the one top-level error
// handler: an expected error (UserError, InputError, WriteError, no GPU, a file-system error with a
// path) prints one line `cellseg: ...` and exits non-zero (1 user error, 2 bad input, 3 no GPU);
// anything else is a bug: one line, "this is a bug, please report it", exit 70, and the stack trace
// only with the global flag --verbose. Commands that use the GPU run with Dawn's native log lines
// filtered out of stderr (cli/native-stderr.ts) unless --verbose.
import { Command } from 'commander';
import { adoptParentTty, exitWithParent, runFilteredChild, wantsFilteredChild } from './native-stderr';
import { reportError as report } from './report-error';

if (wantsFilteredChild(process.argv)) process.exit(await runFilteredChild());
adoptParentTty();
exitWithParent();

const verbose = process.argv.slice(2).includes('--verbose');
const reportError = (err: unknown) => report(err, { verbose });

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
  'plot-metrics': () => import('./commands/plot-metrics'),
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
