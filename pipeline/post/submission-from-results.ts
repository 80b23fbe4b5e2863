// COCO results -> submission.csv: the one path from predictions to a submission, shared by
// `cellseg submit` and `cellseg run`. Each image's results become post-processing candidates
// (score, category, mask crop), are post-processed (per-type score thresholds, shape filter,
// overlap removal, minimum size) and written as competition RLE rows.
import { InputError } from '../../runtime/errors';
import { cocoRleToCrop, segmentationToCocoRle } from '../../structures/coco-rle';
import type { Runs } from '../../structures/rle';
import type { CocoResult } from '../data/coco/types';
import { writeSubmission } from './submission';
import { postprocessImage, type Candidate, type PostprocessOptions } from './postprocess';

/** An image of the submission: its COCO id (what results name) and its Sartorius id (the CSV's). */
export interface SubmissionImage {
  id: number;
  sartoriusId: string;
  width: number;
  height: number;
}

/** The results of each image as post-processing candidates; `source` names the results in errors. */
export function candidatesByImage(results: readonly CocoResult[], images: readonly SubmissionImage[], source: string): Map<number, Candidate[]> {
  const byId = new Map(images.map((im) => [im.id, im]));
  const out = new Map<number, Candidate[]>();
  results.forEach((r, i) => {
    const im = byId.get(r.image_id);
    if (!im) throw new InputError(source, `result [${i}]`, `image_id ${r.image_id} is not among the submission's images`);
    if (!r.segmentation) throw new InputError(source, `result [${i}]`, 'needs an RLE "segmentation" for a submission');
    const mask = cocoRleToCrop(segmentationToCocoRle(r.segmentation, im.height, im.width));
    (out.get(r.image_id) ?? out.set(r.image_id, []).get(r.image_id)!).push({ score: r.score, categoryId: r.category_id, mask });
  });
  return out;
}

export interface SubmissionSummary {
  images: number;
  kept: number;
  predicted: number;
  candidates: Map<number, Candidate[]>;
}

/** Post-process every image's results and write the submission atomically (images in the given order). */
export async function writeSubmissionFromResults(
  file: string,
  results: readonly CocoResult[],
  images: readonly SubmissionImage[],
  opts: PostprocessOptions,
  source = 'results',
  onImage?: () => void,
): Promise<SubmissionSummary> {
  const candidates = candidatesByImage(results, images, source);
  const masks = new Map<string, Runs[]>();
  let kept = 0;
  for (const im of images) {
    const res = postprocessImage(candidates.get(im.id) ?? [], im.width, im.height, opts);
    masks.set(im.sartoriusId, res.masks);
    kept += res.masks.length;
    onImage?.();
  }
  await writeSubmission(file, images.map((im) => im.sartoriusId), masks);
  return { images: images.length, kept, predicted: results.length, candidates };
}
