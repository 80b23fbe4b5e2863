// FCOS inference decoding as CenterMask2 `FCOSOutputs.predict_proposals` (THRESH_WITH_CTR = False):
// per image and level, p_cls = sigmoid(logits) and p_ctr = sigmoid(ctrness); candidates are the
// (location, class) pairs with p_cls > threshold (strict); at most preNmsTopK of them per level,
// ranked by p_cls * p_ctr; box = (x - l*s, y - t*s, x + r*s, y + b*s) (not clipped); score =
// sqrt(p_cls * p_ctr). Then over all levels: class-aware NMS (torchvision batched_nms, IoU > nmsTh
// suppresses), and if more than postNmsTopK survive, every box scoring >= the postNmsTopK-th
// largest score is kept (the original's kthvalue, which keeps ties), in score-descending order.
//
// Everything runs on the GPU. Reads back: the per-level candidate counts (one read for all levels
// and images, to size the selections), the NMS keep count (inside batchedNms), and the kept scores
// when the post-NMS cap applies. It is inference only: inputs are detached, nothing is recorded.
//
// Candidate order within a level is the original's `nonzero` order (locations row-major, classes
// ascending). When the pre-NMS cap binds, the original takes an unsorted top-k whose order is
// unspecified; here the top-k (ties: lower index) is put back into that same row-major order.
import { batchedNms } from '../../engine/ops/boxes';
import { cast, gt, mapRaw, mul, sigmoid, sqrt, where } from '../../engine/ops/elementwise';
import { indexSelect } from '../../engine/ops/gather';
import { cat, stack } from '../../engine/ops/join';
import { sum } from '../../engine/ops/reduce';
import { sort, topk } from '../../engine/ops/sort';
import { permute, reshape, select } from '../../engine/ops/view';
import { empty, fromArray, scopeAsync, type Tensor } from '../../engine/tensor';
import type { FcosPredictions } from './losses';

export interface FcosInferenceOptions {
  /** Per level [H*W*2] (x, y) locations (computeLocations). */
  locations: readonly Float32Array[];
  /** FPN strides per level. */
  strides: readonly number[];
  /** MODEL.FCOS.INFERENCE_TH_TEST / _TRAIN (default 0.05). */
  scoreThreshold?: number;
  /** MODEL.FCOS.PRE_NMS_TOPK_TEST / _TRAIN, per level and image (default 1000). */
  preNmsTopK?: number;
  /** MODEL.FCOS.NMS_TH (default 0.6). */
  nmsThreshold?: number;
  /** MODEL.FCOS.POST_NMS_TOPK_TEST / _TRAIN, per image; <= 0 disables the cap (default 100). */
  postNmsTopK?: number;
}

/** Detections of one image. Row r of every field describes the same box. */
export interface FcosDetections {
  /** [R, 4] (x0, y0, x1, y1) in input-image pixels, unclipped. */
  boxes: Tensor;
  /** [R] sqrt(p_cls * p_ctr). */
  scores: Tensor;
  /** [R] i32 class indices. */
  classes: Tensor;
  /** [R, 2] (x, y) of the location that predicted the box. */
  locations: Tensor;
  count: number;
}

export interface FcosImageProposals {
  /** All pre-NMS candidates, levels concatenated. */
  candidates: FcosDetections & { perLevel: number[] };
  /** After NMS and the post-NMS cap, score descending. */
  proposals: FcosDetections & { /** [R] i32 rows of `candidates`. */ candidateIndex: Tensor };
}

const DEFAULTS = { scoreThreshold: 0.05, preNmsTopK: 1000, nmsThreshold: 0.6, postNmsTopK: 100 };

function checkInputs(pred: FcosPredictions, opts: FcosInferenceOptions): { N: number; K: number } {
  const L = pred.logits.length;
  if (pred.bboxReg.length !== L || pred.ctrness.length !== L || opts.locations.length !== L || opts.strides.length !== L) {
    throw new Error(
      `fcosPredictProposals: level counts differ (logits ${L}, bboxReg ${pred.bboxReg.length}, ctrness ${pred.ctrness.length}, locations ${opts.locations.length}, strides ${opts.strides.length})`,
    );
  }
  if (L === 0) throw new Error('fcosPredictProposals: no feature levels');
  const N = pred.logits[0]!.shape[0]!;
  const K = pred.logits[0]!.shape[1]!;
  for (let l = 0; l < L; l++) {
    const [n, k, h, w] = pred.logits[l]!.shape;
    const expect = (t: Tensor, c: number, name: string) => {
      if (t.ndim !== 4 || t.shape[0] !== N || t.shape[1] !== c || t.shape[2] !== h || t.shape[3] !== w) {
        throw new Error(`fcosPredictProposals: ${name} level ${l} must be [${N}, ${c}, ${h}, ${w}], got [${t.shape}]`);
      }
    };
    if (pred.logits[l]!.ndim !== 4 || n !== N || k !== K) throw new Error(`fcosPredictProposals: logits level ${l} must be [${N}, ${K}, H, W], got [${pred.logits[l]!.shape}]`);
    expect(pred.bboxReg[l]!, 4, 'bboxReg');
    expect(pred.ctrness[l]!, 1, 'ctrness');
    if (opts.locations[l]!.length !== 2 * h! * w!) throw new Error(`fcosPredictProposals: level ${l} has ${h}x${w} cells but ${opts.locations[l]!.length / 2} locations`);
  }
  return { N, K };
}

/** Per-level scores of one image: p_cls [HW*K], p_cls * p_ctr [HW*K] (row-major loc, class). */
function levelScores(logits: Tensor, ctrness: Tensor, image: number): { pCls: Tensor; score: Tensor } {
  const [, K, H, W] = logits.shape as [number, number, number, number];
  const pCls = reshape(sigmoid(permute(select(logits, 0, image), [1, 2, 0])), [H * W, K]);
  const pCtr = sigmoid(reshape(select(ctrness, 0, image), [H * W, 1]));
  return { pCls: reshape(pCls, [H * W * K]), score: reshape(mul(pCls, pCtr), [H * W * K]) };
}

/** Box (x0, y0, x1, y1) = location (x, y, x, y) + (-l, -t, r, b) * stride, each step rounded in f32. */
function decodeBoxes(locs: Tensor, reg: Tensor, stride: number): Tensor {
  const n = locs.shape[0]!;
  const xyxy = indexSelect(locs, 1, fromArray([0, 1, 0, 1], [4], 'i32'));
  const sign = fromArray([-1, -1, 1, 1], [4]);
  // The product by ±1 is exact, so this is x - l*s and x + r*s exactly as the original rounds them.
  return mapRaw('fcos_decode_boxes', 'x + z * (y * s0)', [xyxy, reg, sign], [n, 4], 'f32', 'f32', [stride]);
}

function selectRows(d: FcosDetections, index: Tensor, count: number): FcosDetections {
  return {
    boxes: indexSelect(d.boxes, 0, index),
    scores: indexSelect(d.scores, 0, index),
    classes: indexSelect(d.classes, 0, index),
    locations: indexSelect(d.locations, 0, index),
    count,
  };
}

function emptyDetections(): FcosDetections {
  return { boxes: empty([0, 4]), scores: empty([0]), classes: empty([0], 'i32'), locations: empty([0, 2]), count: 0 };
}

/** The post-NMS cap on scores in descending order: positions with score >= the k-th largest. */
export function postNmsKeep(scores: ArrayLike<number>, k: number): number[] {
  const n = scores.length;
  const all = Array.from({ length: n }, (_, i) => i);
  if (!(k > 0) || n <= k) return all;
  const sorted = Array.from(scores).sort((a, b) => b - a);
  const thr = sorted[k - 1]!;
  return all.filter((i) => scores[i]! >= thr);
}

/** FCOS proposals for every image of the batch (predict_proposals). */
export async function fcosPredictProposals(pred: FcosPredictions, opts: FcosInferenceOptions): Promise<FcosImageProposals[]> {
  const { N, K } = checkInputs(pred, opts);
  const o = { ...DEFAULTS, ...opts };
  const L = pred.logits.length;
  return scopeAsync(async () => {
    const logits = pred.logits.map((t) => t.detach());
    const bboxReg = pred.bboxReg.map((t) => t.detach());
    const ctrness = pred.ctrness.map((t) => t.detach());
    const locationTensors = opts.locations.map((loc) => fromArray(loc, [loc.length / 2, 2]));

    // Scores and candidate counts of every (image, level); one readback for all the counts.
    const levels: { pCls: Tensor; score: Tensor; mask: Tensor }[][] = [];
    const counts: Tensor[] = [];
    for (let i = 0; i < N; i++) {
      levels.push([]);
      for (let l = 0; l < L; l++) {
        const { pCls, score } = levelScores(logits[l]!, ctrness[l]!, i);
        const mask = gt(pCls, o.scoreThreshold);
        levels[i]!.push({ pCls, score, mask });
        counts.push(sum(cast(mask, 'f32')));
      }
    }
    const countValues = await stack(counts, 0).toArray();

    const results: FcosImageProposals[] = [];
    for (let i = 0; i < N; i++) {
      const parts: FcosDetections[] = [];
      const perLevel: number[] = [];
      for (let l = 0; l < L; l++) {
        const n = Math.min(countValues[i * L + l]!, o.preNmsTopK);
        perLevel.push(n);
        if (n === 0) continue;
        const { score, mask } = levels[i]![l]!;
        // Non-candidates get -1 (scores are >= 0), so the top n are exactly the n best candidates.
        const ranked = where(mask, score, -1);
        const flat = sort(topk(ranked, n).indices).values;
        const loc = mapRaw('fcos_loc_of_flat', 'x / i32(s0)', [flat], [n], 'i32', 'i32', [K]);
        const cls = mapRaw('fcos_class_of_flat', 'x % i32(s0)', [flat], [n], 'i32', 'i32', [K]);
        const [, , H, W] = bboxReg[l]!.shape as [number, number, number, number];
        const regAll = reshape(permute(select(bboxReg[l]!, 0, i), [1, 2, 0]), [H * W, 4]);
        const locs = indexSelect(locationTensors[l]!, 0, loc);
        parts.push({
          boxes: decodeBoxes(locs, indexSelect(regAll, 0, loc), opts.strides[l]!),
          scores: sqrt(indexSelect(score, 0, flat)),
          classes: cls,
          locations: locs,
          count: n,
        });
      }
      const total = perLevel.reduce((a, b) => a + b, 0);
      const candidates: FcosDetections =
        total === 0
          ? emptyDetections()
          : {
              boxes: cat(parts.map((p) => p.boxes), 0),
              scores: cat(parts.map((p) => p.scores), 0),
              classes: cat(parts.map((p) => p.classes), 0),
              locations: cat(parts.map((p) => p.locations), 0),
              count: total,
            };

      let keep = total === 0 ? empty([0], 'i32') : await batchedNms(candidates.boxes, candidates.scores, candidates.classes, o.nmsThreshold);
      let kept = keep.shape[0]!;
      if (o.postNmsTopK > 0 && kept > o.postNmsTopK) {
        const keptScores = await indexSelect(candidates.scores, 0, keep).toArray();
        const positions = postNmsKeep(keptScores, o.postNmsTopK);
        keep = indexSelect(keep, 0, fromArray(positions, [positions.length], 'i32'));
        kept = positions.length;
      }
      const proposals = kept === 0 ? emptyDetections() : selectRows(candidates, keep, kept);
      results.push({ candidates: { ...candidates, perLevel }, proposals: { ...proposals, candidateIndex: keep } });
    }
    return results;
  });
}
