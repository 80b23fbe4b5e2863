// The competition score of a submission.csv against ground truth in train.csv format. Overlapping
// masks of an image are rejected as the competition's scorer rejects them, unless allowOverlap
// (raw model output); an image of the truth without a submission row scores as an empty prediction.
import { InputError } from '../../runtime/errors';
import { readTrainCsvAll } from '../data/train-csv';
import { readSubmission } from '../post/submission';
import { findOverlap } from '../post/validate-submission';
import { competitionScore, type MetricImage, type MetricResult } from './competition-metric';

export async function scoreSubmission(truthFile: string, submissionFile: string, o: { allowOverlap?: boolean } = {}): Promise<MetricResult & { images: number }> {
  const truth = await readTrainCsvAll(truthFile, { allowEmptyAnnotation: true });
  const byId = new Map(truth.map((t) => [t.id, t]));
  const sub = await readSubmission(submissionFile, (id) => byId.get(id));
  if (!o.allowOverlap) {
    const ov = findOverlap(sub);
    if (ov) throw new InputError(submissionFile, `lines ${ov.lineA} and ${ov.lineB} (image ${ov.id})`, `masks overlap in ${ov.pixels} pixel(s) (use --allow-overlap to score anyway)`);
  }
  const images: MetricImage[] = truth.map((t) => ({
    id: t.id,
    width: t.width,
    truth: t.instances.map((i) => i.runs),
    pred: (sub.get(t.id) ?? []).map((i) => i.runs),
  }));
  return { ...competitionScore(images), images: images.length };
}
