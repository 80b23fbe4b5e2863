// softmax and logSoftmax over one dim, numerically stable (the row maximum is subtracted before
// exp). The fast path is the row kernel of kernels/reduce/softmax.ts on contiguous last-dim rows; any
// other dim or layout is permuted last (copied when not dense) and the result permuted back. The
// kernel splits rows into binding-sized blocks; a single row over one binding takes the reference
// composition (whose ops all split).
// softmaxReference / logSoftmaxReference compose the same math from elementwise and reduce ops:
// the readable reference the kernel is tested against.
import { record } from '../autograd';
import { contiguousCopy, empty, normDim, type Tensor } from '../tensor';
import { launchSoftmax, launchSoftmaxBackward, type SoftmaxKind } from '../../kernels/reduce/softmax';
import { itemsPerBinding } from '../../kernels/large';
import { numelOf } from '../../runtime/shape';
import { exp, log, sub, div, toF32 } from './elementwise';
import { max, sum } from './reduce';

/** Permutation moving `dim` last, and its inverse. */
function lastDimPerm(ndim: number, dim: number): { perm: number[]; inv: number[] } {
  const perm = [...Array.from({ length: ndim }, (_, i) => i).filter((i) => i !== dim), dim];
  const inv = new Array<number>(ndim);
  perm.forEach((src, dst) => (inv[src] = dst));
  return { perm, inv };
}

/** A raw (no autograd) permuted view. */
function permuteRaw(t: Tensor, perm: readonly number[]): Tensor {
  return t.viewAs(perm.map((i) => t.shape[i]!), perm.map((i) => t.strides[i]!), t.offset);
}

/** `t` with `dim` last, as dense rows (a view when already dense, else a copy). */
function asRows(t: Tensor, perm: readonly number[]): Tensor {
  const p = permuteRaw(t, perm);
  if (p.isContiguous()) return p;
  const c = contiguousCopy(p);
  p.dispose();
  return c;
}

function softmaxOp(kind: SoftmaxKind, t: Tensor, dim: number): Tensor {
  if (t.dtype !== 'f32') throw new Error(`${kind}: needs an f32 tensor, got ${t.dtype}`);
  if (t.ndim === 0) throw new Error(`${kind}: needs at least one dimension, got a 0-d tensor`);
  const d = normDim(dim, t.ndim);
  const len = t.shape[d]!;
  // One row over a storage binding: the reference's max / exp / sum ops split any size.
  if (itemsPerBinding(len * 4) < 1) return softmaxComposed(kind, t, d);
  const { perm, inv } = lastDimPerm(t.ndim, d);
  const rows = numelOf(t.shape) / Math.max(1, len);
  const src = asRows(t, perm);
  const yRows = empty(src.shape, 'f32');
  if (len > 0 && rows > 0) launchSoftmax(kind, src.buffer, src.offset, yRows.buffer, rows, len);
  src.dispose();
  const out = permuteRaw(yRows, inv);
  yRows.dispose(); // out holds the storage
  return record(out, kind, [t], (g) => {
    const y = asRows(out, perm);
    const gRows = asRows(g, perm);
    const gxRows = empty(y.shape, 'f32');
    if (len > 0 && rows > 0) launchSoftmaxBackward(kind, y.buffer, y.offset, gRows.buffer, gRows.offset, gxRows.buffer, rows, len);
    y.dispose();
    gRows.dispose();
    return [permuteRaw(gxRows, inv)];
  });
}

/** The reference math with the row maximum detached (the result does not depend on the shift, so
 *  its gradient is zero): every op in it splits over the storage binding limit. */
function softmaxComposed(kind: SoftmaxKind, t: Tensor, dim: number): Tensor {
  const m = t.detach();
  const shifted = sub(t, max(m, dim, { keepdim: true }));
  m.dispose();
  if (kind === 'logSoftmax') return sub(shifted, log(sum(exp(shifted), dim, { keepdim: true })));
  const e = exp(shifted);
  return div(e, sum(e, dim, { keepdim: true }));
}

/** exp(x - max) / sum(exp(x - max)) along `dim` (default: the last). */
export function softmax(t: Tensor, dim = -1): Tensor {
  return softmaxOp('softmax', toF32(t), dim);
}

/** x - max - log(sum(exp(x - max))) along `dim` (default: the last). */
export function logSoftmax(t: Tensor, dim = -1): Tensor {
  return softmaxOp('logSoftmax', toF32(t), dim);
}

/** Reference softmax from elementwise and reduce ops (slower; differentiable through them). */
export function softmaxReference(t: Tensor, dim = -1): Tensor {
  const e = exp(sub(t, max(t, dim, { keepdim: true })));
  return div(e, sum(e, dim, { keepdim: true }));
}

export function logSoftmaxReference(t: Tensor, dim = -1): Tensor {
  const shifted = sub(t, max(t, dim, { keepdim: true }));
  return sub(shifted, log(sum(exp(shifted), dim, { keepdim: true })));
}
