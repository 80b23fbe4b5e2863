// Evaluation of a model on a COCO ground-truth set (Detectron2's inference_on_dataset with its COCO
// evaluator): the model is a function from an image to its predictions (engine/predictor.ts's
// imagePredictor binds a model and the predictor options), called on every image, then
//   segm/* and bbox/*: COCO AP (pycocotools semantics; maxDets 1/10/100 as Detectron2's
//   COCOEvaluator unless given: pycocotools reports AP at 100 detections and AP50/AP75 and the area
//   APs at the largest maxDets), in percent as Detectron2 reports them; segm results ranked by mask
//   score (detection score x predicted mask IoU) and boxes by the detection score, as CenterMask2's
//   evaluator does;
//   competition/score: the Sartorius metric (mean over images of the IoU-threshold-averaged
//   TP/(TP+FP+FN)) of the post-processed masks (per-type score threshold, overlap removal, minimum
//   size: what a submission would contain), against the ground-truth masks.
import type { CocoDataset, CocoResult } from '../data/coco/types';
import { cocoRleToCrop, segmentationToCocoRle } from '../../structures/coco-rle';
import { cropToRuns } from '../../structures/mask-crop';
import { cocoEvaluate, SUMMARY_KEYS } from './coco-eval';
import { competitionScore, type MetricImage } from './competition-metric';
import { DEFAULT_POSTPROCESS, postprocessImage, type PostprocessOptions } from '../post/postprocess';
import { readImageGray } from '../io/image';
import { resolveImage } from '../data/image-list';
import { toCocoResults, type PredictedInstance } from './coco-results';

/** The predictions of one 8-bit gray image (row-major width x height), in original-image coordinates. */
export type ImagePredictor = (gray: Uint8Array, width: number, height: number) => Promise<PredictedInstance[]>;

export interface EvaluationOutput {
  metrics: Record<string, number>;
  results: CocoResult[];
  /** Competition score per image file name. */
  perImage: Record<string, number>;
}

export interface EvaluateOptions {
  imageRoot: string;
  postprocess?: PostprocessOptions;
  readGray?: (file: string, width: number, height: number) => Uint8Array;
  onImage?: () => void;
  /** COCOeval params.maxDets (default [1, 10, 100]); crowded images need [1, 100, 1000]. */
  maxDets?: number[];
}

export async function inferenceOnDataset(predict: ImagePredictor, gt: CocoDataset, o: EvaluateOptions): Promise<EvaluationOutput> {
  const read = o.readGray ?? ((f: string, w: number, h: number) => readImageGray(f, { width: w, height: h }).data);
  const results: CocoResult[] = [];
  const boxResults: CocoResult[] = [];
  const metricImages: MetricImage[] = [];
  const gtByImage = new Map<number, typeof gt.annotations>();
  for (const a of gt.annotations) (gtByImage.get(a.image_id) ?? gtByImage.set(a.image_id, []).get(a.image_id)!).push(a);
  for (const im of gt.images) {
    const gray = read(resolveImage(o.imageRoot, im.file_name), im.width, im.height);
    const preds: PredictedInstance[] = await predict(gray, im.width, im.height);
    const rs = toCocoResults(im.id, preds);
    results.push(...rs);
    boxResults.push(...rs.map((r, i) => ({ ...r, score: preds[i]!.score })));
    const post = postprocessImage(
      preds.map((p) => ({ score: p.score, categoryId: p.categoryId, mask: p.mask })),
      im.width,
      im.height,
      o.postprocess ?? DEFAULT_POSTPROCESS,
    );
    const truth = (gtByImage.get(im.id) ?? [])
      .filter((a) => !a.iscrowd && a.segmentation !== undefined)
      .map((a) => cropToRuns(cocoRleToCrop(segmentationToCocoRle(a.segmentation, im.height, im.width))));
    metricImages.push({ id: im.file_name, width: im.width, truth, pred: post.masks });
    o.onImage?.();
  }
  const metrics: Record<string, number> = {};
  for (const iouType of ['bbox', 'segm'] as const) {
    const s = cocoEvaluate(gt, iouType === 'bbox' ? boxResults : results, { iouType, maxDets: o.maxDets }).summary;
    for (const k of SUMMARY_KEYS.slice(0, 6)) metrics[`${iouType}/${k}`] = s[k] < 0 ? NaN : s[k] * 100;
  }
  const comp = competitionScore(metricImages);
  metrics['competition/score'] = comp.score;
  return { metrics, results, perImage: comp.perImage };
}
