// conv2d against the float64 reference: forward, grad input, grad weight, grad bias, on odd shapes
// covering stride, padding, dilation, groups, depthwise, 1×1, fused ReLU and non-contiguous inputs,
// with the auto-chosen, the direct and the portable GEMM (packed-gemm) kernels; packed-gemm against
// the direct kernels; split-K determinism; a dispatch larger than 65,535 workgroups; and the
// reference's gradients by finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, mul, permute, sum, type Tensor } from '../../../engine';
import { conv2d, conv2dForwardRaw, conv2dWgradRaw, type Conv2dOptions } from '../../../engine/ops/conv';
import { convGeometry, overrideGemmWorkgroupSize } from '../../../kernels/conv/geometry';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { conv2dGradRef, conv2dRef, convOutShape, type RefConv, type Shape4, opt } from '../../../kernels/conv/reference';

beforeAll(async () => {
  await init();
});

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

interface Case {
  name: string;
  xs: Shape4;
  ws: Shape4;
  opts: RefConv;
  bias: boolean;
}

const CASES: Case[] = [
  { name: '3x3 pad 1', xs: [2, 5, 9, 7], ws: [11, 5, 3, 3], opts: opt(1, 1, 1), bias: true },
  { name: '3x3 stride 2 pad 1', xs: [2, 3, 11, 9], ws: [9, 3, 3, 3], opts: opt(2, 1, 1), bias: false },
  { name: 'groups 3, 3x2 kernel, stride [2,1], pad [0,1]', xs: [1, 6, 8, 7], ws: [9, 2, 3, 2], opts: opt([2, 1], [0, 1], 1, 3), bias: true },
  { name: 'depthwise 3x3 stride 2', xs: [2, 7, 9, 10], ws: [7, 1, 3, 3], opts: opt(2, 1, 1, 7), bias: true },
  { name: 'dilation 2 pad 2', xs: [1, 4, 10, 9], ws: [5, 4, 3, 3], opts: opt(1, 2, 2), bias: false },
  { name: '1x1 pointwise', xs: [2, 13, 5, 7], ws: [6, 13, 1, 1], opts: opt(1, 0, 1), bias: true },
  { name: '1x1 stride 2', xs: [1, 6, 9, 9], ws: [3, 6, 1, 1], opts: opt(2, 0, 1), bias: false },
  { name: 'one output channel (FCOS ctrness) 3x3', xs: [1, 9, 6, 5], ws: [1, 9, 3, 3], opts: opt(1, 1, 1), bias: true },
];

function toOpts(o: RefConv): Conv2dOptions {
  return { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups };
}

async function runCase(c: Case, seed: number, extra: Conv2dOptions, permuted = false) {
  const rng = new Rng(seed);
  const nx = c.xs.reduce((a, b) => a * b);
  const nw = c.ws.reduce((a, b) => a * b);
  const xh = f32(rng.uniformArray(nx, -1, 1));
  const wh = f32(rng.uniformArray(nw, -1, 1));
  const bh = c.bias ? f32(rng.uniformArray(c.ws[0], -1, 1)) : null;
  const ys = convOutShape(c.xs, c.ws, c.opts);
  const ny = ys.reduce((a, b) => a * b);
  const rh = f32(rng.uniformArray(ny, -1, 1));
  let x: Tensor;
  let base: Tensor | null = null;
  if (permuted) {
    // The same logical x stored as NHWC and permuted to NCHW: a non-contiguous view.
    const [N, C, H, W] = c.xs;
    const nhwc = new Float64Array(nx);
    for (let n = 0; n < N; n++) for (let ch = 0; ch < C; ch++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) nhwc[((n * H + h) * W + w) * C + ch] = xh[((n * C + ch) * H + h) * W + w]!;
    base = fromArray(nhwc, [N, H, W, C]);
    base.requiresGrad = true;
    x = permute(base, [0, 3, 1, 2]);
    expect(x.isContiguous()).toBe(false);
  } else {
    x = fromArray(xh, c.xs);
    x.requiresGrad = true;
  }
  const w = fromArray(wh, c.ws);
  w.requiresGrad = true;
  const b = bh ? fromArray(bh, [c.ws[0]]) : null;
  if (b) b.requiresGrad = true;
  const y = conv2d(x, w, b, { ...toOpts(c.opts), ...extra });
  expect(y.shape).toEqual(ys);
  const loss = sum(mul(y, fromArray(rh, ys)));
  backward(loss);
  let yRef = conv2dRef(xh, c.xs, wh, c.ws, bh, c.opts);
  let gyRef: Float64Array = rh;
  if (extra.activation === 'relu') {
    gyRef = rh.map((r, i) => (yRef[i]! > 0 ? r : 0));
    yRef = yRef.map((v) => Math.max(v, 0));
  }
  const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gyRef, c.opts);
  const K = (c.ws[1] * c.ws[2] * c.ws[3]);
  const tol = { atol: 2e-6 * K + 1e-5, rtol: 1e-4 };
  const what = (t: string) => `${c.name} ${t} (seed ${seed}, algo ${extra.algo ?? 'auto'}${extra.activation ? ', relu' : ''}${permuted ? ', permuted x' : ''})`;
  expectClose(await y.data(), yRef, { ...tol, what: what('y'), shape: ys });
  let gxData = await (base ?? x).grad!.data();
  if (base) {
    // base.grad is NHWC: bring it to NCHW order for the comparison.
    const [N, C, H, W] = c.xs;
    const nchw = new Float64Array(nx);
    for (let n = 0; n < N; n++) for (let ch = 0; ch < C; ch++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) nchw[((n * C + ch) * H + h) * W + w] = gxData[((n * H + h) * W + w) * C + ch]!;
    gxData = Float32Array.from(nchw);
  }
  expectClose(gxData, ref.gx, { ...tol, what: what('grad x'), shape: c.xs });
  const nhw = ys[0] * ys[2] * ys[3];
  expectClose(await w.grad!.data(), ref.gw, { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4, what: what('grad w'), shape: c.ws });
  if (b) expectClose(await b.grad!.data(), ref.gb, { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4, what: what('grad b') });
}

describe('conv2d reference', () => {
  it('float64 reference gradients match finite differences (groups, stride, dilation, padding)', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const c of [
      { xs: [1, 4, 6, 5] as Shape4, ws: [4, 2, 3, 2] as Shape4, o: opt([2, 1], [1, 0], [1, 2], 2) },
      { xs: [2, 2, 5, 5] as Shape4, ws: [3, 2, 3, 3] as Shape4, o: opt(1, 2, 2) },
    ]) {
      const x = rng.uniformArray(c.xs.reduce((a, b) => a * b));
      const w = rng.uniformArray(c.ws.reduce((a, b) => a * b));
      const ys = convOutShape(c.xs, c.ws, c.o);
      const r = rng.uniformArray(ys.reduce((a, b) => a * b));
      const loss = (xx: Float64Array, ww: Float64Array) => conv2dRef(xx, c.xs, ww, c.ws, null, c.o).reduce((s, v, i) => s + v * r[i]!, 0);
      const ref = conv2dGradRef(x, c.xs, w, c.ws, r, c.o);
      expectClose(ref.gx, numericGrad((xx) => loss(xx, w), x), { atol: 1e-6, what: `ref grad x (seed ${seed})` });
      expectClose(ref.gw, numericGrad((ww) => loss(x, ww), w), { atol: 1e-6, what: `ref grad w (seed ${seed})` });
    }
  });
});

describe('conv2d forward and backward vs float64 reference', () => {
  for (const c of CASES) {
    it(`${c.name}: auto-chosen kernels`, async () => runCase(c, testSeed(), {}));
  }
  for (const c of CASES.filter((_, i) => i % 2 === 0)) {
    it(`${c.name}: direct reference kernels`, async () => runCase(c, testSeed(), { algo: 'direct' }));
    it(`${c.name}: packed-gemm kernels`, async () => runCase(c, testSeed(), { algo: 'packed-gemm' }));
  }
  it('fused bias + ReLU (forward and masked backward)', async () => {
    await runCase(CASES[0]!, testSeed(), { activation: 'relu' });
    await runCase(CASES[3]!, testSeed(), { activation: 'relu' });
    await runCase(CASES[5]!, testSeed(), { activation: 'relu', algo: 'packed-gemm' });
  });
  it('the wide-workgroup GEMM configuration used on hardware GPUs (64 invocations)', async () => {
    overrideGemmWorkgroupSize(64);
    try {
      for (const i of [0, 2, 5]) await runCase(CASES[i]!, testSeed(), { algo: 'packed-gemm' });
    } finally {
      overrideGemmWorkgroupSize(undefined);
    }
  });
  it('non-contiguous (permuted NHWC) input', async () => {
    await runCase(CASES[1]!, testSeed(), {}, true);
  });
});

describe('conv2d fast kernels vs direct kernels', () => {
  it('packed-gemm forward and split-K wgrad equal the direct kernels; split-K is deterministic', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs: Shape4 = [2, 10, 13, 11];
    const ws: Shape4 = [12, 5, 3, 3];
    const o = opt(1, 1, 1, 2);
    const x = fromArray(rng.uniformArray(xs.reduce((a, b) => a * b)), xs);
    const w = fromArray(rng.uniformArray(ws.reduce((a, b) => a * b)), ws);
    const geo = convGeometry('test', xs, ws, o);
    const dy = fromArray(rng.uniformArray(geo.N * geo.O * geo.OH * geo.OW), [geo.N, geo.O, geo.OH, geo.OW]);
    const yd = await conv2dForwardRaw(geo, x, w, null, false, 'direct').data();
    const yg = await conv2dForwardRaw(geo, x, w, null, false, 'packed-gemm').data();
    expectClose(yg, yd, { atol: 1e-5, rtol: 1e-5, what: `packed-gemm vs direct forward (seed ${seed})` });
    const wd = await conv2dWgradRaw(geo, dy, x, 'direct').data();
    const w1 = await conv2dWgradRaw(geo, dy, x, 'packed-gemm').data();
    const w2 = await conv2dWgradRaw(geo, dy, x, 'packed-gemm').data();
    expectClose(w1, wd, { atol: 1e-4, rtol: 1e-5, what: `split-K wgrad vs direct (seed ${seed})` });
    expect(Array.from(w2)).toEqual(Array.from(w1));
  });

  it('a conv whose dispatch exceeds 65,535 workgroups (folded grid), direct and packed-gemm', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    // 1×1 conv, 1 → 2 channels, 2 images of 1100 × 1000: 4.4M outputs = 68.8k direct workgroups of
    // 64 outputs, and 2.2M output pixels = 68.8k GEMM workgroups of 8 × 4 pixels (on lavapipe).
    const xs: Shape4 = [2, 1, 1100, 1000];
    const ws: Shape4 = [2, 1, 1, 1];
    const n = xs.reduce((a, b) => a * b);
    const xh = f32(rng.uniformArray(n));
    const wv = [0.75, -1.5];
    const x = fromArray(xh, xs);
    const w = fromArray(wv, ws);
    const geo = convGeometry('test', xs, ws, opt(1, 0, 1));
    const expected = new Float64Array(2 * n);
    const plane = 1100 * 1000;
    for (let b = 0; b < 2; b++) for (let oc = 0; oc < 2; oc++) for (let i = 0; i < plane; i++) expected[(b * 2 + oc) * plane + i] = xh[b * plane + i]! * wv[oc]!;
    for (const algo of ['direct', 'packed-gemm'] as const) {
      const y = conv2dForwardRaw(geo, x, w, null, false, algo);
      expectClose(await y.data(), expected, { atol: 1e-6, what: `${algo} large dispatch (seed ${seed})` });
      y.dispose();
    }
  });
});
