import type { Command } from 'commander';
import { scoreSubmission } from '../../evaluation/score-submission';
import { writeJsonAtomic } from '../../io/atomic';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('score')
    .description('competition metric: per image the mean over IoU 0.50:0.05:0.95 of TP/(TP+FP+FN), then the mean over images')
    .requiredOption('--truth <file>', 'ground truth in train.csv format')
    .requiredOption('--submission <file>', 'submission.csv (id,predicted)')
    .option('--json <file>', 'write {"score": number, "per_image": {id: number}}')
    .option('--allow-overlap', 'score overlapping predicted masks instead of rejecting them (raw model output)')
    .action(async (o: { truth: string; submission: string; json?: string; allowOverlap?: boolean }) => {
      checkOutputs({ '--json': o.json });
      const res = await scoreSubmission(o.truth, o.submission, { allowOverlap: o.allowOverlap });
      console.log(`score ${res.score.toFixed(6)} over ${res.images} images`);
      if (o.json) writeJsonAtomic(o.json, { score: res.score, per_image: res.perImage });
    });
}
