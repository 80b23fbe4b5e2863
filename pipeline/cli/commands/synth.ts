import type { Command } from 'commander';
import { SYNTH_DEFAULTS, writeSynthDataset } from '../../data/synth/dataset';
import { progress } from '../../io/progress';
import { parseIntOption } from '../args';
import { checkOutputDir } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('synth')
    .description('write a deterministic synthetic dataset in the Sartorius layout (train.csv, train/, test/, sample_submission.csv)')
    .option('--out <dir>', 'output folder', 'datasets/synth')
    .option('--seed <n>', 'random seed', parseIntOption('--seed', 0), SYNTH_DEFAULTS.seed)
    .option('--train <n>', 'number of training images (cell types cycle shsy5y, astro, cort)', parseIntOption('--train', 0), SYNTH_DEFAULTS.trainImages)
    .option('--test <n>', 'number of test images', parseIntOption('--test', 0), SYNTH_DEFAULTS.testImages)
    .option('--width <px>', 'image width', parseIntOption('--width', 32), SYNTH_DEFAULTS.width)
    .option('--height <px>', 'image height', parseIntOption('--height', 32), SYNTH_DEFAULTS.height)
    .option('--force', 'replace an existing output folder')
    .action((o: { out: string; seed: number; train: number; test: number; width: number; height: number; force?: boolean }) => {
      checkOutputDir(o.out, '--out');
      const bar = progress('synth', o.train + o.test);
      try {
        const s = writeSynthDataset(
          o.out,
          { seed: o.seed, trainImages: o.train, testImages: o.test, width: o.width, height: o.height },
          !!o.force,
          () => bar.tick(),
        );
        bar.stop();
        const inst = s.train.reduce((t, x) => t + x.instances, 0);
        console.log(`wrote ${o.out}: ${s.train.length} train images (${inst} instances), ${s.test.length} test images`);
      } finally {
        bar.stop();
      }
    });
}
