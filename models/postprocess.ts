// detectron2 `detector_postprocess` for CenterMask: boxes scaled from the network's input size to
// the original size (float32, as Boxes.scale), clipped to the image, empty boxes dropped, then the
// 28x28 mask probabilities pasted into the CLIPPED boxes (the clip mutates pred_boxes before
// pasting) with grid_sample bilinear sampling and `>= threshold` (core/ops/paste-masks.ts).
import { indexSelect } from '../core/ops/gather';
import { pasteMasksInImage } from '../core/ops/paste-masks';
import { fromArray, scopeAsync, type Tensor } from '../core/tensor';

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
  const kept = keep.length === maskProbs.shape[0] && keep.every((r, j) => r === j) ? maskProbs : indexSelect(maskProbs, 0, fromArray(keep, [keep.length], 'i32'));
  return pasteMasksInImage(kept, fromArray(clippedBoxes, [keep.length, 4]), outputSize, { threshold: opts.threshold ?? 0.5, cpuRegion: opts.cpuRegion });
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
}

export interface PostprocessedDetections {
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  maskScores: Float32Array;
  /** Each outH x outW, 0/1, row-major (empty when no mask probabilities were given). */
  masks: Uint8Array[];
  /** Row of the input each detection came from. */
  keep: Int32Array;
}

/** detector_postprocess of one image; reads the pasted masks back (the end of inference). */
export async function detectorPostprocess(d: PostprocessInput): Promise<PostprocessedDetections> {
  const n = d.boxes.length / 4;
  if (d.scores.length !== n || d.classes.length !== n || (d.maskScores && d.maskScores.length !== n)) {
    throw new Error(`detectorPostprocess: ${n} boxes but ${d.scores.length} scores, ${d.classes.length} classes${d.maskScores ? `, ${d.maskScores.length} mask scores` : ''}`);
  }
  if (d.maskProbs && d.maskProbs.shape[0] !== n) throw new Error(`detectorPostprocess: ${n} boxes but maskProbs [${d.maskProbs.shape}]`);
  const { boxes, keep } = postprocessBoxes(d.boxes, d.inputSize, d.outputSize);
  const pick = <T extends Float32Array | Int32Array>(src: ArrayLike<number>, ctor: new (n: number) => T): T => {
    const out = new ctor(keep.length);
    keep.forEach((r, j) => (out[j] = src[r]!));
    return out;
  };
  const masks: Uint8Array[] = [];
  if (d.maskProbs && keep.length > 0) {
    const [h, w] = d.outputSize;
    const bits = await scopeAsync(async () => {
      const pasted = pasteDetectionMasks(d.maskProbs!, keep, boxes, d.outputSize, { threshold: d.maskThreshold, cpuRegion: d.cpuRegion });
      return (await pasted.data()) as Uint32Array;
    });
    for (let j = 0; j < keep.length; j++) masks.push(Uint8Array.from(bits.subarray(j * h * w, (j + 1) * h * w)));
  }
  return {
    boxes,
    scores: pick(d.scores, Float32Array),
    classes: pick(d.classes, Int32Array),
    maskScores: d.maskScores ? pick(d.maskScores, Float32Array) : pick(d.scores, Float32Array),
    masks,
    keep,
  };
}
