// Model ensembling with Weighted Segments Fusion: every model of the ensemble predicts the image
// (its four TTA flips with `tta`, else one pass), and all passes of all models are fused in one
// WSF call, exactly as the TTA passes of one model are (fusePasses: WBF on the boxes with the
// per-cell-type skip threshold of the image's most frequent class, vote on the member masks, the
// fused detection score as score and mask score). A model's weight is the WBF weight of each of
// its passes.
//
// What fusion does to identical passes (an ensemble of a model with itself): WBF of k identical
// boxes is the same box (up to float32 rounding of the normalised coordinates) with the same score
// (ensemble_boxes rescales the weighted mean by min(#weights, #members) / sum(weights)); the vote
// keeps pixels covered by max(1, floor(k/2)) members of a cluster, so when a cluster of n members
// is doubled to 2n the threshold becomes n instead of floor(n/2) — identical for n = 1 and any
// even n, different for odd n >= 3 (TTA clusters of 3). Without TTA, an ensemble of a model with
// itself returns the model's instances with its detection scores as scores, less those below the
// WSF skip threshold (a single model without TTA is not fused, so it keeps them).
import type { CocoResult } from '../data/coco/types';
import type { ImageEntry } from '../data/image-list';
import type { PredictedInstance } from '../evaluation/coco-results';
import type { ImagePredictor } from '../evaluation/evaluator';
import type { InstanceSegmenter } from './model';
import { fusePasses, predictFiles, predictPasses, type OnImagePredicted, type PredictorOptions } from './predictor';

export interface EnsembleMember {
  model: InstanceSegmenter;
  /** Its own input sizes and category ids (from its config); `tta` for its four flips. */
  opts: PredictorOptions;
  /** WBF weight of each of its passes (default 1). */
  weight?: number;
}

/** The WSF fusion of all passes of all members on one 8-bit gray image. */
export async function predictEnsembleGray(members: readonly EnsembleMember[], gray: Uint8Array, width: number, height: number, wsf?: PredictorOptions['wsf']): Promise<PredictedInstance[]> {
  if (members.length === 0) throw new Error('an ensemble needs at least one model');
  const passes: PredictedInstance[][] = [];
  const weights: number[] = [];
  for (const m of members) {
    for (const p of await predictPasses(m.model, gray, width, height, m.opts)) {
      passes.push(p);
      weights.push(m.weight ?? 1);
    }
  }
  return fusePasses(passes, width, height, wsf ?? members[0]!.opts.wsf, weights);
}

/** predictEnsembleGray as evaluation calls a model. */
export function ensemblePredictor(members: readonly EnsembleMember[], wsf?: PredictorOptions['wsf']): ImagePredictor {
  return (gray, width, height) => predictEnsembleGray(members, gray, width, height, wsf);
}

/** The COCO results of an ensemble on a list of image files. */
export async function predictEnsemble(members: readonly EnsembleMember[], entries: readonly ImageEntry[], wsf?: PredictorOptions['wsf'], onImage?: OnImagePredicted): Promise<CocoResult[]> {
  const tta = members.some((m) => m.opts.tta);
  return predictFiles(ensemblePredictor(members, wsf), entries, `predict (ensemble of ${members.length}${tta ? ', TTA x4' : ''})`, onImage);
}
