// Float64 CPU references for conv2d and conv_transpose2d, forward and both gradients: pure
// TypeScript, no GPU. Written as the textbook loops (the definition), so they are checked only by
// finite differences (test/kernels/conv/). The tests compare every kernel against them.

export interface RefConv {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

export type Shape4 = [number, number, number, number];

/** Conv options from scalars or pairs, as the test cases write them: opt(stride, padding, dilation, groups). */
export function opt(s: number | [number, number], p: number | [number, number], d: number | [number, number], groups = 1): RefConv {
  const two = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
  return { stride: two(s), padding: two(p), dilation: two(d), groups };
}

/** One random-input conv test case: input and weight shapes and the options. */
export interface ConvCase {
  name: string;
  xs: Shape4;
  ws: Shape4;
  o: RefConv;
}

export function outSize(n: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Visit every (output, input, weight) index triple of a conv: the one loop all three share. */
function forEachTap(xs: Shape4, ws: Shape4, o: RefConv, fn: (yi: number, xi: number, wi: number) => void): Shape4 {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const OH = outSize(H, KH, o.stride[0], o.padding[0], o.dilation[0]);
  const OW = outSize(W, KW, o.stride[1], o.padding[1], o.dilation[1]);
  const Og = O / o.groups;
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / Og);
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * O + oc) * OH + oh) * OW + ow;
          for (let c = 0; c < Cg; c++)
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * o.stride[0] - o.padding[0] + kh * o.dilation[0];
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * o.stride[1] - o.padding[1] + kw * o.dilation[1];
                if (iw < 0 || iw >= W) continue;
                fn(yi, ((n * C + g * Cg + c) * H + ih) * W + iw, ((oc * Cg + c) * KH + kh) * KW + kw);
              }
            }
        }
    }
  return [N, O, OH, OW];
}

export function convOutShape(xs: Shape4, ws: Shape4, o: RefConv): Shape4 {
  return [xs[0], ws[0], outSize(xs[2], ws[2], o.stride[0], o.padding[0], o.dilation[0]), outSize(xs[3], ws[3], o.stride[1], o.padding[1], o.dilation[1])];
}

export function conv2dRef(x: ArrayLike<number>, xs: Shape4, w: ArrayLike<number>, ws: Shape4, b: ArrayLike<number> | null, o: RefConv): Float64Array {
  const ys = convOutShape(xs, ws, o);
  const y = new Float64Array(ys[0] * ys[1] * ys[2] * ys[3]);
  forEachTap(xs, ws, o, (yi, xi, wi) => (y[yi]! += x[xi]! * w[wi]!));
  if (b) {
    const hw = ys[2] * ys[3];
    for (let i = 0; i < y.length; i++) y[i]! += b[Math.floor(i / hw) % ys[1]]!;
  }
  return y;
}

export function conv2dGradRef(x: ArrayLike<number>, xs: Shape4, w: ArrayLike<number>, ws: Shape4, gy: ArrayLike<number>, o: RefConv) {
  const gx = new Float64Array(xs[0] * xs[1] * xs[2] * xs[3]);
  const gw = new Float64Array(ws[0] * ws[1] * ws[2] * ws[3]);
  const ys = forEachTap(xs, ws, o, (yi, xi, wi) => {
    gx[xi]! += gy[yi]! * w[wi]!;
    gw[wi]! += gy[yi]! * x[xi]!;
  });
  const gb = new Float64Array(ys[1]);
  const hw = ys[2] * ys[3];
  for (let i = 0; i < gy.length; i++) gb[Math.floor(i / hw) % ys[1]]! += gy[i]!;
  return { gx, gw, gb };
}

export interface RefConvT extends RefConv {
  outputPadding: [number, number];
}

/** conv_transpose2d: x [N, Cin, H, W], w [Cin, Cout/g, KH, KW] → [N, Cout, OH, OW]; the adjoint of conv. */
export function convTransposeOutShape(xs: Shape4, ws: Shape4, o: RefConvT): Shape4 {
  const oh = (xs[2] - 1) * o.stride[0] - 2 * o.padding[0] + o.dilation[0] * (ws[2] - 1) + o.outputPadding[0] + 1;
  const ow = (xs[3] - 1) * o.stride[1] - 2 * o.padding[1] + o.dilation[1] * (ws[3] - 1) + o.outputPadding[1] + 1;
  return [xs[0], ws[1] * o.groups, oh, ow];
}

export function convTranspose2dRef(x: ArrayLike<number>, xs: Shape4, w: ArrayLike<number>, ws: Shape4, b: ArrayLike<number> | null, o: RefConvT) {
  const ys = convTransposeOutShape(xs, ws, o);
  const y = new Float64Array(ys[0] * ys[1] * ys[2] * ys[3]);
  // The conv whose input is y and output is x: y += Wᵀ x at every tap.
  forEachTap(ys, ws, o, (xi, yi, wi) => (y[yi]! += x[xi]! * w[wi]!));
  if (b) {
    const hw = ys[2] * ys[3];
    for (let i = 0; i < y.length; i++) y[i]! += b[Math.floor(i / hw) % ys[1]]!;
  }
  return { y, shape: ys };
}

export function convTranspose2dGradRef(x: ArrayLike<number>, xs: Shape4, w: ArrayLike<number>, ws: Shape4, gy: ArrayLike<number>, o: RefConvT) {
  const ys = convTransposeOutShape(xs, ws, o);
  const gx = new Float64Array(x.length);
  const gw = new Float64Array(w.length);
  forEachTap(ys, ws, o, (xi, yi, wi) => {
    gx[xi]! += gy[yi]! * w[wi]!;
    gw[wi]! += gy[yi]! * x[xi]!;
  });
  const gb = new Float64Array(ys[1]);
  const hw = ys[2] * ys[3];
  for (let i = 0; i < gy.length; i++) gb[Math.floor(i / hw) % ys[1]]! += gy[i]!;
  return { gx, gw, gb };
}
