// Matmuls whose operands are larger than one storage binding (kernels/large.ts). The problem is
// cut along one of its axes (a batch dim, M, N or K) into sub-problems whose operands each fit a
// binding window, recursively: the axis chosen is the one whose extent spans the most bytes of an
// operand that does not fit (so each cut shrinks the windows fastest), in blocks as long as fit
// (or in halves when no block of that axis alone makes everything fit, and the halves are cut
// further along other axes).
// - batch dims, M and N: independent sub-products, each written into its slice of the output
//   (through a dense scratch result copied into place where the slice is not dense: N blocks);
// - K: partial products summed into the output in block order, the epilogue (bias, ReLU) applied
//   once at the end.
// Each sub-problem goes through launchMatmul with its operands rebound to windows, so it gets the
// kernel and tile its own shape calls for.
import { DTYPE_BYTES } from '../../runtime/dtype';
import { contiguousStrides, numelOf, type View } from '../../runtime/shape';
import { rt } from '../define-kernel';
import { launchMap } from '../elementwise/map';
import { bindingLimit, viewWith, windowBytesBound, windowed } from '../large';
import { adapterCaps, choosePlan, type MatmulConfig } from './chooser';
import { packedPanelBytes } from './subgroup';
import { kChunks } from './split-k';
import type { Activation, MatmulArgs } from './problem';

/** What launch.ts passes in (this file does not import it: no cycle). */
export type LaunchMatmul = (args: MatmulArgs, config?: MatmulConfig) => MatmulConfig;

/** The four operands of a (sub-)problem as rank r+2 views: A [...batch, M, K], B [...batch, K, N],
 *  O [...batch, M, N] (any strides), bias [N] or null. */
interface Sub {
  a: View;
  b: View;
  o: View;
  bias: View | null;
}

/** One axis of the problem: its extent and its dim in each operand (-1: absent). */
interface Axis {
  n: number;
  dims: [a: number, b: number, o: number, bias: number];
  reduce: boolean;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** launchMatmul's contract (out dense from out.offset) when some operand is over the binding
 *  limit. `a` and `b` have been checked by launchMatmul. */
export function launchMatmulSplit(launch: LaunchMatmul, args: MatmulArgs, config: MatmulConfig | undefined): void {
  const { a, b, out } = args;
  const r = Math.max(a.shape.length, b.shape.length) - 2;
  const dimOf = (v: View, d: number) => v.shape[d - (r + 2 - v.shape.length)] ?? 1;
  const batchShape = Array.from({ length: r }, (_, d) => Math.max(dimOf(a, d), dimOf(b, d)));
  const M = a.shape[a.shape.length - 2]!;
  const K = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 1]!;
  // Broadcast both operands' batch dims to the output's (stride 0 where broadcast).
  const bcast = (v: View, rows: number, cols: number): View => {
    const vb = v.shape.length - 2;
    const shape = [...batchShape, rows, cols];
    const strides = shape.map((_, d) => {
      if (d >= r) return v.strides[vb + d - r]!;
      const src = d - (r - vb);
      return src >= 0 && v.shape[src] !== 1 ? v.strides[src]! : 0;
    });
    return viewWith(v, { shape, strides });
  };
  const oShape = [...batchShape, M, N];
  const sub: Sub = {
    a: bcast(a, M, K),
    b: bcast(b, K, N),
    o: { buffer: out.buffer, dtype: out.dtype, shape: oShape, strides: contiguousStrides(oShape), offset: out.offset },
    bias: args.bias ? viewWith(args.bias) : null,
  };
  const axes: Axis[] = batchShape.map((n, i) => ({ n, dims: [i, i, i, -1], reduce: false }));
  axes.push({ n: M, dims: [r, -1, r, -1], reduce: false });
  axes.push({ n: N, dims: [-1, r + 1, r + 1, 0], reduce: false });
  axes.push({ n: K, dims: [r + 1, r, -1, -1], reduce: true });
  solve(launch, sub, axes, args.act ?? 'none', config);
}

const operands = (s: Sub): (View | null)[] => [s.a, s.b, s.o, s.bias];
/** Bytes per element of operand j as windows are sized: the output at 4 whatever its storage, so
 *  that a K split's f32 sums of an f16 output block fit a binding too. */
const elemBytes = (v: View, j: number) => (j === 2 ? 4 : DTYPE_BYTES[v.dtype]);

function fitsAll(s: Sub): boolean {
  const limit = bindingLimit();
  return operands(s).every((v, j) => !v || windowBytesBound(v.shape, v.strides, elemBytes(v, j)) <= limit);
}

/** `s` restricted to [start, start + len) along `axis`. */
function slice(s: Sub, axis: Axis, start: number, len: number): Sub {
  const cut = (v: View | null, d: number): View | null => {
    if (!v || d < 0) return v;
    const shape = [...v.shape];
    shape[d] = len;
    return viewWith(v, { shape, offset: v.offset + start * v.strides[d]! });
  };
  const [da, db, dob, dbias] = axis.dims;
  return { a: cut(s.a, da)!, b: cut(s.b, db)!, o: cut(s.o, dob)!, bias: cut(s.bias, dbias) };
}

/** Bytes an axis spans in the operands that do not fit (what cutting it can shrink). */
function spanOf(s: Sub, axis: Axis): number {
  const limit = bindingLimit();
  let span = 0;
  operands(s).forEach((v, j) => {
    const d = axis.dims[j]!;
    if (!v || d < 0 || axis.n <= 1) return;
    if (windowBytesBound(v.shape, v.strides, elemBytes(v, j)) <= limit) return;
    span = Math.max(span, (axis.n - 1) * Math.abs(v.strides[d]!) * elemBytes(v, j));
  });
  // Prefer independent axes over K (whose blocks need summing) when they shrink as much.
  return axis.reduce ? span / 2 : span;
}

function solve(launch: LaunchMatmul, s: Sub, axes: Axis[], act: Activation, config: MatmulConfig | undefined): void {
  if (fitsAll(s)) return launchWindowed(launch, s, act, config);
  let best = -1;
  let bestSpan = 0;
  axes.forEach((ax, i) => {
    const span = spanOf(s, ax);
    if (span > bestSpan) [best, bestSpan] = [i, span];
  });
  if (best < 0) throw new Error(`matmul: operands [${s.a.shape}] · [${s.b.shape}] cannot be split to fit a ${bindingLimit()}-byte storage binding`);
  const axis = axes[best]!;
  // The longest block along the axis with which everything fits; halves when none does.
  let lo = 0;
  let hi = axis.n;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fitsAll(slice(s, axis, 0, mid))) lo = mid;
    else hi = mid - 1;
  }
  const block = lo > 0 ? lo : Math.ceil(axis.n / 2);
  const narrowed = (len: number) => axes.map((ax, i) => (i === best ? { ...ax, n: len } : ax));
  if (!axis.reduce) {
    for (let i = 0; i < axis.n; i += block) {
      const len = Math.min(block, axis.n - i);
      solve(launch, slice(s, axis, i, len), narrowed(len), act, config);
    }
    return;
  }
  // K blocks: partial products summed in block order into dense scratch sums (ping-pong: a
  // dispatch may not read and write one buffer), then the epilogue writes the output. The sums
  // are f32 whatever the output's storage (an f16 output is rounded once, at the epilogue).
  const o = s.o;
  const bytes = Math.max(numelOf(o.shape), 1) * 4;
  const dense = (buffer: GPUBuffer): View => ({ buffer, dtype: 'f32', shape: o.shape, strides: contiguousStrides(o.shape), offset: 0 });
  const pool = rt().pool;
  let acc = dense(pool.acquire(bytes, USAGE(), 'matmul.split.k'));
  const part = dense(pool.acquire(bytes, USAGE(), 'matmul.split.k'));
  let next = dense(pool.acquire(bytes, USAGE(), 'matmul.split.k'));
  for (let i = 0; i < axis.n; i += block) {
    const len = Math.min(block, axis.n - i);
    const sub = slice(s, axis, i, len);
    solve(launch, { ...sub, o: i === 0 ? acc : part, bias: null }, narrowed(len), 'none', config);
    if (i === 0) continue;
    launchMap({ name: 'matmul_k_acc', expr: 'a + b', inputs: [acc, part], out: next });
    [acc, next] = [next, acc];
  }
  const inputs: View[] = [acc];
  let expr = 'a';
  if (s.bias) {
    const bias = s.bias;
    inputs.push(viewWith(bias, { shape: o.shape, strides: o.shape.map((_, d) => (d === o.shape.length - 1 ? bias.strides[0]! : 0)) }));
    expr = 'a + b';
  }
  if (act === 'relu') expr = `max(${expr}, 0.0)`;
  launchMap({ name: 'matmul_epilogue', expr, inputs, out: o });
  for (const v of [acc, part, next]) pool.release(v.buffer);
}

/** One launch of a sub-problem whose operands each fit a window. */
function launchWindowed(launch: LaunchMatmul, s: Sub, act: Activation, config: MatmulConfig | undefined): void {
  const r = s.o.shape.length - 2;
  const M = s.o.shape[r]!;
  const N = s.o.shape[r + 1]!;
  const K = s.a.shape[r + 1]!;
  const nBatch = numelOf(s.o.shape.slice(0, r));
  if (nBatch * M * N === 0) return;
  let cfg = config ?? choosePlan(M, N, K, nBatch);
  // The subgroup kernel's packed copy of B (padded to whole panels) must fit a binding too.
  if (cfg.kernel === 'subgroup' && packedPanelBytes(N, K, nBatch) > bindingLimit()) cfg = choosePlan(M, N, K, nBatch, { ...adapterCaps(), subgroups8: false });
  // So must split-K's workspace [nBatch·splits, M, N].
  if (cfg.kernel !== 'naive' && (cfg.splits ?? 1) > 1) {
    const { splits } = kChunks(K, cfg.splits!);
    if (nBatch * splits * M * N * 4 > bindingLimit()) cfg = { ...cfg, splits: 1 };
  }
  const a = windowed(s.a);
  const b = windowed(s.b);
  const bias = s.bias ? windowed(s.bias) : undefined;
  const dense = s.o.strides.every((st, d) => st === contiguousStrides(s.o.shape)[d] || s.o.shape[d] === 1);
  if (dense) {
    launch({ a, b, out: windowed(s.o), bias, act }, cfg);
    return;
  }
  // A slice of the output that is not dense (an N block): a dense result, copied into place.
  const tmp = rt().pool.acquire(nBatch * M * N * DTYPE_BYTES[s.o.dtype], USAGE(), 'matmul.split.out');
  const t: View = { buffer: tmp, dtype: s.o.dtype, shape: s.o.shape, strides: contiguousStrides(s.o.shape), offset: 0 };
  launch({ a, b, out: t, bias, act }, cfg);
  launchMap({ name: 'copy', expr: 'a', inputs: [t], out: s.o });
  rt().pool.release(tmp);
}
