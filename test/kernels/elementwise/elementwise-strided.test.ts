// The generic elementwise kernel (kernels/elementwise/map.ts) on arbitrary views: the host dim
// collapsing, then random odd shapes where every operand is broadcast in random positions and is a
// permuted, step-sliced (with offset) or expanded (stride-0) view, through every op class (raw
// expression using the linear index `i` and scalars, unary, scalar-parameter, binary, where,
// integer, cast) against float64, outputs written into strided views (untouched elements kept),
// inner dims that cross the per-invocation run length, the vec4 path (its choice and its results,
// aligned and misaligned), and a broadcast backward.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import type { DType, Tensor } from '../../../engine';
import { broadcastStrides, type View } from '../../../runtime/shape';
import { collapseDims, vecPlan } from '../../../kernels/elementwise/map';
import { Rng, expectClose, testSeed } from '../../util';
import { numel, stridesOf, unravelIndex } from '../../engine/reference';

beforeAll(async () => {
  await cg.init();
});

/** A view over a flat host buffer: element idx is base[offset + sum idx[d] * strides[d]]. */
interface HView {
  base: Float64Array;
  shape: number[];
  strides: number[];
  offset: number;
}

const at = (v: HView, idx: readonly number[]) => v.base[v.offset + idx.reduce((s, x, d) => s + x * v.strides[d]!, 0)]!;

/** A random layout of `shape`: dims permuted in storage, stepped (1-3) with an offset, and (unless
 *  `noExpand`) some dims expanded with stride 0. */
function randomView(rng: Rng, shape: readonly number[], opts: { int?: boolean; noExpand?: boolean; lo?: number; hi?: number } = {}): HView {
  const r = shape.length;
  const perm = shape.map((_, d) => d);
  if (rng.uniform() < 0.5) for (let d = r - 1; d > 0; d--) { const e = rng.int(0, d + 1); [perm[d], perm[e]] = [perm[e]!, perm[d]!]; }
  const steps = shape.map(() => (rng.uniform() < 0.5 ? 1 : rng.int(2, 4)));
  const expanded = shape.map((n) => !opts.noExpand && n > 1 && rng.uniform() < 0.2);
  // Storage dims in permuted order; an expanded dim takes no storage.
  const storeShape = perm.map((d) => (expanded[d] ? 1 : shape[d]! * steps[d]!));
  const st = stridesOf(storeShape);
  const strides = new Array<number>(r);
  perm.forEach((d, k) => (strides[d] = expanded[d] ? 0 : st[k]! * steps[d]!));
  const offset = rng.int(0, 4);
  const len = offset + numel(storeShape) + 1;
  const base = new Float64Array(len);
  for (let i = 0; i < len; i++) base[i] = opts.int ? rng.int(-50, 50) : Math.fround(rng.uniform(opts.lo ?? -1, opts.hi ?? 1));
  return { base, shape: [...shape], strides, offset };
}

function toGpu(v: HView, dtype: DType = 'f32'): Tensor {
  const flat = cg.fromArray(v.base, [v.base.length], dtype);
  const t = flat.viewAs(v.shape, v.strides, v.offset);
  flat.dispose();
  return t;
}

/** An input shape that broadcasts to `out`: some dims set to 1, maybe leading dims dropped. */
function broadcastable(rng: Rng, out: readonly number[]): number[] {
  const s = out.map((n) => (rng.uniform() < 0.3 ? 1 : n));
  return s.slice(rng.uniform() < 0.3 ? rng.int(0, s.length + 1) : 0);
}
const srcIndex = (idx: readonly number[], shape: readonly number[]) => shape.map((n, d) => (n === 1 ? 0 : idx[idx.length - shape.length + d]!));

/** Random odd output shape, rank 1-5; the inner dim sometimes crosses the 32-output run. */
function randomShape(rng: Rng): number[] {
  const r = rng.int(1, 6);
  const s = Array.from({ length: r }, () => rng.int(1, 6));
  if (rng.uniform() < 0.4) s[r - 1] = rng.int(30, 72);
  return s;
}

/** out[i] = f(inputs at i) on the host, the inputs broadcast to `shape`. */
function refMap(shape: readonly number[], inputs: HView[], f: (v: number[], i: number) => number): Float64Array {
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravelIndex(i, shape);
    out[i] = f(inputs.map((v) => at(v, srcIndex(idx, v.shape))), i);
  }
  return out;
}

describe('collapseDims', () => {
  it('merges dims contiguous in every operand and drops size-1 dims', () => {
    // SAG-Mask attention: x [296,128,14,14] dense, attention [296,1,14,14] broadcast over dim 1.
    const sam = collapseDims([296, 128, 14, 14], [stridesOf([296, 128, 14, 14]), stridesOf([296, 128, 14, 14]), [196, 0, 14, 1]]);
    expect(sam).toEqual({ shape: [296, 128, 196], strides: [[25088, 196, 1], [25088, 196, 1], [196, 0, 1]] });
    // Per-channel scale: [2,128,64,64] * [1,128,1,1].
    const ch = collapseDims([2, 128, 64, 64], [stridesOf([2, 128, 64, 64]), [0, 1, 0, 0]]);
    expect(ch).toEqual({ shape: [2, 128, 4096], strides: [[524288, 4096, 1], [0, 1, 0]] });
    // Dense with a broadcast scalar: rank 1.
    expect(collapseDims([3, 1, 5, 7], [stridesOf([3, 1, 5, 7]), [0, 0, 0, 0]])).toEqual({ shape: [105], strides: [[1], [0]] });
    // All size 1: one element.
    expect(collapseDims([1, 1], [[1, 1], [0, 0]])).toEqual({ shape: [1], strides: [[0], [0]] });
    // A transposed operand keeps both dims.
    expect(collapseDims([4, 6], [[6, 1], [1, 4]])).toEqual({ shape: [4, 6], strides: [[6, 1], [1, 4]] });
  });
});

describe('elementwise on strided and broadcast views', () => {
  it('raw 3-input expression with scalars and the linear index i, random views', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let c = 0; c < 24; c++) {
      const shape = randomShape(rng);
      const views = [0, 1, 2].map(() => randomView(rng, broadcastable(rng, shape)));
      const ts = views.map((v) => toGpu(v));
      const [s0, s1] = [0.75, 1e-3];
      const y = cg.mapRaw('strided_test_xyz', 'x * y - z * s0 + f32(i) * s1', ts, shape, 'f32', 'f32', [s0, s1]);
      const ref = refMap(shape, views, ([x, yv, z], i) => x! * yv! - z! * s0 + i * s1);
      const what = `seed ${seed} case ${c} out [${shape}] inputs ${views.map((v) => `[${v.shape}]/[${v.strides}]+${v.offset}`).join(' ')}`;
      expectClose(await y.data(), ref, { atol: 1e-5, rtol: 1e-5, what });
      for (const t of [...ts, y]) t.dispose();
    }
  });

  it('unary, scalar-parameter, binary and where ops, random views', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let c = 0; c < 12; c++) {
      const shape = randomShape(rng);
      const a = randomView(rng, shape, { lo: -2, hi: 2 });
      const b = randomView(rng, broadcastable(rng, shape), { lo: 0.5, hi: 2 });
      const cnd = randomView(rng, broadcastable(rng, shape));
      const [ta, tb, tc] = [toGpu(a), toGpu(b), toGpu(cnd)];
      const what = `seed ${seed} case ${c} [${shape}] a [${a.strides}]+${a.offset} b [${b.shape}]/[${b.strides}] c [${cnd.shape}]/[${cnd.strides}]`;
      const checks: [Tensor, Float64Array][] = [
        [cg.relu(ta), refMap(shape, [a], ([x]) => Math.max(x!, 0))],
        [cg.sigmoid(ta), refMap(shape, [a], ([x]) => 1 / (1 + Math.exp(-x!)))],
        [cg.mulScalar(ta, -1.5), refMap(shape, [a], ([x]) => x! * -1.5)],
        [cg.clamp(ta, -0.5, 0.8), refMap(shape, [a], ([x]) => Math.min(Math.max(x!, -0.5), 0.8))],
        [cg.mul(ta, tb), refMap(shape, [a, b], ([x, y]) => x! * y!)],
        [cg.div(tb, ta), refMap(shape, [b, a], ([x, y]) => x! / y!)],
        [cg.maximum(tb, ta), refMap(shape, [b, a], ([x, y]) => Math.max(x!, y!))],
      ];
      const cond = cg.gt(tc, 0);
      checks.push([cg.where(cond, ta, tb), refMap(shape, [cnd, a, b], ([k, x, y]) => (k! > 0 ? x! : y!))]);
      for (const [t, ref] of checks) {
        expect(t.shape).toEqual(shape);
        expectClose(await t.data(), ref, { atol: 1e-6, rtol: 1e-5, what });
        t.dispose();
      }
      for (const t of [ta, tb, tc, cond]) t.dispose();
    }
  });

  it('integer ops and casts on strided views are exact', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let c = 0; c < 8; c++) {
      const shape = randomShape(rng);
      const a = randomView(rng, shape, { int: true });
      const b = randomView(rng, broadcastable(rng, shape), { int: true });
      const [ta, tb] = [toGpu(a, 'i32'), toGpu(b, 'i32')];
      const what = `seed ${seed} case ${c} [${shape}]`;
      const sum = cg.add(ta, tb);
      expect(sum.dtype).toBe('i32');
      expect(Array.from(await sum.data())).toEqual(Array.from(refMap(shape, [a, b], ([x, y]) => x! + y!)));
      const f = cg.cast(ta, 'f32');
      expect(Array.from(await f.data()), what).toEqual(Array.from(refMap(shape, [a], ([x]) => x!)));
      const bool = cg.cast(cg.expand(tb, shape), 'bool');
      expect(Array.from(await bool.data()), what).toEqual(Array.from(refMap(shape, [b], ([x]) => (x !== 0 ? 1 : 0))));
      for (const t of [ta, tb, sum, f, bool]) t.dispose();
    }
  });

  it('writes into strided output views and leaves the other elements alone', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let c = 0; c < 10; c++) {
      const shape = randomShape(rng);
      const o = randomView(rng, shape, { noExpand: true });
      o.base.fill(-777);
      const a = randomView(rng, shape);
      const b = randomView(rng, broadcastable(rng, shape));
      const flat = cg.fromArray(o.base, [o.base.length]);
      const outView = flat.viewAs(o.shape, o.strides, o.offset);
      const [ta, tb] = [toGpu(a), toGpu(b)];
      cg.mapInto('strided_test_into', 'x - 2.0 * y + f32(i)', [ta, tb], outView, 'f32');
      const expected = Float64Array.from(o.base);
      const vals = refMap(shape, [a, b], ([x, y], i) => x! - 2 * y! + i);
      vals.forEach((v, i) => (expected[o.offset + unravelIndex(i, shape).reduce((s, x, d) => s + x * o.strides[d]!, 0)] = v));
      expectClose(await flat.data(), expected, { atol: 1e-5, rtol: 1e-6, what: `seed ${seed} case ${c} out [${shape}]/[${o.strides}]+${o.offset}` });
      for (const t of [flat, outView, ta, tb]) t.dispose();
    }
  });

  it('many workgroups and runs: SAG-Mask-style broadcast at a small size, transposed copy', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    // [7,33,9,11] * [7,1,9,11]: inner 99 (runs of 32, 32, 32, 3) over 231 rows, > 1 workgroup.
    const x = randomView(rng, [7, 33, 9, 11], { noExpand: true });
    const att = randomView(rng, [7, 1, 9, 11], { noExpand: true });
    const [tx, ta] = [toGpu(x), toGpu(att)];
    const y = cg.mul(tx, ta);
    expectClose(await y.data(), refMap([7, 33, 9, 11], [x, att], ([p, q]) => p! * q!), { atol: 1e-6, rtol: 1e-6, what: `seed ${seed}` });
    // A transposed dense tensor made contiguous: each run strides through the input.
    const base: HView = { base: Float64Array.from(rng.uniformArray(37 * 301).map(Math.fround)), shape: [37, 301], strides: [301, 1], offset: 0 };
    const tb = toGpu(base);
    const tt = cg.contiguous(cg.transpose(tb, 0, 1));
    expectClose(await tt.data(), refMap([301, 37], [{ ...base, shape: [301, 37], strides: [1, 301] }], ([v]) => v!), { atol: 0, rtol: 0, what: `seed ${seed}` });
    for (const t of [tx, ta, y, tb, tt]) t.dispose();
  });

  it('broadcast multiply backward on strided views matches the reference gradient', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [3, 5, 4, 37];
    const a = randomView(rng, shape, { noExpand: true });
    const b = randomView(rng, [3, 1, 4, 37], { noExpand: true });
    const g = randomView(rng, shape);
    const [ta, tb, tg] = [toGpu(a), toGpu(b), toGpu(g)];
    ta.requiresGrad = true;
    tb.requiresGrad = true;
    const y = cg.mul(ta, tb);
    cg.backward(y, tg);
    const gaRef = refMap(shape, [g, b], ([gv, bv]) => gv! * bv!);
    const full = refMap(shape, [g, a], ([gv, av]) => gv! * av!);
    const gbRef = new Float64Array(numel([3, 1, 4, 37]));
    full.forEach((v, i) => {
      const [n, , h, w] = unravelIndex(i, shape);
      gbRef[(n! * 4 + h!) * 37 + w!]! += v;
    });
    expectClose(await ta.grad!.data(), gaRef, { atol: 1e-6, rtol: 1e-5, what: `seed ${seed} grad a` });
    expectClose(await tb.grad!.data(), gbRef, { atol: 1e-5, rtol: 1e-5, what: `seed ${seed} grad b` });
    for (const t of [ta, tb, tg, y, ta.grad!, tb.grad!]) t.dispose();
  });
});

describe('vec4 path', () => {
  /** The plan launchMap would use for writing `out` from `inputs`. */
  const planOf = (out: Tensor, inputs: Tensor[]) => {
    const c = collapseDims(out.shape, [out.strides, ...inputs.map((v) => broadcastStrides(v, out.shape))]);
    return vecPlan([out, ...inputs] as View[], c.shape, c.strides);
  };

  it('is chosen only for aligned rows with inner stride 1 or 0, and gives the same results', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [6, 5, 12];
    for (const [xOff, outCol, expectVec] of [[4, 4, true], [2, 4, false], [4, 2, false], [0, 0, true]] as const) {
      // x dense at element offset xOff; y one value per [*,5,*] row (inner stride 0); z a scalar.
      const x: HView = { base: new Float64Array(xOff + 360).map(() => Math.fround(rng.uniform(-1, 1))), shape, strides: stridesOf(shape), offset: xOff };
      const y: HView = { base: Float64Array.from([0.5, -1, 2, 0.25, 3].map(Math.fround)), shape: [5, 1], strides: [1, 1], offset: 0 };
      const z: HView = { base: Float64Array.of(Math.fround(0.3)), shape: [], strides: [], offset: 0 };
      // Output: columns outCol..outCol+12 of a [30, 16] buffer of sentinels (outer stride 16).
      const o: HView = { base: new Float64Array(30 * 16).fill(-777), shape, strides: [80, 16, 1], offset: outCol };
      const [tx, ty, tz] = [toGpu(x), toGpu(y), toGpu(z)];
      const flat = cg.fromArray(o.base, [o.base.length]);
      const tout = flat.viewAs(o.shape, o.strides, o.offset);
      expect(planOf(tout, [tx, ty, tz]) !== null, `xOff ${xOff} outCol ${outCol}`).toBe(expectVec);
      cg.mapInto('vec_test', 'x * y + z + f32(i) * s0', [tx, ty, tz], tout, 'f32', [1e-3]);
      const expected = Float64Array.from(o.base);
      refMap(shape, [x, y, z], ([a, b, c], i) => a! * b! + c! + i * 1e-3).forEach((v, i) => {
        const [n, h, w] = unravelIndex(i, shape);
        expected[outCol + n! * 80 + h! * 16 + w!] = v;
      });
      expectClose(await flat.data(), expected, { atol: 1e-5, rtol: 1e-6, what: `seed ${seed} xOff ${xOff} outCol ${outCol}` });
      for (const t of [tx, ty, tz, flat, tout]) t.dispose();
    }
  });

  it('integer and bool outputs, a row broadcast over rows, a misaligned outer stride', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const a: HView = { base: Float64Array.from({ length: 24 }, () => rng.int(-9, 9)), shape: [3, 8], strides: [8, 1], offset: 0 };
    const b: HView = { base: Float64Array.from({ length: 8 }, () => rng.int(-9, 9)), shape: [8], strides: [1], offset: 0 };
    const [ta, tb] = [toGpu(a, 'i32'), toGpu(b, 'i32')];
    const sum = cg.add(ta, tb);
    expect(planOf(sum, [ta, tb])).toEqual({ broadcast: [false, false] });
    expect(Array.from(await sum.data())).toEqual(Array.from(refMap([3, 8], [a, b], ([x, y]) => x! + y!)));
    const cmp = cg.gt(ta, tb);
    expect(cmp.dtype).toBe('bool');
    expect(Array.from(await cmp.data())).toEqual(Array.from(refMap([3, 8], [a, b], ([x, y]) => (x! > y! ? 1 : 0))));
    // Columns 0..8 of a [5,10] f32 buffer: outer stride 10 is not 16-byte aligned, scalar path.
    const w: HView = { base: Float64Array.from({ length: 50 }, () => Math.fround(rng.uniform(-1, 1))), shape: [5, 8], strides: [10, 1], offset: 0 };
    const tw = toGpu(w);
    const r = cg.relu(tw);
    expect(planOf(r, [tw])).toBeNull();
    expectClose(await r.data(), refMap([5, 8], [w], ([v]) => Math.max(v!, 0)), { atol: 0, rtol: 0, what: `seed ${seed}` });
    for (const t of [ta, tb, sum, cmp, tw, r]) t.dispose();
  });
});
