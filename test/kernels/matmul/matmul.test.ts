// matmul vs a float64 reference: every kernel (naive, workgroup-tiled, register-tiled, subgroup,
// split-K) on odd shapes, row- and column-major operands read in place (transposed and permuted
// views), batched with broadcast, 1-D operands, the bias+ReLU epilogue, and backward (matmul and
// linear) against analytic float64 gradients that are themselves checked by finite differences.
// Each fast kernel is also compared with the naive reference kernel. The chooser's table is
// tested in chooser.test.ts.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as cg from '../../../engine';
import type { MatmulConfig, Tensor } from '../../../engine';
import { hasSubgroups8, isSoftwareAdapter } from '../../../runtime/adapter';
import { choosePlan } from '../../../kernels/matmul/chooser';
import { launchMatmul } from '../../../kernels/matmul/launch';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';

// lavapipe compiles each matmul specialisation for seconds, much longer when the 2 cores are shared.
vi.setConfig({ testTimeout: 600_000 });

beforeAll(async () => {
  await cg.init();
});

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (rng: Rng, n: number) => Float64Array.from(rng.uniformArray(n, -1, 1), Math.fround);

/** Float64 reference of torch.matmul for operands with >= 2 dims (batch dims broadcast). */
function refMatmul(a: Float64Array, as: number[], b: Float64Array, bs: number[]): { data: Float64Array; shape: number[] } {
  const M = as[as.length - 2]!;
  const K = as[as.length - 1]!;
  const N = bs[bs.length - 1]!;
  const ba = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const batch = Array.from({ length: r }, (_, i) => Math.max(ba[ba.length - r + i] ?? 1, bb[bb.length - r + i] ?? 1));
  const out = new Float64Array(numel(batch) * M * N);
  const src = (shape: number[], idx: number[]) => {
    let f = 0;
    const off = idx.length - shape.length;
    for (let d = 0; d < shape.length; d++) f = f * shape[d]! + (shape[d] === 1 ? 0 : idx[d + off]!);
    return f;
  };
  for (let bi = 0; bi < numel(batch); bi++) {
    const idx: number[] = [];
    let rem = bi;
    for (let d = r - 1; d >= 0; d--) {
      idx[d] = rem % batch[d]!;
      rem = Math.floor(rem / batch[d]!);
    }
    const oa = src(ba, idx) * M * K;
    const ob = src(bb, idx) * K * N;
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[oa + m * K + k]! * b[ob + k * N + n]!;
        out[(bi * M + m) * N + n] = s;
      }
  }
  return { data: out, shape: [...batch, M, N] };
}

/** Upload a [.., R, C] host matrix as a view with the given inner layout: 'row' (contiguous) or
 *  'col' (stored transposed, viewed back through strides; no copy on the GPU side). */
function upload(data: Float64Array, shape: number[], layout: 'row' | 'col'): Tensor {
  if (layout === 'row') return cg.fromArray(Float32Array.from(data), shape);
  const n = shape.length;
  const R = shape[n - 2]!;
  const C = shape[n - 1]!;
  const t = new Float32Array(data.length);
  for (let b = 0; b < data.length / (R * C); b++) for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) t[b * R * C + j * R + i] = data[b * R * C + i * C + j]!;
  const stored = cg.fromArray(t, [...shape.slice(0, -2), C, R]);
  const v = cg.transpose(stored, -1, -2);
  stored.dispose();
  return v;
}

const tol = (K: number) => ({ atol: 1e-5 + 3e-7 * K, rtol: 1e-4 });

const CONFIGS: Record<string, MatmulConfig> = {
  naive: { kernel: 'naive' },
  'workgroup-tiled tile32': { kernel: 'workgroup-tiled', tile: 32 },
  'workgroup-tiled tile64': { kernel: 'workgroup-tiled', tile: 64 },
  'register-tiled rows4 wg16': { kernel: 'register-tiled', rows: 4, wg: 16 },
  'register-tiled rows8 wg8': { kernel: 'register-tiled', rows: 8, wg: 8 },
  'register-tiled rows8 split3': { kernel: 'register-tiled', rows: 8, wg: 8, splits: 3 },
  'workgroup-tiled tile32 split2': { kernel: 'workgroup-tiled', tile: 32, splits: 2 },
  'subgroup rows16': { kernel: 'subgroup', rows: 16 },
  'subgroup rows8': { kernel: 'subgroup', rows: 8 },
};

describe('matmul kernels vs float64 and vs the naive kernel', () => {
  // [M, K, N]: degenerate, odd, larger-than-a-tile odd, vec4-aligned.
  const SHAPES: [number, number, number][] = [
    [1, 1, 1],
    [7, 13, 5],
    [65, 33, 129],
    [12, 20, 16],
  ];
  for (const [name, config] of Object.entries(CONFIGS)) {
    it(`${name}: odd and aligned shapes, row-major operands`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      // The vec4-aligned shape only where it selects another specialisation; lavapipe
      // compiles each pipeline for seconds, so the test keeps their number small.
      for (const [M, K, N] of SHAPES.filter((s, i) => i < 3 || config.kernel === 'register-tiled' || config.kernel === 'subgroup')) {
        const a = f32(rng, M * K);
        const b = f32(rng, K * N);
        const ta = upload(a, [M, K], 'row');
        const tb = upload(b, [K, N], 'row');
        const out = cg.matmulWith(ta, tb, config);
        const naive = cg.matmulNaive(ta, tb);
        const ref = refMatmul(a, [M, K], b, [K, N]);
        expect(out.shape).toEqual([M, N]);
        const got = await out.data();
        expectClose(got, ref.data, { ...tol(K), shape: ref.shape, what: `${name} ${M}x${K}x${N} (seed ${seed})` });
        expectClose(got, await naive.data(), { ...tol(K), shape: ref.shape, what: `${name} vs naive ${M}x${K}x${N} (seed ${seed})` });
        for (const t of [ta, tb, out, naive]) t.dispose();
      }
    });
  }

  // Every layout pair (aligned and odd) on register-tiled, which specialises on layout and vec4
  // alignment; register-tiled with 8 rows on column-major aligned A (grouped vec4 row loads);
  // workgroup-tiled on transposed operands; subgroup on every layout pair.
  const LAYOUT_RUNS: [string, [number, number, number][], ('row' | 'col')[][]][] = [
    ['register-tiled rows4 wg16', [[16, 12, 8], [9, 7, 11]], [['row', 'row'], ['row', 'col'], ['col', 'row'], ['col', 'col']]],
    ['register-tiled rows8 wg8', [[16, 12, 8]], [['col', 'col']]],
    ['workgroup-tiled tile32', [[9, 7, 11]], [['col', 'col']]],
    ['subgroup rows16', [[20, 12, 36], [17, 7, 11]], [['row', 'row'], ['row', 'col'], ['col', 'row'], ['col', 'col']]],
  ];
  for (const [name, shapes, layouts] of LAYOUT_RUNS) {
    it(`${name}: transposed operands read in place (${layouts.map((l) => l.join('/')).join(', ')})`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      for (const [M, K, N] of shapes) {
        for (const [la, lb] of layouts as ['row' | 'col', 'row' | 'col'][]) {
          const a = f32(rng, M * K);
          const b = f32(rng, K * N);
          const ta = upload(a, [M, K], la);
          const tb = upload(b, [K, N], lb);
          expect(ta.isContiguous()).toBe(la === 'row');
          const out = cg.matmulWith(ta, tb, CONFIGS[name]!);
          const ref = refMatmul(a, [M, K], b, [K, N]);
          expectClose(await out.data(), ref.data, { ...tol(K), shape: ref.shape, what: `${name} A ${la} B ${lb} ${M}x${K}x${N} (seed ${seed})` });
          for (const t of [ta, tb, out]) t.dispose();
        }
      }
    });
  }

  it('plan on this adapter: subgroup on software adapters with 8-wide subgroups when M > 16, register-tiled for few rows, workgroup-tiled on GPUs', async () => {
    if (isSoftwareAdapter()) {
      if (hasSubgroups8()) {
        expect(choosePlan(64, 1024, 4608, 1)).toEqual({ kernel: 'subgroup', rows: 16, splits: 1 });
        expect(choosePlan(256, 256, 256, 8)).toMatchObject({ kernel: 'subgroup', rows: 16 });
      }
      expect(choosePlan(16, 1024, 4608, 1).kernel).toBe('register-tiled');
    } else {
      expect(choosePlan(1024, 1024, 1024, 1)).toMatchObject({ kernel: 'workgroup-tiled', tile: 64 });
    }
    // The auto plan on a ragged M > 16 problem matches the float64 reference.
    const seed = testSeed();
    const rng = new Rng(seed);
    const [M, K, N] = [37, 29, 45];
    const a = f32(rng, M * K);
    const b = f32(rng, K * N);
    const out = cg.matmul(upload(a, [M, K], 'row'), upload(b, [K, N], 'row'));
    expectClose(await out.data(), refMatmul(a, [M, K], b, [K, N]).data, { ...tol(K), what: `auto plan ${JSON.stringify(choosePlan(M, N, K, 1))} (seed ${seed})` });
  });

  it('transposed views use no copy: a live-bytes check around the launch', async () => {
    const rng = new Rng(testSeed());
    const a = upload(f32(rng, 24 * 16), [24, 16], 'col');
    const b = upload(f32(rng, 16 * 20), [16, 20], 'col');
    const out = cg.empty([24, 20]);
    await cg.rt().sync();
    const before = cg.memory().liveBytes;
    launchMatmul({ a, b, out }, { kernel: 'register-tiled', rows: 4, wg: 16 });
    cg.rt().flush(); // returns the per-batch uniform arena
    expect(cg.memory().liveBytes).toBe(before);
    for (const t of [a, b, out]) t.dispose();
  });

  it('split-K: auto plan on a tall-K problem and forced splits with a K remainder, with epilogue', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const [M, K, N, config] of [
      [8, 1030, 12, undefined],
      [5, 37, 9, { kernel: 'register-tiled', rows: 4, wg: 8, splits: 5 }],
      [6, 45, 10, { kernel: 'workgroup-tiled', tile: 32, splits: 4 }],
      [19, 46, 37, { kernel: 'subgroup', rows: 16, splits: 3 }],
      [24, 40, 36, { kernel: 'subgroup', rows: 8, splits: 2 }],
    ] as [number, number, number, MatmulConfig | undefined][]) {
      const a = f32(rng, M * K);
      const b = f32(rng, K * N);
      const bias = f32(rng, N);
      const ta = upload(a, [M, K], 'row');
      const tb = upload(b, [K, N], 'col');
      const tbias = cg.fromArray(Float32Array.from(bias), [N]);
      const out = cg.empty([M, N]);
      const used = launchMatmul({ a: ta, b: tb, out, bias: tbias, act: 'relu' }, config);
      if (config) expect(used).toMatchObject({ splits: (config as { splits: number }).splits });
      else expect((used as { splits?: number }).splits ?? 1).toBeGreaterThan(1);
      const ref = refMatmul(a, [M, K], b, [K, N]);
      const expected = ref.data.map((v, i) => Math.max(0, v + bias[i % N]!));
      expectClose(await out.data(), expected, { ...tol(K), shape: ref.shape, what: `split-K ${M}x${K}x${N} ${JSON.stringify(used)} (seed ${seed})` });
      for (const t of [ta, tb, tbias, out]) t.dispose();
    }
  });
});

describe('matmul op (torch.matmul semantics)', () => {
  it('batched with broadcast batch dims, permuted and transposed operands', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    // A [2,1,M,K] (built as a permuted [M,2,K] buffer), B [3,K,N] column-major.
    const [M, K, N] = [5, 6, 7];
    const aStore = f32(rng, M * 2 * K);
    const a = new Float64Array(2 * M * K);
    for (let i = 0; i < 2; i++) for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) a[(i * M + m) * K + k] = aStore[(m * 2 + i) * K + k]!;
    const ta0 = cg.fromArray(Float32Array.from(aStore), [M, 2, K]);
    const ta = cg.unsqueeze(cg.permute(ta0, [1, 0, 2]), 1);
    expect(ta.isContiguous()).toBe(false);
    const b = f32(rng, 3 * K * N);
    const tb = upload(b, [3, K, N], 'col');
    const out = cg.matmul(ta, tb);
    const ref = refMatmul(a, [2, 1, M, K], b, [3, K, N]);
    expect(out.shape).toEqual([2, 3, M, N]);
    expectClose(await out.data(), ref.data, { ...tol(K), shape: ref.shape, what: `broadcast batched (seed ${seed})` });
    // 8 batches of a shared 2-D right operand.
    const c = f32(rng, 8 * 4 * 9);
    const d = f32(rng, 9 * 6);
    const o2 = cg.matmul(upload(c, [8, 4, 9], 'row'), upload(d, [9, 6], 'col'));
    expectClose(await o2.data(), refMatmul(c, [8, 4, 9], d, [9, 6]).data, { ...tol(9), what: `batched x shared (seed ${seed})` });
  });

  it('subgroup kernel (subgroup-shared A, packed B): broadcast batches, offset views, bias + ReLU epilogue', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const cfg: MatmulConfig = { kernel: 'subgroup', rows: 16 };
    // A [3,1,M,K] sliced at a row offset (unaligned view), B [2,K,N] column-major: out [3,2,M,N].
    const [M, K, N] = [21, 10, 35];
    const aFull = f32(rng, 3 * (M + 1) * K);
    const a = new Float64Array(3 * M * K);
    for (let i = 0; i < 3; i++) for (let j = 0; j < M * K; j++) a[i * M * K + j] = aFull[i * (M + 1) * K + K + j]!;
    const ta0 = cg.fromArray(Float32Array.from(aFull), [3, 1, M + 1, K]);
    const ta = cg.narrow(ta0, 2, 1, M);
    const b = f32(rng, 2 * K * N);
    const tb = upload(b, [2, K, N], 'col');
    const bias = f32(rng, N);
    const tbias = cg.fromArray(Float32Array.from(bias), [N]);
    const out = cg.empty([3, 2, M, N]);
    launchMatmul({ a: ta, b: tb, out, bias: tbias, act: 'relu' }, cfg);
    const ref = refMatmul(a, [3, 1, M, K], b, [2, K, N]);
    const expected = ref.data.map((v, i) => Math.max(0, v + bias[i % N]!));
    expectClose(await out.data(), expected, { ...tol(K), shape: ref.shape, what: `subgroup broadcast batched + epilogue (seed ${seed})` });
    // Aligned row-major batched operands (the vec4 A path) against the naive kernel.
    const c = cg.fromArray(Float32Array.from(f32(rng, 4 * 24 * 16)), [4, 24, 16]);
    const d = cg.fromArray(Float32Array.from(f32(rng, 4 * 16 * 64)), [4, 16, 64]);
    const o2 = cg.matmulWith(c, d, cfg);
    const n2 = cg.matmulNaive(c, d);
    expectClose(await o2.data(), await n2.data(), { ...tol(16), what: `subgroup batched aligned vs naive (seed ${seed})` });
    for (const t of [ta0, ta, tb, tbias, out, c, d, o2, n2]) t.dispose();
  });

  it('a layout that is neither row- nor column-major (step-2 slice) falls back to a copy', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const wide = f32(rng, 6 * 10);
    const tw = cg.fromArray(Float32Array.from(wide), [6, 10]);
    const ta = cg.slice(tw, 1, 0, 10, 2); // [6, 5], strides [10, 2]
    const a = new Float64Array(30);
    for (let m = 0; m < 6; m++) for (let k = 0; k < 5; k++) a[m * 5 + k] = wide[m * 10 + 2 * k]!;
    const b = f32(rng, 5 * 3);
    const out = cg.matmul(ta, upload(b, [5, 3], 'row'));
    expectClose(await out.data(), refMatmul(a, [6, 5], b, [5, 3]).data, { ...tol(5), what: `strided slice (seed ${seed})` });
  });

  it('1-D operands: dot product, vector·matrix, matrix·vector, batched·vector', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const v = f32(rng, 7);
    const w = f32(rng, 7);
    const m = f32(rng, 7 * 3);
    const bm = f32(rng, 2 * 4 * 7);
    const tv = cg.fromArray(Float32Array.from(v), [7]);
    const dot = cg.matmul(tv, cg.fromArray(Float32Array.from(w), [7]));
    expect(dot.shape).toEqual([]);
    expect(await dot.item()).toBeCloseTo(v.reduce((s, x, i) => s + x * w[i]!, 0), 5);
    const vm = cg.matmul(tv, cg.fromArray(Float32Array.from(m), [7, 3]));
    expect(vm.shape).toEqual([3]);
    expectClose(await vm.data(), refMatmul(v, [1, 7], m, [7, 3]).data, { ...tol(7), what: `vec·mat (seed ${seed})` });
    const mt = cg.transpose(cg.fromArray(Float32Array.from(m), [7, 3]), 0, 1); // [3, 7] col-major
    const mv = cg.matmul(mt, tv);
    expect(mv.shape).toEqual([3]);
    const mT = new Float64Array(21);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 3; j++) mT[j * 7 + i] = m[i * 3 + j]!;
    expectClose(await mv.data(), refMatmul(mT, [3, 7], v, [7, 1]).data, { ...tol(7), what: `mat·vec (seed ${seed})` });
    const bv = cg.matmul(cg.fromArray(Float32Array.from(bm), [2, 4, 7]), tv);
    expect(bv.shape).toEqual([2, 4]);
    expectClose(await bv.data(), refMatmul(bm, [2, 4, 7], v, [7, 1]).data, { ...tol(7), what: `batched·vec (seed ${seed})` });
  });

  it('clear errors for mismatched shapes', () => {
    const a = cg.zeros([3, 4]);
    const b = cg.zeros([5, 2]);
    expect(() => cg.matmul(a, b)).toThrow(/cannot be multiplied.*4 != 5/);
    expect(() => cg.matmul(cg.zeros([2, 3, 4]), cg.zeros([3, 4, 2]))).toThrow(/cannot be broadcast/);
    expect(() => cg.matmul(cg.zeros([]), b)).toThrow(/at least 1 dim/);
    expect(() => cg.linear(cg.zeros([2, 3]), cg.zeros([4, 5]))).toThrow(/3 features.*expects 5/);
  });

  it('K = 0 gives zeros (plus bias)', async () => {
    const out = cg.matmul(cg.zeros([3, 0]), cg.zeros([0, 2]));
    expect(Array.from(await out.data())).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

/** loss = Σ out ⊙ R, so dL/dout = R; analytic grads dA = R·Bᵀ, dB = Aᵀ·R (batched, unbroadcast). */
function refGrads(a: Float64Array, as: number[], b: Float64Array, bs: number[], r: Float64Array): { ga: Float64Array; gb: Float64Array } {
  const out = refMatmul(a, as, b, bs);
  const [M, K, N] = [as[as.length - 2]!, as[as.length - 1]!, bs[bs.length - 1]!];
  const batch = out.shape.slice(0, -2);
  const ga = new Float64Array(a.length);
  const gb = new Float64Array(b.length);
  const ba = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const src = (shape: number[], idx: number[]) => {
    let f = 0;
    const off = idx.length - shape.length;
    for (let d = 0; d < shape.length; d++) f = f * shape[d]! + (shape[d] === 1 ? 0 : idx[d + off]!);
    return f;
  };
  for (let bi = 0; bi < numel(batch); bi++) {
    const idx: number[] = [];
    let rem = bi;
    for (let d = batch.length - 1; d >= 0; d--) {
      idx[d] = rem % batch[d]!;
      rem = Math.floor(rem / batch[d]!);
    }
    const oa = src(ba, idx) * M * K;
    const ob = src(bb, idx) * K * N;
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        const g = r[(bi * M + m) * N + n]!;
        for (let k = 0; k < K; k++) {
          ga[oa + m * K + k]! += g * b[ob + k * N + n]!;
          gb[ob + k * N + n]! += g * a[oa + m * K + k]!;
        }
      }
  }
  return { ga, gb };
}

describe('matmul backward', () => {
  it('the float64 reference gradients match finite differences', () => {
    const rng = new Rng(testSeed());
    const as = [2, 1, 3, 4];
    const bs = [3, 4, 2];
    const a = rng.uniformArray(numel(as));
    const b = rng.uniformArray(numel(bs));
    const r = rng.uniformArray(2 * 3 * 3 * 2);
    const loss = (x: Float64Array, y: Float64Array) => refMatmul(x, as, y, bs).data.reduce((s, v, i) => s + v * r[i]!, 0);
    const { ga, gb } = refGrads(a, as, b, bs, r);
    expectClose(numericGrad((x) => loss(x, b), a), ga, { atol: 1e-6, what: 'dA reference vs finite differences' });
    expectClose(numericGrad((y) => loss(a, y), b), gb, { atol: 1e-6, what: 'dB reference vs finite differences' });
  });

  const CASES: { as: number[]; bs: number[]; la: 'row' | 'col'; lb: 'row' | 'col' }[] = [
    { as: [7, 13], bs: [13, 5], la: 'row', lb: 'row' },
    { as: [9, 6], bs: [6, 12], la: 'col', lb: 'col' },
    { as: [2, 1, 5, 6], bs: [3, 6, 4], la: 'row', lb: 'col' },
    { as: [4, 5, 8], bs: [8, 6], la: 'col', lb: 'row' },
  ];
  for (const { as, bs, la, lb } of CASES) {
    it(`[${as}] (${la}) · [${bs}] (${lb})`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const a = f32(rng, numel(as));
      const b = f32(rng, numel(bs));
      const ta = upload(a, as, la);
      const tb = upload(b, bs, lb);
      ta.requiresGrad = true;
      tb.requiresGrad = true;
      const out = cg.matmul(ta, tb);
      const r = f32(rng, out.numel);
      const tr = cg.fromArray(Float32Array.from(r), out.shape);
      cg.backward(cg.sum(cg.mul(out, tr)));
      const { ga, gb } = refGrads(a, as, b, bs, r);
      const K = as[as.length - 1]!;
      expect(ta.grad!.shape).toEqual(as);
      expect(tb.grad!.shape).toEqual(bs);
      expectClose(await ta.grad!.data(), ga, { ...tol(64), shape: as, what: `dA (seed ${seed})` });
      expectClose(await tb.grad!.data(), gb, { ...tol(64 * K), shape: bs, what: `dB (seed ${seed})` });
    });
  }

  it('1-D operands backward (vector·matrix)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const v = f32(rng, 6);
    const m = f32(rng, 6 * 4);
    const tv = cg.fromArray(Float32Array.from(v), [6]);
    const tm = cg.fromArray(Float32Array.from(m), [6, 4]);
    tv.requiresGrad = true;
    tm.requiresGrad = true;
    const r = f32(rng, 4);
    cg.backward(cg.matmul(tv, tm), cg.fromArray(Float32Array.from(r), [4]));
    const { ga, gb } = refGrads(v, [1, 6], m, [6, 4], r);
    expectClose(await tv.grad!.data(), ga, { ...tol(6), what: `dv (seed ${seed})` });
    expectClose(await tm.grad!.data(), gb, { ...tol(6), what: `dm (seed ${seed})` });
  });
});

describe('linear (fused bias + activation epilogue)', () => {
  for (const act of ['none', 'relu'] as const) {
    it(`y = ${act}(x·wᵀ + b), forward and backward, 3-D input`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const [B, T, I, O] = [2, 5, 9, 7];
      const x = f32(rng, B * T * I);
      const w = f32(rng, O * I);
      const bias = f32(rng, O);
      const tx = cg.fromArray(Float32Array.from(x), [B, T, I]);
      const tw = cg.fromArray(Float32Array.from(w), [O, I]);
      const tbias = cg.fromArray(Float32Array.from(bias), [O]);
      for (const t of [tx, tw, tbias]) t.requiresGrad = true;
      const y = cg.linear(tx, tw, tbias, act);
      expect(y.shape).toEqual([B, T, O]);
      // Reference: z = x·wᵀ + b; y = act(z).
      const rows = B * T;
      const z = new Float64Array(rows * O);
      for (let r = 0; r < rows; r++) for (let o = 0; o < O; o++) {
        let s = bias[o]!;
        for (let i = 0; i < I; i++) s += x[r * I + i]! * w[o * I + i]!;
        z[r * O + o] = s;
      }
      const yRef = z.map((v) => (act === 'relu' ? Math.max(0, v) : v));
      expectClose(await y.data(), yRef, { ...tol(I), shape: [B, T, O], what: `linear ${act} forward (seed ${seed})` });
      const g = f32(rng, rows * O);
      cg.backward(y, cg.fromArray(Float32Array.from(g), [B, T, O]));
      const gz = g.map((v, i) => (act === 'relu' && z[i]! <= 0 ? 0 : v));
      const gx = new Float64Array(rows * I);
      const gw = new Float64Array(O * I);
      const gb = new Float64Array(O);
      for (let r = 0; r < rows; r++) for (let o = 0; o < O; o++) {
        const v = gz[r * O + o]!;
        gb[o]! += v;
        for (let i = 0; i < I; i++) {
          gx[r * I + i]! += v * w[o * I + i]!;
          gw[o * I + i]! += v * x[r * I + i]!;
        }
      }
      // The analytic reference against finite differences of the float64 forward.
      const lossOf = (xx: Float64Array) => {
        let s = 0;
        for (let r = 0; r < rows; r++) for (let o = 0; o < O; o++) {
          let zz = bias[o]!;
          for (let i = 0; i < I; i++) zz += xx[r * I + i]! * w[o * I + i]!;
          s += (act === 'relu' ? Math.max(0, zz) : zz) * g[r * O + o]!;
        }
        return s;
      };
      expectClose(numericGrad(lossOf, Float64Array.from(x)), gx, { atol: 1e-5, what: 'linear dx reference vs finite differences' });
      expectClose(await tx.grad!.data(), gx, { ...tol(O), what: `linear ${act} dx (seed ${seed})` });
      expectClose(await tw.grad!.data(), gw, { ...tol(rows), what: `linear ${act} dw (seed ${seed})` });
      expectClose(await tbias.grad!.data(), gb, { ...tol(rows), what: `linear ${act} db (seed ${seed})` });
    });
  }

  it('linear without bias on a transposed 2-D input matches matmul with a transposed weight', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = upload(f32(rng, 6 * 8), [6, 8], 'col');
    const w = cg.fromArray(Float32Array.from(f32(rng, 5 * 8)), [5, 8]);
    const y = cg.linear(x, w);
    const ref = cg.matmulNaive(x, cg.transpose(w, 0, 1));
    expectClose(await y.data(), await ref.data(), { ...tol(8), what: `linear no bias (seed ${seed})` });
  });
});
