// sort / argsort / topk against a plain-JS stable sort (ties broken by original index), on rows of
// 1, 7, 1000, 4099 and ~100k elements with many ties, strided inputs, other dims, NaN and -0;
// gradients of the values against finite differences of the reference.
import { beforeAll, describe, expect, it } from 'vitest';
import { argsort, backward, fromArray, init, memory, permute, scope, sort, topk, type Tensor } from '../../../engine';
import { expectClose, numericGrad, Rng, testSeed, unravel } from '../../util';

beforeAll(async () => {
  await init();
});

/** Total order torch.sort uses: NaN above everything; -0 equals 0. */
function cmpValues(a: number, b: number): number {
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Stable reference sort of each row of a row-major [rows, n] array. */
function sortRowsRef(x: ArrayLike<number>, rows: number, n: number, descending: boolean, k = n) {
  const values: number[] = [];
  const indices: number[] = [];
  for (let r = 0; r < rows; r++) {
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => (descending ? -1 : 1) * cmpValues(x[r * n + a]!, x[r * n + b]!) || a - b);
    for (const i of order.slice(0, k)) {
      values.push(x[r * n + i]!);
      indices.push(i);
    }
  }
  return { values, indices };
}

/** Values with many ties: integers in [0, distinct) scaled, as f32. */
function tiedValues(rng: Rng, count: number, distinct: number): Float32Array {
  return Float32Array.from({ length: count }, () => (rng.int(0, distinct) - distinct / 2) * 0.5);
}

async function expectSorted(t: Tensor, x: Float32Array, rows: number, n: number, descending: boolean, what: string) {
  const { values, indices } = sort(t, -1, descending);
  const ref = sortRowsRef(x, rows, n, descending);
  const gotIdx = await indices.data();
  const gotVal = await values.data();
  for (let i = 0; i < ref.indices.length; i++) {
    if (gotIdx[i] !== ref.indices[i] || !Object.is(gotVal[i], Math.fround(ref.values[i]!))) {
      throw new Error(`${what}: first mismatch at [${unravel(i, [rows, n])}]: got value ${gotVal[i]} index ${gotIdx[i]}, expected ${ref.values[i]} index ${ref.indices[i]}`);
    }
  }
  expect(gotIdx.length).toBe(rows * n);
}

describe('sort', () => {
  it('sorts rows of 1, 7, 1000 and 4099 elements stably, ascending and descending (many ties)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (const [rows, n] of [
      [5, 1],
      [3, 7],
      [2, 1000],
      [2, 4099],
    ] as const) {
      const x = tiedValues(rng, rows * n, Math.max(2, Math.floor(n / 8)));
      const t = fromArray(x, [rows, n]);
      for (const descending of [false, true]) {
        await expectSorted(t, x, rows, n, descending, `sort [${rows}, ${n}] ${descending ? 'desc' : 'asc'} (seed ${seed})`);
      }
    }
  });

  it('sorts a row of ~100k elements (global bitonic merges)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 100_003;
    const x = Float32Array.from({ length: n }, () => (rng.next() < 0.3 ? rng.int(0, 50) : rng.normal(0, 1e3)));
    await expectSorted(fromArray(x, [1, n]), x, 1, n, false, `sort [1, ${n}] (seed ${seed})`);
  });

  it('sorts i32 and orders NaN last (first descending) with -0 tying 0', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xi = Int32Array.from({ length: 2 * 37 }, () => rng.int(-(2 ** 31), 2 ** 31 - 1) >> (rng.int(0, 2) * 28));
    const si = sort(fromArray(xi, [2, 37], 'i32'), -1, true);
    const ri = sortRowsRef(xi, 2, 37, true);
    expect(Array.from(await si.values.data())).toEqual(ri.values);
    expect(Array.from(await si.indices.data())).toEqual(ri.indices);

    const special = Float32Array.from([NaN, 0, -0, -Infinity, 3, NaN, Infinity, -0, 1, 0]);
    const t = fromArray(special, [1, special.length]);
    await expectSorted(t, special, 1, special.length, false, 'NaN/-0 ascending');
    await expectSorted(t, special, 1, special.length, true, 'NaN/-0 descending');
  });

  it('sorts along dim 0 of a permuted input and scatters the gradient back', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    // base [5, 9] (distinct values so the reference is differentiable); x = base^T is [9, 5];
    // sorting x along dim 0 sorts each row of base.
    const rows = 5;
    const n = 9;
    const base = Float64Array.from(Float32Array.from(rng.uniformArray(rows * n, -3, 3)));
    const tb = fromArray(base, [rows, n]);
    tb.requiresGrad = true;
    const x = permute(tb, [1, 0]);
    expect(x.isContiguous()).toBe(false);
    const { values, indices } = sort(x, 0, true);
    expect(values.shape).toEqual([n, rows]);
    const ref = sortRowsRef(base, rows, n, true);
    const tr = (a: ArrayLike<number>) => Array.from({ length: rows * n }, (_, i) => a[(i % rows) * n + Math.floor(i / rows)]!);
    expect(Array.from(await indices.data())).toEqual(tr(ref.indices));
    expectClose(await values.data(), tr(ref.values), { atol: 0, rtol: 0, what: `sort dim 0 values (seed ${seed})` });

    const w = Float64Array.from(rng.uniformArray(rows * n, -1, 1)); // grad of values, [n, rows]
    backward(values, fromArray(w, [n, rows]));
    const loss = (v: Float64Array) => {
      const s = sortRowsRef(v, rows, n, true).values;
      return tr(s).reduce((acc, y, i) => acc + y * w[i]!, 0);
    };
    const fd = numericGrad(loss, Float64Array.from(base));
    const gRef = new Float64Array(rows * n);
    const wt = Array.from({ length: rows * n }, (_, i) => w[(i % n) * rows + Math.floor(i / n)]!); // w as [rows, n]
    for (let i = 0; i < gRef.length; i++) gRef[Math.floor(i / n) * n + ref.indices[i]!] = wt[i]!;
    expectClose(fd, gRef, { atol: 1e-6, what: `sort reference grad vs finite differences (seed ${seed})` });
    expectClose(await tb.grad!.data(), gRef, { atol: 1e-6, what: `sort grad (seed ${seed})` });
  });

  it('argsort returns the stable permutation', async () => {
    const x = fromArray([2, 1, 2, 1, 0], [5]);
    expect(Array.from(await argsort(x).data())).toEqual([4, 1, 3, 0, 2]);
    expect(Array.from(await argsort(x, 0, true).data())).toEqual([0, 2, 1, 3, 4]);
  });
});

describe('topk', () => {
  it('returns the k largest/smallest with lowest index first among ties, forward and backward', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [3, 41, 2];
    const n = 41;
    const k = 6;
    const x = tiedValues(rng, 3 * n * 2, 9);
    for (const largest of [true, false]) {
      const what = `topk ${largest ? 'largest' : 'smallest'} (seed ${seed})`;
      const tx = fromArray(x, shape);
      tx.requiresGrad = true;
      const { values, indices } = topk(tx, k, 1, largest);
      expect(values.shape).toEqual([3, k, 2]);
      // reference on rows (b, :, c)
      const rowsX: number[] = [];
      for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) for (let i = 0; i < n; i++) rowsX.push(x[(b * n + i) * 2 + c]!);
      const ref = sortRowsRef(rowsX, 6, n, largest, k);
      const at = (a: ArrayLike<number>, b: number, j: number, c: number) => a[(b * k + j) * 2 + c]!;
      const gotV = await values.data();
      const gotI = await indices.data();
      for (let b = 0; b < 3; b++)
        for (let c = 0; c < 2; c++)
          for (let j = 0; j < k; j++) {
            const r = (b * 2 + c) * k + j;
            if (at(gotI, b, j, c) !== ref.indices[r] || at(gotV, b, j, c) !== ref.values[r]) {
              throw new Error(`${what}: mismatch at [${b}, ${j}, ${c}]: got ${at(gotV, b, j, c)}@${at(gotI, b, j, c)}, expected ${ref.values[r]}@${ref.indices[r]}`);
            }
          }
      const w = Float32Array.from(rng.uniformArray(3 * k * 2, -1, 1));
      backward(values, fromArray(w, [3, k, 2]));
      const gRef = new Float64Array(x.length);
      for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) for (let j = 0; j < k; j++) gRef[(b * n + at(gotI, b, j, c)) * 2 + c] = at(w, b, j, c);
      expectClose(await tx.grad!.data(), gRef, { atol: 0, rtol: 0, what: `${what}: grad` });
    }
  });

  it('rejects k out of range', () => {
    expect(() => topk(fromArray([1, 2, 3], [3]), 4)).toThrow(/k must be an integer in \[0, 3\]/);
  });

  it('frees its temporaries: repeated topk + backward inside scope() keeps live tensors flat', async () => {
    const x = fromArray(Float32Array.from({ length: 300 * 4 }, (_, i) => Math.sin(i * 1.7)), [300, 4]);
    x.requiresGrad = true;
    const step = () =>
      scope(() => {
        const { values } = topk(x, 17, 0, false); // along dim 0: exercises the transposes
        backward(values, fromArray(new Float32Array(17 * 4).fill(1), [17, 4]));
      });
    step();
    x.grad!.dispose();
    x.grad = null;
    await x.data(); // submit, so that the uniform arena is not counted as live
    const before = memory();
    for (let r = 0; r < 5; r++) {
      step();
      x.grad!.dispose();
      x.grad = null;
    }
    await x.data();
    const after = memory();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBytes).toBe(before.liveBytes);
  });
});
