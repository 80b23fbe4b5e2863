// subgroup-gemm (chunked im2col + subgroup-broadcast GEMM, kernels/conv/subgroup-gemm/) against
// the float64 reference on odd shapes: stride 2 and mixed strides (dgrad by stride phases, one
// phase with no taps), dilation, asymmetric padding, groups, 1×1, k2 s2, one and four output
// channels, channel counts that are not multiples of 4, 8-, 16- and 32-row tiles, output planes whose
// size is and is not a multiple of 4 (vec4 and scalar stores), inputs that are non-contiguous views
// or start at an odd offset, a tiny workspace so every op runs through several chunks, and a
// wgrad with so few output tiles that its reduction is split into partial sums. Where the adapter
// has no 8-wide subgroups (not lavapipe) only the chooser's fallbacks are checked.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init } from '../../../engine';
import { conv2dWgradRaw } from '../../../engine/ops/conv';
import { chooseDgrad, chooseForward, chooseWgrad } from '../../../kernels/conv/chooser';
import { convGeometry } from '../../../kernels/conv/geometry';
import { subgroupGemmApplicable } from '../../../kernels/conv/subgroup-gemm/conv';
import { overrideSubgroupGemmChunkBytes, overrideSubgroupGemmRows } from '../../../kernels/conv/subgroup-gemm/gemm';
import { type ConvCase, opt } from '../../../kernels/conv/reference';
import { testSeed } from '../../util';
import { caseData, checkKernel, type CheckOptions } from './check';

let available = false;
beforeAll(async () => {
  await init();
  available = subgroupGemmApplicable(convGeometry('probe', [1, 1, 3, 3], [1, 1, 3, 3], opt(1, 1, 1)));
});
afterEach(() => {
  overrideSubgroupGemmChunkBytes(undefined);
  overrideSubgroupGemmRows(undefined);
});

const CASES: ConvCase[] = [
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

const check = (c: ConvCase, seed: number, view?: CheckOptions['view']) => checkKernel(c, seed, 'subgroup-gemm', { view, plainForward: true });

describe('subgroup-gemm vs float64 reference', () => {
  it('is available on this adapter (lavapipe: 8-wide subgroups), or auto never picks it', () => {
    const geo = convGeometry('t', [1, 8, 8, 8], [16, 8, 3, 3], opt(1, 1, 1));
    if (!available) expect(chooseForward(geo, 'auto', [0, 0])).not.toBe('subgroup-gemm');
    else expect(subgroupGemmApplicable(geo)).toBe(true);
  });
  it('auto: dgrad with fewer than 8 input channels per group (the stem) uses packed-gemm, whose row tile follows Cg', () => {
    const stem = convGeometry('stem', [2, 3, 64, 64], [64, 3, 3, 3], opt(2, 1, 1));
    expect(chooseDgrad(stem, 'auto', [0])).toBe('packed-gemm');
    if (!available) return;
    expect([chooseForward(stem, 'auto', [0, 0]), chooseWgrad(stem, 'auto')]).toEqual(['subgroup-gemm', 'subgroup-gemm']);
  });
  it('auto falls back to packed-gemm where a packed operand would not fit one 128 MiB binding', () => {
    // 4 images of 512² with 64 channels: the wgrad's packed dy rows take 64 x 4·512·512 x 4 B =
    // 256 MiB, while the forward's and dgrad's packed weights are a few KiB.
    const big = convGeometry('big', [4, 64, 512, 512], [64, 64, 3, 3], opt(1, 1, 1));
    expect(chooseWgrad(big)).toBe('packed-gemm');
    expect(subgroupGemmApplicable(big, 'wgrad')).toBe(false);
    if (!available) return;
    expect(chooseForward(big, 'auto', [0, 0])).toBe('subgroup-gemm');
    expect(chooseDgrad(big, 'auto', [0, 0])).toBe('subgroup-gemm');
    // Weights of 4096 x 4096 x 3 x 3 pack to 576 MiB: forward and dgrad fall back too.
    const wide = convGeometry('wide', [1, 4096, 4, 4], [4096, 4096, 3, 3], opt(1, 1, 1));
    expect(chooseForward(wide, 'auto', [0, 0])).toBe('packed-gemm');
    expect(chooseDgrad(wide, 'auto', [0, 0])).toBe('packed-gemm');
  });
  for (const c of CASES) it(c.name, async () => {
    if (!available) return;
    await check(c, testSeed());
  });
  it('several workspace chunks (tiny chunk) on the strided, grouped and 16-row cases', async () => {
    if (!available) return;
    overrideSubgroupGemmChunkBytes(1);
    for (const i of [0, 2, 9]) await check(CASES[i]!, testSeed());
  });
  it('16-row GEMM tiles above 16 rows (override; the default there is 32)', async () => {
    if (!available) return;
    overrideSubgroupGemmRows(16);
    for (const i of [0, 9]) await check(CASES[i]!, testSeed());
  });
  it('non-contiguous and odd-offset inputs', async () => {
    if (!available) return;
    await check(CASES[1]!, testSeed(), 'permuted');
    await check(CASES[3]!, testSeed(), 'offset');
  });
  it('wgrad over several chunks is deterministic (fixed accumulation order)', async () => {
    if (!available) return;
    overrideSubgroupGemmChunkBytes(1);
    const c = CASES[0]!;
    const { xh, gh, ys } = caseData(c, testSeed());
    const geo = convGeometry('test', c.xs, c.ws, c.o);
    const x = fromArray(xh, c.xs);
    const dy = fromArray(gh, ys);
    const a = await conv2dWgradRaw(geo, dy, x, 'subgroup-gemm').data();
    const b = await conv2dWgradRaw(geo, dy, x, 'subgroup-gemm').data();
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});
