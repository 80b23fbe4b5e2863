// FrozenBatchNorm2d, BatchNorm2d (train/eval, running stats) and GroupNorm against float64
// references, forward and backward, on odd shapes and a non-contiguous (permuted) input; the
// reference gradients are checked by finite differences.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, batchNorm2d, fromArray, frozenBatchNorm2d, groupNorm, init, relu, rt, setFusion, type Tensor } from '../../../engine';
import { expectClose, numericGrad, Rng, testSeed } from '../../util';
import { nhwcToNchw, refNorm, refNormBackward } from '../../../kernels/norm/reference';
import { permutedInput } from './inputs';

beforeAll(async () => {
  await init();
});

function param(v: Float64Array): Tensor {
  const t = fromArray(Float32Array.from(v), [v.length]);
  t.requiresGrad = true;
  return t;
}

describe('normalisation references', () => {
  it('GroupNorm and BatchNorm float64 backward match finite differences', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const dims = [2, 4, 3]; // N, C, HW
    const x = rng.uniformArray(24, -2, 2);
    const g = rng.uniformArray(24, -1, 1);
    const w = rng.uniformArray(4, 0.5, 1.5);
    const b = rng.uniformArray(4, -1, 1);
    for (const [rows, statOf] of [
      [4, (_n: number, c: number) => c], // BN
      [4, (n: number, c: number) => n * 2 + Math.floor(c / 2)], // GN, 2 groups
    ] as const) {
      const loss = (xx: Float64Array) => refNorm(xx, dims, rows, statOf, w, b, 1e-5).y.reduce((a, v, i) => a + v * g[i]!, 0);
      const [dx] = refNormBackward(x, g, dims, rows, statOf, w, 1e-5);
      expectClose(dx!, numericGrad(loss, x), { atol: 1e-6, rtol: 1e-5, what: `reference dx (seed ${seed})` });
      const lossW = (ww: Float64Array) => refNorm(x, dims, rows, statOf, ww, b, 1e-5).y.reduce((a, v, i) => a + v * g[i]!, 0);
      const [, dw] = refNormBackward(x, g, dims, rows, statOf, w, 1e-5);
      expectClose(dw!, numericGrad(lossW, Float64Array.from(w)), { atol: 1e-6, rtol: 1e-5, what: `reference dw (seed ${seed})` });
    }
  });
});

describe('groupNorm', () => {
  for (const [shape, groups] of [
    [[2, 6, 5, 7], 3],
    [[3, 8, 3, 5], 8],
    [[1, 64, 3, 3], 32],
  ] as const) {
    it(`forward and backward on a permuted [${shape}] input, ${groups} groups`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const [n, c, h, w] = shape;
      const hw = h * w;
      const numel = n * c * hw;
      const x = rng.uniformArray(numel, -3, 2);
      const gOut = rng.uniformArray(numel, -1, 1);
      const wt = rng.uniformArray(c, 0.5, 1.5);
      const bs = rng.uniformArray(c, -1, 1);
      const cg = c / groups;
      const statOf = (i: number, k: number) => i * groups + Math.floor(k / cg);
      const ref = refNorm(x, [n, c, hw], n * groups, statOf, wt, bs, 1e-5);
      const [rdx, rdw, rdb] = refNormBackward(x, gOut, [n, c, hw], n * groups, statOf, wt, 1e-5);
      const { leaf, view } = permutedInput(x, [...shape]);
      const W = param(wt);
      const B = param(bs);
      const y = groupNorm(view, groups, { weight: W, bias: B });
      const what = `groupNorm [${shape}] G=${groups} (seed ${seed})`;
      expectClose(await y.data(), ref.y, { atol: 2e-5, rtol: 1e-4, what: `${what} forward` });
      backward(y, fromArray(Float32Array.from(gOut), [...shape]));
      expectClose(nhwcToNchw(await leaf.grad!.data(), [...shape]), rdx!, { atol: 5e-5, rtol: 1e-3, what: `${what} dx` });
      expectClose(await W.grad!.data(), rdw!, { atol: 1e-4, rtol: 1e-4, what: `${what} dweight` });
      expectClose(await B.grad!.data(), rdb!, { atol: 1e-4, rtol: 1e-4, what: `${what} dbias` });
    });
  }

  it('{ relu: true }: relu(groupNorm(x)) vs float64 forward and backward, one dispatch fewer each way than groupNorm then relu', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [2, 6, 5, 7] as const;
    const groups = 3;
    const [n, c, h, w] = shape;
    const hw = h * w;
    const numel = n * c * hw;
    const x = rng.uniformArray(numel, -3, 2);
    const gOut = rng.uniformArray(numel, -1, 1);
    const wt = rng.uniformArray(c, -1.5, 1.5); // negative weights too: the mask is on the output
    const bs = rng.uniformArray(c, -1, 1);
    const statOf = (i: number, k: number) => i * groups + Math.floor(k / (c / groups));
    const ref = refNorm(x, [n, c, hw], n * groups, statOf, wt, bs, 1e-5);
    const refY = ref.y.map((v) => Math.max(v, 0));
    const gMasked = gOut.map((v, i) => (ref.y[i]! > 0 ? v : 0));
    const [rdx, rdw, rdb] = refNormBackward(x, gMasked, [n, c, hw], n * groups, statOf, wt, 1e-5);
    const what = `groupNorm+relu (seed ${seed})`;
    const run = async (fused: boolean) => {
      // Unfused: norm, relu, relu backward, norm backward (automatic fusion cannot merge a relu
      // into the norm's own kernels).
      const { leaf, view } = permutedInput(x, [...shape]);
      const W = param(wt);
      const B = param(bs);
      const g = fromArray(Float32Array.from(gOut), [...shape]);
      void view.buffer;
      const d0 = rt().stats().dispatches;
      const y = fused ? groupNorm(view, groups, { weight: W, bias: B, relu: true }) : relu(groupNorm(view, groups, { weight: W, bias: B }));
      void y.buffer;
      const d1 = rt().stats().dispatches;
      backward(y, g);
      void leaf.grad!.buffer;
      const d2 = rt().stats().dispatches;
      return { y: await y.data(), dx: nhwcToNchw(await leaf.grad!.data(), [...shape]), dw: await W.grad!.data(), db: await B.grad!.data(), forward: d1 - d0, back: d2 - d1 };
    };
    const fused = await run(true);
    const unfused = await run(false);
    expectClose(fused.y, refY, { atol: 2e-5, rtol: 1e-4, what: `${what} forward` });
    expectClose(fused.dx, rdx!, { atol: 5e-5, rtol: 1e-3, what: `${what} dx` });
    expectClose(fused.dw, rdw!, { atol: 1e-4, rtol: 1e-4, what: `${what} dweight` });
    expectClose(fused.db, rdb!, { atol: 1e-4, rtol: 1e-4, what: `${what} dbias` });
    expect(fused.forward).toBe(unfused.forward - 1);
    expect(fused.back).toBe(unfused.back - 1);
  });

  it('rejects channels not divisible by groups', () => {
    const x = fromArray(new Float32Array(2 * 6 * 4), [2, 6, 2, 2]);
    expect(() => groupNorm(x, 4)).toThrow(/not divisible/);
  });
});

describe('batchNorm2d', () => {
  it('training: batch statistics, running-stat update (unbiased var), backward', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [3, 5, 4, 3];
    const [n, c, h, w] = shape as [number, number, number, number];
    const hw = h * w;
    const numel = n * c * hw;
    const x = rng.uniformArray(numel, -2, 3);
    const gOut = rng.uniformArray(numel, -1, 1);
    const wt = rng.uniformArray(c, 0.5, 1.5);
    const bs = rng.uniformArray(c, -1, 1);
    const rm0 = rng.uniformArray(c, -0.5, 0.5);
    const rv0 = rng.uniformArray(c, 0.5, 2);
    const ref = refNorm(x, [n, c, hw], c, (_i, k) => k, wt, bs, 1e-5);
    const [rdx, rdw, rdb] = refNormBackward(x, gOut, [n, c, hw], c, (_i, k) => k, wt, 1e-5);
    const cnt = n * hw;
    const rmRef = rm0.map((v, k) => 0.9 * v + 0.1 * ref.mean[k]!);
    const rvRef = rv0.map((v, k) => 0.9 * v + (0.1 * ref.varB[k]! * cnt) / (cnt - 1));
    const { leaf, view } = permutedInput(x, shape);
    const W = param(wt);
    const B = param(bs);
    const rm = fromArray(Float32Array.from(rm0), [c]);
    const rv = fromArray(Float32Array.from(rv0), [c]);
    const y = batchNorm2d(view, { weight: W, bias: B, runningMean: rm, runningVar: rv, training: true });
    const what = `batchNorm2d train (seed ${seed})`;
    expectClose(await y.data(), ref.y, { atol: 2e-5, rtol: 1e-4, what: `${what} forward` });
    expectClose(await rm.data(), rmRef, { atol: 1e-6, rtol: 1e-5, what: `${what} running_mean` });
    expectClose(await rv.data(), rvRef, { atol: 1e-6, rtol: 1e-5, what: `${what} running_var` });
    backward(y, fromArray(Float32Array.from(gOut), shape));
    expectClose(nhwcToNchw(await leaf.grad!.data(), shape), rdx!, { atol: 5e-5, rtol: 1e-3, what: `${what} dx` });
    expectClose(await W.grad!.data(), rdw!, { atol: 1e-4, rtol: 1e-4, what: `${what} dweight` });
    expectClose(await B.grad!.data(), rdb!, { atol: 1e-4, rtol: 1e-4, what: `${what} dbias` });
  });

  it('eval: running statistics, constant-statistics backward', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [2, 3, 5, 5];
    const [n, c, h, w] = shape as [number, number, number, number];
    const hw = h * w;
    const x = rng.uniformArray(n * c * hw, -2, 2);
    const gOut = rng.uniformArray(n * c * hw, -1, 1);
    const wt = rng.uniformArray(c, 0.5, 1.5);
    const bs = rng.uniformArray(c, -1, 1);
    const rm0 = rng.uniformArray(c, -0.5, 0.5);
    const rv0 = rng.uniformArray(c, 0.5, 2);
    const fixed = { mean: rm0, varB: rv0 };
    const ref = refNorm(x, [n, c, hw], c, (_i, k) => k, wt, bs, 1e-5, fixed);
    const [rdx, rdw, rdb] = refNormBackward(x, gOut, [n, c, hw], c, (_i, k) => k, wt, 1e-5, fixed);
    const X = fromArray(Float32Array.from(x), shape);
    X.requiresGrad = true;
    const W = param(wt);
    const B = param(bs);
    const y = batchNorm2d(X, { weight: W, bias: B, runningMean: fromArray(Float32Array.from(rm0), [c]), runningVar: fromArray(Float32Array.from(rv0), [c]), training: false });
    const what = `batchNorm2d eval (seed ${seed})`;
    expectClose(await y.data(), ref.y, { atol: 2e-5, rtol: 1e-4, what: `${what} forward` });
    backward(y, fromArray(Float32Array.from(gOut), shape));
    expectClose(await X.grad!.data(), rdx!, { atol: 2e-5, rtol: 1e-4, what: `${what} dx` });
    expectClose(await W.grad!.data(), rdw!, { atol: 1e-4, rtol: 1e-4, what: `${what} dweight` });
    expectClose(await B.grad!.data(), rdb!, { atol: 1e-4, rtol: 1e-4, what: `${what} dbias` });
  });
});

describe('frozenBatchNorm2d', () => {
  it('folds the statistics into scale and shift; gradient to the input only', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [2, 7, 3, 5];
    const [n, c, h, w] = shape as [number, number, number, number];
    const hw = h * w;
    const x = rng.uniformArray(n * c * hw, -2, 2);
    const gOut = rng.uniformArray(n * c * hw, -1, 1);
    const p = { w: rng.uniformArray(c, 0.5, 1.5), b: rng.uniformArray(c, -1, 1), m: rng.uniformArray(c, -1, 1), v: rng.uniformArray(c, 0.1, 2) };
    const scale = p.w.map((wv, k) => wv / Math.sqrt(p.v[k]! + 1e-5));
    const yRef = x.map((v, e) => {
      const k = Math.floor(e / hw) % c;
      return v * scale[k]! + (p.b[k]! - p.m[k]! * scale[k]!);
    });
    const dxRef = gOut.map((gv, e) => gv * scale[Math.floor(e / hw) % c]!);
    const { leaf, view } = permutedInput(x, shape);
    const t = (a: Float64Array) => fromArray(Float32Array.from(a), [c]);
    const y = frozenBatchNorm2d(view, { weight: t(p.w), bias: t(p.b), runningMean: t(p.m), runningVar: t(p.v) });
    expectClose(await y.data(), yRef, { atol: 2e-5, rtol: 1e-5, what: `frozenBN forward (seed ${seed})` });
    backward(y, fromArray(Float32Array.from(gOut), shape));
    expectClose(nhwcToNchw(await leaf.grad!.data(), shape), dxRef, { atol: 1e-6, rtol: 1e-5, what: `frozenBN dx (seed ${seed})` });
  });

  it('{ relu: true } gives the values of relu(frozenBatchNorm2d(x)) in one dispatch each way (fold in the kernel)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [2, 9, 5, 7];
    const [n, c, h, w] = shape as [number, number, number, number];
    const xs = Float32Array.from(rng.uniformArray(n * c * h * w, -2, 2));
    xs[3] = NaN; // relu propagates NaN; so must the fused kernel
    const gOut = fromArray(Float32Array.from(rng.uniformArray(xs.length, -1, 1)), shape);
    const t = (a: Float64Array) => fromArray(Float32Array.from(a), [c]);
    // Negative weights too: the scale's sign must not matter.
    const p = { weight: t(rng.uniformArray(c, -1.5, 1.5)), bias: t(rng.uniformArray(c, -1, 1)), runningMean: t(rng.uniformArray(c, -1, 1)), runningVar: t(rng.uniformArray(c, 0.1, 2)) };
    const run = async (fused: boolean) => {
      // The unfused chain with automatic fusion off (it would fuse the relu in too).
      setFusion(fused);
      const x = fromArray(xs, shape);
      x.requiresGrad = true;
      const dispatches = () => rt().stats().dispatches;
      const d0 = dispatches();
      const y = fused ? frozenBatchNorm2d(x, p, { relu: true }) : relu(frozenBatchNorm2d(x, p));
      void y.buffer;
      const forward = dispatches() - d0;
      const d1 = dispatches();
      backward(y, gOut);
      void x.grad!.buffer;
      const back = dispatches() - d1;
      setFusion(true);
      return { y: await y.data(), dx: await x.grad!.data(), forward, back };
    };
    const unfused = await run(false);
    const fused = await run(true);
    // Same f32 values (=== also equates +0 and -0: relu's zeroed gradient times a negative scale).
    const same = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).every((v, i) => v === b[i] || (Number.isNaN(v) && Number.isNaN(b[i]!)));
    expect(same(fused.y, unfused.y), `forward (seed ${seed})`).toBe(true);
    expect(Number.isNaN(fused.y[3]!)).toBe(true);
    expect(same(fused.dx, unfused.dx), `dx (seed ${seed})`).toBe(true);
    expect(fused.forward).toBe(1);
    expect(fused.back).toBe(1);
    expect(unfused.forward).toBe(2);
    expect(unfused.back).toBe(2);
  });
});

describe('PyTorch parity (fixtures from scripts/fixtures/make_detection_fixtures.py)', () => {
  const load = (name: string) => JSON.parse(readFileSync(new URL(`../../fixtures/detection/${name}`, import.meta.url), 'utf8'));
  // Relative error <= 1e-4 against torch, with an absolute floor for values near zero.
  const tol = { atol: 1e-5, rtol: 1e-4 };

  it('F.group_norm forward and backward', async () => {
    for (const c of load('group_norm.json').cases) {
      const x = fromArray(Float32Array.from(c.x), c.shape);
      const w = param(Float64Array.from(c.weight));
      const b = param(Float64Array.from(c.bias));
      x.requiresGrad = true;
      const y = groupNorm(x, c.groups, { weight: w, bias: b });
      const what = `group_norm [${c.shape}] G=${c.groups}`;
      expectClose(await y.data(), c.output, { ...tol, what: `${what} forward` });
      backward(y, fromArray(Float32Array.from(c.grad_output), c.shape));
      expectClose(await x.grad!.data(), c.grad_x, { ...tol, what: `${what} grad x` });
      expectClose(await w.grad!.data(), c.grad_weight, { ...tol, what: `${what} grad weight` });
      expectClose(await b.grad!.data(), c.grad_bias, { ...tol, what: `${what} grad bias` });
    }
  });

  it('F.batch_norm (training) forward, running stats and backward', async () => {
    const c = load('batch_norm.json');
    const x = fromArray(Float32Array.from(c.x), c.shape);
    x.requiresGrad = true;
    const w = param(Float64Array.from(c.weight));
    const b = param(Float64Array.from(c.bias));
    const rm = fromArray(Float32Array.from(c.running_mean), [c.shape[1]]);
    const rv = fromArray(Float32Array.from(c.running_var), [c.shape[1]]);
    const y = batchNorm2d(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: true });
    expectClose(await y.data(), c.output, { ...tol, what: 'batch_norm forward' });
    expectClose(await rm.data(), c.running_mean_after, { ...tol, what: 'batch_norm running_mean' });
    expectClose(await rv.data(), c.running_var_after, { ...tol, what: 'batch_norm running_var' });
    backward(y, fromArray(Float32Array.from(c.grad_output), c.shape));
    expectClose(await x.grad!.data(), c.grad_x, { ...tol, what: 'batch_norm grad x' });
    expectClose(await w.grad!.data(), c.grad_weight, { ...tol, what: 'batch_norm grad weight' });
    expectClose(await b.grad!.data(), c.grad_bias, { ...tol, what: 'batch_norm grad bias' });
  });
});
