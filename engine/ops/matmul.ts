// matmul (torch.matmul semantics: 1-D operands promoted and squeezed, batch dims broadcast) and
// the fused linear layer y = act(x·wᵀ + b), forward and backward side by side. Transposed
// operands (views whose last two dims are column-major) go to the kernel as they are: the
// backward's g·Bᵀ and Aᵀ·g are strided views, never copies. Kernels: kernels/matmul/.
// dtypes: both operands f32, or both f16 (f16 storage, f32 accumulation; under autocast both are
// cast to f16, as torch's autocast does for matmul/linear), giving an output of their dtype; f16
// with f32 outside autocast multiplies in f32. The bias is f32 and the gradients take their
// operand's dtype.
import { autocastF16 } from '../amp/autocast';
import { record } from '../autograd';
import { contiguousCopy, empty, full, type Tensor } from '../tensor';
import { contiguousStrides } from '../../runtime/shape';
import { type MatmulConfig } from '../../kernels/matmul/chooser';
import { launchMatmul } from '../../kernels/matmul/launch';
import { type Activation, matrixLayout } from '../../kernels/matmul/problem';
import { mapRaw, toF32 } from './elementwise';
import { sum } from './reduce';
import { reshape, squeeze, sumToShape, unsqueeze } from './view';

export type { MatmulConfig } from '../../kernels/matmul/chooser';
export type { Activation } from '../../kernels/matmul/problem';

interface RawOptions {
  /** The output's dtype (default: the operands'); f32 from f16 operands keeps the f32 sums. */
  outDtype?: 'f32' | 'f16';
  bias?: Tensor;
  act?: Activation;
  config?: MatmulConfig;
}

function batchShapeOf(a: Tensor, b: Tensor): number[] {
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const n = Math.max(ba.length, bb.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = ba[ba.length - n + i] ?? 1;
    const y = bb[bb.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`matmul: batch dims [${ba}] of [${a.shape}] and [${bb}] of [${b.shape}] cannot be broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** act(a·b + bias) for operands with >= 2 dims, no autograd. Operands whose matrices are neither
 *  row- nor column-major are copied to contiguous first; everything else is read in place. */
function matmulRaw(a: Tensor, b: Tensor, opts: RawOptions = {}): Tensor {
  if ((a.dtype !== 'f32' && a.dtype !== 'f16') || a.dtype !== b.dtype) throw new Error(`matmul: operands must be both f32 or both f16, got ${a.dtype} and ${b.dtype}`);
  if (opts.bias && opts.bias.dtype !== 'f32') throw new Error(`matmul: bias must be f32, got ${opts.bias.dtype}`);
  const M = a.shape[a.ndim - 2]!;
  const K = a.shape[a.ndim - 1]!;
  const N = b.shape[b.ndim - 1]!;
  if (b.shape[b.ndim - 2] !== K) throw new Error(`matmul: shapes [${a.shape}] and [${b.shape}] cannot be multiplied (${K} != ${b.shape[b.ndim - 2]})`);
  const dtype = opts.outDtype ?? a.dtype;
  const out = empty([...batchShapeOf(a, b), M, N], dtype);
  if (out.numel === 0) return out;
  if (K === 0) {
    // An empty sum: the epilogue of zero.
    out.dispose();
    const z = full(out.shape, 0, dtype);
    if (!opts.bias && (opts.act ?? 'none') === 'none') return z;
    const r = mapRaw('matmul_k0', opts.act === 'relu' ? 'max(x + y, 0.0)' : 'x + y', [z, opts.bias ?? full([], 0)], out.shape, dtype, 'f32');
    z.dispose();
    return r;
  }
  const ac = matrixLayout(a) ? a : contiguousCopy(a);
  const bc = matrixLayout(b) ? b : contiguousCopy(b);
  const bias = opts.bias && !opts.bias.isContiguous() ? contiguousCopy(opts.bias) : opts.bias;
  launchMatmul({ a: ac, b: bc, out, bias, act: opts.act }, opts.config);
  if (ac !== a) ac.dispose();
  if (bc !== b) bc.dispose();
  if (bias !== opts.bias) bias!.dispose();
  return out;
}

/** A view of the last two dims swapped (no autograd, no copy). */
function mT(t: Tensor): Tensor {
  const n = t.ndim;
  const shape = [...t.shape];
  const strides = [...t.strides];
  [shape[n - 2], shape[n - 1]] = [shape[n - 1]!, shape[n - 2]!];
  [strides[n - 2], strides[n - 1]] = [strides[n - 1]!, strides[n - 2]!];
  return t.viewAs(shape, strides, t.offset);
}

/** dA = g·Bᵀ, summed over A's broadcast batch dims. */
function gradA(g: Tensor, a: Tensor, b: Tensor): Tensor {
  const bt = mT(b);
  const r = matmulRaw(g, bt);
  bt.dispose();
  const s = sumToShape(r, a.shape);
  if (s !== r) r.dispose();
  return s;
}

/** dB = Aᵀ·g, summed over B's broadcast batch dims. A plain [K, N] weight with batched A folds
 *  the batch into one long-K product instead of a batch of products plus a reduction. */
function gradB(g: Tensor, a: Tensor, b: Tensor): Tensor {
  if (b.ndim === 2 && a.ndim > 2) {
    const K = a.shape[a.ndim - 1]!;
    const N = g.shape[g.ndim - 1]!;
    const a2 = reshape(a, [-1, K]);
    const g2 = reshape(g, [-1, N]);
    const a2t = mT(a2);
    const r = matmulRaw(a2t, g2);
    for (const t of [a2t, a2, g2]) t.dispose();
    return r;
  }
  const at = mT(a);
  const r = matmulRaw(at, g);
  at.dispose();
  const s = sumToShape(r, b.shape);
  if (s !== r) r.dispose();
  return s;
}

function matmulNd(a: Tensor, b: Tensor): Tensor {
  const out = matmulRaw(a, b);
  return record(out, 'matmul', [a, b], (g) => [a.requiresGrad ? gradA(g, a, b) : null, b.requiresGrad ? gradB(g, a, b) : null]);
}

/** Dispose an intermediate view unless the autograd graph still needs it. */
function release(t: Tensor): void {
  if (!t.requiresGrad) t.dispose();
}

/**
 * Matrix product with torch.matmul semantics: 1-D·1-D is a dot product (a scalar); a 1-D first
 * operand is a row vector and a 1-D second operand a column vector (the added dim is removed
 * again); otherwise the last two dims multiply and the leading (batch) dims broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  [a, b] = operandsOf(a, b);
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both operands need at least 1 dim, got [${a.shape}] and [${b.shape}] (use mul for scalars)`);
  if (a.ndim >= 2 && b.ndim >= 2) return matmulNd(a, b);
  const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
  const mid = matmulNd(a2, b2);
  let out: Tensor;
  if (a.ndim === 1 && b.ndim === 1) out = reshape(mid, []);
  else if (a.ndim === 1) out = squeeze(mid, -2);
  else out = squeeze(mid, -1);
  release(mid);
  if (a2 !== a) release(a2);
  if (b2 !== b) release(b2);
  return out;
}

/**
 * Fused linear layer y = act(x·wᵀ + b): x [..., in], w [out, in] (read transposed in place), b
 * [out] or none, act 'none' | 'relu'. One kernel for the forward (bias and ReLU in its epilogue).
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null, act: Activation = 'none'): Tensor {
  [x, w] = operandsOf(x, w);
  if (b) b = toF32(b);
  if (w.ndim !== 2) throw new Error(`linear: weight must be [out, in], got [${w.shape}]`);
  if (x.ndim < 1) throw new Error('linear: input needs at least 1 dim');
  const [outF, inF] = w.shape as [number, number];
  if (x.shape[x.ndim - 1] !== inF) throw new Error(`linear: input [${x.shape}] has ${x.shape[x.ndim - 1]} features, weight [${w.shape}] expects ${inF}`);
  if (b && (b.ndim !== 1 || b.shape[0] !== outF)) throw new Error(`linear: bias must be [${outF}], got [${b.shape}]`);
  const lead = x.shape.slice(0, -1);
  const rows = lead.reduce((p, n) => p * n, 1);
  // A 2-D input is read through its strides; other ranks are folded into rows.
  const as2d = () => (x.ndim === 2 ? x : reshapeDense(x, [rows, inF]));
  const x2 = as2d();
  const wt = mT(w);
  const y2 = matmulRaw(x2, wt, { bias: b ?? undefined, act });
  wt.dispose();
  if (x2 !== x) x2.dispose();
  const out = x.ndim === 2 ? y2 : reshapeDense(y2, [...lead, outF]);
  if (out !== y2) y2.dispose();
  return record(out, 'linear', b ? [x, w, b] : [x, w], (g) => {
    const g2 = reshapeDense(g, [rows, outF]);
    let gz = g2;
    if (act === 'relu') {
      // ReLU backward: the gradient passes where the output is positive.
      const y = reshapeDense(out, [rows, outF]);
      gz = mapRaw('relu_mask_bw', 'select(0.0, x, y > 0.0)', [g2, y], [rows, outF], g2.dtype, 'f32');
      y.dispose();
    }
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      const r = matmulRaw(gz, w); // [rows, out]·[out, in]
      gx = x.ndim === 2 ? r : reshapeDense(r, x.shape);
      if (gx !== r) r.dispose();
    }
    let gw: Tensor | null = null;
    if (w.requiresGrad) {
      const gzt = mT(gz);
      const xs = as2d();
      // In f32 (as conv's dw): a sum over every row, which an f16 store could overflow.
      gw = matmulRaw(gzt, xs, { outDtype: 'f32' }); // [out, rows]·[rows, in]
      gzt.dispose();
      if (xs !== x) xs.dispose();
    }
    const gb = b?.requiresGrad ? sum(gz, 0) : null;
    if (gz !== g2) gz.dispose();
    if (g2 !== g) g2.dispose();
    return b ? [gx, gw, gb] : [gx, gw];
  });
}

/** The operands of a product: under autocast both cast to f16 (a parameter's cast cached for the
 *  scope); otherwise f16 with f32 promotes to f32. */
function operandsOf(a: Tensor, b: Tensor): [Tensor, Tensor] {
  a = autocastF16(a);
  b = autocastF16(b);
  return a.dtype === b.dtype ? [a, b] : [toF32(a), toF32(b)];
}

/** A dense view of a contiguous tensor with another shape (copies when not contiguous). */
function reshapeDense(t: Tensor, shape: readonly number[]): Tensor {
  const src = t.isContiguous() ? t : contiguousCopy(t);
  const v = src.viewAs(shape, contiguousStrides(shape), src.offset);
  if (src !== t) src.dispose();
  return v;
}

/** The reference kernel (one output per invocation), forward only: for checking the fast ones. */
export function matmulNaive(a: Tensor, b: Tensor): Tensor {
  return matmulRaw(a, b, { config: { kernel: 'naive' } });
}

/** act(a·b + bias) with a chosen kernel configuration, forward only (tests and benchmarks). */
export function matmulWith(a: Tensor, b: Tensor, config: MatmulConfig, opts: { bias?: Tensor; act?: Activation } = {}): Tensor {
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmulWith: operands need >= 2 dims, got [${a.shape}] and [${b.shape}]`);
  return matmulRaw(a, b, { ...opts, config });
}
