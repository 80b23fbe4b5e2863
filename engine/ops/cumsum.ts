// cumsum along one dim (kernels/reduce/scan.ts on dense rows; other dims are permuted last and copied when
// needed). Backward: the gradient of y_k = sum_{j<=k} x_j is gx_j = sum_{k>=j} g_k, a reverse
// cumsum of g. Integer and bool inputs sum in i32/u32 (like torch, which sums them in int64).
import { record } from '../autograd';
import { isFloat, type DType } from '../../runtime/dtype';
import { contiguousCopy, empty, normDim, type Tensor } from '../tensor';
import { launchCumsum } from '../../kernels/reduce/scan';
import { numelOf } from '../../runtime/shape';

function permuteRaw(t: Tensor, perm: readonly number[]): Tensor {
  return t.viewAs(perm.map((i) => t.shape[i]!), perm.map((i) => t.strides[i]!), t.offset);
}

/** Scan `t` along `d` (forward or reverse) into a new tensor of t's shape (no autograd). */
function scanRaw(t: Tensor, d: number, outType: DType, reverse: boolean): Tensor {
  const perm = [...t.shape.map((_, i) => i).filter((i) => i !== d), d];
  const inv = new Array<number>(perm.length);
  perm.forEach((src, dst) => (inv[src] = dst));
  const p = permuteRaw(t, perm);
  const rowsSrc = p.isContiguous() ? p : contiguousCopy(p);
  const len = t.shape[d]!;
  const rows = len === 0 ? 0 : numelOf(t.shape) / len;
  const outRows = empty(p.shape, outType);
  if (rows > 0) launchCumsum(rowsSrc.buffer, rowsSrc.offset, t.dtype, outRows.buffer, outType, rows, len, reverse);
  if (rowsSrc !== p) rowsSrc.dispose();
  p.dispose();
  const out = permuteRaw(outRows, inv);
  outRows.dispose();
  return out;
}

/** Inclusive cumulative sum along `dim`. */
export function cumsum(t: Tensor, dim: number): Tensor {
  const outType: DType = isFloat(t.dtype) ? 'f32' : t.dtype === 'bool' ? 'i32' : t.dtype;
  if (t.ndim === 0) {
    // A 0-d tensor is its own cumsum (dim 0 or -1, as in torch).
    normDim(dim, 1);
    const v = t.viewAs([1], [1], t.offset);
    const one = scanRaw(v, 0, outType, false);
    const out = one.viewAs([], [], one.offset);
    v.dispose();
    one.dispose();
    return isFloat(t.dtype) ? record(out, 'cumsum', [t], (g) => [g]) : out;
  }
  const d = normDim(dim, t.ndim);
  const out = scanRaw(t, d, outType, false);
  if (!isFloat(t.dtype)) return out;
  return record(out, 'cumsum', [t], (g) => [scanRaw(g, d, 'f32', true)]);
}
