// A model's predictions on one image and their COCO results form (Detectron2's
// instances_to_coco_json, as CenterMask2's evaluator writes it): bbox XYWH, segm as compressed COCO
// RLE, score = mask score.
import { cocoRleToJson, cropToCocoRle } from '../../structures/coco-rle';
import type { MaskCrop } from '../../structures/mask-crop';
import type { CocoResult } from '../data/coco/types';
import type { Box } from '../fusion/wbf';

export interface PredictedInstance {
  /** XYXY in the original image. */
  box: Box;
  score: number;
  maskScore: number;
  categoryId: number;
  mask: MaskCrop;
}

/** COCO results of one image: bbox XYWH, segm RLE, score = mask score. */
export function toCocoResults(imageId: number, preds: readonly PredictedInstance[]): CocoResult[] {
  return preds.map((p) => ({
    image_id: imageId,
    category_id: p.categoryId,
    bbox: [p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]],
    score: p.maskScore,
    segmentation: cocoRleToJson(cropToCocoRle(p.mask)),
  }));
}
