// The GPU scan (against its plain reference, over three recursion levels), nonzero and
// maskedSelect against plain-JS references on odd, strided and broadcast shapes, and
// maskedSelect's gradient against finite differences of the reference.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, empty, fromArray, init, maskedSelect, nonzero, permute, rt } from '../../../engine';
import { exclusiveScanReference, launchExclusiveScan } from '../../../kernels/indexing/compact';
import { expectClose, numericGrad, Rng, testSeed, unravel } from '../../util';

beforeAll(async () => {
  await init();
});

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function nonzeroRef(x: ArrayLike<number>, shape: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i] !== 0) out.push(...unravel(i, shape));
  return out;
}

/** Row-major index into `shape` of coordinate c broadcast from the (right-aligned) `from` shape. */
function broadcastIndex(c: number[], from: number[]): number {
  const off = c.length - from.length;
  let i = 0;
  for (let d = 0; d < from.length; d++) i = i * from[d]! + (from[d] === 1 ? 0 : c[d + off]!);
  return i;
}

function maskedSelectRef(x: ArrayLike<number>, xs: number[], m: ArrayLike<number>, ms: number[], shape: number[]): { values: number[]; from: number[] } {
  const values: number[] = [];
  const from: number[] = [];
  for (let i = 0; i < numel(shape); i++) {
    const c = unravel(i, shape);
    if (m[broadcastIndex(c, ms)] === 0) continue;
    const j = broadcastIndex(c, xs);
    values.push(x[j]!);
    from.push(j);
  }
  return { values, from };
}

describe('exclusive scan', () => {
  it('matches the reference over three levels of block recursion', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const n = 1024 * 1024 + 3001;
    const flags = Uint32Array.from({ length: n }, () => (rng.next() < 0.4 ? 1 : 0));
    const f = fromArray(flags, [n], 'u32');
    const out = empty([n + 1], 'u32');
    launchExclusiveScan(f.buffer, f.offset, n, out.buffer, out.offset);
    const got = await out.data();
    const ref = exclusiveScanReference(flags);
    let bad = -1;
    for (let i = 0; i <= n && bad < 0; i++) if (got[i] !== ref[i]) bad = i;
    expect(bad, `scan (seed ${seed}): first mismatch at ${bad}: got ${got[bad]}, expected ${ref[bad]}`).toBe(-1);
    f.dispose();
    out.dispose();
  });
});

describe('nonzero', () => {
  it('returns row-major coordinates of a permuted float input (NaN counts, -0 does not)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const bs = [7, 3, 11]; // base; x = base.permute(2, 0, 1) is [11, 7, 3]
    const base = Float32Array.from({ length: numel(bs) }, () => {
      const r = rng.next();
      return r < 0.5 ? 0 : r < 0.55 ? -0 : r < 0.6 ? NaN : rng.uniform(-1, 1);
    });
    const xs = [11, 7, 3];
    const x = Array.from({ length: numel(xs) }, (_, i) => {
      const [a, b, c] = unravel(i, xs);
      return base[(b! * 3 + c!) * 11 + a!]!;
    });
    const t = permute(fromArray(base, bs), [2, 0, 1]);
    expect(t.isContiguous()).toBe(false);
    const nz = await nonzero(t);
    const ref = nonzeroRef(x.map((v) => (Number.isNaN(v) ? 1 : v)), xs);
    expect(nz.shape).toEqual([ref.length / 3, 3]);
    expect(nz.dtype).toBe('i32');
    expect(Array.from(await nz.data())).toEqual(ref);
  });

  it('handles bool and all-zero inputs', async () => {
    const b = await nonzero(fromArray([0, 1, 1, 0, 0, 1], [2, 3], 'bool'));
    expect(Array.from(await b.data())).toEqual([0, 1, 0, 2, 1, 2]);
    const z = await nonzero(fromArray(new Int32Array(13), [13], 'i32'));
    expect(z.shape).toEqual([0, 1]);
  });
});

describe('maskedSelect', () => {
  it('selects with broadcasting, forward and backward (gradient summed over broadcast dims)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const what = `maskedSelect (seed ${seed})`;
    const xs = [4, 1, 5];
    const ms = [3, 5];
    const shape = [4, 3, 5];
    const x = Float64Array.from(Float32Array.from(rng.uniformArray(numel(xs), -2, 2)));
    const m = Uint32Array.from({ length: numel(ms) }, () => (rng.next() < 0.45 ? 1 : 0));
    const tx = fromArray(x, xs);
    tx.requiresGrad = true;
    const out = await maskedSelect(tx, fromArray(m, ms, 'bool'));
    const ref = maskedSelectRef(x, xs, m, ms, shape);
    expect(out.shape).toEqual([ref.values.length]);
    expectClose(await out.data(), ref.values, { atol: 0, rtol: 0, what });

    const w = Float64Array.from(Float32Array.from(rng.uniformArray(ref.values.length, -1, 1)));
    backward(out, fromArray(w, [w.length]));
    const gRef = new Float64Array(x.length);
    ref.from.forEach((j, k) => (gRef[j] += w[k]!));
    const fd = numericGrad((v) => maskedSelectRef(v, xs, m, ms, shape).values.reduce((a, y, k) => a + y * w[k]!, 0), Float64Array.from(x));
    expectClose(fd, gRef, { atol: 1e-6, what: `${what}: reference grad vs finite differences` });
    expectClose(await tx.grad!.data(), gRef, { atol: 1e-6, what: `${what}: grad` });
  });

  it('selects i32 values from a strided input with a float mask', async () => {
    const t = permute(fromArray([1, 2, 3, 4, 5, 6], [2, 3], 'i32'), [1, 0]); // [[1,4],[2,5],[3,6]]
    const mask = fromArray([1, 0, 0, 2.5, -1, 0], [3, 2]);
    const out = await maskedSelect(t, mask);
    expect(Array.from(await out.data())).toEqual([1, 5, 3]);
    expect(rt().stats().readbacks).toBeGreaterThan(0);
  });
});
