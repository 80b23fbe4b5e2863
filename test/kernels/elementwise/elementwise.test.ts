// Every unary and binary op of kernels/elementwise/table.ts against a float64 reference: forward
// and backward (random upstream gradient), contiguous and non-contiguous (transposed, strided with
// offset) inputs, broadcasting on one and both sides, number operands, integer dtypes, and
// where / cast / logicalNot. Each reference derivative is itself checked by finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import type { Tensor } from '../../../engine';
import { UNARY_OPS, BINARY_OPS } from '../../../kernels/elementwise/table';
import { BINARY, type BinaryCase, UNARY } from './reference-ops';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { download, type Host, host, type Layout, mapHost, randHost, randIntHost, sumToShapeHost, upload } from '../../engine/reference';

beforeAll(async () => {
  await cg.init();
});


const LAYOUTS: Layout[] = ['contiguous', 'transposed', 'strided'];

describe('unary ops', () => {
  const names = Object.keys(UNARY_OPS) as (keyof typeof UNARY_OPS)[];
  names.forEach((name, k) => {
    const c = UNARY[name];
    it(`${name}: forward${c.df ? ' and backward' : ''} vs float64, contiguous and ${LAYOUTS[1 + (k % 2)]}`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const what = `${name} (seed ${seed})`;
      const lo = c.lo ?? -2;
      const hi = c.hi ?? 2;
      if (c.df) {
        // The reference derivative matches finite differences of the reference forward.
        const pts = rng.uniformArray(16, lo + 0.05, hi - 0.05);
        const fd = numericGrad((x) => x.reduce((s, v) => s + c.f(v), 0), pts);
        expectClose(Array.from(pts, c.df), fd, { atol: 1e-5, rtol: 1e-5, what: `${what} reference derivative` });
      }
      for (const layout of ['contiguous', LAYOUTS[1 + (k % 2)]!] as Layout[]) {
        await cg.scopeAsync(async () => {
          const shape = [3, 4 + rng.int(0, 3), 5 + rng.int(0, 4)];
          const x = randHost(rng, shape, lo, hi);
          const xt = upload(x, layout, { requiresGrad: !!c.df });
          const y = c.run(xt);
          expect(y.shape).toEqual(shape);
          expectClose(await download(y), x.data.map(c.f), { atol: c.atol ?? 1e-5, rtol: 1e-4, what: `${what} forward ${layout}`, shape });
          if (!c.df) return;
          const g = randHost(rng, shape);
          cg.backward(y, upload(g));
          const expected = mapHost([x, g], (xv, gv) => gv * c.df!(xv));
          expectClose(await download(xt.grad!), expected.data, { atol: c.atol ?? 1e-5, rtol: 1e-4, what: `${what} grad ${layout}`, shape });
        });
      }
    });
  });

  it('round breaks ties to even; floor/ceil/sign on exact values', async () => {
    const x = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3, -3, 0];
    expect(await cg.round(cg.fromArray(x)).toArray()).toEqual([0, 2, 2, -0, -2, -2, 3, -3, 0]);
    expect(await cg.floor(cg.fromArray(x)).toArray()).toEqual(x.map(Math.floor));
    expect(await cg.ceil(cg.fromArray(x)).toArray()).toEqual(x.map(Math.ceil));
    expect(await cg.sign(cg.fromArray(x)).toArray()).toEqual(x.map(Math.sign));
  });

  it('powScalar follows PyTorch for negative bases: integral exponent ok, fractional NaN', async () => {
    const x = cg.fromArray([-2, -1.5, 3]);
    // WGSL pow is exp2(y * log2(x)): a few ulps off, hence the tolerance.
    expectClose(await cg.powScalar(x, 3).toArray(), [-8, -3.375, 27], { what: 'pow(x, 3)' });
    expectClose(await cg.powScalar(x, 2).toArray(), [4, 2.25, 9], { what: 'pow(x, 2)' });
    const frac = await cg.powScalar(x, 0.5).toArray();
    expect(Number.isNaN(frac[0])).toBe(true);
    expect(frac[2]).toBeCloseTo(Math.sqrt(3), 6);
  });

  it('integer unary ops compute exactly in i32; u32 neg/sign are rejected clearly', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = randIntHost(rng, [5, 7], -1000, 1000);
    const xt = upload(x, 'transposed', { dtype: 'i32' });
    for (const [name, f, ref] of [
      ['neg', cg.neg, (v: number) => -v],
      ['abs', cg.abs, Math.abs],
      ['square', cg.square, (v: number) => v * v],
      ['sign', cg.sign, Math.sign],
    ] as const) {
      const y = f(xt);
      expect(y.dtype, name).toBe('i32');
      expect(await y.toArray(), `${name} (seed ${seed})`).toEqual(Array.from(x.data, (v) => ref(v) + 0));
    }
    const u = cg.fromArray([0, 3, 7], [3], 'u32');
    expect(await cg.abs(u).toArray()).toEqual([0, 3, 7]);
    expect(await cg.square(u).toArray()).toEqual([0, 9, 49]);
    expect(() => cg.neg(u)).toThrow(/neg: not defined for u32/);
    expect(() => cg.sign(u)).toThrow(/sign: not defined for u32/);
    expect(() => cg.exp(xt)).toThrow(/exp: needs a float tensor, got i32/);
  });

  it('ops without a derivative (floor) stop the gradient', () => {
    const x = cg.fromArray([0.5, 1.5]);
    x.requiresGrad = true;
    expect(cg.floor(x).requiresGrad).toBe(false);
  });
});


/** Random operand values; comparisons and logical ops get small integers so ties and zeros occur. */
function operand(rng: Rng, c: BinaryCase, shape: number[]): Host {
  if (c.bool) return randIntHost(rng, shape, -2, 3);
  return randHost(rng, shape, c.lo ?? -2, c.hi ?? 2);
}

describe('binary ops', () => {
  const names = Object.keys(BINARY_OPS) as (keyof typeof BINARY_OPS)[];
  // [a shape, a layout, b shape, b layout]: same shape strided, one-sided broadcast of a
  // non-contiguous operand, and broadcasting on both sides.
  const CASES: [number[], Layout, number[], Layout][] = [
    [[4, 7], 'strided', [4, 7], 'transposed'],
    [[5, 6], 'transposed', [6], 'strided'],
    [[4, 1, 5], 'contiguous', [3, 1], 'contiguous'],
  ];
  for (const name of names) {
    const c = BINARY[name];
    it(`${name}: forward${c.gx ? ' and backward' : ''} vs float64 with broadcasting and strided operands`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const what = `${name} (seed ${seed})`;
      if (c.gx) {
        const lo = (c.lo ?? -2) + 0.05;
        const hi = (c.hi ?? 2) - 0.05;
        const xs = rng.uniformArray(8, lo, hi);
        const ys = rng.uniformArray(8, lo, hi);
        const xy = new Float64Array([...xs, ...ys]);
        const fd = numericGrad((v) => xs.reduce((s, _, i) => s + c.f(v[i]!, v[8 + i]!), 0), xy);
        const ref = [...Array.from(xs, (x, i) => c.gx!(x, ys[i]!)), ...Array.from(xs, (x, i) => c.gy!(x, ys[i]!))];
        expectClose(ref, fd, { atol: 1e-5, rtol: 1e-5, what: `${what} reference derivatives` });
      }
      for (const [sa, la, sb, lb] of CASES) {
        await cg.scopeAsync(async () => {
          const a = operand(rng, c, sa);
          const b = operand(rng, c, sb);
          const at = upload(a, la, { requiresGrad: !!c.gx });
          const bt = upload(b, lb, { requiresGrad: !!c.gx });
          const y = c.run(at, bt);
          const ref = mapHost([a, b], c.f);
          const tag = `${what} [${sa}] ${la} op [${sb}] ${lb}`;
          expect(y.shape, tag).toEqual(ref.shape);
          expect(y.dtype, tag).toBe(c.bool ? 'bool' : 'f32');
          expectClose(await download(y), ref.data, { what: `${tag} forward`, shape: ref.shape });
          if (!c.gx) return;
          const g = randHost(rng, ref.shape);
          cg.backward(y, upload(g));
          const ga = sumToShapeHost(mapHost([a, b, g], (x, yv, gv) => gv * c.gx!(x, yv)), sa);
          const gb = sumToShapeHost(mapHost([a, b, g], (x, yv, gv) => gv * c.gy!(x, yv)), sb);
          expectClose(await download(at.grad!), ga.data, { what: `${tag} grad a`, shape: sa });
          expectClose(await download(bt.grad!), gb.data, { what: `${tag} grad b`, shape: sb });
        });
      }
    });
  }

  it('maximum/minimum split the gradient equally on ties', async () => {
    const a = cg.fromArray([1, 2, 3, 4]);
    const b = cg.fromArray([1, 5, 3, 0]);
    a.requiresGrad = true;
    b.requiresGrad = true;
    cg.backward(cg.sum(cg.add(cg.maximum(a, b), cg.minimum(a, b))));
    expect(await a.grad!.toArray()).toEqual([1, 1, 1, 1]);
    const a2 = cg.fromArray([1, 2, 3]);
    const b2 = cg.fromArray([1, 5, 0]);
    a2.requiresGrad = true;
    b2.requiresGrad = true;
    cg.backward(cg.sum(cg.maximum(a2, b2)));
    expect(await a2.grad!.toArray()).toEqual([0.5, 0, 1]);
    expect(await b2.grad!.toArray()).toEqual([0.5, 1, 0]);
  });

  it('number operands on either side, with gradient to the tensor', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const x = randHost(rng, [3, 5], 0.5, 2);
    const xt = upload(x, 'transposed', { requiresGrad: true });
    const y = cg.add(cg.sub(2.5, xt), cg.div(xt, 4)); // 2.5 - x + x/4
    expectClose(await download(y), x.data.map((v) => 2.5 - v + v / 4), { what: `scalar ops (seed ${seed})` });
    cg.backward(cg.sum(cg.mul(y, cg.pow(xt, 2))));
    // d/dx [(2.5 - 0.75x) x^2] = 5x - 2.25x^2
    expectClose(await download(xt.grad!), x.data.map((v) => 5 * v - 2.25 * v * v), { what: `scalar grads (seed ${seed})`, rtol: 2e-4 });
    expect(() => cg.add(1 as unknown as Tensor, 2)).toThrow(/at least one operand must be a tensor/);
  });

  it('integer binary ops are exact in i32; i32 with a fractional number promotes to f32', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const a = randIntHost(rng, [4, 6], -50, 50);
    const b = randIntHost(rng, [6], -5, 5);
    const at = upload(a, 'strided', { dtype: 'i32' });
    const bt = upload(b, 'contiguous', { dtype: 'i32' });
    for (const name of Object.keys(BINARY_OPS) as (keyof typeof BINARY_OPS)[]) {
      const c = BINARY[name];
      if (!c.integer) continue;
      const y = c.run(at, bt);
      expect(y.dtype, name).toBe(c.bool ? 'bool' : 'i32');
      expect(await y.toArray(), `${name} (seed ${seed})`).toEqual(Array.from(mapHost([a, b], c.f).data, (v) => v + 0));
    }
    const half = cg.add(bt, 0.5);
    expect(half.dtype).toBe('f32');
    expect(await half.toArray()).toEqual(Array.from(b.data, (v) => v + 0.5));
    expect((cg.mul(bt, 3)).dtype).toBe('i32');
    const mixed = cg.mul(bt, cg.fromArray([0.5]));
    expect(mixed.dtype).toBe('f32');
    expect(await mixed.toArray()).toEqual(Array.from(b.data, (v) => v * 0.5));
    const u = cg.fromArray([1, 2, 4000000000], [3], 'u32');
    expect(await cg.add(u, cg.fromArray([1, 1, 1], [3], 'u32')).toArray()).toEqual([2, 3, 4000000001]);
    expect(() => cg.div(at, bt)).toThrow(/div: needs float tensors, got i32 and i32/);
  });

  it('NaN propagates like PyTorch through maximum/minimum/relu/relu6/clamp; NaN != NaN', async () => {
    const a = cg.fromArray([NaN, 1, NaN, 2]);
    const b = cg.fromArray([1, NaN, NaN, 3]);
    const isNan = async (t: Tensor) => (await t.toArray()).map(Number.isNaN);
    expect(await isNan(cg.maximum(a, b))).toEqual([true, true, true, false]);
    expect(await isNan(cg.minimum(a, b))).toEqual([true, true, true, false]);
    expect(await cg.maximum(a, b).toArray().then((v) => v[3])).toBe(3);
    expect(await isNan(cg.relu(a))).toEqual([true, false, true, false]);
    expect(await isNan(cg.relu6(a))).toEqual([true, false, true, false]);
    expect(await isNan(cg.clamp(a, 0, 1.5))).toEqual([true, false, true, false]);
    expect(await cg.ne(a, b).toArray()).toEqual([1, 1, 1, 1]);
    expect(await cg.eq(a, a).toArray()).toEqual([0, 1, 0, 1]);
    expect(await cg.ne(a, a).toArray()).toEqual([1, 0, 1, 0]);
  });

  it('rejects incompatible shapes with both shapes in the message', () => {
    const a = cg.zeros([3, 4]);
    const b = cg.zeros([5]);
    expect(() => cg.add(a, b)).toThrow(/shapes \[3,4\] and \[5\] cannot be broadcast together/);
  });
});

describe('where, cast, logicalNot', () => {
  it('where broadcasts cond, x, y and routes gradients by the condition', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const cond = randIntHost(rng, [4, 1, 6], 0, 2);
    const x = randHost(rng, [3, 6]);
    const y = randHost(rng, [4, 3, 1]);
    const ct = upload(cond, 'strided', { dtype: 'bool' });
    const xt = upload(x, 'transposed', { requiresGrad: true });
    const yt = upload(y, 'contiguous', { requiresGrad: true });
    const out = cg.where(ct, xt, yt);
    const ref = mapHost([cond, x, y], (c, a, b) => (c ? a : b));
    expect(out.shape).toEqual([4, 3, 6]);
    expectClose(await download(out), ref.data, { what: `where (seed ${seed})`, shape: ref.shape });
    const g = randHost(rng, ref.shape);
    cg.backward(out, upload(g));
    expectClose(await download(xt.grad!), sumToShapeHost(mapHost([cond, g], (c, gv) => (c ? gv : 0)), x.shape).data, { what: `where grad x (seed ${seed})` });
    expectClose(await download(yt.grad!), sumToShapeHost(mapHost([cond, g], (c, gv) => (c ? 0 : gv)), y.shape).data, { what: `where grad y (seed ${seed})` });
  });

  it('where with number branches keeps fractions (f32) and integer pairs (i32)', async () => {
    const c = cg.fromArray([1, 0, 1], [3], 'bool');
    const f = cg.where(c, 0.5, 2);
    expect(f.dtype).toBe('f32');
    expect(await f.toArray()).toEqual([0.5, 2, 0.5]);
    const i = cg.where(c, 1, 0);
    expect(i.dtype).toBe('i32');
    expect(await i.toArray()).toEqual([1, 0, 1]);
    const x = cg.fromArray([1, 2, 3]);
    x.requiresGrad = true;
    const w = cg.where(cg.gt(x, 1.5), x, -1);
    expect(await w.toArray()).toEqual([-1, 2, 3]);
    cg.backward(cg.sum(w));
    expect(await x.grad!.toArray()).toEqual([0, 1, 1]);
    const fc = cg.where(cg.fromArray([0, 2.5, -1]), 7, 9); // float condition: nonzero is true
    expect(await fc.toArray()).toEqual([9, 7, 7]);
  });

  it('cast between every dtype pair (truncation toward zero, bool = nonzero), gradient float->float', async () => {
    const vals = [-2.7, -0.5, 0, 0.4, 1.9, 3];
    const x = cg.fromArray(vals);
    const i = cg.cast(x, 'i32');
    expect(i.dtype).toBe('i32');
    expect(await i.toArray()).toEqual([-2, 0, 0, 0, 1, 3]);
    expect(await cg.cast(x, 'bool').toArray()).toEqual([1, 1, 0, 1, 1, 1]);
    expect(await cg.cast(i, 'f32').toArray()).toEqual([-2, 0, 0, 0, 1, 3]);
    expect(await cg.cast(i, 'bool').toArray()).toEqual([1, 0, 0, 0, 1, 1]);
    expect(await cg.cast(cg.cast(x, 'bool'), 'f32').toArray()).toEqual([1, 1, 0, 1, 1, 1]);
    expect(await cg.cast(cg.fromArray([3, 0, 9], [3], 'u32'), 'i32').toArray()).toEqual([3, 0, 9]);
    expect(cg.cast(x, 'f32')).toBe(x);
    // strided source
    const t = upload(host([1.5, -2.5, 3.5, 4.5, 5.5, -6.5], [2, 3]), 'transposed');
    expect(await cg.cast(t, 'i32').toArray()).toEqual([1, -2, 3, 4, 5, -6]);
    if (cg.rt().gpu.features.f16) {
      const xf = cg.fromArray([1, 2.5, -3]);
      xf.requiresGrad = true;
      const h = cg.cast(xf, 'f16');
      expect(h.dtype).toBe('f16');
      expect(await h.toArray()).toEqual([1, 2.5, -3]);
      cg.backward(cg.sum(cg.mul(h, cg.fromArray([2, 3, 4]))));
      expect(await xf.grad!.toArray()).toEqual([2, 3, 4]);
    }
  });

  it('logicalNot on bool, i32 and f32 (strided)', async () => {
    expect(await cg.logicalNot(cg.fromArray([1, 0, 1], [3], 'bool')).toArray()).toEqual([0, 1, 0]);
    expect(await cg.logicalNot(cg.fromArray([5, 0, -1], [3], 'i32')).toArray()).toEqual([0, 1, 0]);
    const f = upload(host([0, 0.5, -2, 0], [2, 2]), 'strided');
    const n = cg.logicalNot(f);
    expect(n.dtype).toBe('bool');
    expect(await n.toArray()).toEqual([1, 0, 0, 1]);
  });
});
