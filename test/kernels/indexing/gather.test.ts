// gather / indexSelect / scatterAdd / indexAdd against float64 references on odd shapes, strided
// (permuted, sliced) inputs and indices, forward and backward; the reference gradients are checked
// by finite differences; scatter-adds are checked to be bit-for-bit deterministic.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, empty, fromArray, gather, indexAdd, indexSelect, init, permute, scatterAdd, slice, type Tensor } from '../../../engine';
import { launchIndexAdd, launchScatterAdd } from '../../../kernels/indexing/scatter';
import { expectClose, numericGrad, Rng, testSeed, unravel } from '../../util';

beforeAll(async () => {
  await init();
});

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function ravel(c: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + c[d]!;
  return i;
}

// ---- float64 references (row-major flat arrays) ----
function gatherRef(x: ArrayLike<number>, xs: number[], dim: number, idx: ArrayLike<number>, is: number[]): Float64Array {
  const out = new Float64Array(numel(is));
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, is);
    const t = idx[i]!;
    if (t < 0 || t >= xs[dim]!) continue;
    c[dim] = t;
    out[i] = x[ravel(c, xs)]!;
  }
  return out;
}
function scatterAddRef(x: ArrayLike<number>, xs: number[], dim: number, idx: ArrayLike<number>, is: number[], src: ArrayLike<number>, ss: number[]): Float64Array {
  const out = Float64Array.from(x);
  for (let i = 0; i < numel(is); i++) {
    const c = unravel(i, is);
    const v = src[ravel(c, ss)]!;
    const t = idx[i]!;
    if (t < 0 || t >= xs[dim]!) continue;
    c[dim] = t;
    out[ravel(c, xs)] += v;
  }
  return out;
}
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
/** Row-major values of a permuted array: y = x.permute(perm) materialised. */
function permuteRef(x: ArrayLike<number>, xs: number[], perm: number[]): Float64Array {
  const ys = perm.map((p) => xs[p]!);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, ys);
    const src = new Array<number>(xs.length);
    perm.forEach((p, k) => (src[p] = c[k]!));
    out[i] = x[ravel(src, xs)]!;
  }
  return out;
}
/** Values representable in f32, so copies can be compared exactly. */
const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
function randInts(rng: Rng, n: number, lo: number, hi: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(lo, hi));
}
function leaf(data: ArrayLike<number>, shape: number[]): Tensor {
  const t = fromArray(data, shape);
  t.requiresGrad = true;
  return t;
}

describe('gather', () => {
  it('matches the reference on a permuted input, forward and backward (repeated indices)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const what = `gather (seed ${seed})`;
    // base [3, 7, 5] permuted to x [5, 7, 3] (non-contiguous); gather along dim 1 (size 7)
    const bs = [3, 7, 5];
    const base = f32(rng.uniformArray(numel(bs), -2, 2));
    const xs = [5, 7, 3];
    const x = permuteRef(base, bs, [2, 1, 0]);
    const is = [4, 9, 2];
    const idx = randInts(rng, numel(is), 0, 7);
    const w = f32(rng.uniformArray(numel(is), -1, 1));

    const tb = leaf(base, bs);
    const tx = permute(tb, [2, 1, 0]);
    expect(tx.isContiguous()).toBe(false);
    const out = gather(tx, 1, fromArray(idx, is, 'i32'));
    expect(out.shape).toEqual(is);
    expectClose(await out.data(), gatherRef(x, xs, 1, idx, is), { atol: 0, rtol: 0, what, shape: is });

    backward(out, fromArray(w, is));
    // d/dx sum(w * gather(x)) = scatter_add(zeros, w); checked by finite differences first
    const gxRef = scatterAddRef(new Float64Array(x.length), xs, 1, idx, is, w, is);
    const fd = numericGrad((v) => dot(gatherRef(v, xs, 1, idx, is), w), Float64Array.from(x));
    expectClose(fd, gxRef, { atol: 1e-6, what: `${what}: reference grad vs finite differences` });
    const gbRef = permuteRef(gxRef, xs, [2, 1, 0]); // back to base layout
    expectClose(await tb.grad!.data(), gbRef, { atol: 1e-5, what: `${what}: grad`, shape: bs });
  });

  it('takes a strided index, gathers along the last dim and rejects bad shapes', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs = [6, 11];
    const x = f32(rng.uniformArray(numel(xs), -3, 3));
    const bigIs = [6, 10];
    const bigIdx = randInts(rng, numel(bigIs), 0, 11);
    const tIdx = slice(fromArray(bigIdx, bigIs, 'i32'), 1, 1, 10, 2); // [6, 5], stride 2
    const is = [6, 5];
    const idx = Int32Array.from({ length: 30 }, (_, i) => bigIdx[Math.floor(i / 5) * 10 + 1 + 2 * (i % 5)]!);
    const out = gather(fromArray(x, xs), -1, tIdx);
    expectClose(await out.data(), gatherRef(x, xs, 1, idx, is), { atol: 0, rtol: 0, what: `gather last dim (seed ${seed})` });
    expect(() => gather(fromArray(x, xs), 1, fromArray([0, 1], [2]))).toThrow(/i32/);
    expect(() => gather(fromArray(x, xs), 1, fromArray(new Int32Array(7), [7, 1], 'i32'))).toThrow(/exceeds input shape/);
    expect(() => gather(fromArray(x, xs), 1, fromArray(new Int32Array(2), [2], 'i32'))).toThrow(/same|match/);
  });

  it('yields 0 for out-of-range indices (no memory is read outside the input)', async () => {
    const x = fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
    const idx = fromArray([0, -1, 3, 2, 99, -7], [2, 3], 'i32');
    expect(Array.from(await gather(x, 1, idx).data())).toEqual([1, 0, 0, 6, 0, 0]);
  });
});

describe('indexSelect', () => {
  it('matches the reference along each dim with repeated indices, forward and backward', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs = [5, 4, 7];
    const x = f32(rng.uniformArray(numel(xs), -2, 2));
    for (const dim of [0, 2]) {
      const what = `indexSelect dim ${dim} (seed ${seed})`;
      const len = 9;
      const idx = randInts(rng, len, 0, xs[dim]!);
      const os = [...xs];
      os[dim] = len;
      // reference: gather with the index expanded over the other dims
      const full = new Int32Array(numel(os));
      for (let i = 0; i < full.length; i++) full[i] = idx[unravel(i, os)[dim]!]!;
      const tx = leaf(x, xs);
      const out = indexSelect(tx, dim, fromArray(idx, [len], 'i32'));
      expect(out.shape).toEqual(os);
      expectClose(await out.data(), gatherRef(x, xs, dim, full, os), { atol: 0, rtol: 0, what, shape: os });
      const w = f32(rng.uniformArray(numel(os), -1, 1));
      backward(out, fromArray(w, os));
      const gRef = scatterAddRef(new Float64Array(x.length), xs, dim, full, os, w, os);
      const fd = numericGrad((v) => dot(gatherRef(v, xs, dim, full, os), w), Float64Array.from(x));
      expectClose(fd, gRef, { atol: 1e-6, what: `${what}: reference grad vs finite differences` });
      expectClose(await tx.grad!.data(), gRef, { atol: 1e-5, what: `${what}: grad`, shape: xs });
    }
  });

  it('accepts a strided index view', async () => {
    const x = fromArray([10, 11, 12, 13, 14, 15], [3, 2]);
    const idx = slice(fromArray([2, 9, 0, 9, 2], [5], 'i32'), 0, 0, 5, 2); // [2, 0, 2]
    expect(Array.from(await indexSelect(x, 0, idx).data())).toEqual([14, 15, 10, 11, 14, 15]);
  });
});

describe('scatterAdd', () => {
  it('matches the reference with an index smaller than src and a permuted src, forward and backward', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const what = `scatterAdd (seed ${seed})`;
    const xs = [4, 6, 5];
    const x = f32(rng.uniformArray(numel(xs), -2, 2));
    const ss = [4, 9, 5]; // src [4, 9, 5] made as a permuted [5, 9, 4]
    const srcBaseShape = [5, 9, 4];
    const srcBase = f32(rng.uniformArray(numel(srcBaseShape), -2, 2));
    const src = permuteRef(srcBase, srcBaseShape, [2, 1, 0]);
    const is = [3, 8, 5];
    const idx = randInts(rng, numel(is), 0, 6);
    const dim = 1;

    const tx = leaf(x, xs);
    const tsb = leaf(srcBase, srcBaseShape);
    const out = scatterAdd(tx, dim, fromArray(idx, is, 'i32'), permute(tsb, [2, 1, 0]));
    const ref = scatterAddRef(x, xs, dim, idx, is, src, ss);
    expectClose(await out.data(), ref, { atol: 1e-5, what, shape: xs });

    const w = f32(rng.uniformArray(numel(xs), -1, 1));
    backward(out, fromArray(w, xs));
    expectClose(await tx.grad!.data(), w, { atol: 0, rtol: 0, what: `${what}: input grad` });
    // d/dsrc sum(w * out) = gather(w) at index positions, 0 elsewhere
    const gsRef = new Float64Array(src.length);
    const gathered = gatherRef(w, xs, dim, idx, is);
    for (let i = 0; i < gathered.length; i++) gsRef[ravel(unravel(i, is), ss)] = gathered[i]!;
    const fd = numericGrad((v) => dot(scatterAddRef(x, xs, dim, idx, is, v, ss), w), Float64Array.from(src));
    expectClose(fd, gsRef, { atol: 1e-6, what: `${what}: reference src grad vs finite differences` });
    expectClose(await tsb.grad!.data(), permuteRef(gsRef, ss, [2, 1, 0]), { atol: 1e-6, what: `${what}: src grad` });
  });

  it('is bit-for-bit deterministic under heavy collisions and skips out-of-range indices', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs = [3, 4];
    const ss = [3, 2000];
    const src = f32(rng.normalArray(numel(ss), 0, 100));
    const idx = randInts(rng, numel(ss), -1, 5); // -1 and 4 are out of range
    const x = f32(rng.uniformArray(numel(xs), -1, 1));
    const run = async () => scatterAdd(fromArray(x, xs), 1, fromArray(idx, ss, 'i32'), fromArray(src, ss)).data();
    const a = await run();
    const b = await run();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // the kernel's order is a sequential ascending loop: the float32 CPU loop gives the same bits
    const seq = Float32Array.from(x);
    const srcF = Float32Array.from(src);
    for (let i = 0; i < idx.length; i++) {
      const t = idx[i]!;
      if (t < 0 || t >= 4) continue;
      const r = Math.floor(i / 2000);
      seq[r * 4 + t] = Math.fround(seq[r * 4 + t]! + srcF[i]!);
    }
    expect(Array.from(a)).toEqual(Array.from(seq));
    expectClose(a, scatterAddRef(x, xs, 1, idx, ss, src, ss), { atol: 2e-2, rtol: 1e-4, what: `scatterAdd collisions (seed ${seed})` });
  });

  it('adds i32 values and rejects mismatched shapes', async () => {
    const out = scatterAdd(fromArray([1, 2, 3], [3], 'i32'), 0, fromArray([2, 2, 0], [3], 'i32'), fromArray([5, 6, 7], [3], 'i32'));
    expect(Array.from(await out.data())).toEqual([8, 2, 14]);
    expect(() => scatterAdd(fromArray([1, 2], [2]), 0, fromArray([0, 1, 1], [3], 'i32'), fromArray([1, 2], [2]))).toThrow(/exceeds src/);
  });
});

describe('indexAdd', () => {
  it('matches the reference along a middle dim, forward and backward', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const what = `indexAdd (seed ${seed})`;
    const xs = [3, 5, 4];
    const dim = 1;
    const len = 11;
    const ss = [3, len, 4];
    const x = f32(rng.uniformArray(numel(xs), -2, 2));
    const src = f32(rng.uniformArray(numel(ss), -2, 2));
    const idx = randInts(rng, len, 0, 5);
    const full = new Int32Array(numel(ss));
    for (let i = 0; i < full.length; i++) full[i] = idx[unravel(i, ss)[dim]!]!;

    const tx = leaf(x, xs);
    const ts = leaf(src, ss);
    const out = indexAdd(tx, dim, fromArray(idx, [len], 'i32'), ts);
    expectClose(await out.data(), scatterAddRef(x, xs, dim, full, ss, src, ss), { atol: 1e-5, what, shape: xs });

    const w = f32(rng.uniformArray(numel(xs), -1, 1));
    backward(out, fromArray(w, xs));
    expectClose(await tx.grad!.data(), w, { atol: 0, rtol: 0, what: `${what}: input grad` });
    const gsRef = gatherRef(w, xs, dim, full, ss);
    const fd = numericGrad((v) => dot(scatterAddRef(x, xs, dim, full, ss, v, ss), w), Float64Array.from(src));
    expectClose(fd, gsRef, { atol: 1e-6, what: `${what}: reference src grad vs finite differences` });
    expectClose(await ts.grad!.data(), gsRef, { atol: 1e-6, what: `${what}: src grad` });
    expect(() => indexAdd(tx, dim, fromArray(idx, [len], 'i32'), fromArray(src, [3, len * 4]))).toThrow(/src must have shape/);
  });

  it('hit-list kernel gives the same bits as the per-element loop (collisions, out-of-range, strided index)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs = [3, 6, 5];
    const dim = 1;
    const len = 700;
    const ss = [3, len, 5];
    const x = f32(rng.uniformArray(numel(xs), -1, 1));
    const src = f32(rng.normalArray(numel(ss), 0, 50));
    const rawIdx = randInts(rng, 2 * len, -2, 8); // -2, -1, 6, 7 are out of range
    const idxBase = fromArray(rawIdx, [2 * len], 'i32');
    const index = slice(idxBase, 0, 1, 2 * len, 2); // strided, length len
    const tx = fromArray(x, xs);
    const tsrc = fromArray(src, ss);
    const fast = empty(xs);
    launchIndexAdd(tx, dim, index, tsrc, fast);
    const loop = empty(xs);
    const expanded = { buffer: index.buffer, dtype: index.dtype, shape: ss, strides: [0, index.strides[0]!, 0], offset: index.offset };
    launchScatterAdd(tx, dim, expanded, tsrc, loop);
    const a = await fast.data();
    const b = await loop.data();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `hit lists vs loop (seed ${seed})`).toBe(true);
    const full = new Int32Array(numel(ss));
    for (let i = 0; i < full.length; i++) full[i] = rawIdx[1 + 2 * unravel(i, ss)[dim]!]!;
    expectClose(a, scatterAddRef(x, xs, dim, full, ss, src, ss), { atol: 1e-2, rtol: 1e-4, what: `indexAdd hit lists (seed ${seed})` });
  });
});
