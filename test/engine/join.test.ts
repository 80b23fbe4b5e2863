// cat / stack / split / chunk vs a host reference: every dim, non-contiguous inputs, uneven sizes,
// empty pieces, forward and backward (each input receives its slice of the gradient), integer
// dtypes, and clear errors.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../engine';
import { Rng, expectClose, testSeed } from '../util';
import { download, type Host, type Layout, numel, permuteHost, randHost, upload } from './reference';

beforeAll(async () => {
  await cg.init();
});

/** Host concatenation along dim (via moving dim first). */
function catHost(parts: Host[], dim: number): Host {
  const r = parts[0]!.shape.length;
  const perm = [dim, ...Array.from({ length: r }, (_, i) => i).filter((i) => i !== dim)];
  const inv = new Array<number>(r);
  perm.forEach((s, d) => (inv[s] = d));
  const moved = parts.map((p) => permuteHost(p, perm));
  const data = new Float64Array(moved.reduce((s, m) => s + m.data.length, 0));
  let at = 0;
  for (const m of moved) {
    data.set(m.data, at);
    at += m.data.length;
  }
  const shape = [...moved[0]!.shape];
  shape[0] = moved.reduce((s, m) => s + m.shape[0]!, 0);
  return permuteHost({ data, shape }, inv);
}

/** Host slice [start, start+len) along dim. */
function narrowHost(h: Host, dim: number, start: number, len: number): Host {
  const shape = [...h.shape];
  shape[dim] = len;
  const data = new Float64Array(numel(shape));
  const inner = h.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const outer = h.shape.slice(0, dim).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < len; k++) {
      for (let i = 0; i < inner; i++) data[(o * len + k) * inner + i] = h.data[(o * h.shape[dim]! + start + k) * inner + i]!;
    }
  }
  return { data, shape };
}

describe('cat', () => {
  const CASES: [number[][], number, Layout[]][] = [
    [[[2, 3], [4, 3], [1, 3]], 0, ['contiguous', 'transposed', 'strided']],
    [[[3, 2, 5], [3, 4, 5]], 1, ['strided', 'transposed']],
    [[[2, 3, 1], [2, 3, 6], [2, 3, 2]], -1, ['transposed', 'contiguous', 'strided']],
    [[[2, 0], [2, 5]], 1, ['contiguous', 'contiguous']], // an empty piece
  ];
  for (const [shapes, dim, layouts] of CASES) {
    it(`${shapes.map((s) => `[${s}]`).join(' + ')} along ${dim}: forward and backward`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const what = `cat dim ${dim} (seed ${seed})`;
      const d = dim < 0 ? dim + shapes[0]!.length : dim;
      const parts = shapes.map((s) => randHost(rng, s));
      const ts = parts.map((p, k) => upload(p, layouts[k]!, { requiresGrad: true }));
      const y = cg.cat(ts, dim);
      const ref = catHost(parts, d);
      expect(y.shape).toEqual(ref.shape);
      expectClose(await download(y), ref.data, { what, atol: 0, rtol: 0 });
      const g = randHost(rng, ref.shape);
      cg.backward(y, upload(g));
      let at = 0;
      for (const [k, p] of parts.entries()) {
        const len = p.shape[d]!;
        if (numel(p.shape) > 0) expectClose(await download(ts[k]!.grad!), narrowHost(g, d, at, len).data, { what: `${what} grad ${k}`, atol: 0, rtol: 0 });
        at += len;
      }
    });
  }

  it('only inputs that require grad get one; integer cat; concat alias', async () => {
    const a = cg.fromArray([1, 2]);
    const b = cg.fromArray([3]);
    b.requiresGrad = true;
    cg.backward(cg.sum(cg.mul(cg.cat([a, b]), cg.fromArray([5, 6, 7]))));
    expect(a.grad).toBeNull();
    expect(await b.grad!.toArray()).toEqual([7]);
    const i = cg.concat([cg.fromArray([1, 2], [1, 2], 'i32'), cg.fromArray([3, 4, 5, 6], [2, 2], 'i32')], 0);
    expect(i.dtype).toBe('i32');
    expect(await i.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects mismatched shapes, dtypes and empty lists clearly', () => {
    expect(() => cg.cat([])).toThrow(/cat: needs at least one tensor/);
    expect(() => cg.cat([cg.zeros([2, 3]), cg.zeros([2, 4])], 0)).toThrow(/cat: tensor 1 has shape \[2,4\], expected \[\*,3\]/);
    expect(() => cg.cat([cg.zeros([2]), cg.zeros([2], 'i32')])).toThrow(/cat: tensor 1 has dtype i32, expected f32/);
    expect(() => cg.cat([cg.zeros([2]), cg.zeros([2, 1])])).toThrow(/cat: tensor 1 has shape \[2,1\]/);
    expect(() => cg.cat([cg.zeros([2])], 1)).toThrow(/dimension 1 out of range/);
  });
});

describe('stack', () => {
  for (const dim of [0, 1, 2, -1]) {
    it(`three [3,4] tensors (mixed layouts) along ${dim}: forward and backward`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const parts = [0, 1, 2].map(() => randHost(rng, [3, 4]));
      const layouts: Layout[] = ['transposed', 'contiguous', 'strided'];
      const ts = parts.map((p, k) => upload(p, layouts[k]!, { requiresGrad: true }));
      const y = cg.stack(ts, dim);
      const d = dim < 0 ? dim + 3 : dim;
      const withNewDim = parts.map((p) => ({ data: p.data, shape: [...p.shape.slice(0, d), 1, ...p.shape.slice(d)] }));
      const ref = catHost(withNewDim, d);
      expect(y.shape).toEqual(ref.shape);
      expectClose(await download(y), ref.data, { what: `stack ${dim} (seed ${seed})`, atol: 0, rtol: 0 });
      const g = randHost(rng, ref.shape);
      cg.backward(y, upload(g));
      for (let k = 0; k < 3; k++) {
        expectClose(await download(ts[k]!.grad!), narrowHost(g, d, k, 1).data, { what: `stack ${dim} grad ${k} (seed ${seed})`, atol: 0, rtol: 0 });
      }
    });
  }

  it('stacks 0-d tensors and rejects unequal shapes', async () => {
    expect(await cg.stack([cg.full([], 1), cg.full([], 2)]).toArray()).toEqual([1, 2]);
    expect(() => cg.stack([cg.zeros([2]), cg.zeros([3])])).toThrow(/stack: tensor 1 has shape \[3\], expected \[2\]/);
    expect(() => cg.stack([cg.zeros([2])], 2)).toThrow(/stack: dim 2 out of range for stacking 1-d tensors/);
  });
});

describe('split and chunk', () => {
  it('split by size and by sizes: views with the right values; gradients flow back', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = randHost(rng, [4, 10]);
    const xt = upload(x, 'transposed', { requiresGrad: true });
    const bySize = cg.split(xt, 4, 1);
    expect(bySize.map((t) => t.shape)).toEqual([[4, 4], [4, 4], [4, 2]]);
    expect(bySize.every((t) => t.storage === xt.storage)).toBe(true);
    const bySizes = cg.split(xt, [1, 0, 3], 0);
    expect(bySizes.map((t) => t.shape)).toEqual([[4, 10].map((n, i) => (i === 0 ? 1 : n)), [0, 10], [3, 10]]);
    let at = 0;
    for (const t of bySize) {
      expectClose(await download(t), narrowHost(x, 1, at, t.shape[1]!).data, { what: `split (seed ${seed})`, atol: 0, rtol: 0 });
      at += t.shape[1]!;
    }
    expectClose(await download(bySizes[2]!), narrowHost(x, 0, 1, 3).data, { what: `split sizes (seed ${seed})`, atol: 0, rtol: 0 });
    // loss = sum_k (k+1) * sum(piece_k)
    const loss = cg.sum(cg.stack(bySize.map((t, k) => cg.mulScalar(cg.sum(t), k + 1))));
    cg.backward(loss);
    const expected = Array.from({ length: 40 }, (_, i) => Math.floor((i % 10) / 4) + 1);
    expect(await xt.grad!.toArray()).toEqual(expected);
  });

  it('chunk follows torch.chunk (ceil sizes, possibly fewer pieces)', async () => {
    const x = cg.arange(10);
    expect(cg.chunk(x, 3).map((t) => t.shape[0])).toEqual([4, 4, 2]);
    expect(cg.chunk(x, 4).map((t) => t.shape[0])).toEqual([3, 3, 3, 1]);
    expect(cg.chunk(cg.arange(6), 4).map((t) => t.shape[0])).toEqual([2, 2, 2]);
    expect(await cg.chunk(x, 3)[2]!.toArray()).toEqual([8, 9]);
    expect(() => cg.chunk(x, 0)).toThrow(/chunk: chunks must be a positive integer, got 0/);
    expect(() => cg.split(x, [3, 3])).toThrow(/split: sizes \[3,3\] must be non-negative integers adding up to 10/);
    expect(() => cg.split(x, 0)).toThrow(/split: size must be a positive integer, got 0/);
  });
});
