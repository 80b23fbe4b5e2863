// argmax / argmin over one dim (or over the flattened tensor when dim is omitted), returning i32
// indices; ties give the first index and NaN counts as the extreme, as in PyTorch. Not
// differentiable (indices). Over a dim: read through the strides (column kernel), or as dense
// rows (copied when needed) where kernels/reduce/argreduce.ts prefers rows.
import { contiguousCopy, empty, normDim, type Tensor } from '../tensor';
import { argReduceColumn, launchArgReduce, launchArgReduceStrided, type ArgOp } from '../../kernels/reduce/argreduce';
import { numelOf } from '../../runtime/shape';
import { overBindingLimit } from '../../kernels/large';

export interface ArgReduceOptions {
  keepdim?: boolean;
}

function argReduce(op: ArgOp, t: Tensor, dim: number | undefined, opts: ArgReduceOptions): Tensor {
  if (t.numel === 0) throw new Error(`${op}: cannot reduce an empty tensor of shape [${t.shape}]`);
  const keepdim = opts.keepdim ?? false;
  let rowsView: Tensor;
  let outShape: number[];
  let len: number;
  if (dim === undefined || t.ndim === 0) {
    // Flattened index, like torch.argmax(t).
    len = t.numel;
    outShape = keepdim ? t.shape.map(() => 1) : [];
    rowsView = t.isContiguous() ? t.viewAs([len], [1], t.offset) : contiguousCopy(t);
  } else {
    const d = normDim(dim, t.ndim);
    len = t.shape[d]!;
    if (len === 0) throw new Error(`${op}: dim ${dim} of [${t.shape}] is empty`);
    outShape = keepdim ? t.shape.map((n, i) => (i === d ? 1 : n)) : t.shape.filter((_, i) => i !== d);
    const perm = [...t.shape.map((_, i) => i).filter((i) => i !== d), d];
    const p = t.viewAs(perm.map((i) => t.shape[i]!), perm.map((i) => t.strides[i]!), t.offset);
    // Over one storage binding only the row kernel splits (blocks of rows).
    if (!overBindingLimit(t.buffer) && argReduceColumn(numelOf(outShape), len, p.isContiguous())) {
      // Read through the strides: no copy for non-innermost dims.
      p.dispose();
      const out = empty(outShape, 'i32');
      const kept = { shape: perm.slice(0, -1).map((i) => t.shape[i]!), strides: perm.slice(0, -1).map((i) => t.strides[i]!) };
      launchArgReduceStrided(op, t.buffer, t.offset, t.dtype, out.buffer, kept, len, t.strides[d]!);
      return out;
    }
    rowsView = p.isContiguous() ? p : contiguousCopy(p);
    if (rowsView !== p) p.dispose();
  }
  const out = empty(outShape, 'i32');
  launchArgReduce(op, rowsView.buffer, rowsView.offset, rowsView.dtype, out.buffer, numelOf(outShape), len);
  if (rowsView !== t) rowsView.dispose();
  return out;
}

/** Index of the maximum along `dim` (i32; first on ties). Without dim: index into the flattened tensor. */
export function argmax(t: Tensor, dim?: number, opts: ArgReduceOptions = {}): Tensor {
  return argReduce('argmax', t, dim, opts);
}

/** Index of the minimum along `dim` (i32; first on ties). Without dim: index into the flattened tensor. */
export function argmin(t: Tensor, dim?: number, opts: ArgReduceOptions = {}): Tensor {
  return argReduce('argmin', t, dim, opts);
}
