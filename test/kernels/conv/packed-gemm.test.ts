// packed-gemm (kernels/conv/packed-gemm/: packed row operands, register tiles) against the float64
// reference and against the direct and scalar-gemm kernels, on odd shapes: stride 2 and mixed
// strides, groups, dilation, asymmetric padding, 1×1, one output channel, channel counts that are
// not multiples of 4, and every register-tile height (TM = 4, 8, 16), including inputs wide enough
// to have an unmasked interior. Forward with bias + fused ReLU.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init } from '../../../engine';
import { conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { type ConvAlgo } from '../../../kernels/conv/chooser';
import { convGeometry } from '../../../kernels/conv/geometry';
import { overridePackedGemmRows } from '../../../kernels/conv/packed-gemm/pack';
import { type ConvCase, opt } from '../../../kernels/conv/reference';
import { expectClose, testSeed } from '../../util';
import { caseData, checkKernel } from './check';

beforeAll(async () => {
  await init();
});
afterEach(() => overridePackedGemmRows(undefined));

const CASES: ConvCase[] = [
  { name: '3x3 pad 1, 17 out channels, wide interior', xs: [2, 5, 7, 19], ws: [17, 5, 3, 3], o: opt(1, 1, 1) },
  { name: '3x3 stride 2 pad 1, 3 in channels (stem)', xs: [2, 3, 11, 13], ws: [9, 3, 3, 3], o: opt(2, 1, 1) },
  { name: 'groups 2, 3x2 kernel, stride [2,1], pad [0,1]', xs: [1, 6, 9, 10], ws: [10, 3, 3, 2], o: opt([2, 1], [0, 1], 1, 2) },
  { name: 'dilation 2 pad 2', xs: [1, 7, 10, 12], ws: [6, 7, 3, 3], o: opt(1, 2, 2) },
  { name: '1x1 pointwise, 18 out', xs: [2, 11, 5, 7], ws: [18, 11, 1, 1], o: opt(1, 0, 1) },
  { name: 'one output channel 3x3', xs: [2, 9, 6, 9], ws: [1, 9, 3, 3], o: opt(1, 1, 1) },
  { name: 'k2 s2 (deconv-like), 5 out', xs: [3, 6, 8, 6], ws: [5, 6, 2, 2], o: opt(2, 0, 1) },
  { name: 'kernel wider than the padded interior', xs: [1, 3, 5, 4], ws: [4, 3, 3, 5], o: opt(1, [1, 2], 1) },
];

describe('packed-gemm vs float64 reference', () => {
  for (const c of CASES) {
    it(`${c.name}: packed-gemm (auto TM) and direct`, async () => {
      const seed = testSeed();
      for (const algo of ['packed-gemm', 'direct'] as const) await checkKernel(c, seed, algo);
    });
  }
  for (const tm of [4, 8, 16]) {
    it(`TM = ${tm} on the strided, grouped and dilated cases`, async () => {
      overridePackedGemmRows(tm);
      for (const i of [1, 2, 3]) await checkKernel(CASES[i]!, testSeed(), 'packed-gemm');
    });
  }
});

describe('packed-gemm vs the direct and scalar-gemm kernels', () => {
  it('forward, dgrad, wgrad agree with direct (and the forward with scalar-gemm) on a split-K sized shape', async () => {
    const seed = testSeed();
    const c: ConvCase = { name: 'split-K', xs: [2, 12, 21, 23], ws: [20, 6, 3, 3], o: opt(1, 1, 1, 2) };
    const { xh, wh, gh, ys } = caseData(c, seed);
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
    const packed = await run('packed-gemm');
    const again = await run('packed-gemm');
    const scalarY = await conv2dForwardRaw(geo, x, w, null, false, 'scalar-gemm').data();
    expectClose(packed.y, d.y, { atol: 1e-5, rtol: 1e-5, what: `packed-gemm vs direct forward (seed ${seed})` });
    expectClose(packed.y, scalarY, { atol: 1e-5, rtol: 1e-5, what: `packed-gemm vs scalar-gemm forward (seed ${seed})` });
    expectClose(packed.dx, d.dx, { atol: 1e-5, rtol: 1e-5, what: `packed-gemm vs direct dgrad (seed ${seed})` });
    expectClose(packed.dw, d.dw, { atol: 1e-4, rtol: 1e-5, what: `packed-gemm vs direct wgrad (seed ${seed})` });
    // Split-K reduces in a fixed order: bitwise identical across runs.
    expect(Array.from(again.dw)).toEqual(Array.from(packed.dw));
  });
});
