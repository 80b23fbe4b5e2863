// conv2dFrozenBatchNorm (conv → FrozenBN (→ ReLU) folded into one conv with the bias/ReLU epilogue)
// against the float64 conv reference composed with the norm, forward and backward, on odd shapes
// and non-contiguous inputs (the composed reference checked by finite differences); and the model
// path (convNorm) with the fold on equal to it off (conv2d then frozenBatchNorm2d), outputs and
// every gradient, with the dispatch counts of both.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, conv2dFrozenBatchNorm, convBnFoldPays, fromArray, isConvBnFoldEnabled, narrow, rt, setConvBnFold, type Tensor } from '../../engine';
import { conv2dGradRef, conv2dRef, convOutShape, opt, type RefConv, type Shape4 } from '../../kernels/conv/reference';
import { type ConvAlgo } from '../../kernels/conv/chooser';
import { Conv2d, convNorm, FrozenBatchNorm2d } from '../../models/layers';
import { init } from '../../engine';
import { autocast, autocastAvailable } from '../../engine/amp/autocast';
import { f16ToF32, f32ToF16 } from '../../runtime/dtype';
import { expectClose, numericGrad, Rng, testSeed } from '../util';
import { permutedInput } from '../kernels/norm/inputs';

beforeAll(async () => {
  await init();
});

const EPS = 1e-5;
const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

interface Bn {
  gamma: Float64Array;
  beta: Float64Array;
  mean: Float64Array;
  rvar: Float64Array;
}

function randomBn(rng: Rng, c: number): Bn {
  return { gamma: f32(rng.uniformArray(c, -1.5, 1.5)), beta: f32(rng.uniformArray(c, -0.5, 0.5)), mean: f32(rng.uniformArray(c, -0.5, 0.5)), rvar: f32(rng.uniformArray(c, 0.2, 2)) };
}

/** Float64: y = (relu)((conv(x, w) + cb)·s + β − mean·s), s = γ / sqrt(var + eps). */
function refForward(x: Float64Array, xs: Shape4, w: Float64Array, ws: Shape4, cb: Float64Array | null, bn: Bn, o: RefConv, relu: boolean) {
  const c = conv2dRef(x, xs, w, ws, cb, o);
  const ys = convOutShape(xs, ws, o);
  const hw = ys[2] * ys[3];
  const s = bn.gamma.map((g, i) => g / Math.sqrt(bn.rvar[i]! + EPS));
  const y = c.map((v, i) => {
    const ch = Math.floor(i / hw) % ys[1];
    const t = v * s[ch]! + bn.beta[ch]! - bn.mean[ch]! * s[ch]!;
    return relu ? Math.max(t, 0) : t;
  });
  return { y, s, ys, hw };
}

/** Float64 gradients of Σ g·y for x, w and the conv bias. */
function refGrads(x: Float64Array, xs: Shape4, w: Float64Array, ws: Shape4, cb: Float64Array | null, bn: Bn, o: RefConv, relu: boolean, g: Float64Array) {
  const { y, s, ys, hw } = refForward(x, xs, w, ws, cb, bn, o, relu);
  const gc = g.map((v, i) => (relu && !(y[i]! > 0) ? 0 : v * s[Math.floor(i / hw) % ys[1]]!));
  return conv2dGradRef(x, xs, w, ws, gc, o);
}

describe('conv + FrozenBN reference', () => {
  it('the composed float64 gradients match finite differences', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs: Shape4 = [1, 4, 5, 4];
    const ws: Shape4 = [4, 2, 3, 2];
    const o = opt([2, 1], [1, 1], 1, 2);
    const x = rng.uniformArray(n(xs));
    const w = rng.uniformArray(n(ws));
    const cb = rng.uniformArray(4);
    const bn = randomBn(rng, 4);
    const ys = convOutShape(xs, ws, o);
    const g = rng.uniformArray(n(ys));
    for (const relu of [false, true]) {
      const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => refForward(xx, xs, ww, ws, bb, bn, o, relu).y.reduce((a, v, i) => a + v * g[i]!, 0);
      const ref = refGrads(x, xs, w, ws, cb, bn, o, relu, g);
      const what = (t: string) => `ref ${t}${relu ? ' relu' : ''} (seed ${seed})`;
      expectClose(ref.gx, numericGrad((xx) => loss(xx, w, cb), x), { atol: 1e-6, what: what('grad x') });
      expectClose(ref.gw, numericGrad((ww) => loss(x, ww, cb), w), { atol: 1e-6, what: what('grad w') });
      expectClose(ref.gb, numericGrad((bb) => loss(x, w, bb), cb), { atol: 1e-6, what: what('grad b') });
    }
  });
});

interface Case {
  name: string;
  xs: Shape4;
  ws: Shape4;
  o: RefConv;
  bias: boolean;
  relu: boolean;
  view: 'permuted' | 'offset';
}

const CASES: Case[] = [
  { name: '3x3 pad 1, relu, permuted x', xs: [2, 5, 7, 6], ws: [7, 5, 3, 3], o: opt(1, 1, 1), bias: false, relu: true, view: 'permuted' },
  { name: '1x1 stride 2 groups 2, conv bias, no relu, offset x', xs: [1, 6, 5, 9], ws: [5 * 2, 3, 1, 1], o: opt(2, 0, 1, 2), bias: true, relu: false, view: 'offset' },
  { name: '3x3 stride 2, deep (GEMM kernels), relu, conv bias, permuted x', xs: [1, 17, 11, 9], ws: [24, 17, 3, 3], o: opt(2, 1, 1), bias: true, relu: true, view: 'permuted' },
  { name: 'depthwise-free 1x1, 33 -> 19 channels, relu, offset x', xs: [2, 33, 5, 7], ws: [19, 33, 1, 1], o: opt(1, 0, 1), bias: false, relu: true, view: 'offset' },
];

/** x as a non-contiguous or offset view of a leaf; `grad()` reads the leaf's gradient in NCHW order. */
function oddInput(x: Float64Array, xs: Shape4, how: 'permuted' | 'offset'): { view: Tensor; grad: () => Promise<Float64Array> } {
  if (how === 'permuted') {
    const { leaf, view } = permutedInput(x, xs);
    return {
      view,
      grad: async () => {
        const d = await leaf.grad!.data();
        const [N, C, H, W] = xs;
        const out = new Float64Array(d.length);
        for (let i = 0; i < N; i++) for (let k = 0; k < C; k++) for (let y = 0; y < H; y++) for (let z = 0; z < W; z++) out[((i * C + k) * H + y) * W + z] = d[((i * H + y) * W + z) * C + k]!;
        return out;
      },
    };
  }
  const per = xs[1] * xs[2] * xs[3];
  const big = new Float64Array(per + x.length);
  big.set(x, per);
  const leaf = fromArray(big, [xs[0] + 1, xs[1], xs[2], xs[3]]);
  leaf.requiresGrad = true;
  return { view: narrow(leaf, 0, 1, xs[0]), grad: async () => Float64Array.from((await leaf.grad!.data()).subarray(per)) };
}

function leaf(v: Float64Array, shape: readonly number[], grad: boolean): Tensor {
  const t = fromArray(Float32Array.from(v), shape);
  t.requiresGrad = grad;
  return t;
}

describe('conv2dFrozenBatchNorm vs float64 reference', () => {
  for (const c of CASES) {
    for (const algo of ['auto', 'direct'] as ConvAlgo[]) {
      it(`${c.name} (${algo})`, async () => {
        const seed = testSeed();
        const rng = new Rng(seed);
        const xh = f32(rng.uniformArray(n(c.xs)));
        const wh = f32(rng.uniformArray(n(c.ws)));
        const cbh = c.bias ? f32(rng.uniformArray(c.ws[0])) : null;
        const bn = randomBn(rng, c.ws[0]);
        const ys = convOutShape(c.xs, c.ws, c.o);
        const gh = f32(rng.uniformArray(n(ys)));
        const x = oddInput(xh, c.xs, c.view);
        const w = leaf(wh, c.ws, true);
        const cb = cbh ? leaf(cbh, [c.ws[0]], true) : null;
        const bnT = { weight: leaf(bn.gamma, [c.ws[0]], false), bias: leaf(bn.beta, [c.ws[0]], false), runningMean: leaf(bn.mean, [c.ws[0]], false), runningVar: leaf(bn.rvar, [c.ws[0]], false) };
        const y = conv2dFrozenBatchNorm(x.view, w, cb, bnT, { stride: c.o.stride, padding: c.o.padding, dilation: c.o.dilation, groups: c.o.groups, relu: c.relu, algo });
        backward(y, fromArray(Float32Array.from(gh), ys));
        const yRef = refForward(xh, c.xs, wh, c.ws, cbh, bn, c.o, c.relu).y;
        const ref = refGrads(xh, c.xs, wh, c.ws, cbh, bn, c.o, c.relu, gh);
        const K = c.ws[1] * c.ws[2] * c.ws[3];
        const nhw = ys[0] * ys[2] * ys[3];
        const what = (t: string) => `${c.name} ${t} (seed ${seed}, ${algo})`;
        // |s| reaches ~3.4 (γ up to 1.5, var down to 0.2): tolerances scaled by it.
        expectClose(await y.data(), yRef, { atol: 1e-5 * K + 1e-5, rtol: 1e-4, what: what('y'), shape: ys });
        expectClose(await x.grad(), ref.gx, { atol: 1e-5 * c.ws[0] * c.ws[2] * c.ws[3] + 1e-5, rtol: 1e-4, what: what('grad x'), shape: c.xs });
        expectClose(await w.grad!.data(), ref.gw, { atol: 1e-5 * nhw + 1e-5, rtol: 1e-4, what: what('grad w'), shape: c.ws });
        if (cb) expectClose(await cb.grad!.data(), ref.gb, { atol: 1e-5 * nhw + 1e-5, rtol: 1e-4, what: what('grad b') });
      });
    }
  }

  it('f16 storage under autocast (x, w, y and the gradient pass f16; bias, dw f32) at f16 accuracy', async () => {
    if (!autocastAvailable()) return;
    const seed = testSeed();
    const rng = new Rng(seed);
    const c = CASES[2]!;
    const xh = f32(rng.uniformArray(n(c.xs)));
    const wh = f32(rng.uniformArray(n(c.ws)));
    const bn = randomBn(rng, c.ws[0]);
    const ys = convOutShape(c.xs, c.ws, c.o);
    const gh = f32(rng.uniformArray(n(ys)));
    const x = leaf(xh, c.xs, true);
    const w = leaf(wh, c.ws, true);
    const bnT = { weight: leaf(bn.gamma, [c.ws[0]], false), bias: leaf(bn.beta, [c.ws[0]], false), runningMean: leaf(bn.mean, [c.ws[0]], false), runningVar: leaf(bn.rvar, [c.ws[0]], false) };
    const y = autocast(() => conv2dFrozenBatchNorm(x, w, null, bnT, { stride: c.o.stride, padding: c.o.padding, relu: true }));
    expect(y.dtype).toBe('f16');
    backward(y, fromArray(Float32Array.from(gh), ys, 'f16'));
    expect(w.grad!.dtype).toBe('f32');
    const rx = xh.map((v) => f16ToF32(f32ToF16(v)));
    const yRef = refForward(rx, c.xs, wh, c.ws, null, bn, c.o, true).y;
    const ref = refGrads(rx, c.xs, wh, c.ws, null, bn, c.o, true, gh);
    // Relative to the largest magnitude: f16 keeps 11 bits; a ReLU tie may flip.
    const rel = (a: ArrayLike<number>, b: Float64Array) => {
      let m = 0;
      let e = 0;
      for (let i = 0; i < b.length; i++) {
        m = Math.max(m, Math.abs(b[i]!));
        e = Math.max(e, Math.abs(a[i]! - b[i]!));
      }
      return e / m;
    };
    expect(rel(await y.data(), yRef), `y (seed ${seed})`).toBeLessThan(4e-3);
    expect(rel(await x.grad!.data(), ref.gx), `grad x (seed ${seed})`).toBeLessThan(4e-3);
    expect(rel(await w.grad!.data(), ref.gw), `grad w (seed ${seed})`).toBeLessThan(4e-3);
  });

  it('rejects per-channel buffers of the wrong size in one line', () => {
    const x = fromArray(new Float32Array(2 * 9), [1, 2, 3, 3]);
    const w = fromArray(new Float32Array(3 * 2), [3, 2, 1, 1]);
    const c3 = () => fromArray(new Float32Array(3), [3]);
    expect(() => conv2dFrozenBatchNorm(x, w, null, { weight: c3(), bias: c3(), runningMean: fromArray(new Float32Array(2), [2]), runningVar: c3() })).toThrow(/runningMean must be f32 \[3\], got f32 \[2\]/);
  });
});

describe('convBnFoldPays', () => {
  it('folds where the output is larger than the weight (N·OH·OW > C/g·KH·KW)', () => {
    expect(convBnFoldPays([2, 128, 128, 128], [128, 128, 3, 3], { padding: 1 })).toBe(true); // 32768 > 1152
    expect(convBnFoldPays([2, 224, 16, 16], [224, 224, 3, 3], { padding: 1 })).toBe(false); // 512 < 2016
    expect(convBnFoldPays([1, 64, 8, 8], [64, 1, 3, 3], { padding: 1, groups: 64 })).toBe(true); // 64 > 9
    expect(convBnFoldPays([1, 13, 10, 9], [21, 13, 3, 3], { padding: 1, stride: 2 })).toBe(false); // 25 < 117
  });
});

describe('convNorm: the fold on equals conv2d then FrozenBatchNorm2d (+ ReLU)', () => {
  it('outputs and every gradient (x, conv weight) agree; the fold removes the norm pass', async () => {
    expect(isConvBnFoldEnabled()).toBe(true);
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs: Shape4 = [2, 13, 10, 9];
    const conv = new Conv2d(13, 21, 3, { padding: 1, bias: false, seed: 7 });
    const norm = new FrozenBatchNorm2d(21);
    const bn = randomBn(rng, 21);
    norm.loadStateDict({ weight: leaf(bn.gamma, [21], false), bias: leaf(bn.beta, [21], false), running_mean: leaf(bn.mean, [21], false), running_var: leaf(bn.rvar, [21], false) });
    const xh = f32(rng.uniformArray(n(xs)));
    const gh = f32(rng.uniformArray(n([2, 21, 10, 9])));
    const run = async (fold: boolean, relu: boolean) => {
      setConvBnFold(fold);
      try {
        const x = leaf(xh, xs, true);
        conv.weight.grad = null;
        void x.buffer;
        const d0 = rt().stats().dispatches;
        const y = convNorm(conv, norm, x, relu);
        void y.buffer;
        const d1 = rt().stats().dispatches;
        backward(y, fromArray(Float32Array.from(gh), y.shape));
        void x.grad!.buffer;
        void conv.weight.grad!.buffer;
        const d2 = rt().stats().dispatches;
        return { y: await y.data(), dx: await x.grad!.data(), dw: await conv.weight.grad!.data(), forward: d1 - d0, back: d2 - d1 };
      } finally {
        setConvBnFold(true);
      }
    };
    for (const relu of [true, false]) {
      const on = await run(true, relu);
      const off = await run(false, relu);
      const what = (t: string) => `${t}${relu ? ' relu' : ''} (seed ${seed})`;
      expectClose(on.y, off.y, { atol: 1e-5, rtol: 1e-5, what: what('y') });
      expectClose(on.dx, off.dx, { atol: 1e-5, rtol: 1e-5, what: what('dx') });
      expectClose(on.dw, off.dw, { atol: 1e-4, rtol: 1e-5, what: what('dw') });
      // Forward: the activation-sized norm pass becomes two small fold ops ([O] and weight-sized);
      // backward: the norm's backward pass becomes the scaled (masked) gradient pass, same count.
      expect(on.forward).toBe(off.forward + 1);
      expect(on.back).toBe(off.back);
    }
  });

  it('where the fold does not pay (a small map), convNorm runs conv then norm: the same values and dispatches', async () => {
    const conv = new Conv2d(13, 21, 3, { padding: 1, bias: false, seed: 8 });
    const norm = new FrozenBatchNorm2d(21);
    const x = leaf(f32(new Rng(testSeed()).uniformArray(13 * 9)), [1, 13, 3, 3], false);
    const run = async (fold: boolean) => {
      setConvBnFold(fold);
      try {
        void x.buffer;
        const d0 = rt().stats().dispatches;
        const y = convNorm(conv, norm, x);
        void y.buffer;
        return { y: await y.data(), dispatches: rt().stats().dispatches - d0 };
      } finally {
        setConvBnFold(true);
      }
    };
    const on = await run(true);
    const off = await run(false);
    expect(on.dispatches).toBe(off.dispatches);
    expect(Array.from(on.y)).toEqual(Array.from(off.y));
  });
});
