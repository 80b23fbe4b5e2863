// Tensors larger than one storage binding, the row-, index- and product-shaped ops: matmul and
// linear, softmax / log-softmax, arg-max/min, cumsum, sort / top-k, gather / index_select /
// scatter_add / index_add and mask pasting. With the binding limit lowered by
// `rt().setBindingLimitForTests` (the runtime then refuses any larger binding, so a test passes only
// if the op really split), each op is checked against a float64 host reference on odd shapes and
// strided inputs, forward and backward, and against the unsplit run; at the device's limit each op
// records the dispatches it always did (no split).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { choosePlan } from '../../../kernels/matmul/chooser';
import { Rng, expectClose } from '../../util';

beforeAll(async () => {
  await cg.init();
});

afterEach(() => {
  cg.rt().setBindingLimitForTests(undefined);
});

async function withLimit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  cg.rt().setBindingLimitForTests(bytes);
  try {
    return await fn();
  } finally {
    cg.rt().setBindingLimitForTests(undefined);
  }
}

/** Dispatches `fn` records (no flush needed: the counter counts recorded dispatches). */
function dispatchesOf(fn: () => unknown): number {
  const before = cg.rt().stats().dispatches;
  fn();
  return cg.rt().stats().dispatches - before;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
const tol = { atol: 1e-4, rtol: 1e-4 };

/** C[b] = A[b]·B[b] in float64 for dense row-major [nb, m, k] and [nb, k, n] (nb = 1: shared). */
function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, nb: number, m: number, k: number, n: number, aShared = false, bShared = false): Float64Array {
  const c = new Float64Array(nb * m * n);
  for (let q = 0; q < nb; q++) {
    const ao = aShared ? 0 : q * m * k;
    const bo = bShared ? 0 : q * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a[ao + i * k + t]! * b[bo + t * n + j]!;
        c[(q * m + i) * n + j] = s;
      }
    }
  }
  return c;
}

/** The transpose of a dense [rows, cols] matrix. */
function transposeHost(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

describe('matmul over the binding limit', () => {
  const rng = new Rng(31);
  const [nb, M, K, N] = [3, 37, 29, 41];
  const ah = f32(rng.uniformArray(nb * M * K, -1, 1));
  const bh = f32(rng.uniformArray(K * N, -1, 1));
  const gh = f32(rng.uniformArray(nb * M * N, -1, 1));

  it('batched, broadcast and transposed operands, forward and backward, match float64 and the unsplit run', async () => {
    // B is given transposed ([N, K] storage read as [K, N]: a column-major view, not a copy).
    const bt = transposeHost(bh, K, N);
    const run = async () => {
      const a = cg.fromArray(ah, [nb, M, K]);
      const b = cg.transpose(cg.fromArray(bt, [N, K]), 0, 1);
      a.requiresGrad = true;
      b.requiresGrad = true;
      const y = cg.matmul(a, b);
      cg.backward(y, cg.fromArray(gh, [nb, M, N]));
      return { y: await y.data(), ga: await a.grad!.data(), gb: await b.grad!.data() };
    };
    const yRef = matmulRef(ah, bh, nb, M, K, N, false, true);
    // dA = g·Bᵀ, dB = Σ_b A[b]ᵀ·g[b].
    const gaRef = matmulRef(gh, bt, nb, M, N, K, false, true);
    const gbRef = new Float64Array(K * N);
    for (let q = 0; q < nb; q++) {
      const part = matmulRef(transposeHost(ah.subarray(q * M * K, (q + 1) * M * K), M, K), gh.subarray(q * M * N, (q + 1) * M * N), 1, K, M, N);
      for (let i = 0; i < part.length; i++) gbRef[i] += part[i]!;
    }
    const want = await run();
    // 4 KiB: every operand splits (B along N, its column-major long axis; A and y along batch and M;
    // dB's long K = nb·M folded by the op); 8 KiB: fewer, larger blocks.
    for (const limit of [4096, 8192]) {
      const got = await withLimit(limit, run);
      const what = (t: string) => `${t} (limit ${limit})`;
      expectClose(got.y, yRef, { ...tol, what: what('y'), shape: [nb, M, N] });
      expectClose(got.ga, gaRef, { ...tol, what: what('dA'), shape: [nb, M, K] });
      expectClose(got.gb, gbRef, { ...tol, what: what('dB'), shape: [K, N] });
      expectClose(got.y, want.y, { atol: 1e-5, what: what('y vs unsplit') });
    }
  });

  it('a long K (row-major B over the limit) sums its blocks and applies the epilogue once', async () => {
    const [m, k, n] = [5, 1500, 3];
    const xh = f32(rng.uniformArray(m * k, -1, 1));
    const wh = f32(rng.uniformArray(n * k, -1, 1));
    const bias = f32(rng.uniformArray(n, -1, 1));
    const g = f32(rng.uniformArray(m * n, -1, 1));
    const run = async () => {
      const x = cg.fromArray(xh, [m, k]);
      const w = cg.fromArray(wh, [n, k]);
      const b = cg.fromArray(bias, [n]);
      for (const t of [x, w, b]) t.requiresGrad = true;
      const y = cg.linear(x, w, b, 'relu');
      cg.backward(y, cg.fromArray(g, [m, n]));
      return { y: await y.data(), gx: await x.grad!.data(), gw: await w.grad!.data(), gb: await b.grad!.data() };
    };
    const z = matmulRef(xh, transposeHost(wh, n, k), 1, m, k, n).map((v, i) => v + bias[i % n]!);
    const yRef = z.map((v) => Math.max(v, 0));
    const gz = g.map((v, i) => (z[i]! > 0 ? v : 0));
    const gxRef = matmulRef(gz, wh, 1, m, n, k);
    const gwRef = matmulRef(transposeHost(gz, m, n), xh, 1, n, m, k);
    const gbRef = new Float64Array(n);
    gz.forEach((v, i) => (gbRef[i % n] += v));
    const got = await withLimit(4096, run);
    expectClose(got.y, yRef, { ...tol, what: 'relu(x·wᵀ + b)' });
    expectClose(got.gx, gxRef, { ...tol, what: 'dx' });
    expectClose(got.gw, gwRef, { ...tol, what: 'dw' });
    expectClose(got.gb, gbRef, { ...tol, what: 'db' });
  });

  it('the kernel the chooser picks at the device limit, several launches below it', () => {
    const a = cg.fromArray(ah, [nb, M, K]);
    const b = cg.fromArray(bh, [K, N]);
    const plan = choosePlan(M, N, K, nb);
    // The subgroup kernel packs B first; split-K adds its reduction.
    const want = 1 + (plan.kernel === 'subgroup' ? 1 : 0) + (plan.kernel !== 'naive' && (plan.splits ?? 1) > 1 ? 1 : 0);
    expect(dispatchesOf(() => cg.matmul(a, b))).toBe(want);
    cg.rt().setBindingLimitForTests(4096);
    expect(dispatchesOf(() => cg.matmul(a, b))).toBeGreaterThan(want);
  });
});

describe('row ops over the binding limit: blocks of rows', () => {
  const rng = new Rng(41);
  const shape = [7, 5, 61]; // rows of 61 floats (244 bytes); the tensor 8.5 KiB
  const xh = f32(rng.uniformArray(prod(shape), -3, 3));
  const gh = f32(rng.uniformArray(prod(shape), -1, 1));

  /** Host softmax / log-softmax along the last dim of dense rows, with the backward. */
  function softmaxRef(x: ArrayLike<number>, g: ArrayLike<number>, len: number, log: boolean): { y: Float64Array; gx: Float64Array } {
    const y = new Float64Array(x.length);
    const gx = new Float64Array(x.length);
    for (let r = 0; r < x.length / len; r++) {
      const o = r * len;
      let m = -Infinity;
      for (let j = 0; j < len; j++) m = Math.max(m, x[o + j]!);
      let s = 0;
      for (let j = 0; j < len; j++) s += Math.exp(x[o + j]! - m);
      for (let j = 0; j < len; j++) y[o + j] = log ? x[o + j]! - m - Math.log(s) : Math.exp(x[o + j]! - m) / s;
      let dot = 0;
      for (let j = 0; j < len; j++) dot += log ? g[o + j]! : g[o + j]! * y[o + j]!;
      for (let j = 0; j < len; j++) gx[o + j] = log ? g[o + j]! - Math.exp(y[o + j]!) * dot : y[o + j]! * (g[o + j]! - dot);
    }
    return { y, gx };
  }

  for (const kind of ['softmax', 'logSoftmax'] as const) {
    it(`${kind}: last dim, a strided dim, and one row over the limit, forward and backward`, async () => {
      const fn = kind === 'softmax' ? cg.softmax : cg.logSoftmax;
      const run = async (xs: Float64Array, s: number[], dim: number, g: Float64Array) => {
        const x = cg.fromArray(xs, s);
        x.requiresGrad = true;
        const y = fn(x, dim);
        cg.backward(y, cg.fromArray(g, s));
        return { y: await y.data(), gx: await x.grad!.data() };
      };
      const ref = softmaxRef(xh, gh, shape[2]!, kind === 'logSoftmax');
      const want = await run(xh, shape, -1, gh);
      const got = await withLimit(4096, () => run(xh, shape, -1, gh));
      expectClose(got.y, ref.y, { ...tol, what: `${kind} y`, shape });
      expectClose(got.gx, ref.gx, { ...tol, what: `${kind} dx`, shape });
      expect(Array.from(got.y)).toEqual(Array.from(want.y));
      // Along dim 0 of [61, 35] (the op permutes it last; the copy splits too).
      const xt = transposeHost(xh, 35, 61);
      const gt = transposeHost(gh, 35, 61);
      const t = await withLimit(4096, () => run(xt, [61, 35], 0, gt));
      expectClose(transposeHost(t.y, 61, 35), ref.y, { ...tol, what: `${kind} y (dim 0)` });
      expectClose(transposeHost(t.gx, 61, 35), ref.gx, { ...tol, what: `${kind} dx (dim 0)` });
      // One row of 2000 floats (8000 bytes) over a 4 KiB binding: the composed reference.
      const lx = f32(rng.uniformArray(2 * 2000, -3, 3));
      const lg = f32(rng.uniformArray(2 * 2000, -1, 1));
      const lref = softmaxRef(lx, lg, 2000, kind === 'logSoftmax');
      const l = await withLimit(4096, () => run(lx, [2, 2000], 1, lg));
      expectClose(l.y, lref.y, { ...tol, what: `${kind} y (long rows)` });
      expectClose(l.gx, lref.gx, { ...tol, what: `${kind} dx (long rows)` });
    });
  }

  it('argmax / argmin over the last dim and a strided dim; a flattened reduction over the limit says so', async () => {
    const x = cg.fromArray(xh, shape);
    const hostArg = (max: boolean, dim: number): number[] => {
      const [A, B, C] = shape as [number, number, number];
      const out: number[] = [];
      const at = (i: number, j: number, k: number) => xh[(i * B + j) * C + k]!;
      if (dim === 2) {
        for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) {
          let best = 0;
          for (let k = 1; k < C; k++) if (max ? at(i, j, k) > at(i, j, best) : at(i, j, k) < at(i, j, best)) best = k;
          out.push(best);
        }
      } else {
        for (let j = 0; j < B; j++) for (let k = 0; k < C; k++) {
          let best = 0;
          for (let i = 1; i < A; i++) if (max ? at(i, j, k) > at(best, j, k) : at(i, j, k) < at(best, j, k)) best = i;
          out.push(best);
        }
      }
      return out;
    };
    const want = { max2: Array.from(await cg.argmax(x, 2).data()), min0: Array.from(await cg.argmin(x, 0).data()) };
    await withLimit(4096, async () => {
      expect(Array.from(await cg.argmax(x, 2).data())).toEqual(hostArg(true, 2));
      expect(Array.from(await cg.argmin(x, 0).data())).toEqual(hostArg(false, 0));
      expect(() => cg.argmax(x)).toThrow(/argmax: one row of \d+ bytes is over the 4096-byte storage binding limit/);
    });
    expect(want.max2).toEqual(hostArg(true, 2));
    expect(want.min0).toEqual(hostArg(false, 0));
  });

  it('cumsum along the last dim and a strided dim, forward and backward; one row over the limit says so', async () => {
    const [A, B, C] = shape as [number, number, number];
    const run = async (dim: number) => {
      const x = cg.fromArray(xh, shape);
      x.requiresGrad = true;
      const y = cg.cumsum(x, dim);
      cg.backward(y, cg.fromArray(gh, shape));
      return { y: await y.data(), gx: await x.grad!.data() };
    };
    const idx = (i: number, j: number, k: number) => (i * B + j) * C + k;
    for (const dim of [2, 0]) {
      const y = new Float64Array(xh.length);
      const gx = new Float64Array(xh.length);
      for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) for (let k = 0; k < C; k++) {
        const c = idx(i, j, k);
        const prev = dim === 2 ? (k > 0 ? idx(i, j, k - 1) : -1) : i > 0 ? idx(i - 1, j, k) : -1;
        y[c] = xh[c]! + (prev >= 0 ? y[prev]! : 0);
      }
      // The gradient of a cumsum is the reverse cumsum of g.
      for (let i = A - 1; i >= 0; i--) for (let j = B - 1; j >= 0; j--) for (let k = C - 1; k >= 0; k--) {
        const c = idx(i, j, k);
        const next = dim === 2 ? (k < C - 1 ? idx(i, j, k + 1) : -1) : i < A - 1 ? idx(i + 1, j, k) : -1;
        gx[c] = gh[c]! + (next >= 0 ? gx[next]! : 0);
      }
      const got = await withLimit(4096, () => run(dim));
      expectClose(got.y, y, { ...tol, what: `cumsum y (dim ${dim})`, shape });
      expectClose(got.gx, gx, { ...tol, what: `cumsum dx (dim ${dim})`, shape });
    }
    const long = cg.fromArray(new Float32Array(2000), [2000]);
    await withLimit(4096, async () => {
      expect(() => cg.cumsum(long, 0)).toThrow(/cumsum: one row of 8000 bytes is over the 4096-byte storage binding limit/);
    });
  });

  it('sort, argsort and topk (values backward): blocks of rows match float64 order and the unsplit run', async () => {
    for (const [rows, n, limit] of [[23, 100, 4096], [40, 300, 16384]] as const) {
      const vh = f32(rng.uniformArray(rows * n, -1, 1));
      for (let i = 0; i < vh.length; i += 7) vh[i] = vh[i + 3] ?? 0; // ties
      const gk = f32(rng.uniformArray(rows * 5, -1, 1));
      const run = async () => {
        const v = cg.fromArray(vh, [rows, n]);
        v.requiresGrad = true;
        const s = cg.sort(v, 1, true);
        const t = cg.topk(v, 5, 1);
        cg.backward(t.values, cg.fromArray(gk, [rows, 5]));
        return { sv: await s.values.data(), si: await s.indices.data(), ti: await t.indices.data(), gv: await v.grad!.data(), asc: await cg.argsort(v, 1).data() };
      };
      const want = await run();
      const got = await withLimit(limit, run);
      const gvRef = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++) {
        const order = Array.from({ length: n }, (_, j) => j).sort((p, q) => vh[r * n + q]! - vh[r * n + p]! || p - q);
        expect(Array.from(got.si.subarray(r * n, (r + 1) * n)), `row ${r}`).toEqual(order);
        expect(Array.from(got.sv.subarray(r * n, (r + 1) * n))).toEqual(order.map((j) => Math.fround(vh[r * n + j]!)));
        expect(Array.from(got.ti.subarray(r * 5, r * 5 + 5))).toEqual(order.slice(0, 5));
        for (let j = 0; j < 5; j++) gvRef[r * n + order[j]!] = gk[r * 5 + j]!;
      }
      expectClose(got.gv, gvRef, { atol: 0, what: `topk values grad (limit ${limit})` });
      for (const k of ['sv', 'si', 'ti', 'gv', 'asc'] as const) expect(Array.from(got[k]), k).toEqual(Array.from(want[k]));
    }
  });
});

describe('indexing over the binding limit', () => {
  const rng = new Rng(51);
  const shape = [6, 50, 7]; // 8.4 KiB
  const xh = f32(rng.uniformArray(prod(shape), -1, 1));
  const at = (i: number, j: number, k: number) => xh[(i * 50 + j) * 7 + k]!;

  it('gather along a middle dim (out-of-range indices give 0), forward and backward', async () => {
    const ishape = [6, 31, 7];
    const idx = Int32Array.from({ length: prod(ishape) }, (_, i) => (i % 37 === 5 ? -1 : i % 41 === 3 ? 50 : rng.int(0, 50)));
    const gh = f32(rng.uniformArray(prod(ishape), -1, 1));
    const run = async () => {
      const x = cg.fromArray(xh, shape);
      x.requiresGrad = true;
      const y = cg.gather(x, 1, cg.fromArray(idx, ishape, 'i32'));
      cg.backward(y, cg.fromArray(gh, ishape));
      return { y: await y.data(), gx: await x.grad!.data() };
    };
    const yRef = new Float64Array(prod(ishape));
    const gxRef = new Float64Array(prod(shape));
    for (let i = 0; i < 6; i++) for (let j = 0; j < 31; j++) for (let k = 0; k < 7; k++) {
      const e = (i * 31 + j) * 7 + k;
      const t = idx[e]!;
      if (t < 0 || t >= 50) continue;
      yRef[e] = at(i, t, k);
      gxRef[(i * 50 + t) * 7 + k]! += gh[e]!;
    }
    const want = await run();
    for (const limit of [4096, 8192]) {
      const got = await withLimit(limit, run);
      expectClose(got.y, yRef, { atol: 0, what: `gather y (limit ${limit})`, shape: ishape });
      expectClose(got.gx, gxRef, { ...tol, what: `gather dx (limit ${limit})`, shape });
      expect(Array.from(got.gx)).toEqual(Array.from(want.gx));
    }
  });

  it('indexSelect along dim 0 and dim 2 of a transposed view, forward and backward (index_add, in passes along dim 0)', async () => {
    for (const dim of [0, 2]) {
      const n = dim === 0 ? 7 : 6; // the permuted view is [7, 50, 6]
      const idx = Int32Array.from([3, 0, n - 1, 3, 1, 3, 2, 0, 5]);
      const vshape = [7, 50, 6];
      const oshape = [...vshape];
      oshape[dim] = idx.length;
      const gh = f32(rng.uniformArray(prod(oshape), -1, 1));
      const run = async () => {
        const x = cg.fromArray(xh, shape);
        x.requiresGrad = true;
        const v = cg.permute(x, [2, 1, 0]);
        const y = cg.indexSelect(v, dim, cg.fromArray(idx, [idx.length], 'i32'));
        cg.backward(y, cg.fromArray(gh, oshape));
        return { y: await y.data(), gx: await x.grad!.data() };
      };
      const yRef = new Float64Array(prod(oshape));
      const gxRef = new Float64Array(prod(shape));
      for (let a = 0; a < oshape[0]!; a++) for (let b = 0; b < 50; b++) for (let c = 0; c < oshape[2]!; c++) {
        const e = (a * 50 + b) * oshape[2]! + c;
        // view [k, j, i] = x[i, j, k]
        const [k, i] = dim === 0 ? [idx[a]!, c] : [a, idx[c]!];
        yRef[e] = at(i, b, k);
        gxRef[(i * 50 + b) * 7 + k]! += gh[e]!;
      }
      const got = await withLimit(4096, run);
      expectClose(got.y, yRef, { atol: 0, what: `indexSelect y (dim ${dim})`, shape: oshape });
      expectClose(got.gx, gxRef, { ...tol, what: `indexSelect dx (dim ${dim})`, shape });
      // Along dim 0 the backward's src fibres span the whole gradient: passes over blocks of it,
      // summing in the one-pass order (bit-identical).
      expect(Array.from(got.gx), `dim ${dim} vs unsplit`).toEqual(Array.from((await run()).gx));
    }
  });

  it('scatterAdd and indexAdd into a strided input, forward and backward', async () => {
    const ishape = [6, 9, 7];
    const idx = Int32Array.from({ length: prod(ishape) }, (_, i) => (i % 23 === 4 ? 77 : rng.int(0, 50)));
    const sh = f32(rng.uniformArray(prod(ishape), -1, 1));
    const gh = f32(rng.uniformArray(prod(shape), -1, 1));
    const run = async () => {
      const base = cg.fromArray(transposeHost(xh, 6, 350), [350, 6]); // x as a transposed view
      const x = cg.reshape(cg.transpose(base, 0, 1), shape);
      const s = cg.fromArray(sh, ishape);
      s.requiresGrad = true;
      const y = cg.scatterAdd(x, 1, cg.fromArray(idx, ishape, 'i32'), s);
      const ia = Int32Array.from([4, 49, 4, 0, 17]);
      const src2 = cg.fromArray(f32(rng.uniformArray(6 * 5 * 7, -1, 1)), [6, 5, 7]);
      const z = cg.indexAdd(y, 1, cg.fromArray(ia, [5], 'i32'), src2);
      cg.backward(z, cg.fromArray(gh, shape));
      return { y: await y.data(), gs: await s.grad!.data() };
    };
    const yRef = Float64Array.from(xh);
    const gsRef = new Float64Array(prod(ishape));
    for (let i = 0; i < 6; i++) for (let j = 0; j < 9; j++) for (let k = 0; k < 7; k++) {
      const e = (i * 9 + j) * 7 + k;
      const t = idx[e]!;
      if (t >= 50) continue;
      yRef[(i * 50 + t) * 7 + k]! += sh[e]!;
      gsRef[e] = gh[(i * 50 + t) * 7 + k]!;
    }
    const want = await run();
    const got = await withLimit(4096, run);
    expectClose(got.y, yRef, { ...tol, what: 'scatterAdd y', shape });
    expectClose(got.gs, gsRef, { atol: 0, what: 'scatterAdd d src', shape: ishape });
    expect(Array.from(got.y)).toEqual(Array.from(want.y));
  });
});

describe('mask pasting over the binding limit: blocks of images', () => {
  it('pasteMasksInImage (binary and soft) matches the unsplit run bit for bit', async () => {
    const rng = new Rng(61);
    const n = 5;
    const masks = cg.fromArray(f32(rng.uniformArray(n * 7 * 7, 0, 1)), [n, 7, 7]);
    const boxes = cg.fromArray(Float32Array.from({ length: n * 4 }, (_, i) => (i % 4 < 2 ? rng.uniform(0, 15) : rng.uniform(18, 36))), [n, 4]);
    const run = async () => ({
      bin: await cg.pasteMasksInImage(masks, boxes, [23, 37]).data(),
      soft: await cg.pasteMasksInImage(masks, boxes, [23, 37], { threshold: -1 }).data(),
    });
    const want = await run();
    const got = await withLimit(4096, run); // one 23x37 image (3.4 KiB) per block
    expect(Array.from(got.bin)).toEqual(Array.from(want.bin));
    expect(Array.from(got.soft)).toEqual(Array.from(want.soft));
    expect(want.bin.some((v) => v !== 0)).toBe(true);
    expect(dispatchesOf(() => cg.pasteMasksInImage(masks, boxes, [23, 37]))).toBe(1);
  });
});

describe('ops that refuse over the binding limit', () => {
  it('nonzero and maskedSelect name the op, the shape and the limit', async () => {
    const x = cg.fromArray(new Float32Array(3000), [3, 1000]);
    await withLimit(4096, async () => {
      await expect(cg.nonzero(x)).rejects.toThrow(/nonzero: \[3,1000\] has 3000 elements, whose 12004-byte flag scan is over the 4096-byte storage binding limit/);
      await expect(cg.maskedSelect(x, x)).rejects.toThrow(/maskedSelect: \[3,1000\] .* over the 4096-byte storage binding limit/);
    });
  });
});

describe('at the device limit nothing splits', () => {
  it('each op records the dispatches of its unsplit form', () => {
    const x = cg.fromArray(new Float32Array(7 * 61), [7, 61]);
    const idx = cg.fromArray(Int32Array.from([1, 0, 2]), [3], 'i32');
    expect(dispatchesOf(() => cg.softmax(x))).toBe(1);
    expect(dispatchesOf(() => cg.argmax(x, 1))).toBe(1);
    expect(dispatchesOf(() => cg.cumsum(x, 1))).toBe(1);
    expect(dispatchesOf(() => cg.indexSelect(x, 0, idx))).toBe(1);
    const gi = cg.fromArray(new Int32Array(7 * 3), [7, 3], 'i32');
    expect(dispatchesOf(() => cg.gather(x, 1, gi))).toBe(1);
  });
});
