// Inference on whole images, as Detectron2's DefaultPredictor + CenterMask2's evaluator: gray ->
// 3 channels, ResizeShortestEdge to MIN_SIZE_TEST (capped at MAX_SIZE_TEST), model.inference (masks
// come back at the original size), COCO results (bbox XYWH, segm as compressed COCO RLE, score =
// mask_score as CenterMask's COCO evaluator writes it). With TTA: the four flips of the image
// (original, h, v, both), each prediction mapped back by the same flip, fused by Weighted Segments
// Fusion (WBF on the boxes with per-cell-type skip thresholds, vote on the member masks); a fused
// instance's score is its fused detection score (mistag's TTA path uses detection scores).
// Also: the model of a config with its weights loaded for inference, and the COCO results of a
// list of image files.
import { init } from '../../runtime/runtime';
import { UserError } from '../../runtime/errors';
import type { CfgNode } from '../../models/config/config';
import { maskToCrop, tightenCrop, type MaskCrop } from '../../structures/mask-crop';
import { progress } from '../io/progress';
import type { GrayImage } from '../io/png';
import { readImageGray } from '../io/image';
import { cellTypeOfCategory, WSF_SKIP_THRESHOLDS, type CellType } from '../data/cell-types';
import type { CocoResult } from '../data/coco/types';
import type { ImageEntry } from '../data/image-list';
import { prepareImage } from '../data/train-loader';
import type { Box } from '../fusion/wbf';
import { weightedSegmentsFusion, type PredictionSet } from '../fusion/wsf';
import { toCocoResults, type PredictedInstance } from '../evaluation/coco-results';
import type { ImagePredictor } from '../evaluation/evaluator';
import { loadPretrainedWeights } from './checkpoint';
import { buildTrainableModel, type InstanceSegmenter, type Instances } from './model';
import { transformCrop, transformImage, TTA_TRANSFORMS, type TtaTransform } from './tta';

export interface PredictorOptions {
  /** INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST. */
  minSize: number;
  maxSize: number;
  /** Contiguous class k -> COCO category id. */
  categoryIds: readonly number[];
  tta?: boolean;
  wsf?: {
    iouThr?: number;
    /** Raw-score skip threshold: one number, or per cell type of the image (its most frequent class). */
    skipThresholds?: number | Record<CellType, number>;
    voteFraction?: number;
  };
}

export function predictorOptionsFromConfig(cfg: CfgNode, categoryIds: readonly number[], tta = false): PredictorOptions {
  return { minSize: cfg.INPUT.MIN_SIZE_TEST, maxSize: cfg.INPUT.MAX_SIZE_TEST, categoryIds, tta };
}

function categoryOf(k: number, ids: readonly number[]): number {
  const id = ids[k];
  if (id === undefined) throw new Error(`the model predicted class ${k}, but only ${ids.length} categories are known [${ids}]`);
  return id;
}

/** Box and mask through a self-inverse flip of a W x H image. */
export function unflipBox(b: Box, t: TtaTransform, W: number, H: number): Box {
  let [x0, y0, x1, y1] = b;
  if (t === 'hflip' || t === 'both') [x0, x1] = [W - x1, W - x0];
  if (t === 'vflip' || t === 'both') [y0, y1] = [H - y1, H - y0];
  return [x0, y0, x1, y1];
}

/** Detection i's mask as a crop: from its paste region when the model gives one (no full-image
 *  mask is built or scanned), else from the full-image mask. */
function maskCropOf(inst: Instances, i: number, W: number, H: number): MaskCrop {
  const r = inst.maskRegions?.[i];
  if (r) {
    if (r.x0 < 0 || r.y0 < 0 || r.x0 + r.width > W || r.y0 + r.height > H || r.data.length !== r.width * r.height) {
      throw new Error(`model.inference returned a mask region ${r.width}x${r.height} at (${r.x0}, ${r.y0}) with ${r.data.length} values for a ${W}x${H} image`);
    }
    return tightenCrop({ imageWidth: W, imageHeight: H, ...r });
  }
  const m = inst.masks[i];
  if (m?.length !== W * H) throw new Error(`model.inference returned a mask of ${m?.length ?? 0} pixels for a ${W}x${H} image`);
  return maskToCrop(m, W, H);
}

function toPredicted(inst: Instances, W: number, H: number, ids: readonly number[], t: TtaTransform): PredictedInstance[] {
  const out: PredictedInstance[] = [];
  for (let i = 0; i < inst.scores.length; i++) {
    const b = Array.from(inst.boxes.subarray(4 * i, 4 * i + 4)) as Box;
    out.push({
      box: unflipBox(b, t, W, H),
      score: inst.scores[i]!,
      maskScore: inst.maskScores[i]!,
      categoryId: categoryOf(inst.classes[i]!, ids),
      mask: transformCrop(maskCropOf(inst, i, W, H), t),
    });
  }
  return out;
}

/** Most frequent category (ties -> smallest id), as the notebook's statistics.mode over classes. */
function modeCategory(preds: readonly PredictedInstance[]): number | undefined {
  const counts = new Map<number, number>();
  for (const p of preds) counts.set(p.categoryId, (counts.get(p.categoryId) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
}

/** The predictions of every pass of one model on one 8-bit gray image (row-major width x height),
 *  each mapped back to the original orientation: one pass, or the four flips with `o.tta`. */
export async function predictPasses(model: InstanceSegmenter, gray: Uint8Array, width: number, height: number, o: PredictorOptions): Promise<PredictedInstance[][]> {
  const passes: TtaTransform[] = o.tta ? [...TTA_TRANSFORMS] : ['orig'];
  const perPass: PredictedInstance[][] = [];
  for (const t of passes) {
    const img = t === 'orig' ? gray : transformImage(gray, width, height, t);
    const { input } = prepareImage(img, width, height, o.minSize, o.maxSize);
    // Masks as paste regions only: the crops are built from them, no full-image mask per detection.
    const [inst] = await model.inference([input], { fullMasks: false });
    perPass.push(toPredicted(inst!, width, height, o.categoryIds, t));
  }
  return perPass;
}

/** Weighted Segments Fusion of prediction passes (TTA flips, models of an ensemble): the skip
 *  threshold of the image's most frequent category, WBF weights `weights` (one per pass), and a
 *  fused instance's detection score as both its score and its mask score. */
export function fusePasses(perPass: readonly (readonly PredictedInstance[])[], width: number, height: number, wsf: PredictorOptions['wsf'] = {}, weights?: readonly number[]): PredictedInstance[] {
  const all = perPass.flat();
  const imageCategory = modeCategory(all);
  const skip = wsf.skipThresholds ?? WSF_SKIP_THRESHOLDS;
  let skipBoxThr = 0;
  if (typeof skip === 'number') skipBoxThr = skip;
  else if (imageCategory !== undefined) {
    const type = cellTypeOfCategory(imageCategory);
    skipBoxThr = type ? skip[type] : 0;
  }
  const sets: PredictionSet[] = perPass.map((ps) => ({
    boxes: ps.map((p) => p.box),
    scores: ps.map((p) => p.score),
    labels: ps.map((p) => p.categoryId),
    masks: ps.map((p) => p.mask),
  }));
  const fused = weightedSegmentsFusion(sets, { imageWidth: width, imageHeight: height, iouThr: wsf.iouThr ?? 0.55, skipBoxThr, voteFraction: wsf.voteFraction ?? 0.5, weights: weights ? [...weights] : undefined });
  return fused
    .filter((f) => f.mask.width > 0)
    .map((f) => ({ box: f.box, score: f.score, maskScore: f.score, categoryId: f.label, mask: f.mask }));
}

/** Predict one 8-bit gray image (row-major width x height). */
export async function predictGray(model: InstanceSegmenter, gray: Uint8Array, width: number, height: number, o: PredictorOptions): Promise<PredictedInstance[]> {
  const perPass = await predictPasses(model, gray, width, height, o);
  return o.tta ? fusePasses(perPass, width, height, o.wsf) : perPass[0]!;
}

/** predictGray of one model and options, as evaluation calls a model. */
export function imagePredictor(model: InstanceSegmenter, opts: PredictorOptions): ImagePredictor {
  return (gray, width, height) => predictGray(model, gray, width, height, opts);
}

/** Called after each image with its gray pixels and predictions (e.g. to draw an overlay). */
export type OnImagePredicted = (e: ImageEntry, img: GrayImage, predictions: readonly PredictedInstance[]) => void;

/** The COCO results of a list of image files (a progress bar on a terminal). */
export async function predictImages(model: InstanceSegmenter, entries: readonly ImageEntry[], opts: PredictorOptions, onImage?: OnImagePredicted): Promise<CocoResult[]> {
  return predictFiles(imagePredictor(model, opts), entries, opts.tta ? 'predict (TTA x4)' : 'predict', onImage);
}

/** The COCO results of any image predictor on a list of image files (PNG or TIFF). */
export async function predictFiles(predict: ImagePredictor, entries: readonly ImageEntry[], label: string, onImage?: OnImagePredicted): Promise<CocoResult[]> {
  const results: CocoResult[] = [];
  const bar = progress(label, entries.length);
  try {
    for (const e of entries) {
      const img = readImageGray(e.file);
      const preds = await predict(img.data, img.width, img.height);
      results.push(...toCocoResults(e.id, preds));
      onImage?.(e, img, preds);
      bar.tick();
    }
  } finally {
    bar.stop();
  }
  return results;
}

/** Build the model of `cfg` and load `weights` (all model tensors must be present). */
export async function loadModelForInference(cfg: CfgNode, weights: string): Promise<InstanceSegmenter> {
  await init();
  const model = buildTrainableModel(cfg);
  const r = await loadPretrainedWeights(weights, model);
  if (r.missing.length || r.skippedShape.length) {
    throw new UserError(`${weights} does not fit the model of this config: ${r.missing.length} tensors missing, ${r.skippedShape.length} of another shape (${[...r.missing, ...r.skippedShape].slice(0, 5).join(', ')}...)`);
  }
  model.eval();
  return model;
}
