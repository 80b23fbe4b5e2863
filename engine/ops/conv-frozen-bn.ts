// conv2d followed by FrozenBatchNorm2d (and optionally ReLU) as one convolution: the norm's fixed
// per-channel affine y = c·s + t is folded into the conv, w' = w·s[o] and b' = (b − mean)·s + β,
// so the activation is written once by the conv kernel's bias (+ ReLU) epilogue instead of being
// read and written again by the norm. The fold is two small elementwise ops on the weight and the
// bias (fused by engine/lazy.ts into the ops that read them), not a pass over the activation.
//
// Backward: dL/dc = g·s (masked by the saved output where ReLU is fused), one pass over the
// gradient, as the norm's own backward was; then dgrad with the unscaled weight and wgrad with that
// scaled gradient give dL/dx and dL/dw directly (Σ_o g·s·w = Σ_o g·w'), so nothing weight- or
// activation-sized is saved beyond what conv → FrozenBN saved (x, the weight, the output).
// The norm's statistics and affine are buffers: no gradient reaches them, as in FrozenBatchNorm2d.
import { autocastF16 } from '../amp/autocast';
import { isGradEnabled, record } from '../autograd';
import type { Tensor } from '../tensor';
import { checkConvDtypes, type Conv2dOptions, conv2dBackwardRaw, conv2dForwardRaw, conv2dGeometry } from './conv';
import { mapRaw } from './elementwise';
import type { FrozenBatchNormParams } from './norm';
import { sum } from './reduce';
import { reshape } from './view';

let foldEnabled = typeof process === 'undefined' || process.env?.CELLGPU_CONV_BN_FOLD !== '0';

/** Turn the conv + FrozenBN fold on or off (default on; `CELLGPU_CONV_BN_FOLD=0` starts it off),
 *  for A/B runs: off, the model layers run conv2d then frozenBatchNorm2d. */
export function setConvBnFold(on: boolean): void {
  foldEnabled = on;
}

export function isConvBnFoldEnabled(): boolean {
  return foldEnabled;
}

/**
 * Whether folding pays for this conv: the fold rewrites the weight (read w, write w': about twice
 * the weight's size per forward) to save the norm's read and write of the output (twice the
 * output's size), so it pays when the output (N·O·OH·OW) is larger than the weight (O·C/g·KH·KW),
 * i.e. N·OH·OW > C/g·KH·KW: the early, large maps, not the deep layers of small maps.
 */
export function convBnFoldPays(xShape: readonly number[], wShape: readonly number[], opts: Omit<Conv2dOptions, 'activation' | 'algo'> = {}): boolean {
  const g = conv2dGeometry('convBnFoldPays', xShape, wShape, opts);
  return g.N * g.OH * g.OW > (g.C / g.groups) * g.KH * g.KW;
}

export interface Conv2dFrozenBnOptions extends Omit<Conv2dOptions, 'activation'> {
  /** relu(frozenBN(conv(x))) with the ReLU in the conv's epilogue. */
  relu?: boolean;
}

function checkPerChannel(name: string, t: Tensor, c: number): void {
  if (t.ndim !== 1 || t.shape[0] !== c || t.dtype !== 'f32') throw new Error(`conv2dFrozenBatchNorm: ${name} must be f32 [${c}], got ${t.dtype} [${t.shape}]`);
}

/** frozenBatchNorm2d(conv2d(x, w, b), bn) (then ReLU with `relu`), computed as one conv2d with the
 *  folded weight and bias; the same values to float rounding, the same gradients for x, w and b. */
export function conv2dFrozenBatchNorm(x: Tensor, w: Tensor, b: Tensor | null | undefined, bn: FrozenBatchNormParams, opts: Conv2dFrozenBnOptions = {}): Tensor {
  x = autocastF16(x);
  // The weight in the conv's storage dtype: what dgrad reads (under autocast, the scope's cached cast).
  const wc = autocastF16(w);
  checkConvDtypes('conv2dFrozenBatchNorm', x, wc, b);
  const geo = conv2dGeometry('conv2dFrozenBatchNorm', x.shape, wc.shape, opts);
  const O = geo.O;
  if (b) checkPerChannel('conv bias', b, O);
  checkPerChannel('weight', bn.weight, O);
  checkPerChannel('bias', bn.bias, O);
  checkPerChannel('runningMean', bn.runningMean, O);
  checkPerChannel('runningVar', bn.runningVar, O);
  const eps = [bn.eps ?? 1e-5];
  const relu = opts.relu ?? false;
  // scale = γ / sqrt(var + eps), computed where it is used, in the f32 operations of frozenBatchNorm2d.
  const scale = 'y * inverseSqrt(z + s0)';
  const gammaW = reshape(bn.weight, [O, 1, 1, 1]);
  const varW = reshape(bn.runningVar, [O, 1, 1, 1]);
  const wFold = mapRaw('conv_fbn_weight', `x * (${scale})`, [w, gammaW, varW], w.shape, wc.dtype, 'f32', eps);
  gammaW.dispose();
  varW.dispose();
  const bFold = b
    ? mapRaw('conv_fbn_bias_b', 'x + (y - z) * (w * inverseSqrt(v + s0))', [bn.bias, b, bn.runningMean, bn.weight, bn.runningVar], [O], 'f32', 'f32', eps)
    : mapRaw('conv_fbn_bias', 'x - y * (z * inverseSqrt(w + s0))', [bn.bias, bn.runningMean, bn.weight, bn.runningVar], [O], 'f32', 'f32', eps);
  const y = conv2dForwardRaw(geo, x, wFold, bFold, relu, opts.algo);
  wFold.dispose();
  bFold.dispose();
  const inputs = b ? [x, wc, b] : [x, wc];
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return y;
  const cs = [1, O, 1, 1];
  const gamma = reshape(bn.weight, cs);
  const rv = reshape(bn.runningVar, cs);
  return record(y, relu ? 'conv2d_frozen_bn_relu' : 'conv2d_frozen_bn', inputs, (g) => {
    // dL/dc for c = conv(x, w) + b: g·s, zero where the fused ReLU clamped (output not > 0).
    const gs = relu
      ? mapRaw('conv_fbn_relu_bw', `select(0.0, x * (${scale}), w > 0.0)`, [g, gamma, rv, y], g.shape, g.dtype, 'f32', eps)
      : mapRaw('conv_fbn_bw', `x * (${scale})`, [g, gamma, rv], g.shape, g.dtype, 'f32', eps);
    const [gx, gw] = conv2dBackwardRaw(geo, gs, x, wc, x.requiresGrad, wc.requiresGrad, opts.algo);
    const gb = b?.requiresGrad ? sum(gs, [0, 2, 3]) : null;
    gs.dispose();
    return [gx, gw, gb];
  });
}
