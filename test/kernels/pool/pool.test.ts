// Pooling and resampling against float64 references, forward and backward (gradients of a random
// linear functional of the output), on odd shapes: max_pool2d incl. ceil_mode edge cases (the last
// window would start in the right padding) and ties (first max wins), avg_pool2d with and without
// count_include_pad, adaptive/global average pooling, nearest ×2/×(3,2), bilinear by size and by
// scale factor (up and down). The references' gradients are checked by finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, mul, sum, type Tensor } from '../../../engine';
import { adaptiveAvgPool2d, avgPool2d, globalAvgPool2d, interpolateBilinear, maxPool2d, poolOutSize, upsampleNearest2d } from '../../../engine/ops/pool';
import { Rng, expectClose, numericGrad, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

type S4 = [number, number, number, number];
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

// ---- float64 references ------------------------------------------------------------------------
// Linear ops are written as tap lists (y[yi] += w · x[xi]); forward and adjoint come from the same list.
type Taps = { yi: number; xi: number; w: number }[];
function applyTaps(taps: Taps, x: ArrayLike<number>, ny: number): Float64Array {
  const y = new Float64Array(ny);
  for (const t of taps) y[t.yi]! += t.w * x[t.xi]!;
  return y;
}
function adjointTaps(taps: Taps, g: ArrayLike<number>, nx: number): Float64Array {
  const gx = new Float64Array(nx);
  for (const t of taps) gx[t.xi]! += t.w * g[t.yi]!;
  return gx;
}

function planeTaps(xs: S4, OH: number, OW: number, perOut: (oh: number, ow: number) => [number, number, number][]): Taps {
  const [N, C, H, W] = xs;
  const taps: Taps = [];
  for (let pl = 0; pl < N * C; pl++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) for (const [ih, iw, w] of perOut(oh, ow)) taps.push({ yi: (pl * OH + oh) * OW + ow, xi: (pl * H + ih) * W + iw, w });
  return taps;
}

function avgTaps(xs: S4, k: number, s: number, p: number, ceil: boolean, includePad: boolean) {
  const [, , H, W] = xs;
  const OH = poolOutSize(H, k, s, p, ceil);
  const OW = poolOutSize(W, k, s, p, ceil);
  const taps = planeTaps(xs, OH, OW, (oh, ow) => {
    const h0 = oh * s - p, w0 = ow * s - p;
    const h1 = Math.min(h0 + k, H + p), w1 = Math.min(w0 + k, W + p);
    const pool = (h1 - h0) * (w1 - w0);
    const [a, b, c, d] = [Math.max(h0, 0), Math.max(w0, 0), Math.min(h1, H), Math.min(w1, W)];
    const div = includePad ? pool : (c - a) * (d - b);
    const out: [number, number, number][] = [];
    for (let ih = a; ih < c; ih++) for (let iw = b; iw < d; iw++) out.push([ih, iw, 1 / div]);
    return out;
  });
  return { taps, OH, OW };
}

function adaptiveTaps(xs: S4, OH: number, OW: number): Taps {
  const [, , H, W] = xs;
  return planeTaps(xs, OH, OW, (oh, ow) => {
    const [h0, h1] = [Math.floor((oh * H) / OH), Math.ceil(((oh + 1) * H) / OH)];
    const [w0, w1] = [Math.floor((ow * W) / OW), Math.ceil(((ow + 1) * W) / OW)];
    const out: [number, number, number][] = [];
    for (let ih = h0; ih < h1; ih++) for (let iw = w0; iw < w1; iw++) out.push([ih, iw, 1 / ((h1 - h0) * (w1 - w0))]);
    return out;
  });
}

function nearestTaps(xs: S4, sh: number, sw: number): Taps {
  return planeTaps(xs, xs[2] * sh, xs[3] * sw, (oh, ow) => [[Math.floor(oh / sh), Math.floor(ow / sw), 1]]);
}

/** PyTorch's align_corners=False linear weights along one axis: [[i0, w0], [i1, w1]]. */
function linAxis(ratio: number, dst: number, n: number): [number, number][] {
  const src = Math.max(ratio * (dst + 0.5) - 0.5, 0);
  const i0 = Math.floor(src);
  const i1 = i0 + (i0 < n - 1 ? 1 : 0);
  const l1 = Math.min(Math.max(src - i0, 0), 1);
  return [[i0, 1 - l1], [i1, l1]];
}
function bilinearTaps(xs: S4, OH: number, OW: number, rh: number, rw: number): Taps {
  return planeTaps(xs, OH, OW, (oh, ow) => {
    const out: [number, number, number][] = [];
    for (const [ih, wy] of linAxis(rh, oh, xs[2])) for (const [iw, wx] of linAxis(rw, ow, xs[3])) out.push([ih, iw, wy * wx]);
    return out;
  });
}

function maxPoolRef(x: ArrayLike<number>, xs: S4, k: number, s: number, p: number, ceil: boolean) {
  const [N, C, H, W] = xs;
  const OH = poolOutSize(H, k, s, p, ceil);
  const OW = poolOutSize(W, k, s, p, ceil);
  const y = new Float64Array(N * C * OH * OW);
  const arg = new Int32Array(y.length);
  for (let pl = 0; pl < N * C; pl++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        const h0 = Math.max(oh * s - p, 0), w0 = Math.max(ow * s - p, 0);
        const h1 = Math.min(oh * s - p + k, H), w1 = Math.min(ow * s - p + k, W);
        let best = -Infinity;
        let bi = h0 * W + w0;
        for (let ih = h0; ih < h1; ih++)
          for (let iw = w0; iw < w1; iw++) {
            const v = x[(pl * H + ih) * W + iw]!;
            if (v > best || Number.isNaN(v)) [best, bi] = [v, ih * W + iw];
          }
        const o = (pl * OH + oh) * OW + ow;
        y[o] = best;
        arg[o] = pl * H * W + bi;
      }
  return { y, arg, shape: [N, C, OH, OW] };
}

// ---- harness -------------------------------------------------------------------------------------

async function check(what: string, xs: S4, op: (x: Tensor) => Tensor, ref: (x: Float64Array) => { y: Float64Array; gx: (g: Float64Array) => Float64Array; shape: number[] }, xh?: Float64Array) {
  const seed = testSeed();
  const rng = new Rng(seed);
  const xv = xh ?? f32(rng.uniformArray(prod(xs), -2, 2));
  const r = ref(xv);
  const gh = f32(rng.uniformArray(r.y.length));
  const x = fromArray(xv, xs);
  x.requiresGrad = true;
  const y = op(x);
  expect(y.shape).toEqual(r.shape);
  backward(sum(mul(y, fromArray(gh, r.shape))));
  expectClose(await y.data(), r.y, { atol: 1e-5, rtol: 1e-5, what: `${what} forward (seed ${seed})`, shape: r.shape });
  expectClose(await x.grad!.data(), r.gx(gh), { atol: 1e-5, rtol: 1e-5, what: `${what} backward (seed ${seed})`, shape: xs });
}

const linear = (taps: Taps, xs: S4, shape: number[]) => (x: Float64Array) => ({
  y: applyTaps(taps, x, shape.length ? prod(shape) : taps.reduce((m, t) => Math.max(m, t.yi + 1), 0)),
  gx: (g: Float64Array) => adjointTaps(taps, g, prod(xs)),
  shape,
});

const maxRef = (xs: S4, k: number, s: number, p: number, ceil: boolean) => (x: Float64Array) => {
  const r = maxPoolRef(x, xs, k, s, p, ceil);
  return {
    y: r.y,
    shape: r.shape,
    gx: (g: Float64Array) => {
      const gx = new Float64Array(prod(xs));
      r.arg.forEach((a, o) => (gx[a]! += g[o]!));
      return gx;
    },
  };
};

describe('pool references', () => {
  it('reference gradients match finite differences', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const xs: S4 = [1, 2, 7, 6];
    const x = rng.uniformArray(prod(xs), -2, 2);
    const refs: [string, (x: Float64Array) => { y: Float64Array; gx: (g: Float64Array) => Float64Array }][] = [
      ['max k3 s2 ceil', maxRef(xs, 3, 2, 0, true)],
      ['max k2 s2 p1 ceil', maxRef(xs, 2, 2, 1, true)],
      ['avg k3 s2 p1 ceil', linear(avgTaps(xs, 3, 2, 1, true, true).taps, xs, [])],
      ['adaptive 3x4', linear(adaptiveTaps(xs, 3, 4), xs, [])],
      ['bilinear 11x4', linear(bilinearTaps(xs, 11, 4, 7 / 11, 6 / 4), xs, [])],
    ];
    for (const [name, ref] of refs) {
      const ny = ref(x).y.length;
      const g = rng.uniformArray(ny);
      const f = (xx: Float64Array) => ref(xx).y.reduce((s, v, i) => s + v * g[i]!, 0);
      expectClose(ref(x).gx(g), numericGrad(f, x), { atol: 1e-6, what: `${name} reference gradient (seed ${seed})` });
    }
  });

  it('ceil_mode output sizes follow PyTorch (last window starts inside input or left padding)', () => {
    expect(poolOutSize(10, 3, 2, 0, true)).toBe(5);
    expect(poolOutSize(10, 3, 2, 0, false)).toBe(4);
    expect(poolOutSize(5, 2, 2, 1, true)).toBe(3); // a 4th window would start at 5 = H, in the padding
    expect(poolOutSize(6, 3, 2, 1, true)).toBe(4);
    expect(poolOutSize(200, 3, 2, 0, true)).toBe(100); // VoVNet stage pooling
  });
});

describe('max_pool2d', () => {
  it('k3 s2 ceil_mode (VoVNet), odd sizes', () => check('max k3 s2 ceil', [2, 3, 10, 9], (x) => maxPool2d(x, { kernelSize: 3, stride: 2, ceilMode: true }), maxRef([2, 3, 10, 9], 3, 2, 0, true)));
  it('k2 s2 pad 1 ceil_mode where a last window would start in the right padding', () =>
    check('max k2 s2 p1 ceil', [1, 2, 5, 7], (x) => maxPool2d(x, { kernelSize: 2, stride: 2, padding: 1, ceilMode: true }), maxRef([1, 2, 5, 7], 2, 2, 1, true)));
  it('ties: gradient goes to the first maximum in scan order', async () => {
    const rng = new Rng(testSeed());
    const xs: S4 = [1, 3, 7, 8];
    const xh = Float64Array.from(rng.uniformArray(prod(xs), -1, 1), (v) => Math.round(v)); // many ties
    await check('max ties', xs, (x) => maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), maxRef(xs, 3, 2, 1, false), xh);
  });
});

describe('avg_pool2d and adaptive pooling', () => {
  const xs: S4 = [2, 3, 10, 7];
  for (const include of [true, false]) {
    it(`k3 s2 p1 ceil_mode, count_include_pad ${include}`, () => {
      const { taps, OH, OW } = avgTaps(xs, 3, 2, 1, true, include);
      return check('avg', xs, (x) => avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: include }), linear(taps, xs, [2, 3, OH, OW]));
    });
  }
  it('adaptive 10x7 → 4x3 and 3x5 (overlapping and growing bins)', async () => {
    await check('adaptive 4x3', xs, (x) => adaptiveAvgPool2d(x, [4, 3]), linear(adaptiveTaps(xs, 4, 3), xs, [2, 3, 4, 3]));
    await check('adaptive 3x5', [1, 2, 3, 4], (x) => adaptiveAvgPool2d(x, [3, 5]), linear(adaptiveTaps([1, 2, 3, 4], 3, 5), [1, 2, 3, 4], [1, 2, 3, 5]));
  });
  it('global average pool', () => check('global', xs, (x) => globalAvgPool2d(x), linear(adaptiveTaps(xs, 1, 1), xs, [2, 3, 1, 1])));
});

describe('resampling', () => {
  it('nearest ×2 (FPN) and ×(3, 2)', async () => {
    const xs: S4 = [2, 3, 5, 7];
    await check('nearest x2', xs, (x) => upsampleNearest2d(x, 2), linear(nearestTaps(xs, 2, 2), xs, [2, 3, 10, 14]));
    await check('nearest x(3,2)', xs, (x) => upsampleNearest2d(x, [3, 2]), linear(nearestTaps(xs, 3, 2), xs, [2, 3, 15, 14]));
  });
  it('bilinear by size (up in H, down in W)', () => {
    const xs: S4 = [2, 2, 5, 9];
    return check('bilinear size', xs, (x) => interpolateBilinear(x, { size: [13, 4] }), linear(bilinearTaps(xs, 13, 4, Math.fround(5 / 13), Math.fround(9 / 4)), xs, [2, 2, 13, 4]));
  });
  it('bilinear by scale factor 2 and 0.5 (ratio = 1/scale)', async () => {
    const xs: S4 = [1, 3, 7, 9];
    await check('bilinear x2', xs, (x) => interpolateBilinear(x, { scaleFactor: 2 }), linear(bilinearTaps(xs, 14, 18, 0.5, 0.5), xs, [1, 3, 14, 18]));
    await check('bilinear x0.5', xs, (x) => interpolateBilinear(x, { scaleFactor: 0.5 }), linear(bilinearTaps(xs, 3, 4, 2, 2), xs, [1, 3, 3, 4]));
  });
  it('rejects bad arguments with clear errors', () => {
    const x = fromArray(new Float32Array(2 * 3 * 4), [1, 2, 3, 4]);
    expect(() => maxPool2d(x, { kernelSize: 2, padding: 2 })).toThrow(/padding/);
    expect(() => upsampleNearest2d(x, 1.5)).toThrow(/integers/);
    expect(() => interpolateBilinear(x, {})).toThrow(/exactly one/);
    expect(() => maxPool2d(fromArray([1, 2, 3], [3]), { kernelSize: 2 })).toThrow(/4-d/);
  });
});
