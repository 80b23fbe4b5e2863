// detectron2 `detector_postprocess` for CenterMask: boxes scaled from the network's input size to
// the original size (float32, as Boxes.scale), clipped to the image, empty boxes dropped, then the
// 28x28 mask probabilities pasted into the CLIPPED boxes (the clip mutates pred_boxes before
// pasting) with grid_sample bilinear sampling and `>= threshold` (engine/ops/paste-masks.ts), each
// mask only inside its box's region and read back bit-packed.
import { indexSelect } from '../engine/ops/gather';
import { pasteMasksInImage, pasteMasksPacked, readPackedMasks, regionToMask, type MaskRegion } from '../engine/ops/paste-masks';
import { fromArray, scope, type Tensor } from '../engine/tensor';

export type { MaskRegion };

const f = Math.fround;

/**
 * Boxes.scale(out_w / in_w, out_h / in_h), Boxes.clip(out size) and Boxes.nonempty() in float32:
 * the clipped boxes and the rows kept (width > 0 and height > 0 after clipping).
 */
export function postprocessBoxes(boxes: ArrayLike<number>, inputSize: readonly [number, number], outputSize: readonly [number, number]): { boxes: Float32Array; keep: Int32Array } {
  if (boxes.length % 4) throw new Error(`postprocessBoxes: boxes must be [N * 4], got ${boxes.length} values`);
  const [inH, inW] = inputSize;
  const [outH, outW] = outputSize;
  if (!(inH > 0 && inW > 0 && outH > 0 && outW > 0)) throw new Error(`postprocessBoxes: sizes must be positive, got input [${inputSize}] output [${outputSize}]`);
  // A float32 tensor times a Python float: the scalar is rounded to float32 first.
  const sx = f(outW / inW);
  const sy = f(outH / inH);
  const n = boxes.length / 4;
  const clipped = new Float32Array(4 * n);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const x0 = Math.min(Math.max(f(boxes[4 * i]! * sx), 0), outW);
    const y0 = Math.min(Math.max(f(boxes[4 * i + 1]! * sy), 0), outH);
    const x1 = Math.min(Math.max(f(boxes[4 * i + 2]! * sx), 0), outW);
    const y1 = Math.min(Math.max(f(boxes[4 * i + 3]! * sy), 0), outH);
    clipped.set([x0, y0, x1, y1], 4 * i);
    if (f(x1 - x0) > 0 && f(y1 - y0) > 0) keep.push(i);
  }
  const kept = new Float32Array(4 * keep.length);
  keep.forEach((r, j) => kept.set(clipped.subarray(4 * r, 4 * r + 4), 4 * j));
  return { boxes: kept, keep: Int32Array.from(keep) };
}

/** Binary masks [N, H, W] (bool) of the kept detections, pasted on the GPU; no readback. */
export function pasteDetectionMasks(maskProbs: Tensor, keep: Int32Array, clippedBoxes: Float32Array, outputSize: readonly [number, number], opts: { threshold?: number; cpuRegion?: boolean } = {}): Tensor {
  return pasteMasksInImage(keptRows(maskProbs, keep), fromArray(clippedBoxes, [keep.length, 4]), outputSize, { threshold: opts.threshold ?? 0.5, cpuRegion: opts.cpuRegion });
}

function keptRows(maskProbs: Tensor, keep: Int32Array): Tensor {
  return keep.length === maskProbs.shape[0] && keep.every((r, j) => r === j) ? maskProbs : indexSelect(maskProbs, 0, fromArray(keep, [keep.length], 'i32'));
}

/**
 * The rows (ascending) of the detections with score >= scoreThreshold, then the topK highest
 * scores among them (ties: the earlier row). Either limit may be left out.
 */
export function selectDetections(scores: ArrayLike<number>, rows: ArrayLike<number>, opts: { scoreThreshold?: number; topK?: number }): Int32Array {
  const { scoreThreshold, topK } = opts;
  if (scoreThreshold !== undefined && Number.isNaN(scoreThreshold)) throw new Error('selectDetections: scoreThreshold is NaN');
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) throw new Error(`selectDetections: topK must be a non-negative integer, got ${topK}`);
  let sel = Array.from(rows);
  if (scoreThreshold !== undefined) sel = sel.filter((r) => scores[r]! >= scoreThreshold);
  if (topK !== undefined && sel.length > topK) {
    const top = new Set(sel.map((r, i) => [scores[r]!, i, r] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, topK).map((e) => e[2]));
    sel = sel.filter((r) => top.has(r));
  }
  return Int32Array.from(sel);
}

export interface PostprocessInput {
  /** [R * 4] boxes in input-image pixels (unclipped). */
  boxes: ArrayLike<number>;
  scores: ArrayLike<number>;
  classes: ArrayLike<number>;
  maskScores?: ArrayLike<number>;
  /** [R, 1, M, M] mask probabilities. */
  maskProbs?: Tensor;
  /** The resized, unpadded [h, w] the network saw, and the original [h, w]. */
  inputSize: readonly [number, number];
  outputSize: readonly [number, number];
  /** Default 0.5. */
  maskThreshold?: number;
  /** Paste only near each box, as Detectron2 on the CPU (same binary result at threshold 0.5). */
  cpuRegion?: boolean;
  /**
   * Filters a caller would apply afterwards, applied before pasting so the dropped detections are
   * never pasted (selectDetections on `scores`, after the empty boxes are dropped).
   */
  scoreThreshold?: number;
  topK?: number;
  /** Also build each mask at full image size in `masks` (default true); `maskRegions` always. */
  fullMasks?: boolean;
}

export interface PostprocessedDetections {
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  maskScores: Float32Array;
  /** Each outH x outW, 0/1, row-major (empty when no mask probabilities were given or fullMasks is false). */
  masks: Uint8Array[];
  /** Each mask inside its paste region (zero outside it); empty when no mask probabilities were given. */
  maskRegions: MaskRegion[];
  /** Row of the input each detection came from. */
  keep: Int32Array;
}

/**
 * detector_postprocess of one image; reads the pasted masks back (the end of inference). The masks
 * are pasted only inside each box's region and bit-packed (pasteMasksPacked: the same pixels as
 * the full-image paste), so neither the GPU buffer nor the readback grows with N x H x W.
 */
export async function detectorPostprocess(d: PostprocessInput): Promise<PostprocessedDetections> {
  const n = d.boxes.length / 4;
  if (d.scores.length !== n || d.classes.length !== n || (d.maskScores && d.maskScores.length !== n)) {
    throw new Error(`detectorPostprocess: ${n} boxes but ${d.scores.length} scores, ${d.classes.length} classes${d.maskScores ? `, ${d.maskScores.length} mask scores` : ''}`);
  }
  if (d.maskProbs && d.maskProbs.shape[0] !== n) throw new Error(`detectorPostprocess: ${n} boxes but maskProbs [${d.maskProbs.shape}]`);
  const clipped = postprocessBoxes(d.boxes, d.inputSize, d.outputSize);
  let { boxes, keep } = clipped;
  if (d.scoreThreshold !== undefined || d.topK !== undefined) {
    const pos = new Map(Array.from(keep, (r, j) => [r, j]));
    keep = selectDetections(d.scores, keep, d);
    boxes = new Float32Array(4 * keep.length);
    keep.forEach((r, j) => boxes.set(clipped.boxes.subarray(4 * pos.get(r)!, 4 * pos.get(r)! + 4), 4 * j));
  }
  const pick = <T extends Float32Array | Int32Array>(src: ArrayLike<number>, ctor: new (n: number) => T): T => {
    const out = new ctor(keep.length);
    keep.forEach((r, j) => (out[j] = src[r]!));
    return out;
  };
  const masks: Uint8Array[] = [];
  let maskRegions: MaskRegion[] = [];
  if (d.maskProbs && keep.length > 0) {
    const threshold = d.maskThreshold ?? 0.5;
    if (!(threshold >= 0)) throw new Error(`detectorPostprocess: maskThreshold must be >= 0, got ${threshold}`);
    const rows = keep;
    const packed = scope(() => pasteMasksPacked(keptRows(d.maskProbs!, rows), boxes, d.outputSize, { threshold, cpuRegion: d.cpuRegion }));
    maskRegions = await readPackedMasks(packed);
    if (d.fullMasks ?? true) for (const r of maskRegions) masks.push(regionToMask(r, d.outputSize));
  }
  return {
    boxes,
    scores: pick(d.scores, Float32Array),
    classes: pick(d.classes, Int32Array),
    maskScores: d.maskScores ? pick(d.maskScores, Float32Array) : pick(d.scores, Float32Array),
    masks,
    maskRegions,
    keep,
  };
}
