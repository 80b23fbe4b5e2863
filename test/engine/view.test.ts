// View ops against a host reference built from index maps: each op is applied on the host to the
// flat indices of the input, so the expected forward is x[index] and the expected gradient is the
// upstream gradient scattered (added) back to those indices. Checks that views share storage and
// that reshape copies exactly when torch.reshape would.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import type { Tensor } from '../../engine';
import { Rng, expectClose, testSeed } from '../util';
import { download, type Host, type Layout, mapHost, numel, permuteHost, randHost, stridesOf, unravelIndex, upload } from './reference';

beforeAll(async () => {
  await cg.init();
});

const iota = (shape: number[]): Host => ({ data: Float64Array.from({ length: numel(shape) }, (_, i) => i), shape });
const withShape = (h: Host, shape: number[]): Host => ({ data: h.data, shape });

function sliceHost(h: Host, dim: number, start: number, end: number, step: number): Host {
  const shape = [...h.shape];
  shape[dim] = Math.max(0, Math.ceil((end - start) / step));
  const st = stridesOf(h.shape);
  const data = Float64Array.from({ length: numel(shape) }, (_, i) => {
    const idx = unravelIndex(i, shape);
    idx[dim] = start + idx[dim]! * step;
    return h.data[idx.reduce((s, v, d) => s + v * st[d]!, 0)]!;
  });
  return { data, shape };
}

interface ViewCase {
  name: string;
  shape: number[];
  run: (t: Tensor) => Tensor;
  ref: (h: Host) => Host;
}

const CASES: ViewCase[] = [
  { name: 'reshape [3,4,5]->[5,12]', shape: [3, 4, 5], run: (t) => cg.reshape(t, [5, 12]), ref: (h) => withShape(h, [5, 12]) },
  { name: 'reshape with -1', shape: [3, 4, 5], run: (t) => cg.reshape(t, [2, -1, 5]), ref: (h) => withShape(h, [2, 6, 5]) },
  { name: 'flatten(1)', shape: [2, 3, 4, 5], run: (t) => cg.flatten(t, 1), ref: (h) => withShape(h, [2, 60]) },
  { name: 'flatten(1, 2)', shape: [2, 3, 4, 5], run: (t) => cg.flatten(t, 1, 2), ref: (h) => withShape(h, [2, 12, 5]) },
  { name: 'permute [2,0,1]', shape: [3, 4, 5], run: (t) => cg.permute(t, [2, 0, 1]), ref: (h) => permuteHost(h, [2, 0, 1]) },
  { name: 'transpose(0, 2)', shape: [3, 4, 5], run: (t) => cg.transpose(t, 0, 2), ref: (h) => permuteHost(h, [2, 1, 0]) },
  { name: 'slice step 2', shape: [7, 9], run: (t) => cg.slice(t, 1, 1, 8, 2), ref: (h) => sliceHost(h, 1, 1, 8, 2) },
  { name: 'slice step 3 negative start', shape: [7, 9], run: (t) => cg.slice(t, 0, -6, undefined, 3), ref: (h) => sliceHost(h, 0, 1, 7, 3) },
  { name: 'slice clamps end', shape: [5, 6], run: (t) => cg.slice(t, -1, 2, 100), ref: (h) => sliceHost(h, 1, 2, 6, 1) },
  { name: 'narrow', shape: [4, 6, 3], run: (t) => cg.narrow(t, 1, 2, 3), ref: (h) => sliceHost(h, 1, 2, 5, 1) },
  {
    name: 'select negative index',
    shape: [4, 5, 3],
    run: (t) => cg.select(t, 1, -2),
    ref: (h) => withShape(sliceHost(h, 1, 3, 4, 1), [4, 3]),
  },
  { name: 'expand', shape: [3, 1, 4], run: (t) => cg.expand(t, [2, 3, 5, 4]), ref: (h) => mapHost([h, { data: new Float64Array(40), shape: [2, 1, 5, 4] }], (x) => x) },
  { name: 'expand with -1', shape: [3, 1], run: (t) => cg.expand(t, [-1, 6]), ref: (h) => mapHost([h, { data: new Float64Array(6), shape: [6] }], (x) => x) },
  { name: 'squeeze all', shape: [1, 4, 1, 5], run: (t) => cg.squeeze(t), ref: (h) => withShape(h, [4, 5]) },
  { name: 'squeeze dim', shape: [1, 4, 1, 5], run: (t) => cg.squeeze(t, 2), ref: (h) => withShape(h, [1, 4, 5]) },
  { name: 'squeeze non-1 dim is a no-op', shape: [3, 4], run: (t) => cg.squeeze(t, 0), ref: (h) => h },
  { name: 'unsqueeze middle', shape: [3, 4], run: (t) => cg.unsqueeze(t, 1), ref: (h) => withShape(h, [3, 1, 4]) },
  { name: 'unsqueeze -1', shape: [3, 4], run: (t) => cg.unsqueeze(t, -1), ref: (h) => withShape(h, [3, 4, 1]) },
  {
    name: 'chain: transpose, slice, reshape, expand',
    shape: [4, 6],
    run: (t) => cg.expand(cg.reshape(cg.slice(cg.transpose(t, 0, 1), 0, 0, 6, 2), [1, 12]), [3, 12]),
    ref: (h) => mapHost([withShape(sliceHost(permuteHost(h, [1, 0]), 0, 0, 6, 2), [1, 12]), { data: new Float64Array(3), shape: [3, 1] }], (x) => x),
  },
];

describe('view ops: forward and backward vs index-map reference', () => {
  CASES.forEach((c, k) => {
    const layouts: Layout[] = ['contiguous', k % 2 ? 'transposed' : 'strided'];
    it(`${c.name} (${layouts.join(', ')})`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const index = c.ref(iota(c.shape)); // flat input index of each output element
      for (const layout of layouts) {
        await cg.scopeAsync(async () => {
          const what = `${c.name} ${layout} (seed ${seed})`;
          const x = randHost(rng, c.shape);
          const xt = upload(x, layout, { requiresGrad: true });
          const y = c.run(xt);
          expect(y.shape, what).toEqual(index.shape);
          if (!['reshape', 'flatten', 'chain'].some((p) => c.name.startsWith(p))) expect(y.storage, `${what}: a view shares storage`).toBe(xt.storage);
          expectClose(await download(y), Array.from(index.data, (i) => x.data[i]!), { what: `${what} forward`, atol: 0, rtol: 0 });
          const g = randHost(rng, index.shape);
          cg.backward(y, upload(g));
          const expected = new Float64Array(x.data.length);
          index.data.forEach((src, i) => (expected[src]! += g.data[i]!));
          expectClose(await download(xt.grad!), expected, { what: `${what} grad`, shape: c.shape, atol: 1e-6 });
        });
      }
    });
  });
});

describe('reshape: view when strides allow, copy otherwise (torch.reshape rule)', () => {
  it('contiguous input: always a view', async () => {
    const x = cg.arange(24);
    const r = cg.reshape(x, [2, 3, 4]);
    expect(r.storage).toBe(x.storage);
    expect(r.strides).toEqual([12, 4, 1]);
  });

  it('permuted input: splitting a dim is a view, merging non-adjacent strides copies', async () => {
    const base = cg.arange(24);
    const p = cg.permute(cg.reshape(base, [2, 3, 4]), [0, 2, 1]); // [2,4,3], strides [12,1,4]
    const split = cg.reshape(p, [2, 2, 2, 3]);
    expect(split.storage).toBe(base.storage);
    expect(split.strides).toEqual([12, 2, 1, 4]);
    const merged = cg.reshape(p, [2, 12]);
    expect(merged.storage).not.toBe(base.storage);
    expect(merged.isContiguous()).toBe(true);
    const ref = permuteHost(iota([2, 3, 4]), [0, 2, 1]);
    expect(await split.toArray()).toEqual(Array.from(ref.data));
    expect(await merged.toArray()).toEqual(Array.from(ref.data));
  });

  it('stepped slice: adding size-1 dims and merging outer dims is a view, flattening copies', async () => {
    const base = cg.reshape(cg.arange(36), [6, 6]);
    // [6,3] strides [6,2] from offset 1 is evenly spaced (stride 2 throughout): flattening is a view.
    const even = cg.reshape(cg.slice(base, 1, 1, 6, 2), [18]);
    expect(even.storage).toBe(base.storage);
    expect(even.strides).toEqual([2]);
    expect(await even.toArray()).toEqual(Array.from({ length: 18 }, (_, i) => 1 + 2 * i));
    const s = cg.slice(base, 1, 1, 5, 2); // [6,2] strides [6,2]: rows not evenly spaced
    const unsq = cg.reshape(s, [6, 1, 2]);
    expect(unsq.storage).toBe(base.storage);
    const outer = cg.reshape(cg.slice(cg.reshape(cg.arange(24), [2, 3, 4]), 2, 0, 2), [6, 2]); // merge [2,3] dims of strides [12,4]
    expect(outer.isContiguous()).toBe(false);
    expect(await outer.toArray()).toEqual([0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21]);
    const flat = cg.reshape(s, [12]);
    expect(flat.storage).not.toBe(base.storage);
    expect(await flat.toArray()).toEqual(Array.from(sliceHost(iota([6, 6]), 1, 1, 5, 2).data));
  });

  it('a view sees writes to its base (no hidden copy)', async () => {
    const base = cg.zeros([2, 3]);
    const v = cg.transpose(base, 0, 1);
    const row = cg.select(base, 0, 1);
    cg.mapInto('fill7', '7.0', [], row, 'f32');
    expect(await v.toArray()).toEqual([0, 7, 0, 7, 0, 7]);
  });
});

describe('view errors name what was expected', () => {
  it('rejects bad shapes, dims and indices', () => {
    const x = cg.zeros([3, 4]);
    expect(() => cg.reshape(x, [5, 3])).toThrow(/cannot reshape 12 elements into \[5,3\]/);
    expect(() => cg.reshape(x, [-1, 5])).toThrow(/cannot reshape 12 elements/);
    expect(() => cg.permute(x, [0])).toThrow(/permute: 1 dims given for a 2-d tensor/);
    expect(() => cg.permute(x, [1, 1])).toThrow(/repeated dim/);
    expect(() => cg.transpose(x, 0, 2)).toThrow(/dimension 2 out of range for a 2-d tensor/);
    expect(() => cg.select(x, 1, 4)).toThrow(/select: index 4 out of range for size 4/);
    expect(() => cg.slice(x, 0, 0, 2, 0)).toThrow(/step must be positive/);
    expect(() => cg.expand(x, [3, 5])).toThrow(/cannot expand \[3,4\] to \[3,5\]/);
    expect(() => cg.expand(x, [-1, 3, 4])).toThrow(/-1 is not allowed for new leading dims/);
    expect(() => cg.unsqueeze(x, 3)).toThrow(/unsqueeze: dim 3 out of range/);
  });

  it('empty slices and contiguous() of a view', async () => {
    const x = cg.reshape(cg.arange(12), [3, 4]);
    const e = cg.slice(x, 1, 3, 1);
    expect(e.shape).toEqual([3, 0]);
    expect(await e.toArray()).toEqual([]);
    const t = cg.transpose(x, 0, 1);
    const c = cg.contiguous(t);
    expect(c.isContiguous()).toBe(true);
    expect(cg.contiguous(c)).toBe(c);
    expect(await c.toArray()).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  });
});
