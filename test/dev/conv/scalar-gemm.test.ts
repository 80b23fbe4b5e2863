// The superseded scalar-gemm dgrad and wgrad (dev/conv/, no adapter chooses them) still agree with
// the float64 reference and with the shipped kernels, so A/B experiments against them stay
// meaningful: strided, grouped and split-K sized shapes, the 1×1 specialisation, a forced split
// count, and the fixed-order (deterministic) split-K reduction.
import { beforeAll, describe, expect, it } from 'vitest';
import { empty, fromArray, init, type Tensor } from '../../../engine';
import { conv2dDgradRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { convGeometry, type ConvGeometry } from '../../../kernels/conv/geometry';
import { conv2dGradRef, type ConvCase, opt } from '../../../kernels/conv/reference';
import { convDgradScalarGemm } from '../../../dev/conv/scalar-gemm-dgrad';
import { convWgradScalarGemm } from '../../../dev/conv/scalar-gemm-wgrad';
import { expectClose, testSeed } from '../../util';
import { caseData } from '../../kernels/conv/check';

beforeAll(async () => {
  await init();
});

function dgrad(g: ConvGeometry, dy: Tensor, w: Tensor): Tensor {
  const dx = empty([g.N, g.C, g.H, g.W]);
  convDgradScalarGemm(g, dy.buffer, dy.offset, w.buffer, w.offset, dx.buffer, dx.offset);
  return dx;
}

function wgrad(g: ConvGeometry, dy: Tensor, x: Tensor, splits?: number): Tensor {
  const dw = empty([g.O, g.C / g.groups, g.KH, g.KW]);
  convWgradScalarGemm(g, dy.buffer, dy.offset, x.buffer, x.offset, dw.buffer, dw.offset, splits);
  return dw;
}

const CASES: ConvCase[] = [
  { name: 'split-K sized, groups 2', xs: [2, 12, 21, 23], ws: [20, 6, 3, 3], o: opt(1, 1, 1, 2) },
  { name: '3x3 stride 2 pad 1, 3 in channels (stem)', xs: [2, 3, 11, 13], ws: [9, 3, 3, 3], o: opt(2, 1, 1) },
  { name: 'groups 2, 3x2 kernel, stride [2,1], pad [0,1]', xs: [1, 6, 9, 10], ws: [10, 3, 3, 2], o: opt([2, 1], [0, 1], 1, 2) },
  { name: '1x1 pointwise, 18 out', xs: [2, 11, 5, 7], ws: [18, 11, 1, 1], o: opt(1, 0, 1) },
];

describe('dev/conv scalar-gemm dgrad and wgrad', () => {
  for (const c of CASES) {
    it(`${c.name}: vs float64 reference and packed-gemm`, async () => {
      const seed = testSeed();
      const { xh, wh, gh, ys } = caseData(c, seed);
      const geo = convGeometry('test', c.xs, c.ws, c.o);
      const [x, w, dy] = [fromArray(xh, c.xs), fromArray(wh, c.ws), fromArray(gh, ys)];
      const ref = conv2dGradRef(xh, c.xs, wh, c.ws, gh, c.o);
      const K = c.ws[1] * c.ws[2] * c.ws[3];
      const nhw = ys[0] * ys[2] * ys[3];
      const dx = await dgrad(geo, dy, w).data();
      const dw = await wgrad(geo, dy, x).data();
      expectClose(dx, ref.gx, { atol: 2e-6 * K + 1e-5, rtol: 1e-4, what: `${c.name} grad x (seed ${seed})`, shape: c.xs });
      expectClose(dw, ref.gw, { atol: 2e-6 * nhw + 1e-5, rtol: 1e-4, what: `${c.name} grad w (seed ${seed})`, shape: c.ws });
      expectClose(dx, await conv2dDgradRaw(geo, dy, w, 'packed-gemm').data(), { atol: 1e-5, rtol: 1e-5, what: `${c.name} vs packed-gemm dgrad (seed ${seed})` });
      expectClose(dw, await conv2dWgradRaw(geo, dy, x, 'packed-gemm').data(), { atol: 1e-4, rtol: 1e-5, what: `${c.name} vs packed-gemm wgrad (seed ${seed})` });
    });
  }
  it('wgrad with a forced split count equals the unsplit one and is deterministic', async () => {
    const c = CASES[0]!;
    const seed = testSeed();
    const { xh, gh, ys } = caseData(c, seed);
    const geo = convGeometry('test', c.xs, c.ws, c.o);
    const [x, dy] = [fromArray(xh, c.xs), fromArray(gh, ys)];
    const one = await wgrad(geo, dy, x, 1).data();
    const a = await wgrad(geo, dy, x, 5).data();
    const b = await wgrad(geo, dy, x, 5).data();
    expectClose(a, one, { atol: 1e-4, rtol: 1e-5, what: `5 splits vs 1 (seed ${seed})` });
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});
