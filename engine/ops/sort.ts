// Sorting along one dimension on the GPU (kernels/indexing/sort.ts): sort, argsort, topk. Ordering is
// stable (ties keep ascending original index, like torch.sort(stable=True)); top-k returns the
// lowest index first among ties. NaN sorts as the largest value (last ascending, first
// descending), -0 ties with +0. Rows up to ~100k elements (padded to a power of two; the limit is
// memory: two u32 scratch words per padded element).
// Backward of the values: the gradient is scattered back to the original positions (the indices
// of a row are distinct, so this is a conflict-free scatter, not a scatter-add).
import { record } from '../autograd';
import type { DType } from '../../runtime/dtype';
import { contiguousCopy, empty, normDim, type Tensor, zeros } from '../tensor';
import { launchScatterRows } from '../../kernels/indexing/scatter';
import { launchSortRows } from '../../kernels/indexing/sort';
import { transpose } from './view';

export interface SortResult {
  values: Tensor;
  /** Positions along the sorted dim in the input (i32). */
  indices: Tensor;
}

const SORTABLE: readonly DType[] = ['f32', 'f16', 'i32', 'u32'];

/** The first `k` of each sorted row of the last dim of `t`, with autograd on the values. */
function sortLastDim(op: string, t: Tensor, k: number, descending: boolean): SortResult {
  if (!SORTABLE.includes(t.dtype)) throw new Error(`${op}: cannot sort ${t.dtype} tensors (f32, f16, i32, u32 are supported)`);
  const n = t.ndim === 0 ? 1 : t.shape[t.ndim - 1]!;
  const rows = n === 0 ? 0 : t.numel / n;
  const outShape = t.ndim === 0 ? [] : [...t.shape.slice(0, -1), k];
  const values = empty(outShape, t.dtype);
  const indices = empty(outShape, 'i32');
  const src = t.isContiguous() ? t : contiguousCopy(t);
  launchSortRows(src.buffer, src.offset, t.dtype, rows, n, descending, k, values.buffer, indices.buffer);
  if (src !== t) src.dispose();
  record(values, op, [t], (g) => {
    const gc = g.isContiguous() ? g : contiguousCopy(g);
    // A full sort writes every position; a top-k leaves the rest at zero.
    const gi = k === n ? empty(t.shape, g.dtype) : zeros(t.shape, g.dtype);
    launchScatterRows(gc, indices, gi, rows, k, n);
    if (gc !== g) gc.dispose();
    return [gi];
  });
  return { values, indices };
}

/** Run a last-dim operation along `dim` by swapping it to the end and back (views, autograd kept). */
function alongDim(t: Tensor, dim: number, fn: (x: Tensor) => SortResult): SortResult {
  if (t.ndim === 0) return fn(t);
  const d = normDim(dim, t.ndim);
  const last = t.ndim - 1;
  if (d === last) return fn(t);
  const moved = transpose(t, d, last);
  const r = fn(moved);
  const out = { values: transpose(r.values, d, last), indices: transpose(r.indices, d, last) };
  // The intermediates are graph nodes (and the saved indices) when a gradient is recorded; the
  // enclosing scope frees them then. Without a graph they can go now (the views keep storage).
  if (!out.values.requiresGrad) {
    moved.dispose();
    r.values.dispose();
    r.indices.dispose();
  }
  return out;
}

/** Sort along `dim` (default last), ascending unless `descending`. Stable. */
export function sort(t: Tensor, dim = -1, descending = false): SortResult {
  return alongDim(t, dim, (x) => sortLastDim('sort', x, x.ndim === 0 ? 1 : x.shape[x.ndim - 1]!, descending));
}

/** Indices that sort `t` along `dim` (stable). */
export function argsort(t: Tensor, dim = -1, descending = false): Tensor {
  const { values, indices } = sort(t, dim, descending);
  values.dispose();
  return indices;
}

/** The k largest (or smallest) elements along `dim`, sorted; among ties the lowest index first. */
export function topk(t: Tensor, k: number, dim = -1, largest = true): SortResult {
  const n = t.ndim === 0 ? 1 : t.shape[normDim(dim, t.ndim)]!;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`topk: k must be an integer in [0, ${n}] (the size of dim ${dim}), got ${k}`);
  return alongDim(t, dim, (x) => sortLastDim('topk', x, k, largest));
}
