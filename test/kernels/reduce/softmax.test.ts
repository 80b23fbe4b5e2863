// softmax / logSoftmax: the row kernel vs float64 and vs the composed reference (softmaxReference),
// over the last dim and other dims, non-contiguous inputs, long rows (several tiles per thread),
// large logits (stability), forward and backward; reference gradients checked by finite
// differences.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';
import { download, type Host, type Layout, permuteHost, randHost, upload } from '../../engine/reference';

beforeAll(async () => {
  await cg.init();
});

type Kind = 'softmax' | 'logSoftmax';

/** Apply f to every 1-d fibre along `dim` of h. */
function alongDim(h: Host, dim: number, f: (row: number[]) => number[]): Host {
  const r = h.shape.length;
  const perm = [...h.shape.map((_, i) => i).filter((i) => i !== dim), dim];
  const inv = new Array<number>(r);
  perm.forEach((s, d) => (inv[s] = d));
  const p = permuteHost(h, perm);
  const len = h.shape[dim]!;
  for (let i = 0; i < p.data.length; i += len) p.data.set(f(Array.from(p.data.subarray(i, i + len))), i);
  return permuteHost(p, inv);
}

function softmaxRow(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function logSoftmaxRow(x: number[]): number[] {
  const m = Math.max(...x);
  const lse = m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
  return x.map((v) => v - lse);
}
/** Vector-Jacobian products of the row functions. */
function softmaxRowGrad(x: number[], g: number[]): number[] {
  const y = softmaxRow(x);
  const dot = y.reduce((a, v, i) => a + v * g[i]!, 0);
  return y.map((v, i) => v * (g[i]! - dot));
}
function logSoftmaxRowGrad(x: number[], g: number[]): number[] {
  const y = softmaxRow(x);
  const gs = g.reduce((a, b) => a + b, 0);
  return g.map((v, i) => v - y[i]! * gs);
}

const ROW = { softmax: softmaxRow, logSoftmax: logSoftmaxRow };
const ROW_GRAD = { softmax: softmaxRowGrad, logSoftmax: logSoftmaxRowGrad };
const FAST = { softmax: cg.softmax, logSoftmax: cg.logSoftmax };
const REF = { softmax: cg.softmaxReference, logSoftmax: cg.logSoftmaxReference };

describe('softmax / logSoftmax', () => {
  for (const kind of ['softmax', 'logSoftmax'] as Kind[]) {
    it(`${kind}: reference gradient matches finite differences`, () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const x = Array.from(rng.uniformArray(7, -3, 3));
      const g = Array.from(rng.uniformArray(7, -1, 1));
      const fd = numericGrad((v) => ROW[kind](Array.from(v)).reduce((a, y, i) => a + y * g[i]!, 0), Float64Array.from(x));
      expectClose(ROW_GRAD[kind](x, g), fd, { atol: 1e-7, rtol: 1e-6, what: `${kind} vjp (seed ${seed})` });
    });

    const CASES: [number[], number, Layout, number, number][] = [
      // shape, dim, layout, value range lo, hi
      [[5, 37], -1, 'contiguous', -4, 4],
      [[4, 6, 9], 1, 'transposed', -4, 4],
      [[3, 7, 5], 0, 'strided', -4, 4],
      [[6, 11], -1, 'transposed', -4, 4],
      [[2, 1000], 1, 'contiguous', -6, 6], // several elements per thread
      [[3, 17], 1, 'contiguous', 80, 120], // exp would overflow without the max shift
      [[4, 1], 1, 'contiguous', -1, 1], // single-element rows
    ];
    for (const [shape, dim, layout, lo, hi] of CASES) {
      it(`${kind} [${shape}] dim ${dim} ${layout} [${lo}, ${hi}): kernel vs float64 and vs composed reference, forward and backward`, async () => {
        const seed = testSeed();
        const rng = new Rng(seed);
        const what = `${kind} [${shape}] dim ${dim} ${layout} (seed ${seed})`;
        const d = dim < 0 ? dim + shape.length : dim;
        const x = randHost(rng, shape, lo, hi);
        const g = randHost(rng, shape);
        const xt = upload(x, layout, { requiresGrad: true });
        const y = FAST[kind](xt, dim);
        expect(y.shape).toEqual(shape);
        const yRef = alongDim(x, d, ROW[kind]);
        const yGpu = await download(y);
        expectClose(yGpu, yRef.data, { what: `${what} forward`, atol: 2e-6, rtol: 1e-5, shape });
        // The composed reference path agrees with the kernel.
        const xr = upload(x, 'contiguous', { requiresGrad: true });
        const yr = REF[kind](xr, dim);
        expectClose(yGpu, await download(yr), { what: `${what} kernel vs composed`, atol: 2e-6, rtol: 1e-5, shape });
        // backward: vector-Jacobian product per fibre
        cg.backward(y, upload(g));
        cg.backward(yr, upload(g));
        const gxRef = new Float64Array(x.data.length);
        {
          const r = shape.length;
          const perm = [...shape.map((_, i) => i).filter((i) => i !== d), d];
          const inv = new Array<number>(r);
          perm.forEach((s, k) => (inv[s] = k));
          const px = permuteHost(x, perm);
          const pg = permuteHost(g, perm);
          const len = shape[d]!;
          const out = new Float64Array(px.data.length);
          for (let i = 0; i < out.length; i += len) {
            out.set(ROW_GRAD[kind](Array.from(px.data.subarray(i, i + len)), Array.from(pg.data.subarray(i, i + len))), i);
          }
          gxRef.set(permuteHost({ data: out, shape: px.shape }, inv).data);
        }
        const gxGpu = await download(xt.grad!);
        expectClose(gxGpu, gxRef, { what: `${what} grad`, atol: 1e-5, rtol: 1e-4, shape });
        expectClose(gxGpu, await download(xr.grad!), { what: `${what} grad kernel vs composed`, atol: 1e-5, rtol: 1e-4, shape });
      });
    }
  }

  it('rows sum to one, -inf logits get probability 0, and bad input is rejected clearly', async () => {
    const x = cg.fromArray([0, -Infinity, 1, -Infinity, 2, 3], [2, 3]);
    const y = await cg.softmax(x).toArray();
    expectClose(y, [1 / (1 + Math.E), 0, Math.E / (1 + Math.E), 0, 1 / (1 + Math.E), Math.E / (1 + Math.E)], { what: 'masked softmax' });
    expect(() => cg.softmax(cg.fromArray([1, 2], [2], 'i32'))).toThrow(/softmax: needs an f32 tensor, got i32/);
    expect(() => cg.logSoftmax(cg.zeros([2, 3]), 2)).toThrow(/dimension 2 out of range for a 2-d tensor/);
    expect(() => cg.softmax(cg.full([], 1))).toThrow(/needs at least one dimension/);
  });
});
