// f16 storage in the matmul kernels: f16 A and B (odd and vec4-aligned shapes, row- and
// column-major views read in place, an offset view, broadcast batches), an f16 C accumulated in f32, with and without split-K
// and the bias + ReLU epilogue, for every kernel; then matmul/linear backward on f16 operands
// (dA = g·Bᵀ and dB = Aᵀ·g through the transposed views). References are float64 on the
// f16-rounded inputs; the tolerance is f16's rounding of the output (2^-11 relative) plus the
// rounding of the f16 gradient fed back.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as cg from '../../../engine';
import type { MatmulConfig, Tensor } from '../../../engine';
import { rt } from '../../../runtime/runtime';
import { hasSubgroups8 } from '../../../runtime/adapter';
import { expectClose, Rng, testSeed } from '../../util';

vi.setConfig({ testTimeout: 600_000 });

let f16 = false;
beforeAll(async () => {
  await cg.init();
  f16 = rt().gpu.features.f16;
});

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** f16 output tolerance: one f16 rounding of the result (plus subnormal spacing near zero). */
const F16_TOL = { atol: 1e-4, rtol: 1e-3 };

/** A random [...batch, R, C] f16 matrix laid out row- or column-major (stored transposed, viewed
 *  back through strides), optionally at an offset inside a larger buffer; with its f16 values. */
async function f16Matrix(rng: Rng, shape: number[], layout: 'row' | 'col', offset = false): Promise<{ t: Tensor; v: Float64Array }> {
  const n = shape.length;
  const stored = layout === 'row' ? shape : [...shape.slice(0, -2), shape[n - 1]!, shape[n - 2]!];
  const pad = offset ? 1 : 0;
  const src = cg.fromArray(Float32Array.from(rng.uniformArray(numel(stored) + pad, -1, 1)), [numel(stored) + pad]);
  const h = cg.cast(src, 'f16');
  const flat = offset ? cg.narrow(h, 0, 1, numel(stored)) : h;
  const s = cg.reshape(flat, stored);
  const t = layout === 'row' ? s : cg.transpose(s, -1, -2);
  const v = Float64Array.from(await t.data());
  return { t, v };
}

/** Float64 act(A·B + bias) with batch broadcast (batch dims of equal rank or 1). */
function ref(a: Float64Array, as: number[], b: Float64Array, bs: number[], bias?: Float64Array, relu = false): Float64Array {
  const M = as.at(-2)!;
  const K = as.at(-1)!;
  const N = bs.at(-1)!;
  const ba = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const batch = ba.map((x, i) => Math.max(x, bb[i] ?? 1));
  const nb = numel(batch);
  const out = new Float64Array(nb * M * N);
  for (let bi = 0; bi < nb; bi++) {
    const ia = ba.length && ba[0] !== 1 ? bi : 0;
    const ib = bb.length && bb[0] !== 1 ? bi : 0;
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = bias ? bias[n]! : 0;
        for (let k = 0; k < K; k++) s += a[ia * M * K + m * K + k]! * b[ib * K * N + k * N + n]!;
        out[(bi * M + m) * N + n] = relu ? Math.max(s, 0) : s;
      }
  }
  return out;
}

const CONFIGS: Record<string, MatmulConfig> = {
  naive: { kernel: 'naive' },
  'workgroup-tiled tile32': { kernel: 'workgroup-tiled', tile: 32 },
  'register-tiled rows4 wg16': { kernel: 'register-tiled', rows: 4, wg: 16 },
  'register-tiled rows8 wg8 split3': { kernel: 'register-tiled', rows: 8, wg: 8, splits: 3 },
  'subgroup rows16': { kernel: 'subgroup', rows: 16 },
};
// [batchA, batchB, M, K, N]
const SHAPES: [number[], number[], number, number, number][] = [
  [[], [], 5, 7, 3],
  [[], [], 37, 29, 45],
  [[3], [1], 19, 33, 12],
  [[], [], 12, 20, 16], // vec4-aligned: vec4h loads (except the offset row-major A)
];

/** Largest |error| of an f16 result seen, reported in the summary test. */
let worst = 0;

describe('matmul kernels with f16 storage vs float64', () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    SHAPES.forEach(([bA, bB, M, K, N], si) => {
      it(`${name}: [${bA}, ${M}, ${K}] · [${bB}, ${K}, ${N}], every layout pair, bias + ReLU on one`, async () => {
        if (!f16 || (config.kernel === 'subgroup' && !hasSubgroups8())) return;
        const seed = testSeed() + si;
        const rng = new Rng(seed);
        for (const [la, lb] of [['row', 'row'], ['col', 'row'], ['row', 'col'], ['col', 'col']] as const) {
          const withEpi = la === 'col' && lb === 'col';
          const A = await f16Matrix(rng, [...bA, M, K], la, la === 'row' && lb === 'col');
          const B = await f16Matrix(rng, [...bB, K, N], lb);
          const bias = withEpi ? Float64Array.from(rng.uniformArray(N, -1, 1), Math.fround) : undefined;
          const tb = bias ? cg.fromArray(Float32Array.from(bias), [N]) : undefined;
          const y = cg.matmulWith(A.t, B.t, config, { bias: tb, act: withEpi ? 'relu' : 'none' });
          expect(y.dtype).toBe('f16');
          const want = ref(A.v, [...bA, M, K], B.v, [...bB, K, N], bias, withEpi);
          const r = expectClose(await y.data(), want, { ...F16_TOL, what: `${name} ${la}·${lb} (seed ${seed})` });
          worst = Math.max(worst, r.maxAbs);
        }
      });
    });
  }

  it('split-K with an f16 output over a long K (workspace f32, one rounding at the reduce)', async () => {
    if (!f16) return;
    const seed = testSeed();
    const rng = new Rng(seed);
    const [M, K, N] = [6, 1031, 9];
    const A = await f16Matrix(rng, [M, K], 'row');
    const B = await f16Matrix(rng, [K, N], 'col');
    const y = cg.matmulWith(A.t, B.t, { kernel: 'register-tiled', rows: 4, wg: 16, splits: 4 });
    const r = expectClose(await y.data(), ref(A.v, [M, K], B.v, [K, N]), { atol: 2e-3, rtol: 1e-3, what: `split-K f16 (seed ${seed})` });
    console.log(`f16 matmul: max |error| vs float64: kernel cases (K <= 33) ${worst.toExponential(2)}; split-K K = 1031 ${r.maxAbs.toExponential(2)} (max rel ${r.maxRel.toExponential(2)})`);
  });

  it('operands over one storage binding (binding limit lowered): M, N and K blocks, f32 K sums, f16 output with bias + ReLU', async () => {
    if (!f16) return;
    const seed = testSeed();
    const rng = new Rng(seed);
    const [M, K, N] = [37, 301, 67];
    const A = await f16Matrix(rng, [M, K], 'row');
    const B = await f16Matrix(rng, [K, N], 'col');
    const bias = Float64Array.from(rng.uniformArray(N, -1, 1), Math.fround);
    const tb = cg.fromArray(Float32Array.from(bias), [N]);
    rt().setBindingLimitForTests(4096);
    let y: Tensor;
    try {
      y = cg.matmulWith(A.t, B.t, { kernel: 'register-tiled', rows: 4, wg: 16 }, { bias: tb, act: 'relu' });
    } finally {
      rt().setBindingLimitForTests(undefined);
    }
    expect(y.dtype).toBe('f16');
    const r = expectClose(await y.data(), ref(A.v, [M, K], B.v, [K, N], bias, true), { atol: 2e-3, rtol: 1e-3, what: `large f16 (seed ${seed})` });
    console.log(`f16 matmul over the binding limit: max |error| ${r.maxAbs.toExponential(2)}`);
  });

  it('mixed f16 and f32 operands are refused by the kernels, promoted by the op outside autocast', async () => {
    if (!f16) return;
    const a = cg.cast(cg.fromArray(new Float32Array(6).fill(1), [2, 3]), 'f16');
    const b = cg.fromArray(new Float32Array(12).fill(0.5), [3, 4]);
    expect(() => cg.matmulWith(a, b, { kernel: 'naive' })).toThrow(/both f32 or both f16/);
    const y = cg.matmul(a, b);
    expect(y.dtype).toBe('f32');
    expect(Array.from(await y.data())).toEqual(new Array(8).fill(1.5));
  });
});

describe('matmul and linear backward on f16 operands', () => {
  it('matmul: dA = g·Bᵀ and dB = Aᵀ·g (broadcast batch, transposed B) in f16', async () => {
    if (!f16) return;
    const seed = testSeed();
    const rng = new Rng(seed);
    const [M, K, N] = [13, 21, 10];
    const A = await f16Matrix(rng, [2, M, K], 'row');
    const B = await f16Matrix(rng, [K, N], 'col');
    // Leaves of f16 dtype (detached copies of the views).
    const ta = cg.contiguousCopy(A.t);
    const tb = cg.contiguousCopy(B.t);
    const tbt = cg.transpose(cg.contiguousCopy(cg.transpose(B.t, -1, -2)), -1, -2); // column-major leaf view
    ta.requiresGrad = true;
    tbt.requiresGrad = true;
    const y = cg.matmul(ta, tbt);
    expect(y.dtype).toBe('f16');
    const g = await f16Matrix(rng, [2, M, N], 'row');
    cg.backward(y, g.t);
    expect(ta.grad!.dtype).toBe('f16');
    // dA[b] = g[b]·Bᵀ; dB = Σ_b A[b]ᵀ·g[b].
    const bT = new Float64Array(N * K);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) bT[n * K + k] = B.v[k * N + n]!;
    const gA = ref(g.v, [2, M, N], bT, [N, K]);
    const aT = new Float64Array(2 * K * M);
    for (let b = 0; b < 2; b++) for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) aT[b * K * M + k * M + m] = A.v[b * M * K + m * K + k]!;
    const perB = ref(aT, [2, K, M], g.v, [2, M, N]);
    const gB = new Float64Array(K * N).map((_, i) => perB[i]! + perB[K * N + i]!);
    const r1 = expectClose(await ta.grad!.data(), gA, { ...F16_TOL, what: `dA (seed ${seed})` });
    const r2 = expectClose(await tbt.grad!.data(), gB, { atol: 2e-3, rtol: 2e-3, what: `dB (seed ${seed})` });
    console.log(`f16 matmul backward: max |error| dA ${r1.maxAbs.toExponential(2)}, dB ${r2.maxAbs.toExponential(2)}`);
    tb.dispose();
  });

  it('linear with f16 x and w (3-D input, f32 bias, ReLU): f16 y, dx, dw; f32 db', async () => {
    if (!f16) return;
    const seed = testSeed();
    const rng = new Rng(seed);
    const [Bt, T, I, O] = [2, 7, 19, 11];
    const X = await f16Matrix(rng, [Bt, T, I], 'row');
    const W = await f16Matrix(rng, [O, I], 'row');
    const bias = Float64Array.from(rng.uniformArray(O, -1, 1), Math.fround);
    const tx = cg.contiguousCopy(X.t);
    const tw = cg.contiguousCopy(W.t);
    const tbias = cg.fromArray(Float32Array.from(bias), [O]);
    for (const t of [tx, tw, tbias]) t.requiresGrad = true;
    const y = cg.linear(tx, tw, tbias, 'relu');
    expect(y.dtype).toBe('f16');
    const rows = Bt * T;
    const wT = new Float64Array(I * O);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) wT[i * O + o] = W.v[o * I + i]!;
    const z = ref(X.v, [rows, I], wT, [I, O], bias);
    expectClose(await y.data(), z.map((v) => Math.max(v, 0)), { ...F16_TOL, what: `linear forward (seed ${seed})` });
    const g = await f16Matrix(rng, [Bt, T, O], 'row');
    cg.backward(y, g.t);
    // The ReLU mask is taken from the f16 output, as the op does.
    const yv = await y.data();
    const gz = g.v.map((v, i) => (yv[i]! > 0 ? v : 0));
    const gx = ref(gz, [rows, O], W.v, [O, I]);
    const gzT = new Float64Array(O * rows);
    for (let r = 0; r < rows; r++) for (let o = 0; o < O; o++) gzT[o * rows + r] = gz[r * O + o]!;
    const gw = ref(gzT, [O, rows], X.v, [rows, I]);
    const gb = new Float64Array(O);
    for (let r = 0; r < rows; r++) for (let o = 0; o < O; o++) gb[o]! += gz[r * O + o]!;
    expect([tx.grad!.dtype, tw.grad!.dtype, tbias.grad!.dtype]).toEqual(['f16', 'f16', 'f32']);
    expectClose(await tx.grad!.data(), gx, { ...F16_TOL, what: `linear dx (seed ${seed})` });
    expectClose(await tw.grad!.data(), gw, { atol: 2e-3, rtol: 2e-3, what: `linear dw (seed ${seed})` });
    expectClose(await tbias.grad!.data(), gb, { atol: 1e-4, rtol: 1e-4, what: `linear db (seed ${seed})` });
  });
});
