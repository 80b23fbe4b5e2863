// conv2d (NCHW, f32, or f16 storage computed in f32): stride, padding, dilation, groups
// (depthwise included), bias, and an optional fused ReLU epilogue. Forward and backward side by
// side; the kernels and the shape-based algorithm choice live in kernels/conv/. With a fused ReLU
// the backward masks the incoming gradient by the saved output (y > 0), exactly as a separate relu
// would. f16: x and w f16 (under autocast they are cast), the bias f32, y, dx f16; the weight
// gradient is accumulated in f32 and cast to the weight's dtype by autograd.
import { autocastF16 } from '../amp/autocast';
import { record } from '../autograd';
import { contiguousCopy, empty, type Tensor } from '../tensor';
import { mapRaw } from './elementwise';
import { sum } from './reduce';
import { type ConvAlgo, convBackward, convDgrad, convForward, convWgrad } from '../../kernels/conv/launch';
import { convGeometry, type ConvGeometry, pair, type Pair } from '../../kernels/conv/geometry';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Fused epilogue: y = relu(conv(x, w) + b). */
  activation?: 'relu';
  /** Force a kernel ('direct' is the reference path; see kernels/conv/chooser.ts for the names);
   *  default 'auto' picks by shape and adapter. */
  algo?: ConvAlgo;
}

/** The tensor itself when contiguous, else a contiguous copy; `done()` frees the copy. */
function dense(t: Tensor): { t: Tensor; done: () => void } {
  if (t.isContiguous()) return { t, done: () => {} };
  const c = contiguousCopy(t);
  return { t: c, done: () => c.dispose() };
}

/** x and w both f32 or both f16 (f16 storage), the bias f32. */
export function checkConvDtypes(what: string, x: Tensor, w: Tensor, b: Tensor | null | undefined): void {
  for (const t of [x, w]) if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`${what}: needs f32 or f16 tensors, got ${t.dtype} [${t.shape}]`);
  if (x.dtype !== w.dtype) throw new Error(`${what}: input is ${x.dtype} but weight is ${w.dtype} (cast one, or run under autocast)`);
  if (b && b.dtype !== 'f32') throw new Error(`${what}: bias must be f32, got ${b.dtype} [${b.shape}]`);
}

/** The geometry with f16 storage when the operand is f16. */
export function withStorage(geo: ConvGeometry, t: Tensor): ConvGeometry {
  return t.dtype === 'f16' ? { ...geo, f16: true } : geo;
}

/** Raw kernels without autograd: y = conv(x, w) (+ b) (relu). */
export function conv2dForwardRaw(geo: ConvGeometry, x: Tensor, w: Tensor, b: Tensor | null, relu: boolean, algo?: ConvAlgo): Tensor {
  const xd = dense(x);
  const wd = dense(w);
  const bd = b ? dense(b) : null;
  const y = empty([geo.N, geo.O, geo.OH, geo.OW], x.dtype);
  convForward(withStorage(geo, x), xd.t, wd.t, bd?.t ?? null, relu, y, algo);
  xd.done();
  wd.done();
  bd?.done();
  return y;
}

/** Raw grad input of conv: dx [N, C, H, W] from dy [N, O, OH, OW]. */
export function conv2dDgradRaw(geo: ConvGeometry, dy: Tensor, w: Tensor, algo?: ConvAlgo): Tensor {
  const gd = dense(dy);
  const wd = dense(w);
  const dx = empty([geo.N, geo.C, geo.H, geo.W], dy.dtype);
  convDgrad(withStorage(geo, dy), gd.t, wd.t, dx, algo);
  gd.done();
  wd.done();
  return dx;
}

/** Raw grad weight of conv: dw [O, C/groups, KH, KW] from dy and x. */
export function conv2dWgradRaw(geo: ConvGeometry, dy: Tensor, x: Tensor, algo?: ConvAlgo): Tensor {
  const gd = dense(dy);
  const xd = dense(x);
  const dw = empty([geo.O, geo.C / geo.groups, geo.KH, geo.KW]);
  convWgrad(withStorage(geo, x), gd.t, xd.t, dw, algo);
  gd.done();
  xd.done();
  return dw;
}

/** Both raw gradients of conv from one dy: [dx or null, dw or null]. Recorded together so that
 *  shapes with a fused backward kernel (few output channels on small maps) launch it once. */
export function conv2dBackwardRaw(geo: ConvGeometry, dy: Tensor, x: Tensor, w: Tensor, wantDx: boolean, wantDw: boolean, algo?: ConvAlgo): [Tensor | null, Tensor | null] {
  const gd = dense(dy);
  const xd = dense(x);
  const wd = dense(w);
  const dx = wantDx ? empty([geo.N, geo.C, geo.H, geo.W], x.dtype) : null;
  const dw = wantDw ? empty([geo.O, geo.C / geo.groups, geo.KH, geo.KW]) : null;
  convBackward(withStorage(geo, x), gd.t, xd.t, wd.t, dx, dw, algo);
  gd.done();
  xd.done();
  wd.done();
  return [dx, dw];
}

/** The geometry of a conv2d of input and weight shapes under `opts` (stride, padding, dilation,
 *  groups), checked; `op` names the caller in errors. */
export function conv2dGeometry(op: string, xShape: readonly number[], wShape: readonly number[], opts: Omit<Conv2dOptions, 'activation' | 'algo'>): ConvGeometry {
  return convGeometry(op, xShape, wShape, {
    stride: pair(opts.stride ?? 1),
    padding: pair(opts.padding ?? 0),
    dilation: pair(opts.dilation ?? 1),
    groups: opts.groups ?? 1,
  });
}

/** PyTorch's F.conv2d (+ optional fused ReLU). x [N, C, H, W], w [O, C/groups, KH, KW], b [O]. */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  x = autocastF16(x);
  w = autocastF16(w);
  checkConvDtypes('conv2d', x, w, b);
  const geo = conv2dGeometry('conv2d', x.shape, w.shape, opts);
  if (b && (b.ndim !== 1 || b.shape[0] !== geo.O)) throw new Error(`conv2d: bias must be [${geo.O}], got [${b.shape}]`);
  if (opts.activation !== undefined && opts.activation !== 'relu') throw new Error(`conv2d: activation must be 'relu' or absent, got '${opts.activation}'`);
  const relu = opts.activation === 'relu';
  const y = conv2dForwardRaw(geo, x, w, b ?? null, relu, opts.algo);
  const inputs = b ? [x, w, b] : [x, w];
  return record(y, relu ? 'conv2d_relu' : 'conv2d', inputs, (g) => {
    const gm = relu ? mapRaw('relu_mask', 'select(0.0, x, y > 0.0)', [g, y], g.shape, g.dtype, 'f32') : g;
    const [gx, gw] = conv2dBackwardRaw(geo, gm, x, w, x.requiresGrad, w.requiresGrad, opts.algo);
    const gb = b?.requiresGrad ? sum(gm, [0, 2, 3]) : null;
    if (gm !== g) gm.dispose();
    return [gx, gw, gb];
  });
}
