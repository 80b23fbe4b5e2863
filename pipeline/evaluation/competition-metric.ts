// The competition metric of the Sartorius challenge: per image, the mean over IoU thresholds 0.50:0.05:0.95 of
// TP / (TP + FP + FN), then the mean over images. A hit needs IoU strictly above the threshold.
// Counting follows the public re-implementation: TP = truth objects with exactly one hit, FN = truth
// objects with none, FP = predictions with none.
import type { Runs } from '../../structures/rle';
import { runsIouMatrix } from './mask-iou';

/**
 * numpy arange(0.5, 1.0, 0.05) value for value: numpy fills start + i*delta with
 * delta = (start + step) - start = 0.050000000000000044, giving 0.6000000000000001 etc.
 */
const ARANGE_DELTA = 0.5 + 0.05 - 0.5;
export const COMPETITION_IOU_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, i) => 0.5 + i * ARANGE_DELTA);

export interface ThresholdCounts {
  threshold: number;
  tp: number;
  fp: number;
  fn: number;
}

/** Counts per threshold from an IoU matrix [truth][pred]. */
export function countsFromIou(iou: readonly Float64Array[], predCount: number): ThresholdCounts[] {
  return COMPETITION_IOU_THRESHOLDS.map((t) => {
    let tp = 0;
    let fn = 0;
    const predHits = new Int32Array(predCount);
    for (const row of iou) {
      let hits = 0;
      for (let j = 0; j < predCount; j++) {
        if (row[j]! > t) {
          hits++;
          predHits[j]!++;
        }
      }
      if (hits === 1) tp++;
      else if (hits === 0) fn++;
    }
    let fp = 0;
    for (let j = 0; j < predCount; j++) if (predHits[j] === 0) fp++;
    return { threshold: t, tp, fp, fn };
  });
}

/**
 * Score of one image. No truth and no prediction is scored 1 (nothing to find, nothing wrongly
 * found; the official handling is not published); predictions without truth score 0.
 */
export function imageScore(truth: readonly Runs[], pred: readonly Runs[], width: number): number {
  if (truth.length === 0 && pred.length === 0) return 1;
  const counts = countsFromIou(runsIouMatrix(truth, pred, width), pred.length);
  let sum = 0;
  for (const c of counts) sum += c.tp / (c.tp + c.fp + c.fn);
  return sum / counts.length;
}

export interface MetricImage {
  id: string;
  width: number;
  truth: readonly Runs[];
  pred: readonly Runs[];
}

export interface MetricResult {
  score: number;
  perImage: Record<string, number>;
}

/** Official dataset score: the mean of image scores. */
export function competitionScore(images: Iterable<MetricImage>): MetricResult {
  const perImage: Record<string, number> = {};
  let sum = 0;
  let n = 0;
  for (const img of images) {
    const s = imageScore(img.truth, img.pred, img.width);
    perImage[img.id] = s;
    sum += s;
    n++;
  }
  return { score: n === 0 ? 0 : sum / n, perImage };
}

/**
 * The pooled variant (theoviel's iou_map, used in mistag's TTA notebook): TP/FP/FN summed over all
 * images per threshold, then divided. Only for comparing with numbers quoted from that notebook.
 */
export function pooledScore(images: Iterable<MetricImage>): number {
  const tot = COMPETITION_IOU_THRESHOLDS.map(() => ({ tp: 0, fp: 0, fn: 0 }));
  for (const img of images) {
    const counts = countsFromIou(runsIouMatrix(img.truth, img.pred, img.width), img.pred.length);
    counts.forEach((c, i) => {
      tot[i]!.tp += c.tp;
      tot[i]!.fp += c.fp;
      tot[i]!.fn += c.fn;
    });
  }
  let sum = 0;
  for (const c of tot) {
    const d = c.tp + c.fp + c.fn;
    sum += d === 0 ? 1 : c.tp / d;
  }
  return sum / tot.length;
}
