// CenterMask's ROI pooler: each box goes to one FPN level by the "ratio" criterion (CenterMask
// paper Eq. 2) and is pooled there with ROIAlignV2 (aligned, adaptive sampling). Level assignment
// runs on the CPU: the boxes come from inference (already read back after NMS) or from training
// proposal sampling, both CPU-side.
import { fromArray, type Tensor, empty } from '../../engine/tensor';
import { roiAlign } from '../../engine/ops/roi-align';
import { cat } from '../../engine/ops/join';
import { indexSelect } from '../../engine/ops/gather';

/** Boxes of one image: x0, y0, x1, y1 per row, in input-image coordinates. */
export type BoxList = Float32Array | number[];

const EPS = 2.220446049250313e-16; // sys.float_info.epsilon

/**
 * level = ceil(5 - log2(imgArea / boxArea + eps)) clamped to [minLevel, maxLevel], computed in
 * float32 like the original (boxes are float32 tensors there); returns level - minLevel.
 */
export function assignLevelsByRatio(boxes: BoxList, imageArea: number, minLevel = 3, maxLevel = 5): Int32Array {
  const n = boxes.length / 4;
  const out = new Int32Array(n);
  const f = Math.fround;
  for (let i = 0; i < n; i++) {
    const area = f(f(f(boxes[4 * i + 2]!) - f(boxes[4 * i]!)) * f(f(boxes[4 * i + 3]!) - f(boxes[4 * i + 1]!)));
    const ratio = f(f(imageArea) / area);
    const lvl = Math.ceil(f(5 - f(Math.log2(f(ratio + EPS)))));
    out[i] = Math.min(Math.max(lvl, minLevel), maxLevel) - minLevel;
  }
  return out;
}

export interface PoolerOptions {
  outputSize: number;
  /** 1/stride of each level, finest first. */
  scales: number[];
  samplingRatio?: number;
}

/**
 * Pool boxes of a batch: `boxesPerImage[i]` are the boxes of image i, `imageSizes[i]` its unpadded
 * [h, w]. Returns [R, C, S, S] in the concatenated box order, and the level of each box.
 */
export function poolRois(features: Tensor[], boxesPerImage: BoxList[], imageSizes: [number, number][], opts: PoolerOptions): { pooled: Tensor; levels: Int32Array } {
  const total = boxesPerImage.reduce((s, b) => s + b.length / 4, 0);
  const C = features[0]!.shape[1]!;
  const S = opts.outputSize;
  const levels = new Int32Array(total);
  const perLevel: { rows: number[]; order: number[] }[] = opts.scales.map(() => ({ rows: [], order: [] }));
  let r = 0;
  boxesPerImage.forEach((boxes, img) => {
    const [h, w] = imageSizes[img]!;
    const lv = assignLevelsByRatio(boxes, h * w, 3, 3 + opts.scales.length - 1);
    for (let i = 0; i < lv.length; i++, r++) {
      levels[r] = lv[i]! + 3;
      const L = perLevel[lv[i]!]!;
      L.rows.push(img, boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!);
      L.order.push(r);
    }
  });
  if (total === 0) return { pooled: empty([0, C, S, S]), levels };
  const parts: Tensor[] = [];
  const order: number[] = [];
  perLevel.forEach((L, l) => {
    if (!L.order.length) return;
    const rois = fromArray(L.rows, [L.order.length, 5]);
    parts.push(roiAlign(features[l]!, rois, { outputSize: S, spatialScale: opts.scales[l]!, samplingRatio: opts.samplingRatio ?? 0, aligned: true }));
    order.push(...L.order);
  });
  const stacked = parts.length === 1 ? parts[0]! : cat(parts, 0);
  // Put the rows back in box order: row order[j] of the output is stacked row j.
  const inverse = new Int32Array(total);
  order.forEach((dst, j) => (inverse[dst] = j));
  const pooled = indexSelect(stacked, 0, fromArray(inverse, [total], 'i32'));
  return { pooled, levels };
}
