// The `cellseg` command line. Each subcommand lives in pipeline/cli/commands/<name>.ts and exports
// a `register(program)` function; this file only wires them together and turns UserErrors (bad
// input, no GPU) into a one-paragraph message and a non-zero exit code, without a stack trace.
import { Command } from 'commander';
import { GpuUnavailableError } from '../../runtime/device';
import { UserError } from '../../runtime/errors';
import * as convertWeights from './commands/convert-weights';
import * as analyze from './commands/analyze';
import * as coco from './commands/coco';
import * as doctor from './commands/doctor';
import * as evaluate from './commands/evaluate';
import * as modelSummary from './commands/model-summary';
import * as predict from './commands/predict';
import * as fuseBoxes from './commands/fuse-boxes';
import * as run from './commands/run';
import * as score from './commands/score';
import * as split from './commands/split';
import * as submit from './commands/submit';
import * as synth from './commands/synth';
import * as train from './commands/train';
import * as validateSubmission from './commands/validate-submission';
import * as plot from './commands/plot';
import * as plotMetrics from './commands/plot-metrics';
import * as overlay from './commands/overlay';
import * as exportModel from './commands/export-model';

const program = new Command();
program
  .name('cellseg')
  .description('cellgpu: CenterMask2 cell instance segmentation on WebGPU')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true });

for (const mod of [convertWeights, modelSummary, doctor, run, synth, analyze, coco, split, train, evaluate, predict, score, fuseBoxes, submit, validateSubmission, plot, plotMetrics, overlay, exportModel]) {
  mod.register(program);
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`cellseg: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof GpuUnavailableError) {
      console.error(`cellseg: ${err.message}`);
      return 3;
    }
    throw err;
  }
}

const code = await main(process.argv);
// Dawn keeps handles alive; exit explicitly once the command is done.
process.exit(code);
