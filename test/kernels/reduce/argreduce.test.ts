// argmax / argmin vs a float64 reference: several dims, keepdim, non-contiguous inputs, long rows,
// ties (first index, as PyTorch), NaN (the first NaN wins, as PyTorch), integer inputs, the
// flattened form, and clear errors.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { Rng, testSeed } from '../../util';
import { type Host, type Layout, randHost, randIntHost, upload } from '../../engine/reference';
import { reduceHost } from '../../../kernels/reduce/reference';

beforeAll(async () => {
  await cg.init();
});

/** First index of the extreme, NaN counting as the extreme. */
function argRef(op: 'argmax' | 'argmin', v: number[]): number {
  const nan = v.findIndex(Number.isNaN);
  if (nan >= 0) return nan;
  let best = 0;
  for (let i = 1; i < v.length; i++) if (op === 'argmax' ? v[i]! > v[best]! : v[i]! < v[best]!) best = i;
  return best;
}

const OPS = { argmax: cg.argmax, argmin: cg.argmin };

describe('argmax / argmin', () => {
  for (const op of ['argmax', 'argmin'] as const) {
    const CASES: [number[], number, Layout, boolean][] = [
      [[5, 9], 1, 'contiguous', false],
      [[5, 9], 0, 'transposed', true],
      [[3, 4, 7], 1, 'strided', false],
      [[3, 4, 7], -1, 'transposed', true],
      [[2, 3000], 1, 'contiguous', false], // many elements per thread
    ];
    it(`${op}: vs reference over dims, keepdim, non-contiguous, long rows, with ties`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      for (const [shape, dim, layout, keepdim] of CASES) {
        await cg.scopeAsync(async () => {
          const what = `${op} [${shape}] dim ${dim} ${layout} keepdim ${keepdim} (seed ${seed})`;
          // Few distinct values: ties are frequent, so "first index" is exercised.
          const x: Host = randIntHost(rng, shape, -3, 4);
          const d = dim < 0 ? dim + shape.length : dim;
          const r = OPS[op](upload(x, layout), dim, { keepdim });
          const ref = reduceHost(x, [d], (v) => argRef(op, v), keepdim);
          expect(r.dtype, what).toBe('i32');
          expect(r.shape, what).toEqual(ref.shape);
          expect(await r.toArray(), what).toEqual(Array.from(ref.data));
          // continuous values as well
          const xc = randHost(rng, shape);
          const rc = OPS[op](upload(xc, layout), dim, { keepdim });
          expect(await rc.toArray(), `${what} continuous`).toEqual(Array.from(reduceHost(xc, [d], (v) => argRef(op, v), keepdim).data));
        });
      }
    });
  }

  it('ties give the first index; NaN wins (first NaN), like PyTorch', async () => {
    const t = cg.fromArray([1, 5, 5, 0, 2, 2, 2, 2, 7, NaN, 3, NaN], [3, 4]);
    expect(await cg.argmax(t, 1).toArray()).toEqual([1, 0, 1]);
    expect(await cg.argmin(t, 1).toArray()).toEqual([3, 0, 1]);
    expect(await cg.argmax(t, 0).toArray()).toEqual([2, 2, 0, 2]);
    expect(await cg.argmin(t, 0).toArray()).toEqual([0, 2, 1, 2]);
    const inf = cg.fromArray([-Infinity, -Infinity, 3, Infinity, Infinity]);
    expect(await cg.argmax(inf, 0).item()).toBe(3);
    expect(await cg.argmin(inf, 0).item()).toBe(0);
  });

  it('without a dim: index into the flattened tensor (strided input); integer dtypes', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = randHost(rng, [6, 7]);
    const xt = upload(x, 'transposed');
    const flat = cg.argmax(xt);
    expect(flat.shape).toEqual([]);
    expect(await flat.item()).toBe(argRef('argmax', Array.from(x.data)));
    const kd = cg.argmin(xt, undefined, { keepdim: true });
    expect(kd.shape).toEqual([1, 1]);
    expect(await kd.item()).toBe(argRef('argmin', Array.from(x.data)));
    const xi = cg.fromArray([4, -9, 4, 100, -9], [5], 'i32');
    expect(await cg.argmax(xi, 0).item()).toBe(3);
    expect(await cg.argmin(xi, 0).item()).toBe(1);
    const xu = cg.fromArray([4, 4000000000, 7], [3], 'u32');
    expect(await cg.argmax(xu, 0).item()).toBe(1);
    expect(await cg.argmax(cg.fromArray([0, 1, 1], [3], 'bool'), 0).item()).toBe(1);
  });

  it('rejects empty inputs and bad dims clearly', () => {
    expect(() => cg.argmax(cg.zeros([0]))).toThrow(/argmax: cannot reduce an empty tensor of shape \[0\]/);
    expect(() => cg.argmin(cg.zeros([3, 4]), 2)).toThrow(/dimension 2 out of range for a 2-d tensor/);
  });
});
