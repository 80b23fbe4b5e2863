// Reductions vs float64: sum/mean/max/min/prod over several axis sets, keepdim, non-contiguous
// inputs, forward and backward; long rows that take the two-pass split of kernels/reduce/reduce.ts;
// tie sharing in the max/min gradient; NaN propagation; prod's gradient with zeros; var/std.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import type { Tensor } from '../../../engine';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { download, type Host, type Layout, mapHost, randHost, randIntHost, upload } from '../../engine/reference';
import { reduceHost } from '../../../kernels/reduce/reference';

beforeAll(async () => {
  await cg.init();
});

type Axes = number | number[] | undefined;
const axesList = (axes: Axes, ndim: number) =>
  axes === undefined ? Array.from({ length: ndim }, (_, i) => i) : (typeof axes === 'number' ? [axes] : axes).map((a) => (a < 0 ? a + ndim : a));

interface ReduceCase {
  run: (t: Tensor, axes: Axes, keepdim: boolean) => Tensor;
  f: (v: number[]) => number;
  /** d f / d v_i for one group. */
  df: (v: number[], i: number) => number;
  lo?: number;
  hi?: number;
}

const prodOthers = (v: number[], i: number) => v.reduce((p, x, j) => (j === i ? p : p * x), 1);
const share = (v: number[], i: number, best: number) => (v[i] === best ? 1 / v.filter((x) => x === best).length : 0);
const OPS: Record<string, ReduceCase> = {
  sum: { run: (t, a, k) => cg.sum(t, a, { keepdim: k }), f: (v) => v.reduce((s, x) => s + x, 0), df: () => 1 },
  mean: { run: (t, a, k) => cg.mean(t, a, { keepdim: k }), f: (v) => v.reduce((s, x) => s + x, 0) / v.length, df: (v) => 1 / v.length },
  max: { run: (t, a, k) => cg.max(t, a, { keepdim: k }), f: (v) => Math.max(...v), df: (v, i) => share(v, i, Math.max(...v)) },
  min: { run: (t, a, k) => cg.min(t, a, { keepdim: k }), f: (v) => Math.min(...v), df: (v, i) => share(v, i, Math.min(...v)) },
  prod: { run: (t, a, k) => cg.prod(t, a, { keepdim: k }), f: (v) => v.reduce((p, x) => p * x, 1), df: prodOthers, lo: 0.7, hi: 1.3 },
};

/** Expected input gradient of reducing `axes` with upstream gradient g (keepdim shape). */
function reduceGradHost(x: Host, axes: number[], c: ReduceCase, g: Host): Float64Array {
  const groups = new Map<number, number[]>(); // output cell -> input flat indices
  const kept = x.shape.map((n, d) => (axes.includes(d) ? 1 : n));
  for (let i = 0; i < x.data.length; i++) {
    let cell = 0;
    let rem = i;
    const idx: number[] = [];
    for (let d = x.shape.length - 1; d >= 0; d--) {
      idx[d] = rem % x.shape[d]!;
      rem = Math.floor(rem / x.shape[d]!);
    }
    for (let d = 0; d < x.shape.length; d++) cell = cell * kept[d]! + (axes.includes(d) ? 0 : idx[d]!);
    if (!groups.has(cell)) groups.set(cell, []);
    groups.get(cell)!.push(i);
  }
  const out = new Float64Array(x.data.length);
  for (const [cell, members] of groups) {
    const vals = members.map((i) => x.data[i]!);
    members.forEach((i, k) => (out[i] = g.data[cell]! * c.df(vals, k)));
  }
  return out;
}

describe('reductions vs float64', () => {
  const AXES: [number[], Axes, Layout][] = [
    [[5, 7], undefined, 'contiguous'],
    [[5, 7], 0, 'transposed'],
    [[4, 5, 6], [0, 2], 'strided'],
    [[4, 5, 6], -1, 'transposed'],
    [[3, 4, 5, 2], [1, 2], 'contiguous'],
  ];
  for (const [name, c] of Object.entries(OPS)) {
    it(`${name}: forward and backward over several axis sets, keepdim, non-contiguous`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      // The reference gradient of one group matches finite differences of the reference.
      const pts = rng.uniformArray(7, c.lo ?? -1, c.hi ?? 1);
      const fd = numericGrad((v) => c.f(Array.from(v)), pts);
      expectClose(Array.from(pts, (_, i) => c.df(Array.from(pts), i)), fd, { atol: 1e-6, rtol: 1e-5, what: `${name} reference grad (seed ${seed})` });
      for (const [shape, axes, layout] of AXES) {
        for (const keepdim of [false, true]) {
          await cg.scopeAsync(async () => {
            const what = `${name} [${shape}] axes ${JSON.stringify(axes)} keepdim ${keepdim} ${layout} (seed ${seed})`;
            const ax = axesList(axes, shape.length);
            const x = randHost(rng, shape, c.lo ?? -1, c.hi ?? 1);
            const xt = upload(x, layout, { requiresGrad: true });
            const y = c.run(xt, axes, keepdim);
            const ref = reduceHost(x, ax, c.f, keepdim);
            expect(y.shape, what).toEqual(ref.shape);
            expectClose(await download(y), ref.data, { what: `${what} forward`, rtol: 1e-5, atol: 1e-5 });
            const g = randHost(rng, ref.shape);
            cg.backward(y, upload(g));
            expectClose(await download(xt.grad!), reduceGradHost(x, ax, c, g), { what: `${what} grad`, shape, rtol: 1e-4, atol: 1e-5 });
          });
        }
      }
    });
  }

  it('long rows take the two-pass split (sum, mean, max, min, prod; f32 and i32) and match one pass', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const len of [8193, 20011]) {
      await cg.scopeAsync(async () => {
        const x = randHost(rng, [3, len], -1, 1);
        const xt = upload(x, 'contiguous', { requiresGrad: true });
        for (const name of ['sum', 'mean', 'max', 'min'] as const) {
          const y = OPS[name]!.run(xt, 1, false);
          const ref = reduceHost(x, [1], OPS[name]!.f);
          expectClose(await download(y), ref.data, { what: `${name} len ${len} (seed ${seed})`, atol: 1e-4, rtol: 1e-5 });
        }
        const px = randHost(rng, [2, len], 0.9999, 1.0001);
        const p = cg.prod(upload(px), -1);
        // A product of 20k f32 factors accumulates ~1e-4 relative rounding error (a sequential f32
        // product on the host is off by a similar amount), hence rtol 1e-3.
        expectClose(await download(p), reduceHost(px, [1], OPS.prod!.f).data, { what: `prod len ${len} (seed ${seed})`, rtol: 1e-3 });
        // gradient of mean over a long row
        cg.backward(cg.sum(cg.mean(xt, 1)));
        expectClose(await download(xt.grad!), new Float64Array(3 * len).fill(1 / len), { what: `mean grad len ${len}`, rtol: 1e-5, atol: 0 });
        const xi = randIntHost(rng, [2, len], -100, 100);
        const si = cg.sum(upload(xi, 'contiguous', { dtype: 'i32' }), 1);
        expect(si.dtype).toBe('i32');
        expect(await si.toArray()).toEqual(Array.from(reduceHost(xi, [1], (v) => v.reduce((a, b) => a + b, 0)).data));
        const mi = cg.max(upload(xi, 'contiguous', { dtype: 'i32' }), 1);
        expect(await mi.toArray()).toEqual(Array.from(reduceHost(xi, [1], (v) => Math.max(...v)).data));
        // a full reduction of a long strided view (copied to rows, then split)
        const wide = upload(randHost(rng, [40, 250]), 'transposed');
        const total = cg.sum(wide);
        expect(total.shape).toEqual([]);
        const hostWide = await download(wide);
        expectClose([await total.item()], [hostWide.reduce((a, b) => a + b, 0)], { atol: 1e-3, what: 'sum of 10000 strided' });
      });
    }
  });

  it('max/min share the gradient equally among ties', async () => {
    const x = cg.fromArray([3, 1, 3, 2, 5, 5, 5, 0], [2, 4]);
    x.requiresGrad = true;
    cg.backward(cg.sum(cg.max(x, 1)));
    expect(await x.grad!.toArray()).toEqual([0.5, 0, 0.5, 0, 1 / 3, 1 / 3, 1 / 3, 0].map(Math.fround));
    const y = cg.fromArray([1, 1, 2, 1]);
    y.requiresGrad = true;
    cg.backward(cg.min(y));
    expect(await y.grad!.toArray()).toEqual([1 / 3, 1 / 3, 0, 1 / 3].map(Math.fround));
  });

  it('NaN propagates through sum, max and min (one pass and two pass)', async () => {
    for (const len of [9, 9000]) {
      const data = new Float32Array(2 * len).fill(1);
      data[len + 3] = NaN;
      const x = cg.fromArray(data, [2, len]);
      for (const f of [cg.sum, cg.max, cg.min]) {
        const r = await f(x, 1).toArray();
        expect(Number.isNaN(r[0]!), `${f.name} len ${len} row 0`).toBe(false);
        expect(Number.isNaN(r[1]!), `${f.name} len ${len} row 1`).toBe(true);
      }
    }
    const allMax = await cg.max(cg.fromArray([NaN, -Infinity])).item();
    expect(Number.isNaN(allMax)).toBe(true);
  });

  it('prod gradient with zeros follows PyTorch (no NaN): one zero, two zeros, none', async () => {
    const x = cg.fromArray([2, 0, 3, 4, 0, 0, 5, 1, 2, 3, 4, 5], [3, 4]);
    x.requiresGrad = true;
    const p = cg.prod(x, 1);
    expect(await p.toArray()).toEqual([0, 0, 120]);
    cg.backward(cg.sum(p));
    expect(await x.grad!.toArray()).toEqual([0, 24, 0, 0, 0, 0, 0, 0, 60, 40, 30, 24]);
  });

  it('integer and bool sums are exact and integer-typed; mean of ints is rejected', async () => {
    const b = cg.fromArray([1, 0, 1, 1, 0, 1], [2, 3], 'bool');
    const s = cg.sum(b, 1);
    expect(s.dtype).toBe('i32');
    expect(await s.toArray()).toEqual([2, 2]);
    expect(() => cg.mean(cg.fromArray([1, 2], [2], 'i32'))).toThrow(/mean: needs a float tensor, got i32/);
    expect(() => cg.sum(cg.zeros([2, 0]), 1)).toThrow(/reduction over an empty dimension/);
    expect(() => cg.sum(cg.zeros([2, 3]), 2)).toThrow(/dimension 2 out of range/);
  });
});

describe('variance and std', () => {
  const varRef = (v: number[], unbiased: boolean) => {
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return v.reduce((a, b) => a + (b - m) ** 2, 0) / (unbiased ? v.length - 1 : v.length);
  };
  for (const [shape, axes, unbiased, layout] of [
    [[6, 7], 1, true, 'transposed'],
    [[4, 3, 5], [0, 2], false, 'strided'],
    [[9], undefined, true, 'contiguous'],
  ] as [number[], Axes, boolean, Layout][]) {
    it(`var/std [${shape}] axes ${JSON.stringify(axes)} unbiased=${unbiased}: forward and backward`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const ax = axesList(axes, shape.length);
      const x = randHost(rng, shape, -2, 2);
      const what = `(seed ${seed})`;
      // reference gradient d var / d x_i = 2 (x_i - mean) / (n - ddof), checked by finite differences
      const pts = Array.from(rng.uniformArray(6, -2, 2));
      const fd = numericGrad((v) => varRef(Array.from(v), unbiased), Float64Array.from(pts));
      const m = pts.reduce((a, b) => a + b, 0) / 6;
      expectClose(pts.map((p) => (2 * (p - m)) / (unbiased ? 5 : 6)), fd, { atol: 1e-6, what: `var reference grad ${what}` });
      for (const which of ['var', 'std'] as const) {
        await cg.scopeAsync(async () => {
          const xt = upload(x, layout, { requiresGrad: true });
          const y = which === 'var' ? cg.variance(xt, axes, { unbiased }) : cg.std(xt, axes, { unbiased });
          const post = (v: number) => (which === 'var' ? v : Math.sqrt(v));
          const ref = reduceHost(x, ax, (v) => post(varRef(v, unbiased)));
          expectClose(await download(y), ref.data, { what: `${which} ${what}`, rtol: 1e-4 });
          const g = randHost(rng, ref.shape);
          cg.backward(y, upload(g));
          const kept = reduceHost(x, ax, (v) => v.reduce((a, b) => a + b, 0) / v.length, true);
          const n = x.data.length / ref.data.length;
          const sd = reduceHost(x, ax, (v) => Math.sqrt(varRef(v, unbiased)), true);
          const gk = { data: g.data, shape: kept.shape };
          const expected = mapHost([x, kept, gk, sd], (xv, mv, gv, s) => {
            const dvar = (2 * (xv - mv)) / (unbiased ? n - 1 : n);
            return gv * (which === 'var' ? dvar : dvar / (2 * s));
          });
          expectClose(await download(xt.grad!), expected.data, { what: `${which} grad ${what}`, rtol: 1e-4, atol: 1e-5, shape });
        });
      }
    });
  }

  it('unbiased variance of one element is NaN (as torch.var)', async () => {
    expect(Number.isNaN(await cg.variance(cg.fromArray([3])).item())).toBe(true);
    expect(await cg.variance(cg.fromArray([3]), undefined, { unbiased: false }).item()).toBe(0);
  });
});
