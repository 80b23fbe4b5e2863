// Box ops: pairwise IoU, top-k by score, and torchvision-exact NMS / batched (class-aware) NMS on
// the GPU. Ordering everywhere: score descending, equal scores by lower index (what torchvision's
// nms gives). NMS is inference-only: the whole pipeline (sort, IoU bitmask, greedy pass) runs on
// the GPU; `nmsGpu` returns a padded keep list and its count without reading anything back, and
// `nms` / `batchedNms` read back only the count at the end to size the result.
import { rt } from '../../runtime/runtime';
import { cast, mapRaw, toF32 } from './elementwise';
import { max } from './reduce';
import { narrow, reshape } from './view';
import { empty, full, type Tensor } from '../tensor';
import { launchNmsGreedy, launchNmsMask, launchPairwiseIou, launchSortDescending, NMS_MAX_BOXES, nextPow2 } from '../../kernels/detection/boxes';

function denseFromZero(t: Tensor): Tensor {
  if (t.isContiguous() && t.offset === 0) return t;
  return mapRaw('copy', 'x', [t], t.shape, t.dtype, t.dtype === 'f32' ? 'f32' : t.dtype);
}

function checkBoxes(op: string, t: Tensor, name = 'boxes'): void {
  if (t.ndim !== 2 || t.shape[1] !== 4) throw new Error(`${op}: ${name} must have shape [N, 4] (x0, y0, x1, y1), got [${t.shape}]`);
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
}

/** torchvision box_iou: [N, 4] x [M, 4] -> [N, M] (no gradient). */
export function boxIou(a: Tensor, b: Tensor): Tensor {
  a = toF32(a);
  b = toF32(b);
  checkBoxes('boxIou', a, 'boxes1');
  checkBoxes('boxIou', b, 'boxes2');
  const n = a.shape[0]!;
  const m = b.shape[0]!;
  const ad = denseFromZero(a);
  const bd = denseFromZero(b);
  const out = empty([n, m]);
  if (n * m > 0) launchPairwiseIou(ad.buffer, bd.buffer, out.buffer, n, m);
  if (ad !== a) ad.dispose();
  if (bd !== b) bd.dispose();
  return out;
}

/** Full descending sort of a 1-D f32 tensor: values and i32 indices (ties by lower index). */
export function sortScoresDescending(scores: Tensor): { values: Tensor; indices: Tensor } {
  scores = toF32(scores);
  if (scores.ndim !== 1 || scores.dtype !== 'f32') throw new Error(`sortScoresDescending: expected a 1-D f32 tensor, got [${scores.shape}] ${scores.dtype}`);
  const n = scores.shape[0]!;
  const padded = nextPow2(Math.max(n, 2));
  const keys = empty([padded]);
  const idx = empty([padded], 'i32');
  const src = scores.isContiguous() ? scores : denseFromZero(scores);
  launchSortDescending(src.buffer, src.offset, n, keys.buffer, idx.buffer);
  if (src !== scores) src.dispose();
  const values = narrow(keys, 0, 0, n);
  const indices = narrow(idx, 0, 0, n);
  keys.dispose();
  idx.dispose();
  return { values, indices };
}

/** The k largest scores (descending; equal scores by lower index) and their i32 indices. */
export function topkScores(scores: Tensor, k: number): { values: Tensor; indices: Tensor } {
  if (scores.ndim !== 1) throw new Error(`topkScores: expected a 1-D tensor of scores, got [${scores.shape}]`);
  if (!Number.isInteger(k) || k < 0) throw new Error(`topkScores: k must be a non-negative integer, got ${k}`);
  const n = scores.shape[0]!;
  const kk = Math.min(k, n);
  const all = sortScoresDescending(scores);
  const values = narrow(all.values, 0, 0, kk);
  const indices = narrow(all.indices, 0, 0, kk);
  all.values.dispose();
  all.indices.dispose();
  return { values, indices };
}

export type BatchedNmsMethod = 'auto' | 'class-mask' | 'offset';

export interface NmsOptions {
  /** Class (category) of each box [N]; with it, boxes of different classes never suppress each other. */
  idxs?: Tensor;
  /**
   * How classes are separated: 'class-mask' requires equal classes in the IoU mask (torchvision's
   * _batched_nms_vanilla); 'offset' shifts each class's boxes by idx * (max coordinate + 1)
   * (torchvision's _batched_nms_coordinate_trick, which can differ from the former by f32
   * rounding of the shifted coordinates); 'auto' (default) picks as torchvision does on the CPU:
   * vanilla when boxes.numel() > 4000, else the coordinate trick.
   */
  method?: BatchedNmsMethod;
}

/**
 * NMS without readback: `keep` [N] i32 holds the kept box indices in score order, then -1;
 * `count` [1] i32 is how many were kept. IoU > iouThreshold suppresses (as torchvision).
 */
export function nmsGpu(boxes: Tensor, scores: Tensor, iouThreshold: number, opts: NmsOptions = {}): { keep: Tensor; count: Tensor } {
  const op = 'nms';
  // f16 boxes and scores (autocast) are compared in f32.
  boxes = toF32(boxes);
  scores = toF32(scores);
  checkBoxes(op, boxes);
  const n = boxes.shape[0]!;
  if (scores.ndim !== 1 || scores.shape[0] !== n || scores.dtype !== 'f32') throw new Error(`${op}: scores must be f32 [${n}], got [${scores.shape}] ${scores.dtype}`);
  if (n > NMS_MAX_BOXES) throw new Error(`${op}: at most ${NMS_MAX_BOXES} boxes per call, got ${n}`);
  const words = Math.ceil(n / 32);
  if (n * words * 4 > 128 * 1024 * 1024) throw new Error(`${op}: the ${n}x${n} IoU bitmask exceeds the 128 MiB binding limit`);
  const keep = empty([n], 'i32');
  if (n === 0) return { keep, count: full([1], 0, 'i32') };
  const count = empty([1], 'i32');
  let classes: Tensor | undefined;
  let nmsBoxes = boxes;
  if (opts.idxs) {
    const idxs = opts.idxs;
    if (idxs.ndim !== 1 || idxs.shape[0] !== n) throw new Error(`${op}: idxs must have shape [${n}], got [${idxs.shape}]`);
    const method = opts.method ?? 'auto';
    const useOffset = method === 'offset' || (method === 'auto' && n * 4 <= 4000);
    if (useOffset) {
      // torchvision: boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None], all in f32.
      const maxCoord = max(boxes);
      const idxF = reshape(cast(idxs, 'f32'), [n, 1]);
      // Two kernels: in one, the compiler may fuse the product into the add (one rounding where
      // torchvision rounds twice; NVIDIA's does).
      const offsets = mapRaw('nms_class_offset', 'x * (y + 1.0)', [idxF, maxCoord], [n, 1], 'f32', 'f32');
      nmsBoxes = mapRaw('nms_class_shift', 'x + y', [boxes, offsets], [n, 4], 'f32', 'f32');
      offsets.dispose();
      maxCoord.dispose();
      idxF.dispose();
    } else {
      classes = denseFromZero(idxs.dtype === 'i32' ? idxs : cast(idxs, 'i32'));
    }
  }
  const bd = denseFromZero(nmsBoxes);
  const sorted = sortScoresDescending(scores);
  const pool = rt().pool;
  const mask = pool.acquire(Math.max(16, n * words * 4), GPUBufferUsage.STORAGE, 'nms.mask');
  const cls = classes ?? empty([1], 'i32');
  launchNmsMask(bd.buffer, sorted.indices.buffer, cls.buffer, mask, n, iouThreshold, !!classes);
  launchNmsGreedy(mask, sorted.indices.buffer, keep.buffer, count.buffer, n);
  pool.release(mask);
  for (const t of [bd, nmsBoxes, cls, sorted.values, sorted.indices]) if (t !== boxes && t !== opts.idxs) t.dispose();
  return { keep, count };
}

/** torchvision.ops.nms: kept indices (i32) in decreasing score order. Reads back one count. */
export async function nms(boxes: Tensor, scores: Tensor, iouThreshold: number): Promise<Tensor> {
  const { keep, count } = nmsGpu(boxes, scores, iouThreshold);
  const k = await count.item();
  count.dispose();
  const out = narrow(keep, 0, 0, k);
  keep.dispose();
  return out;
}

/** torchvision.ops.batched_nms (class-aware): kept indices (i32) in decreasing score order. */
export async function batchedNms(boxes: Tensor, scores: Tensor, idxs: Tensor, iouThreshold: number, method: BatchedNmsMethod = 'auto'): Promise<Tensor> {
  const { keep, count } = nmsGpu(boxes, scores, iouThreshold, { idxs, method });
  const k = await count.item();
  count.dispose();
  const out = narrow(keep, 0, 0, k);
  keep.dispose();
  return out;
}
