// cumsum vs float64: every dim, non-contiguous inputs, rows longer than one 256-wide tile (the carry
// between tiles), forward and backward (reverse cumsum, checked by finite differences), integer
// and bool inputs, 0-d and empty tensors.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { download, type Host, type Layout, permuteHost, randHost, randIntHost, upload } from '../../engine/reference';

beforeAll(async () => {
  await cg.init();
});

/** Apply f to every fibre along dim. */
function alongDim(h: Host, dim: number, f: (row: number[]) => number[]): Host {
  const perm = [...h.shape.map((_, i) => i).filter((i) => i !== dim), dim];
  const inv = new Array<number>(perm.length);
  perm.forEach((s, d) => (inv[s] = d));
  const p = permuteHost(h, perm);
  const len = h.shape[dim]!;
  for (let i = 0; i < p.data.length; i += len) p.data.set(f(Array.from(p.data.subarray(i, i + len))), i);
  return permuteHost(p, inv);
}
const prefix = (v: number[]) => {
  let s = 0;
  return v.map((x) => (s += x));
};
const suffix = (v: number[]) => prefix([...v].reverse()).reverse();

describe('cumsum', () => {
  it('reference gradient (reverse cumsum) matches finite differences', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const g = Array.from(rng.uniformArray(9));
    const x = rng.uniformArray(9);
    const fd = numericGrad((v) => prefix(Array.from(v)).reduce((a, y, i) => a + y * g[i]!, 0), x);
    expectClose(suffix(g), fd, { atol: 1e-7, what: `cumsum vjp (seed ${seed})` });
  });

  const CASES: [number[], number, Layout][] = [
    [[4, 13], 1, 'contiguous'],
    [[4, 13], 0, 'transposed'],
    [[3, 5, 6], 1, 'strided'],
    [[3, 5, 6], -1, 'transposed'],
    [[2, 700], 1, 'contiguous'], // three tiles: carries across tiles
    [[600, 3], 0, 'strided'],
  ];
  for (const [shape, dim, layout] of CASES) {
    it(`[${shape}] dim ${dim} ${layout}: forward and backward vs float64`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const what = `cumsum [${shape}] dim ${dim} ${layout} (seed ${seed})`;
      const d = dim < 0 ? dim + shape.length : dim;
      const x = randHost(rng, shape);
      const xt = upload(x, layout, { requiresGrad: true });
      const y = cg.cumsum(xt, dim);
      expect(y.shape).toEqual(shape);
      const tol = { atol: 2e-5 * Math.sqrt(shape[d]!), rtol: 1e-5 };
      expectClose(await download(y), alongDim(x, d, prefix).data, { ...tol, what: `${what} forward`, shape });
      const g = randHost(rng, shape);
      cg.backward(y, upload(g));
      expectClose(await download(xt.grad!), alongDim(g, d, suffix).data, { ...tol, what: `${what} grad`, shape });
    });
  }

  it('integer and bool inputs sum exactly in i32 (strided)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = randIntHost(rng, [5, 300], -1000, 1000);
    const y = cg.cumsum(upload(x, 'transposed', { dtype: 'i32' }), 1);
    expect(y.dtype).toBe('i32');
    expect(await y.toArray(), `seed ${seed}`).toEqual(Array.from(alongDim(x, 1, prefix).data));
    const b = cg.cumsum(cg.fromArray([1, 0, 1, 1, 0], [5], 'bool'), 0);
    expect(b.dtype).toBe('i32');
    expect(await b.toArray()).toEqual([1, 1, 2, 3, 3]);
  });

  it('0-d and empty tensors; bad dims rejected', async () => {
    const s = cg.full([], 2.5);
    s.requiresGrad = true;
    const y = cg.cumsum(s, 0);
    expect(y.shape).toEqual([]);
    expect(await y.item()).toBe(2.5);
    cg.backward(y);
    expect(await s.grad!.item()).toBe(1);
    expect(cg.cumsum(cg.zeros([3, 0]), 1).shape).toEqual([3, 0]);
    expect(() => cg.cumsum(cg.zeros([3]), 1)).toThrow(/dimension 1 out of range for a 1-d tensor/);
  });
});
