// `cellseg run` (what `npm start` calls): the whole pipeline on the synthetic default dataset.
// Stages are added as the pipeline grows; each stage that is not built yet says so plainly.
import type { Command } from 'commander';
import { runDoctor } from '../../core/doctor';

export function register(program: Command): void {
  program
    .command('run')
    .description('run the whole pipeline on the synthetic default dataset')
    .option('--out <dir>', 'output directory', 'output')
    .action(async () => {
      const report = await runDoctor();
      for (const l of report.lines) console.log(l);
      console.log('\nThe full pipeline (synthetic data -> shape analysis -> COCO + splits -> CenterMask training ->');
      console.log('evaluation -> TTA + WSF -> submission.csv) is not wired into `npm start` yet; this run checked the GPU only.');
    });
}
