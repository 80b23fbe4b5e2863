// Conv GEMM variant 3 (chunked im2col + subgroup GEMM, kernels/conv/v3.ts and gemm-v3.ts) against
// the float64 reference on odd shapes: stride 2 and mixed strides (dgrad by stride phases, one
// phase with no taps), dilation, asymmetric padding, groups, 1×1, k2 s2, one and four output
// channels, channel counts that are not multiples of 4, 8-, 16- and 32-row tiles, output planes whose
// size is and is not a multiple of 4 (vec4 and scalar stores), inputs that are non-contiguous views
// or start at an odd offset, a tiny workspace so every op runs through several chunks, and a
// wgrad with so few output tiles that its reduction is split into partial sums.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, narrow, permute, type Tensor } from '../../../engine';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { type ConvAlgo, chooseDgrad, chooseForward, chooseWgrad } from '../../../kernels/conv/dispatch';
import { v3Applicable } from '../../../kernels/conv/gemm-v3';
import { rt } from '../../../runtime/runtime';
import { convGeometry } from '../../../kernels/conv/geometry';
import { overrideV3ChunkBytes, overrideV3Rows } from '../../../kernels/conv/v3';
import { Rng, expectClose, testSeed } from '../../util';
import { conv2dGradRef, conv2dRef, convOutShape, type RefConv, type Shape4, opt, type ConvCase } from '../../../kernels/conv/reference';

let available = false;
beforeAll(async () => {
  await init();
  available = v3Applicable(convGeometry('probe', [1, 1, 3, 3], [1, 1, 3, 3], opt(1, 1, 1)));
});
afterEach(() => {
  overrideV3ChunkBytes(undefined);
  overrideV3Rows(undefined);
});

type Case = ConvCase;

const CASES: Case[] = [
  { name: '3x3 pad 1, 17 out (16-row tiles), 5 in', xs: [2, 5, 7, 9], ws: [17, 5, 3, 3], o: opt(1, 1, 1) },
  { name: '3x3 stride 2 pad 1, 3 in (stem), plane 6x7', xs: [2, 3, 11, 13], ws: [9, 3, 3, 3], o: opt(2, 1, 1) },
  { name: 'groups 2, 3x2 kernel, stride [2,1], pad [0,1]', xs: [1, 6, 9, 10], ws: [10, 3, 3, 2], o: opt([2, 1], [0, 1], 1, 2) },
  { name: 'dilation 2 pad 2, 8x12 plane (vec4 stores)', xs: [1, 7, 8, 12], ws: [6, 7, 3, 3], o: opt(1, 2, 2) },
  { name: '1x1 pointwise, 18 out', xs: [2, 11, 5, 7], ws: [18, 11, 1, 1], o: opt(1, 0, 1) },
  { name: '1x1 stride 2 (dgrad phases without taps)', xs: [2, 6, 7, 6], ws: [5, 6, 1, 1], o: opt(2, 0, 1) },
  { name: 'one output channel 3x3', xs: [2, 9, 6, 9], ws: [1, 9, 3, 3], o: opt(1, 1, 1) },
  { name: 'four output channels 3x3, 33 in', xs: [1, 33, 5, 8], ws: [4, 33, 3, 3], o: opt(1, 1, 1) },
  { name: 'k2 s2 (deconv-like), 5 out', xs: [3, 6, 8, 6], ws: [5, 6, 2, 2], o: opt(2, 0, 1) },
  { name: '3x3 stride 2 pad 1 dilation 2, odd plane', xs: [1, 4, 9, 11], ws: [20, 4, 3, 3], o: opt(2, 1, 2) },
  { name: 'few GEMM tiles (3 in, 6 out): wgrad reduction split into partials', xs: [2, 3, 24, 23], ws: [6, 3, 3, 3], o: opt(1, 1, 1) },
];

function data(c: Case, seed: number) {
  const rng = new Rng(seed);
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b);
  const ys = convOutShape(c.xs, c.ws, c.o);
  const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
  return { xh: f32(rng.uniformArray(n(c.xs), -1, 1)), wh: f32(rng.uniformArray(n(c.ws), -1, 1)), bh: f32(rng.uniformArray(c.ws[0], -1, 1)), gh: f32(rng.uniformArray(n(ys), -1, 1)), ys };
}

/** The same values as a view that is not a plain contiguous tensor at offset 0. */
function oddView(h: Float64Array, s: Shape4, how: 'permuted' | 'offset'): Tensor {
  if (how === 'offset') {
    // One extra leading image in front: the view starts at element C·H·W (not 4-aligned for odd sizes).
    const per = s[1] * s[2] * s[3];
    const big = new Float64Array(per + h.length);
    big.set(h, per);
    for (let i = 0; i < per; i++) big[i] = 1e3; // poison: must never be read
    return narrow(fromArray(big, [s[0] + 1, s[1], s[2], s[3]]), 0, 1, s[0]);
  }
  // Stored as [N, H, C, W], viewed as [N, C, H, W].
  const [N, C, H, W] = s;
  const t = new Float64Array(h.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) t[((n * H + y) * C + c) * W + x] = h[((n * C + c) * H + y) * W + x]!;
  return permute(fromArray(t, [N, H, C, W]), [0, 2, 1, 3]);
}

async function check(c: Case, seed: number, view?: 'permuted' | 'offset', algo: ConvAlgo = 'gemm3') {
  const { xh, wh, bh, gh, ys } = data(c, seed);
  const geo = convGeometry('test', c.xs, c.ws, c.o);
  const x = view ? oddView(xh, c.xs, view) : fromArray(xh, c.xs);
  const w = fromArray(wh, c.ws);
  const b = fromArray(bh, [c.ws[0]]);
  const dy = view ? oddView(gh, ys, view) : fromArray(gh, ys);
  const yRef = conv2dRef(xh, c.xs, wh, c.ws, bh, c.o).map((v) => Math.max(v, 0));
  const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gh, c.o);
  const K = c.ws[1] * c.ws[2] * c.ws[3];
  const nhw = ys[0] * ys[2] * ys[3];
  const what = (t: string) => `${c.name} ${t} (seed ${seed}, ${algo}${view ? `, ${view} inputs` : ''})`;
  const tol = { atol: 2e-6 * K + 1e-5, rtol: 1e-4 };
  expectClose(await conv2dForwardRaw(geo, x, w, b, true, algo).data(), yRef, { ...tol, what: what('y = relu(conv + b)'), shape: ys });
  expectClose(await conv2dForwardRaw(geo, x, w, null, false, algo).data(), conv2dRef(xh, c.xs, wh, c.ws, null, c.o), { ...tol, what: what('y = conv'), shape: ys });
  expectClose(await conv2dDgradRaw(geo, dy, w, algo).data(), ref.gx, { ...tol, what: what('grad x'), shape: c.xs });
  const gwTol = { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4 };
  expectClose(await conv2dWgradRaw(geo, dy, x, algo).data(), ref.gw, { ...gwTol, what: what('grad w'), shape: c.ws });
  // Both gradients recorded together (the few kernels fuse them into one dispatch).
  const [gx, gw] = conv2dBackwardRaw(geo, dy, x, w, true, true, algo);
  expectClose(await gx!.data(), ref.gx, { ...tol, what: what('grad x (backward pair)'), shape: c.xs });
  expectClose(await gw!.data(), ref.gw, { ...gwTol, what: what('grad w (backward pair)'), shape: c.ws });
}

describe('conv GEMM variant 3 vs float64 reference', () => {
  it('is available on this adapter (lavapipe: 8-wide subgroups), or auto never picks it', () => {
    const geo = convGeometry('t', [1, 8, 8, 8], [16, 8, 3, 3], opt(1, 1, 1));
    if (!available) expect(chooseForward(geo, 'auto', [0, 0])).not.toBe('gemm3');
    else expect(v3Applicable(geo)).toBe(true);
  });
  it('auto: dgrad with fewer than 8 input channels per group (the stem) uses gemm2, whose row tile follows Cg', () => {
    const stem = convGeometry('stem', [2, 3, 64, 64], [64, 3, 3, 3], opt(2, 1, 1));
    expect(chooseDgrad(stem, 'auto', [0])).toBe('gemm2');
    if (!available) return;
    expect([chooseForward(stem, 'auto', [0, 0]), chooseWgrad(stem, 'auto')]).toEqual(['gemm3', 'gemm3']);
  });
  it('auto falls back to gemm2 where a packed operand would not fit one 128 MiB binding', () => {
    // 4 images of 512² with 64 channels: the wgrad's packed dy rows take 64 x 4·512·512 x 4 B =
    // 256 MiB, while the forward's and dgrad's packed weights are a few KiB.
    const big = convGeometry('big', [4, 64, 512, 512], [64, 64, 3, 3], opt(1, 1, 1));
    expect(chooseWgrad(big)).toBe('gemm2');
    expect(v3Applicable(big, 'wgrad')).toBe(false);
    if (!available) return;
    expect(chooseForward(big, 'auto', [0, 0])).toBe('gemm3');
    expect(chooseDgrad(big, 'auto', [0, 0])).toBe('gemm3');
    // Weights of 4096 x 4096 x 3 x 3 pack to 576 MiB: forward and dgrad fall back too.
    const wide = convGeometry('wide', [1, 4096, 4, 4], [4096, 4096, 3, 3], opt(1, 1, 1));
    expect(chooseForward(wide, 'auto', [0, 0])).toBe('gemm2');
    expect(chooseDgrad(wide, 'auto', [0, 0])).toBe('gemm2');
  });
  for (const c of CASES) it(c.name, async () => {
    if (!available) return;
    await check(c, testSeed());
  });
  it('several workspace chunks (tiny chunk) on the strided, grouped and 16-row cases', async () => {
    if (!available) return;
    overrideV3ChunkBytes(1);
    for (const i of [0, 2, 9]) await check(CASES[i]!, testSeed());
  });
  it('16-row GEMM tiles above 16 rows (override; the default there is 32)', async () => {
    if (!available) return;
    overrideV3Rows(16);
    for (const i of [0, 9]) await check(CASES[i]!, testSeed());
  });
  it('non-contiguous and odd-offset inputs', async () => {
    if (!available) return;
    await check(CASES[1]!, testSeed(), 'permuted');
    await check(CASES[3]!, testSeed(), 'offset');
  });
  it('wgrad over several chunks is deterministic (fixed accumulation order)', async () => {
    if (!available) return;
    overrideV3ChunkBytes(1);
    const c = CASES[0]!;
    const { xh, gh, ys } = data(c, testSeed());
    const geo = convGeometry('test', c.xs, c.ws, c.o);
    const x = fromArray(xh, c.xs);
    const dy = fromArray(gh, ys);
    const a = await conv2dWgradRaw(geo, dy, x, 'gemm3').data();
    const b = await conv2dWgradRaw(geo, dy, x, 'gemm3').data();
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});

const FEW: Case[] = [
  { name: 'few: 1 out 3x3 (FCOS cls-like), 9 in, odd plane', xs: [2, 9, 6, 9], ws: [1, 9, 3, 3], o: opt(1, 1, 1) },
  { name: 'few: 4 out 3x3 (FCOS bbox-like), 33 in, 8-wide plane', xs: [1, 33, 5, 8], ws: [4, 33, 3, 3], o: opt(1, 1, 1) },
  { name: 'few: 1 out 1x1 (mask predictor-like), 12-wide', xs: [3, 10, 5, 12], ws: [1, 10, 1, 1], o: opt(1, 0, 1) },
  { name: 'few: 3 out 5x3, pad [2,0], SAM-like 2 in', xs: [2, 2, 7, 10], ws: [3, 2, 5, 3], o: opt(1, [2, 0], 1) },
  { name: 'few: 4 out 5x3 (wgrad lanes per (c, kh): O·KH = 20), 11 in', xs: [2, 11, 6, 7], ws: [4, 11, 5, 3], o: opt(1, [2, 1], 1) },
];

describe('few-output-channel kernels (few.ts: forward, dgrad, wgrad) vs float64 reference', () => {
  it('auto picks few for forward, dgrad and wgrad of few-output stride-1 convs, small or large', () => {
    if (!available) return;
    const geo = convGeometry('t', FEW[0]!.xs, FEW[0]!.ws, FEW[0]!.o);
    expect([chooseForward(geo, 'auto', [0, 0]), chooseDgrad(geo, 'auto', [0]), chooseWgrad(geo, 'auto')]).toEqual(['few', 'few', 'few']);
    const big = convGeometry('t', [2, 128, 32, 32], [4, 128, 3, 3], opt(1, 1, 1));
    expect([chooseForward(big, 'auto', [0, 0]), chooseDgrad(big, 'auto', [0]), chooseWgrad(big, 'auto')]).toEqual(['few', 'few', 'few']);
    const strided = convGeometry('t', [1, 4, 9, 9], [2, 4, 3, 3], opt(2, 1, 1));
    expect(chooseForward(strided, 'auto', [0, 0])).not.toBe('few');
  });
  for (const c of FEW) it(c.name, async () => {
    if (!available) return;
    await check(c, testSeed(), undefined, 'few');
  });
  it('fused few backward: one dispatch, bit-identical to the two separate kernels, with and without a split wgrad', async () => {
    if (!available) return;
    // Lanes per (channel, kernel row) or per channel (O·KH ≤ 8, ≥ 8 channels); one row chunk (dw
    // written directly: 1 dispatch) or split rows (+ the fixed-order reduction: 2 dispatches).
    const cases: [Case, number][] = [
      [FEW[1]!, 1],
      [{ name: 'SAM-like 2 → 1, 16 images', xs: [16, 2, 7, 8], ws: [1, 2, 3, 3], o: opt(1, 1, 1) }, 2],
      [{ name: 'cls-like 16 → 1 @4', xs: [1, 16, 4, 4], ws: [1, 16, 3, 3], o: opt(1, 1, 1) }, 1],
      [{ name: 'cls-like 9 → 2, 2 images, odd plane', xs: [2, 9, 7, 9], ws: [2, 9, 3, 3], o: opt(1, 1, 1) }, 2],
    ];
    for (const [c, dispatches] of cases) {
      const { xh, wh, gh, ys } = data(c, testSeed());
      const geo = convGeometry('test', c.xs, c.ws, c.o);
      const [x, w, dy] = [fromArray(xh, c.xs), fromArray(wh, c.ws), fromArray(gh, ys)];
      const before = rt().stats().dispatches;
      const [gx, gw] = conv2dBackwardRaw(geo, dy, x, w, true, true);
      expect(rt().stats().dispatches - before, c.name).toBe(dispatches);
      expect(Array.from(await gx!.data()), c.name).toEqual(Array.from(await conv2dDgradRaw(geo, dy, w, 'few').data()));
      expect(Array.from(await gw!.data()), c.name).toEqual(Array.from(await conv2dWgradRaw(geo, dy, x, 'few').data()));
      const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gh, c.o);
      expectClose(await gw!.data(), ref.gw, { atol: 1e-4, rtol: 1e-4, what: `${c.name} grad w`, shape: c.ws });
    }
  });
  it('few with non-contiguous and odd-offset inputs', async () => {
    if (!available) return;
    await check(FEW[1]!, testSeed(), 'offset', 'few');
    await check(FEW[3]!, testSeed(), 'permuted', 'few');
  });
});
