import type { Command } from 'commander';
import { InputError } from '../../../runtime/errors';
import { readSubmission } from '../../post/submission';
import { readTrainCsvAll } from '../../data/train-csv';
import { competitionScore, type MetricImage } from '../../evaluation/competition-metric';
import { writeJsonAtomic } from '../../io/atomic';
import { findOverlap } from '../../post/validate-submission';

export function register(program: Command): void {
  program
    .command('score')
    .description('competition metric: per image the mean over IoU 0.50:0.05:0.95 of TP/(TP+FP+FN), then the mean over images')
    .requiredOption('--truth <file>', 'ground truth in train.csv format')
    .requiredOption('--submission <file>', 'submission.csv (id,predicted)')
    .option('--json <file>', 'write {"score": number, "per_image": {id: number}}')
    .option('--allow-overlap', 'score overlapping predicted masks instead of rejecting them (raw model output)')
    .action(async (o: { truth: string; submission: string; json?: string; allowOverlap?: boolean }) => {
      const truth = await readTrainCsvAll(o.truth, { allowEmptyAnnotation: true });
      const byId = new Map(truth.map((t) => [t.id, t]));
      const sub = await readSubmission(o.submission, (id) => byId.get(id));
      if (!o.allowOverlap) {
        const ov = findOverlap(sub);
        if (ov) throw new InputError(o.submission, `lines ${ov.lineA} and ${ov.lineB} (image ${ov.id})`, `masks overlap in ${ov.pixels} pixel(s) (use --allow-overlap to score anyway)`);
      }
      // An image of the truth without a submission row is scored as an empty prediction.
      const images: MetricImage[] = truth.map((t) => ({
        id: t.id,
        width: t.width,
        truth: t.instances.map((i) => i.runs),
        pred: (sub.get(t.id) ?? []).map((i) => i.runs),
      }));
      const res = competitionScore(images);
      console.log(`score ${res.score.toFixed(6)} over ${images.length} images`);
      if (o.json) writeJsonAtomic(o.json, { score: res.score, per_image: res.perImage });
    });
}
