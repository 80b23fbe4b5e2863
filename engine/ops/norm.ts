// Normalisation layers over NCHW (any number of trailing spatial dims): FrozenBatchNorm2d (a folded
// per-channel scale and shift), BatchNorm2d (train: batch statistics and running-stat update; eval:
// running statistics) and GroupNorm. Statistics and gradient sums are fixed-order workgroup
// reductions on the GPU (kernels/norm/norm.ts); tiny per-channel / per-group combinations use the
// generic ops. Each forward records its backward right below it. f16 inputs (autocast) give f16
// outputs and gradients; statistics, affine parameters and their gradients stay f32.
import { isGradEnabled, record } from '../autograd';
import { empty, full, type Tensor } from '../tensor';
import { reshape } from './view';
import { sum } from './reduce';
import { mapRaw, mul } from './elementwise';
import {
  launchBnRunningUpdate,
  launchNormApply,
  launchNormGradInput,
  launchNormGradPartials,
  launchNormStats,
} from '../../kernels/norm/norm';

function checkNchw(op: string, x: Tensor): { batch: number; channels: number; hw: number } {
  if (x.ndim < 2) throw new Error(`${op}: expected input [N, C, ...], got shape [${x.shape}]`);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new Error(`${op}: expected an f32 or f16 input, got ${x.dtype}`);
  let hw = 1;
  for (let d = 2; d < x.ndim; d++) hw *= x.shape[d]!;
  return { batch: x.shape[0]!, channels: x.shape[1]!, hw };
}

function checkPerChannel(op: string, name: string, t: Tensor | undefined, channels: number): void {
  if (!t) return;
  if (t.ndim !== 1 || t.shape[0] !== channels) throw new Error(`${op}: ${name} must have shape [${channels}], got [${t.shape}]`);
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
}

/** Shape [C, 1, 1, ...] that broadcasts a per-channel vector against [N, C, ...]. */
function channelShape(x: Tensor): number[] {
  return [x.shape[1]!, ...x.shape.slice(2).map(() => 1)];
}

// ---- FrozenBatchNorm2d ---------------------------------------------------------------------

export interface FrozenBatchNormParams {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  /** Default 1e-5 (Detectron2's FrozenBatchNorm2d). */
  eps?: number;
}

/** Detectron2's folding: scale = w / sqrt(var + eps), shift = b - mean * scale (no autograd). */
export function foldFrozenBatchNorm(p: FrozenBatchNormParams): { scale: Tensor; shift: Tensor } {
  const c = p.weight.shape[0]!;
  for (const [name, t] of [['weight', p.weight], ['bias', p.bias], ['runningMean', p.runningMean], ['runningVar', p.runningVar]] as const) {
    checkPerChannel('frozenBatchNorm2d', name, t, c);
  }
  const scale = mapRaw('frozen_bn_scale', 'x * inverseSqrt(y + s0)', [p.weight, p.runningVar], [c], 'f32', 'f32', [p.eps ?? 1e-5]);
  const shift = mapRaw('frozen_bn_shift', 'x - y * z', [p.bias, p.runningMean, scale], [c], 'f32', 'f32');
  return { scale, shift };
}

/** y = x * scale[c] + shift[c]; the statistics and affine are buffers, so only x gets a gradient.
 *  The fold (scale = w / sqrt(var + eps), shift = b - mean * scale) is computed inside the one
 *  elementwise kernel, per element from the per-channel buffers, in the f32 operations of
 *  foldFrozenBatchNorm: no fold dispatches or temporaries per call. With `{ relu: true }`,
 *  y = relu(x * scale[c] + shift[c]) in that same kernel, and the backward is one kernel too (the
 *  Conv-FrozenBN-ReLU epilogue: four dispatches fewer per forward and backward than fold, affine,
 *  relu, relu backward, affine backward; the same values as frozenBatchNorm2d then relu, NaN
 *  propagated as relu does; a gradient that relu zeroes is +0 where the unfused path may give -0). */
export function frozenBatchNorm2d(x: Tensor, p: FrozenBatchNormParams, opts: { relu?: boolean } = {}): Tensor {
  const { channels } = checkNchw('frozenBatchNorm2d', x);
  for (const [name, t] of [['weight', p.weight], ['bias', p.bias], ['runningMean', p.runningMean], ['runningVar', p.runningVar]] as const) {
    checkPerChannel('frozenBatchNorm2d', name, t, channels);
  }
  const cs = channelShape(x);
  const w = reshape(p.weight, cs);
  const v = reshape(p.runningVar, cs);
  const b = reshape(p.bias, cs);
  const m = reshape(p.runningMean, cs);
  const eps = [p.eps ?? 1e-5];
  // x: input, y: weight, z: running_var, w: bias, v: running_mean (mapRaw's operand names).
  const scale = 'y * inverseSqrt(z + s0)';
  const t = `x * (${scale}) + (w - v * (${scale}))`;
  const expr = opts.relu ? `select(max(${t}, 0.0), ${t}, isnan_(${t}))` : t;
  const out = mapRaw(opts.relu ? 'frozen_bn_relu' : 'frozen_bn', expr, [x, w, v, b, m], x.shape, x.dtype, 'f32', eps);
  b.dispose();
  m.dispose();
  if (!isGradEnabled() || !x.requiresGrad) {
    w.dispose();
    v.dispose();
    return out;
  }
  // relu's backward passes g where its input is > 0, i.e. where the output is > 0; then times the scale.
  return record(out, opts.relu ? 'frozenBatchNorm2dRelu' : 'frozenBatchNorm2d', [x], (g) => [
    opts.relu
      ? mapRaw('frozen_bn_relu_bw', 'select(0.0, x * (y * inverseSqrt(z + s0)), w > 0.0)', [g, w, v, out], x.shape, x.dtype, 'f32', eps)
      : mapRaw('frozen_bn_bw', 'x * (y * inverseSqrt(z + s0))', [g, w, v], x.shape, x.dtype, 'f32', eps),
  ]);
}

// ---- shared statistics-based normalisation ----------------------------------------------------

interface NormGeometry {
  batch: number;
  channels: number;
  hw: number;
  /** GroupNorm groups; BatchNorm uses the channel as its statistic row. */
  groups: number;
  bn: boolean;
}

/** Backward of y = (x - mean[s]) * rstd[s] * w[c] + b[c] when mean/rstd come from x itself
 *  (statsFromInput) or are constants (BatchNorm eval). Returns [dx, dw, db]. */
function normBackward(
  g: Tensor,
  xc: Tensor,
  mean: Tensor,
  rstd: Tensor,
  weight: Tensor | undefined,
  geo: NormGeometry,
  statsFromInput: boolean,
  needX: boolean,
  needW: boolean,
  needB: boolean,
  /** The forward's output when it was norm + ReLU: g counts only where it is > 0. */
  reluY?: Tensor,
): [Tensor | null, Tensor | null, Tensor | null] {
  const { batch, channels, hw, groups, bn } = geo;
  const gc = denseFromZero(g);
  const p1 = empty([batch, channels]);
  const p2 = empty([batch, channels]);
  const h = xc.dtype === 'f16';
  launchNormGradPartials(gc.buffer, xc.buffer, mean.buffer, rstd.buffer, p1.buffer, p2.buffer, batch, channels, hw, groups, bn, h, reluY?.buffer);
  const db = sum(p1, 0); // [C]
  const dw = sum(p2, 0); // [C]
  let dx: Tensor | null = null;
  if (needX) {
    const w = weight ?? full([channels], 1);
    if (statsFromInput) {
      dx = empty(xc.shape, xc.dtype);
      // Row sums of w*g and w*g*xhat: BN rows are channels; GN rows gather Cg channels of one image.
      let sumA: Tensor;
      let sumB: Tensor;
      if (bn) {
        sumA = mul(w, db);
        sumB = mul(w, dw);
      } else {
        const wa = mul(p1, w);
        const wb = mul(p2, w);
        sumA = sum(reshape(wa, [batch, groups, channels / groups]), 2);
        sumB = sum(reshape(wb, [batch, groups, channels / groups]), 2);
        wa.dispose();
        wb.dispose();
      }
      const rowCount = bn ? batch * hw : (channels / groups) * hw;
      launchNormGradInput(gc.buffer, xc.buffer, mean.buffer, rstd.buffer, w.buffer, sumA.buffer, sumB.buffer, dx.buffer, batch, channels, hw, groups, bn, rowCount, h, reluY?.buffer);
      sumA.dispose();
      sumB.dispose();
    } else {
      // Constant statistics: dx = g * w[c] * rstd[c].
      const cs = [channels, ...xc.shape.slice(2).map(() => 1)];
      const wr = reshape(w, cs);
      const rr = reshape(rstd, cs);
      dx = mapRaw('bn_eval_bw', 'x * y * z', [gc, wr, rr], xc.shape, xc.dtype, 'f32');
    }
    if (!weight) w.dispose();
  }
  p1.dispose();
  p2.dispose();
  if (gc !== g) gc.dispose();
  const outW = needW ? dw : (dw.dispose(), null);
  const outB = needB ? db : (db.dispose(), null);
  return [dx, outW, outB];
}

function applyNorm(xc: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | undefined, bias: Tensor | undefined, geo: NormGeometry, relu = false): Tensor {
  const { batch, channels, hw, groups, bn } = geo;
  const w = weight ?? full([channels], 1);
  const b = bias ?? full([channels], 0);
  const y = empty(xc.shape, xc.dtype);
  launchNormApply(xc.buffer, mean.buffer, rstd.buffer, w.buffer, b.buffer, y.buffer, batch, channels, hw, groups, bn, xc.dtype === 'f16', relu);
  if (!weight) w.dispose();
  if (!bias) b.dispose();
  return y;
}

/** A contiguous tensor whose data starts at element 0 of its buffer (kernels index from 0). */
function denseFromZero(x: Tensor): Tensor {
  if (x.isContiguous() && x.offset === 0) return x;
  return mapRaw('copy', 'x', [x], x.shape, x.dtype, 'f32');
}

// ---- BatchNorm2d --------------------------------------------------------------------------------

export interface BatchNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  runningMean?: Tensor;
  runningVar?: Tensor;
  /** Training mode: normalise with batch statistics and update the running ones. */
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * BatchNorm2d as PyTorch: training normalises with the biased batch variance and updates
 * running_mean/var in place with momentum (default 0.1), the running variance taking the
 * unbiased batch variance; eval normalises with the running statistics.
 */
export function batchNorm2d(x: Tensor, opts: BatchNormOptions): Tensor {
  const op = 'batchNorm2d';
  const { batch, channels, hw } = checkNchw(op, x);
  checkPerChannel(op, 'weight', opts.weight, channels);
  checkPerChannel(op, 'bias', opts.bias, channels);
  checkPerChannel(op, 'runningMean', opts.runningMean, channels);
  checkPerChannel(op, 'runningVar', opts.runningVar, channels);
  const eps = opts.eps ?? 1e-5;
  const geo: NormGeometry = { batch, channels, hw, groups: channels, bn: true };
  const xc = denseFromZero(x);
  let mean: Tensor;
  let rstd: Tensor;
  if (opts.training) {
    const count = batch * hw;
    if (count <= 1) throw new Error(`${op}: expected more than 1 value per channel when training, got input [${x.shape}]`);
    mean = empty([channels]);
    rstd = empty([channels]);
    const variance = empty([channels]);
    launchNormStats(xc.buffer, 0, mean.buffer, rstd.buffer, variance.buffer, channels, batch, channels * hw, hw, eps, xc.dtype === 'f16');
    if (opts.runningMean && opts.runningVar) {
      const rm = opts.runningMean;
      const rv = opts.runningVar;
      if (!rm.isContiguous() || !rv.isContiguous()) throw new Error(`${op}: running statistics must be contiguous`);
      launchBnRunningUpdate(mean.buffer, variance.buffer, rm.buffer, rm.offset, rv.buffer, rv.offset, channels, opts.momentum ?? 0.1, count);
    }
    variance.dispose();
  } else {
    if (!opts.runningMean || !opts.runningVar) throw new Error(`${op}: eval mode needs runningMean and runningVar`);
    mean = opts.runningMean.isContiguous() && opts.runningMean.offset === 0 ? opts.runningMean : denseFromZero(opts.runningMean);
    rstd = mapRaw('bn_rstd', 'inverseSqrt(x + s0)', [opts.runningVar], [channels], 'f32', 'f32', [eps]);
  }
  const y = applyNorm(xc, mean, rstd, opts.weight, opts.bias, geo);
  const inputs = [x, ...(opts.weight ? [opts.weight] : []), ...(opts.bias ? [opts.bias] : [])];
  const training = opts.training;
  return record(y, 'batchNorm2d', inputs, (g) => {
    const [dx, dw, db] = normBackward(g, xc, mean, rstd, opts.weight, geo, training, x.requiresGrad, !!opts.weight?.requiresGrad, !!opts.bias?.requiresGrad);
    return [dx, ...(opts.weight ? [dw] : []), ...(opts.bias ? [db] : [])];
  });
}

// ---- GroupNorm --------------------------------------------------------------------------------

export interface GroupNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  eps?: number;
  /** relu(groupNorm(x)) with the ReLU inside the norm's kernels, forward and backward (the same
   *  values as groupNorm then relu; NaN passes through as relu does). */
  relu?: boolean;
}

/** GroupNorm (PyTorch semantics, biased variance, eps 1e-5): statistics per (image, group). */
export function groupNorm(x: Tensor, numGroups = 32, opts: GroupNormOptions = {}): Tensor {
  const op = 'groupNorm';
  const { batch, channels, hw } = checkNchw(op, x);
  if (!Number.isInteger(numGroups) || numGroups <= 0 || channels % numGroups !== 0) {
    throw new Error(`${op}: ${channels} channels are not divisible into ${numGroups} groups`);
  }
  checkPerChannel(op, 'weight', opts.weight, channels);
  checkPerChannel(op, 'bias', opts.bias, channels);
  const eps = opts.eps ?? 1e-5;
  const geo: NormGeometry = { batch, channels, hw, groups: numGroups, bn: false };
  const xc = denseFromZero(x);
  const rows = batch * numGroups;
  const inner = (channels / numGroups) * hw;
  const mean = empty([batch, numGroups]);
  const rstd = empty([batch, numGroups]);
  const variance = empty([batch, numGroups]);
  launchNormStats(xc.buffer, 0, mean.buffer, rstd.buffer, variance.buffer, rows, 1, inner, inner, eps, xc.dtype === 'f16');
  variance.dispose();
  const relu = !!opts.relu;
  const y = applyNorm(xc, mean, rstd, opts.weight, opts.bias, geo, relu);
  const inputs = [x, ...(opts.weight ? [opts.weight] : []), ...(opts.bias ? [opts.bias] : [])];
  return record(y, relu ? 'groupNormRelu' : 'groupNorm', inputs, (g) => {
    const needs = [x.requiresGrad, !!opts.weight?.requiresGrad, !!opts.bias?.requiresGrad] as const;
    const [dx, dw, db] = normBackward(g, xc, mean, rstd, opts.weight, geo, true, ...needs, relu ? y : undefined);
    return [dx, ...(opts.weight ? [dw] : []), ...(opts.bias ? [db] : [])];
  });
}
