// conv_transpose2d against the float64 reference (the adjoint of the reference conv, itself
// checked by finite differences here): forward and all gradients, general stride, padding,
// output_padding, dilation and groups, plus the mask head's kernel 2 stride 2 deconv.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, mul, sum } from '../../../engine';
import { convTranspose2d } from '../../../engine/ops/conv-transpose';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { convTranspose2dGradRef, convTranspose2dRef, type RefConvT, type Shape4 } from '../../../kernels/conv/reference';

beforeAll(async () => {
  await init();
});

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const o = (s: [number, number], p: [number, number], op: [number, number], d: [number, number], groups: number): RefConvT => ({ stride: s, padding: p, outputPadding: op, dilation: d, groups });

const CASES: { name: string; xs: Shape4; ws: Shape4; o: RefConvT; bias: boolean }[] = [
  { name: 'mask head deconv k2 s2', xs: [3, 6, 7, 7], ws: [6, 5, 2, 2], o: o([2, 2], [0, 0], [0, 0], [1, 1], 1), bias: true },
  { name: 'k3 s2 pad 1 output_padding 1', xs: [2, 4, 5, 6], ws: [4, 3, 3, 3], o: o([2, 2], [1, 1], [1, 1], [1, 1], 1), bias: false },
  { name: 'groups 2, k3x2, stride [3,1], dilation [1,2], output_padding [2,0]', xs: [1, 4, 4, 5], ws: [4, 3, 3, 2], o: o([3, 1], [1, 0], [2, 0], [1, 2], 2), bias: true },
  { name: 'depthwise k3 s1 pad 1', xs: [2, 5, 6, 5], ws: [5, 1, 3, 3], o: o([1, 1], [1, 1], [0, 0], [1, 1], 5), bias: true },
];

describe('conv_transpose2d', () => {
  it('reference gradients match finite differences', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const c = CASES[2]!;
    const x = rng.uniformArray(prod(c.xs));
    const w = rng.uniformArray(prod(c.ws));
    const ny = convTranspose2dRef(x, c.xs, w, c.ws, null, c.o).y.length;
    const r = rng.uniformArray(ny);
    const loss = (xx: Float64Array, ww: Float64Array) => convTranspose2dRef(xx, c.xs, ww, c.ws, null, c.o).y.reduce((s, v, i) => s + v * r[i]!, 0);
    const ref = convTranspose2dGradRef(x, c.xs, w, c.ws, r, c.o);
    expectClose(ref.gx, numericGrad((xx) => loss(xx, w), x), { atol: 1e-6, what: `ref grad x (seed ${seed})` });
    expectClose(ref.gw, numericGrad((ww) => loss(x, ww), w), { atol: 1e-6, what: `ref grad w (seed ${seed})` });
  });

  for (const c of CASES) {
    for (const algo of ['auto', 'direct'] as const) {
      it(`${c.name} (${algo}): forward and backward vs float64 reference`, async () => {
        const seed = testSeed();
        const rng = new Rng(seed);
        const xh = f32(rng.uniformArray(prod(c.xs)));
        const wh = f32(rng.uniformArray(prod(c.ws)));
        const bh = c.bias ? f32(rng.uniformArray(c.ws[1] * c.o.groups)) : null;
        const ref = convTranspose2dRef(xh, c.xs, wh, c.ws, bh, c.o);
        const rh = f32(rng.uniformArray(ref.y.length));
        const x = fromArray(xh, c.xs);
        const w = fromArray(wh, c.ws);
        const b = bh ? fromArray(bh, [bh.length]) : null;
        for (const t of [x, w, b]) if (t) t.requiresGrad = true;
        const y = convTranspose2d(x, w, b, { ...c.o, algo });
        expect(y.shape).toEqual(ref.shape);
        backward(sum(mul(y, fromArray(rh, ref.shape))));
        const g = convTranspose2dGradRef(xh, c.xs, wh, c.ws, rh, c.o);
        const what = (t: string) => `${c.name} ${t} (seed ${seed}, ${algo})`;
        expectClose(await y.data(), ref.y, { atol: 1e-5, rtol: 1e-4, what: what('y'), shape: ref.shape });
        expectClose(await x.grad!.data(), g.gx, { atol: 1e-4, rtol: 1e-4, what: what('grad x'), shape: c.xs });
        expectClose(await w.grad!.data(), g.gw, { atol: 1e-4, rtol: 1e-4, what: what('grad w'), shape: c.ws });
        if (b) expectClose(await b.grad!.data(), g.gb, { atol: 1e-4, rtol: 1e-4, what: what('grad b') });
      });
    }
  }

  it('rejects an output_padding not smaller than stride or dilation', () => {
    const x = fromArray(new Float32Array(2 * 9), [1, 2, 3, 3]);
    const w = fromArray(new Float32Array(2 * 4), [2, 1, 2, 2]);
    expect(() => convTranspose2d(x, w, null, { stride: 2, outputPadding: 2 })).toThrow(/output_padding/);
  });
});
