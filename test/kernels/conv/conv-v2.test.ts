// The variant-2 conv GEMMs (packed operands: forward-v2.ts, dgrad-v2.ts, wgrad-v2.ts) against the
// float64 reference and against the direct reference kernels and variant 1, on odd shapes: stride
// 2 and mixed strides, groups, dilation, asymmetric padding, 1×1, one output channel, channel
// counts that are not multiples of 4, and every register-tile height (TM = 4, 8, 16), including
// inputs wide enough to have an unmasked interior. Forward with bias + fused ReLU. Also the fc
// kernels (fc.ts) for 1×1 convs on 1×1 maps (eSE), chosen automatically there.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init } from '../../../engine';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { type ConvAlgo, chooseDgrad, chooseForward, chooseWgrad, hardwareDgrad, hardwareForward } from '../../../kernels/conv/dispatch';
import { overrideV2Rows } from '../../../kernels/conv/forward-v2';
import { convGeometry } from '../../../kernels/conv/geometry';
import { Rng, expectClose, testSeed } from '../../util';
import { conv2dGradRef, conv2dRef, convOutShape, type RefConv, type Shape4, opt, type ConvCase } from '../../../kernels/conv/reference';

beforeAll(async () => {
  await init();
});
afterEach(() => overrideV2Rows(undefined));

type Case = ConvCase;

const CASES: Case[] = [
  { name: '3x3 pad 1, 17 out channels, wide interior', xs: [2, 5, 7, 19], ws: [17, 5, 3, 3], o: opt(1, 1, 1) },
  { name: '3x3 stride 2 pad 1, 3 in channels (stem)', xs: [2, 3, 11, 13], ws: [9, 3, 3, 3], o: opt(2, 1, 1) },
  { name: 'groups 2, 3x2 kernel, stride [2,1], pad [0,1]', xs: [1, 6, 9, 10], ws: [10, 3, 3, 2], o: opt([2, 1], [0, 1], 1, 2) },
  { name: 'dilation 2 pad 2', xs: [1, 7, 10, 12], ws: [6, 7, 3, 3], o: opt(1, 2, 2) },
  { name: '1x1 pointwise, 18 out', xs: [2, 11, 5, 7], ws: [18, 11, 1, 1], o: opt(1, 0, 1) },
  { name: 'one output channel 3x3', xs: [2, 9, 6, 9], ws: [1, 9, 3, 3], o: opt(1, 1, 1) },
  { name: 'k2 s2 (deconv-like), 5 out', xs: [3, 6, 8, 6], ws: [5, 6, 2, 2], o: opt(2, 0, 1) },
  { name: 'kernel wider than the padded interior', xs: [1, 3, 5, 4], ws: [4, 3, 3, 5], o: opt(1, [1, 2], 1) },
];

function data(c: Case, seed: number) {
  const rng = new Rng(seed);
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b);
  const ys = convOutShape(c.xs, c.ws, c.o);
  const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
  return { xh: f32(rng.uniformArray(n(c.xs), -1, 1)), wh: f32(rng.uniformArray(n(c.ws), -1, 1)), bh: f32(rng.uniformArray(c.ws[0], -1, 1)), gh: f32(rng.uniformArray(n(ys), -1, 1)), ys };
}

async function check(c: Case, seed: number, algos: ConvAlgo[]) {
  const { xh, wh, bh, gh, ys } = data(c, seed);
  const geo = convGeometry('test', c.xs, c.ws, c.o);
  const x = fromArray(xh, c.xs);
  const w = fromArray(wh, c.ws);
  const b = fromArray(bh, [c.ws[0]]);
  const dy = fromArray(gh, ys);
  const yRef = conv2dRef(xh, c.xs, wh, c.ws, bh, c.o).map((v) => Math.max(v, 0));
  const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gh, c.o);
  const K = c.ws[1] * c.ws[2] * c.ws[3];
  const nhw = ys[0] * ys[2] * ys[3];
  for (const algo of algos) {
    const what = (t: string) => `${c.name} ${t} (seed ${seed}, algo ${algo})`;
    const tol = { atol: 2e-6 * K + 1e-5, rtol: 1e-4 };
    expectClose(await conv2dForwardRaw(geo, x, w, b, true, algo).data(), yRef, { ...tol, what: what('y = relu(conv + b)'), shape: ys });
    expectClose(await conv2dDgradRaw(geo, dy, w, algo).data(), ref.gx, { ...tol, what: what('grad x'), shape: c.xs });
    expectClose(await conv2dWgradRaw(geo, dy, x, algo).data(), ref.gw, { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4, what: what('grad w'), shape: c.ws });
    // Both gradients as autograd records them (one fused dispatch for few and fc).
    const [gx, gw] = conv2dBackwardRaw(geo, dy, x, w, true, true, algo);
    expectClose(await gx!.data(), ref.gx, { ...tol, what: what('grad x (backward)'), shape: c.xs });
    expectClose(await gw!.data(), ref.gw, { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4, what: what('grad w (backward)'), shape: c.ws });
  }
}

describe('conv GEMM variant 2 vs float64 reference', () => {
  for (const c of CASES) it(`${c.name}: gemm2 (auto TM) and direct`, async () => check(c, testSeed(), ['gemm2', 'direct']));
  for (const tm of [4, 8, 16]) {
    it(`TM = ${tm} on the strided, grouped and dilated cases`, async () => {
      overrideV2Rows(tm);
      for (const i of [1, 2, 3]) await check(CASES[i]!, testSeed(), ['gemm2']);
    });
  }
});

describe('conv GEMM variant 2 vs the direct kernels and variant 1', () => {
  it('forward, dgrad, wgrad agree with direct and gemm1 on a split-K sized shape', async () => {
    const seed = testSeed();
    const c: Case = { name: 'split-K', xs: [2, 12, 21, 23], ws: [20, 6, 3, 3], o: opt(1, 1, 1, 2) };
    const { xh, wh, gh, ys } = data(c, seed);
    const geo = convGeometry('test', c.xs, c.ws, c.o);
    const x = fromArray(xh, c.xs);
    const w = fromArray(wh, c.ws);
    const dy = fromArray(gh, ys);
    const run = async (algo: ConvAlgo) => ({
      y: await conv2dForwardRaw(geo, x, w, null, false, algo).data(),
      dx: await conv2dDgradRaw(geo, dy, w, algo).data(),
      dw: await conv2dWgradRaw(geo, dy, x, algo).data(),
    });
    const d = await run('direct');
    const v1 = await run('gemm1');
    const v2 = await run('gemm2');
    const again = await run('gemm2');
    for (const [name, other] of [['direct', d], ['gemm1', v1]] as const) {
      expectClose(v2.y, other.y, { atol: 1e-5, rtol: 1e-5, what: `gemm2 vs ${name} forward (seed ${seed})` });
      expectClose(v2.dx, other.dx, { atol: 1e-5, rtol: 1e-5, what: `gemm2 vs ${name} dgrad (seed ${seed})` });
      expectClose(v2.dw, other.dw, { atol: 1e-4, rtol: 1e-5, what: `gemm2 vs ${name} wgrad (seed ${seed})` });
    }
    // Split-K reduces in a fixed order: bitwise identical across runs.
    expect(Array.from(again.dw)).toEqual(Array.from(v2.dw));
  });
});

describe('fc kernels (1×1 conv on 1×1 maps, eSE)', () => {
  const c: Case = { name: 'eSE-like fc 12→9, 5 images', xs: [5, 12, 1, 1], ws: [9, 12, 1, 1], o: opt(1, 0, 1) };
  it('auto picks fc for aligned operands and gemm otherwise', () => {
    const geo = convGeometry('test', c.xs, c.ws, c.o);
    expect(chooseForward(geo, 'auto', [0, 0])).toBe('fc');
    expect(chooseDgrad(geo, 'auto', [0])).toBe('fc');
    expect(chooseForward(geo, 'auto', [0, 3])).not.toBe('fc');
    expect(chooseWgrad(geo, 'auto', [0, 0])).toBe('fc');
    expect(chooseWgrad(geo, 'auto', [2, 0])).not.toBe('fc');
    expect(chooseWgrad(geo, 'fc', [0, 1])).toBe('gemm2');
    const odd = convGeometry('test', [2, 6, 1, 1], [4, 6, 1, 1], c.o);
    expect(chooseForward(odd, 'auto', [0, 0])).not.toBe('fc');
  });
  it('forward (bias + ReLU), dgrad and wgrad vs float64 reference and direct', async () => check(c, testSeed(), ['fc', 'auto', 'direct']));
});

describe('auto choice on hardware GPUs (the H100 measurements)', () => {
  const geo = (n: number, c: number, o: number, h: number, k: number, s = 1) =>
    convGeometry('test', [n, c, h, h], [o, c, k, k], opt(s, k >> 1, 1));
  it('direct for small 3×3 maps and few-channel heads, gemm1 for deep 3×3 at 32²–64², gemm2 else', () => {
    expect(hardwareForward(geo(2, 1024, 224, 16, 3))).toBe('direct'); // OSA5_2: 1.73 vs 3.30 ms (gemm1)
    expect(hardwareForward(geo(2, 128, 128, 16, 3, 2))).toBe('direct'); // FPN p6
    expect(hardwareForward(geo(2, 128, 4, 64, 3))).toBe('direct'); // FCOS bbox @64
    expect(hardwareForward(geo(2, 768, 192, 32, 3))).toBe('gemm1'); // OSA4_2: 2.57 vs 3.36 (gemm2)
    expect(hardwareForward(geo(2, 160, 160, 64, 3))).toBe('gemm1'); // OSA3
    expect(hardwareForward(geo(2, 128, 128, 64, 3))).toBe('gemm2'); // FPN @64: 0.66 vs 0.93 (gemm1)
    expect(hardwareForward(geo(2, 64, 64, 256, 3))).toBe('gemm2'); // stem_2: 0.96 vs 1.92 (gemm1)
    expect(hardwareForward(geo(2, 1888, 1024, 16, 1))).toBe('gemm2'); // 1×1 at 16²: direct 2.48 vs 0.81
    expect(hardwareDgrad(geo(2, 224, 224, 16, 3))).toBe('direct'); // OSA5: 0.49 vs 1.21 (gemm2)
    expect(hardwareDgrad(geo(2, 128, 128, 64, 3))).toBe('gemm2');
    expect(hardwareDgrad(geo(2, 2144, 1024, 16, 1))).toBe('gemm2');
  });
});
