// Reductions over non-innermost dims read through the view's strides (kernels/reduce/reduce.ts): middle,
// leading and several dims, keepdim, permuted / sliced / expanded views, each kernel shape forced
// (row and column) and the adapter's own choice; forward vs float64 and backward vs the reference
// gradient (itself checked by finite differences); both two-pass splits; the exact tie sharing of
// the max/min gradient in the fused and the generic backward; NaN; run-to-run determinism.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import type { Tensor } from '../../../engine';
import { forceReduceLayout, type ReduceLayout } from '../../../kernels/reduce/reduce';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { download, type Host, permuteHost, randHost, randIntHost, ravelIndex, unravelIndex, upload } from '../../engine/reference';
import { reduceHost } from '../../../kernels/reduce/reference';

beforeAll(async () => {
  await cg.init();
});
afterEach(() => forceReduceLayout(undefined));

interface Op {
  run: (t: Tensor, axes: number[], keepdim: boolean) => Tensor;
  f: (v: number[]) => number;
  /** d f / d v_i within one group whose value f(v) is fv. */
  df: (v: number[], i: number, fv: number) => number;
  lo: number;
  hi: number;
}
const share = (v: number[], i: number, best: number) => (v[i] === best ? 1 / v.filter((x) => x === best).length : 0);
const maxOf = (v: number[]) => v.reduce((a, b) => Math.max(a, b), -Infinity);
const minOf = (v: number[]) => v.reduce((a, b) => Math.min(a, b), Infinity);
const OPS: Record<string, Op> = {
  sum: { run: (t, a, k) => cg.sum(t, a, { keepdim: k }), f: (v) => v.reduce((s, x) => s + x, 0), df: () => 1, lo: -1, hi: 1 },
  mean: { run: (t, a, k) => cg.mean(t, a, { keepdim: k }), f: (v) => v.reduce((s, x) => s + x, 0) / v.length, df: (v) => 1 / v.length, lo: -1, hi: 1 },
  max: { run: (t, a, k) => cg.max(t, a, { keepdim: k }), f: maxOf, df: (v, i, fv) => share(v, i, fv), lo: -1, hi: 1 },
  min: { run: (t, a, k) => cg.min(t, a, { keepdim: k }), f: minOf, df: (v, i, fv) => share(v, i, fv), lo: -1, hi: 1 },
  prod: {
    run: (t, a, k) => cg.prod(t, a, { keepdim: k }),
    f: (v) => v.reduce((p, x) => p * x, 1),
    df: (v, i) => v.reduce((p, x, j) => (j === i ? p : p * x), 1),
    lo: 0.7,
    hi: 1.3,
  },
};

/** Reference input gradient: g (keepdim shape) times d f / d x within each output group. */
function gradHost(x: Host, axes: number[], op: Op, g: Host): Float64Array {
  const kept = x.shape.map((n, d) => (axes.includes(d) ? 1 : n));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < x.data.length; i++) {
    const cell = ravelIndex(unravelIndex(i, x.shape).map((v, d) => (axes.includes(d) ? 0 : v)), kept);
    if (!groups.has(cell)) groups.set(cell, []);
    groups.get(cell)!.push(i);
  }
  const out = new Float64Array(x.data.length);
  for (const [cell, members] of groups) {
    const vals = members.map((i) => x.data[i]!);
    const fv = op.f(vals);
    members.forEach((i, k) => (out[i] = g.data[cell]! * op.df(vals, k, fv)));
  }
  return out;
}

type View = 'contiguous' | 'permuted' | 'sliced' | 'transposed';
/** Upload `h` as a view of the given kind with the same logical values. */
function uploadView(h: Host, view: View): Tensor {
  if (view === 'contiguous' || view === 'transposed') return upload(h, view, { requiresGrad: true });
  if (view === 'permuted') {
    // Stored with the dims reversed, viewed back through a permute: every stride is "wrong".
    const rev = h.shape.map((_, i) => h.shape.length - 1 - i);
    const base = cg.fromArray(permuteHost(h, rev).data, rev.map((i) => h.shape[i]!));
    const t = cg.permute(base, rev).detach();
    base.dispose();
    t.requiresGrad = true;
    return t;
  }
  // A window at an offset inside a larger tensor (first dim padded by 2, last by 3).
  const big = h.shape.map((n, i) => (i === 0 ? n + 2 : i === h.shape.length - 1 ? n + 3 : n));
  const data = new Float64Array(big.reduce((a, b) => a * b, 1)).fill(1e4);
  for (let i = 0; i < h.data.length; i++) {
    const idx = unravelIndex(i, h.shape);
    idx[0]! += 1;
    data[ravelIndex(idx, big)] = h.data[i]!;
  }
  const base = cg.fromArray(data, big);
  const t = cg.slice(cg.slice(base, 0, 1, 1 + h.shape[0]!), -1, 0, h.shape[h.shape.length - 1]!).detach();
  base.dispose();
  t.requiresGrad = true;
  return t;
}

const CASES: [number[], number[], View][] = [
  [[5, 7, 3], [1], 'contiguous'], // middle dim (channel mean/max of NCHW)
  [[3, 4, 5, 2], [0], 'contiguous'], // leading dim
  [[3, 4, 5, 2], [0, 2], 'contiguous'], // several, not adjacent (bias-gradient style)
  [[4, 3, 5], [0, 1], 'permuted'], // leading pair of a reversed-stride view
  [[3, 5, 4], [1], 'sliced'], // middle dim of an offset window
  [[2, 3, 5, 3], [1, 3], 'transposed'],
];
const LAYOUTS: (ReduceLayout | undefined)[] = ['row', 'column', undefined];

describe('reductions over non-innermost dims vs float64', () => {
  it('the reference gradients match finite differences', () => {
    const rng = new Rng(testSeed());
    for (const [name, op] of Object.entries(OPS)) {
      const pts = rng.uniformArray(5, op.lo, op.hi);
      const fd = numericGrad((v) => op.f(Array.from(v)), pts);
      expectClose(Array.from(pts, (_, i) => op.df(Array.from(pts), i, op.f(Array.from(pts)))), fd, { atol: 1e-6, rtol: 1e-5, what: `${name} reference grad` });
    }
  });

  for (const layout of LAYOUTS) {
    it(`${layout ?? 'auto'} kernel: sum/mean/max/min/prod forward and backward, middle/leading/several dims, keepdim, views`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      forceReduceLayout(layout);
      for (const [name, op] of Object.entries(OPS)) {
        for (const [shape, axes, view] of CASES) {
          const keepdim = rng.uniform() < 0.5;
          await cg.scopeAsync(async () => {
            const what = `${name} [${shape}] axes [${axes}] ${view} keepdim ${keepdim} layout ${layout ?? 'auto'} (seed ${seed})`;
            const x = randHost(rng, shape, op.lo, op.hi);
            const xt = uploadView(x, view);
            const y = op.run(xt, axes, keepdim);
            const ref = reduceHost(x, axes, op.f, keepdim);
            expect(y.shape, what).toEqual(ref.shape);
            expectClose(await download(y), ref.data, { what: `${what} forward`, rtol: 1e-5, atol: 1e-6 });
            const g = randHost(rng, ref.shape);
            cg.backward(y, upload(g));
            expectClose(await download(xt.grad!), gradHost(x, axes, op, g), { what: `${what} grad`, shape, rtol: 1e-4, atol: 1e-6 });
          });
        }
      }
    });
  }

  it('expanded (stride-0) inputs and var/std over a middle dim', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const layout of LAYOUTS) {
      forceReduceLayout(layout);
      await cg.scopeAsync(async () => {
        const x = randHost(rng, [1, 5, 3]);
        const big = cg.expand(upload(x), [4, 5, 3]);
        const s = cg.sum(big, [0, 2]);
        const rowSums = reduceHost(x, [0, 2], (v) => 4 * v.reduce((a, b) => a + b, 0));
        expectClose(await download(s), rowSums.data, { what: `sum of expanded, layout ${layout} (seed ${seed})`, rtol: 1e-5, atol: 1e-6 });
        const m = cg.max(big, 0);
        expectClose(await download(m), x.data, { what: `max over a broadcast dim, layout ${layout}` });
        const v = randHost(rng, [3, 6, 4]);
        const vt = cg.variance(upload(v, 'transposed'), 1);
        const ref = reduceHost(v, [1], (a) => {
          const mu = a.reduce((p, q) => p + q, 0) / a.length;
          return a.reduce((p, q) => p + (q - mu) ** 2, 0) / (a.length - 1);
        });
        expectClose(await download(vt), ref.data, { what: `var over dim 1, layout ${layout} (seed ${seed})`, rtol: 1e-4, atol: 1e-6 });
      });
    }
  });

  it('two-pass splits: few outputs with long reductions (f32 ops and exact i32), both kernels', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    // [len, 3] over dim 0: column split; [3, len] over dim 1 forced to rows: row split (len > 8192).
    for (const [layout, shape, axis] of [
      ['column', [5003, 3], 0],
      ['row', [3, 9001], 1],
      ['column', [3, 9001], 1],
    ] as [ReduceLayout, number[], number][]) {
      forceReduceLayout(layout);
      await cg.scopeAsync(async () => {
        const what = `[${shape}] over ${axis}, ${layout} (seed ${seed})`;
        const x = randHost(rng, shape);
        const xt = upload(x);
        for (const name of ['sum', 'mean', 'max', 'min'] as const) {
          const ref = reduceHost(x, [axis], OPS[name]!.f);
          expectClose(await download(OPS[name]!.run(xt, [axis], false)), ref.data, { what: `${name} ${what}`, atol: 1e-4, rtol: 1e-5 });
        }
        const xi = randIntHost(rng, shape, -100, 100);
        const ti = upload(xi, 'contiguous', { dtype: 'i32' });
        expect(await cg.sum(ti, axis).toArray(), `i32 sum ${what}`).toEqual(Array.from(reduceHost(xi, [axis], (v) => v.reduce((a, b) => a + b, 0)).data));
        expect(await cg.min(ti, axis).toArray(), `i32 min ${what}`).toEqual(Array.from(reduceHost(xi, [axis], minOf).data));
        // backward of max through the long groups (fused on software adapters / many outputs)
        const xm = upload(x, 'contiguous', { requiresGrad: true });
        const g = randHost(rng, [3]);
        cg.backward(cg.max(xm, axis), upload(g));
        expectClose(await download(xm.grad!), gradHost(x, [axis], OPS.max!, g), { what: `max grad ${what}`, atol: 1e-6 });
      });
    }
  });

  it('max/min share the gradient exactly among ties over a middle dim (fused and generic backward)', async () => {
    // [2, 3, 2] over dim 1: columns (0,0): 3,3,1 -> 1/2 each; (0,1): 5,5,5 -> 1/3; (1,0): 2,0,1;
    // (1,1): -1,-1,-1 (max and min tie) -> 1/3.
    const data = [3, 5, 3, 5, 1, 5, 2, -1, 0, -1, 1, -1];
    const maxGrad = [0.5, 1 / 3, 0.5, 1 / 3, 0, 1 / 3, 1, 1 / 3, 0, 1 / 3, 0, 1 / 3].map(Math.fround);
    const minGrad = [0, 1 / 3, 0, 1 / 3, 1, 1 / 3, 0, 1 / 3, 1, 1 / 3, 0, 1 / 3].map(Math.fround);
    for (const layout of ['row', 'column'] as const) {
      forceReduceLayout(layout);
      for (const [f, expected] of [
        [cg.max, maxGrad],
        [cg.min, minGrad],
      ] as const) {
        const x = cg.fromArray(data, [2, 3, 2]);
        x.requiresGrad = true;
        cg.backward(cg.sum(f(x, 1, { keepdim: true })));
        expect(await x.grad!.toArray(), `${f.name} ${layout}`).toEqual(expected);
        // the same on a permuted view ([2, 2, 3] stored, dim 1 of the logical view is strided)
        const stored = cg.fromArray(permuteHost({ data: Float64Array.from(data), shape: [2, 3, 2] }, [0, 2, 1]).data, [2, 2, 3]);
        const xp = cg.permute(stored, [0, 2, 1]).detach();
        xp.requiresGrad = true;
        cg.backward(cg.sum(f(xp, 1)));
        expect(await xp.grad!.toArray(), `${f.name} permuted ${layout}`).toEqual(expected);
      }
    }
  });

  it('NaN propagates through max/min/sum over a leading dim; results repeat bit for bit', async () => {
    for (const layout of ['row', 'column'] as const) {
      forceReduceLayout(layout);
      for (const len of [7, 700]) {
        const data = new Float32Array(len * 4).fill(1);
        data[3 * 4 + 2] = NaN; // row 3, column 2
        const x = cg.fromArray(data, [len, 4]);
        for (const f of [cg.sum, cg.max, cg.min]) {
          const r = Array.from(await f(x, 0).toArray());
          expect(r.map(Number.isNaN), `${f.name} len ${len} ${layout}`).toEqual([false, false, true, false]);
        }
      }
    }
    forceReduceLayout(undefined);
    const rng = new Rng(testSeed());
    const x = upload(randHost(rng, [37, 129, 5]), 'transposed');
    const a = await cg.sum(x, [0, 1]).toArray();
    const b = await cg.sum(x, [0, 1]).toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('argmax/argmin over middle and leading dims of views, both kernels: first index on ties, first NaN wins', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const argRef = (op: 'argmax' | 'argmin', v: number[]) => {
      const nan = v.findIndex(Number.isNaN);
      if (nan >= 0) return nan;
      let best = 0;
      for (let i = 1; i < v.length; i++) if (op === 'argmax' ? v[i]! > v[best]! : v[i]! < v[best]!) best = i;
      return best;
    };
    for (const layout of ['row', 'column'] as const) {
      forceReduceLayout(layout);
      for (const [shape, dim, view] of [
        [[4, 9, 5], 1, 'contiguous'],
        [[9, 3, 2], 0, 'permuted'],
        [[3, 6, 4], 1, 'sliced'],
        [[3, 5, 4], 1, 'transposed'],
      ] as [number[], number, View][]) {
        await cg.scopeAsync(async () => {
          // Few distinct values: ties are frequent; one NaN placed after a finite value.
          const x = randIntHost(rng, shape, -2, 3);
          x.data[ravelIndex(shape.map((n, i) => (i === dim ? 2 : n - 1)), shape)] = NaN;
          const xt = uploadView(x, view);
          for (const op of ['argmax', 'argmin'] as const) {
            const what = `${op} [${shape}] dim ${dim} ${view} ${layout} (seed ${seed})`;
            const r = cg[op](xt, dim, { keepdim: true });
            const ref = reduceHost(x, [dim], (v) => argRef(op, v), true);
            expect(r.shape, what).toEqual(ref.shape);
            expect(Array.from(await r.toArray()), what).toEqual(Array.from(ref.data));
          }
        });
      }
    }
  });
});
