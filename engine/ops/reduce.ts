// Reductions over any set of axes: sum, mean, max, min, prod (values), plus var/std built from
// them. kernels/reduce/reduce.ts reads the input view through its strides (kept dims, reduced dims), so
// reductions over leading or middle dims cost no copy.
import { record } from '../autograd';
import { type DType, isFloat } from '../../runtime/dtype';
import { contiguousCopy, empty, normDim, type Tensor } from '../tensor';
import { extremumGradFused, launchExtremumGrad, launchReduce, type ReduceOp } from '../../kernels/reduce/reduce';
import { numelOf } from '../../runtime/shape';
import { expand, installSumToShape, reshape } from './view';
import { eq, mapRaw, mulScalar, sub, square, sqrt, where } from './elementwise';

export interface ReduceOptions {
  keepdim?: boolean;
}

function normAxes(t: Tensor, axes: number | readonly number[] | undefined): number[] {
  if (axes === undefined) return t.shape.map((_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const d = [...new Set(list.map((a) => normDim(a, t.ndim)))].sort((a, b) => a - b);
  return d;
}

function keptShape(t: Tensor, axes: number[], keepdim: boolean): number[] {
  return keepdim ? t.shape.map((n, i) => (axes.includes(i) ? 1 : n)) : t.shape.filter((_, i) => !axes.includes(i));
}

/** Forward without autograd: reduce `axes` of `t` with `op`, result of dtype `outType`. */
function reduceRaw(op: ReduceOp, t: Tensor, axes: number[], keepdim: boolean, outType: DType, scale = 1): Tensor {
  const keptDims = t.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const out = empty(keptShape(t, axes, keepdim), outType);
  if (out.numel > 0) {
    if (axes.some((i) => t.shape[i] === 0)) throw new Error(`${op}: reduction over an empty dimension of [${t.shape}]`);
    // The kernel reads the view through its strides: no permute + copy whichever dims are reduced.
    const kept = { shape: keptDims.map((i) => t.shape[i]!), strides: keptDims.map((i) => t.strides[i]!) };
    const reduced = { shape: axes.map((i) => t.shape[i]!), strides: axes.map((i) => t.strides[i]!) };
    launchReduce(op, t.buffer, t.offset, t.dtype, kept, reduced, out.buffer, outType, scale);
  }
  return out;
}

function sumDtype(d: DType): DType {
  return isFloat(d) ? 'f32' : d === 'bool' ? 'i32' : d;
}

export function sum(t: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  const ax = normAxes(t, axes);
  const keepdim = opts.keepdim ?? false;
  const out = reduceRaw('sum', t, ax, keepdim, sumDtype(t.dtype));
  return record(out, 'sum', [t], (g) => [expand(reshape(g, keptShape(t, ax, true)), t.shape)]);
}

export function mean(t: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  if (!isFloat(t.dtype)) throw new Error(`mean: needs a float tensor, got ${t.dtype}`);
  const ax = normAxes(t, axes);
  const keepdim = opts.keepdim ?? false;
  const n = numelOf(ax.map((i) => t.shape[i]!));
  const out = reduceRaw('sum', t, ax, keepdim, 'f32', 1 / n);
  return record(out, 'mean', [t], (g) => [mulScalar(expand(reshape(g, keptShape(t, ax, true)), t.shape), 1 / n)]);
}

export function prod(t: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  const ax = normAxes(t, axes);
  const keepdim = opts.keepdim ?? false;
  const out = reduceRaw('prod', t, ax, keepdim, sumDtype(t.dtype));
  // d prod / d x_i = product of the other elements. Computed from the product of the nonzero
  // elements and the zero count (PyTorch's rule): no zeros -> prod / x_i; one zero -> the
  // nonzero product at the zero, 0 elsewhere; two or more -> 0. Never divides by zero.
  return record(out, 'prod', [t], (g) => {
    const shape = keptShape(t, ax, true);
    const isZero = eq(t, 0);
    const zeroCount = reduceRaw('sum', isZero, ax, true, 'f32');
    const nonzero = where(isZero, 1, t);
    const prodNonzero = reduceRaw('prod', nonzero, ax, true, 'f32');
    const gk = reshape(g, shape);
    const grad = mapRaw(
      'prod_bw',
      'select(select(0.0, w * x, z == 1.0 && y == 0.0), w * x / y, z == 0.0)',
      [prodNonzero, t, zeroCount, gk],
      t.shape,
      'f32',
      'f32',
    );
    for (const tmp of [isZero, zeroCount, nonzero, prodNonzero]) tmp.dispose();
    return [grad];
  });
}

function extremum(op: 'max' | 'min', t: Tensor, axes: number | readonly number[] | undefined, opts: ReduceOptions): Tensor {
  const ax = normAxes(t, axes);
  const keepdim = opts.keepdim ?? false;
  const out = reduceRaw(op, t, ax, keepdim, t.dtype);
  // The gradient is shared equally among tied maxima (PyTorch's amax/amin rule).
  return record(out, op, [t], (g) => {
    if (isFloat(t.dtype) && extremumGradFused(t.shape, t.strides, ax)) {
      // One kernel per output group (count the ties, then write the shares): no mask tensor.
      const gc = g.isContiguous() ? g : contiguousCopy(g);
      const grad = empty(t.shape, 'f32');
      launchExtremumGrad(t.buffer, t.offset, t.dtype, t.shape, t.strides, ax, out.buffer, out.offset, gc.buffer, gc.offset, gc.dtype, grad.buffer);
      if (gc !== g) gc.dispose();
      return [grad];
    }
    const shape = keptShape(t, ax, true);
    const best = reshape(out, shape);
    const mask = eq(t, expand(best, t.shape));
    const count = reduceRaw('sum', mask, ax, true, 'f32');
    // (g / count) * mask in one pass; the same arithmetic as the unfused form, so a NaN extremum
    // (count 0) still gives NaN, as PyTorch's amax backward does.
    const grad = mapRaw('extremum_bw', '(z / w) * select(0.0, 1.0, x == y)', [t, best, reshape(g, shape), count], t.shape, 'f32', 'f32');
    mask.dispose();
    count.dispose();
    return [grad];
  });
}

export const max = (t: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}) => extremum('max', t, axes, opts);
export const min = (t: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}) => extremum('min', t, axes, opts);

/** Variance (unbiased by default, like torch.var). */
export function variance(t: Tensor, axes?: number | readonly number[], opts: ReduceOptions & { unbiased?: boolean } = {}): Tensor {
  const ax = normAxes(t, axes);
  const n = numelOf(ax.map((i) => t.shape[i]!));
  const m = mean(t, ax, { keepdim: true });
  const d = sub(t, m);
  const s = sum(square(d), ax, { keepdim: opts.keepdim ?? false });
  // n - 1 = 0 (one element, unbiased) gives 0 * inf = NaN, as torch.var does.
  return mulScalar(s, 1 / ((opts.unbiased ?? true) ? n - 1 : n));
}

export function std(t: Tensor, axes?: number | readonly number[], opts: ReduceOptions & { unbiased?: boolean } = {}): Tensor {
  return sqrt(variance(t, axes, opts));
}

/** Sum a broadcast gradient back to `shape` (installed as view.ts's sumToShape). */
function sumToShapeImpl(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((n, i) => n === shape[i])) return g;
  const off = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < off || (shape[i - off] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, { keepdim: true }) : g;
  const r = reshape(s, shape);
  if (s !== g && r !== s && !r.requiresGrad) s.dispose(); // r holds its own storage reference
  return r;
}
installSumToShape(sumToShapeImpl);

