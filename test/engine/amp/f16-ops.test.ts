// The ops autocast keeps in f16 storage (computed in f32): elementwise, FrozenBN, BatchNorm
// (training), GroupNorm, pooling and resampling, cat; forward and backward on odd sizes with
// non-contiguous (permuted) f16 inputs. Norms and elementwise against float64 references on the
// f16-rounded inputs; pooling against the f32 ops on the same values (which test/kernels/pool
// checks against float64); all at f16 tolerance (outputs rounded to 11 significant bits). Also the
// dtype rules (f16·f16 → f16, f16·f32 → f32, a number or 0-d f32 keeps f16, reductions give f32)
// and gradients arriving in their tensor's dtype.
import { beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { refNorm, refNormBackward } from '../../../kernels/norm/reference';
import { f16ToF32, f32ToF16 } from '../../../runtime/dtype';
import { Rng, expectClose, testSeed } from '../../util';

let f16 = false;
beforeAll(async () => {
  await cg.init();
  f16 = cg.rt().gpu.features.f16;
});

const TOL = { atol: 3e-3, rtol: 3e-3 };
const round = (a: ArrayLike<number>) => Float64Array.from(a, (v) => f16ToF32(f32ToF16(v)));

/** Random f16-representable values and an f16 [N, C, H, W] tensor of them stored as [N, H, C, W]
 *  (a permuted, non-contiguous view). */
function input(shape: [number, number, number, number], seed: number, dtype: 'f16' | 'f32' = 'f16') {
  const [N, C, H, W] = shape;
  const rng = new Rng(seed);
  const h = round(rng.uniformArray(N * C * H * W, -2, 2));
  const nhcw = new Float64Array(h.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) nhcw[((n * H + y) * C + c) * W + x] = h[((n * C + c) * H + y) * W + x]!;
  const t = cg.permute(cg.fromArray(nhcw, [N, H, C, W], dtype), [0, 2, 1, 3]);
  return { h, t };
}

/** y and dx = d(sum(y · g))/dx of `op` on a leaf copy of `x`. */
async function forwardBackward(op: (x: cg.Tensor) => cg.Tensor, x: cg.Tensor, g: Float64Array) {
  const leaf = x.detach();
  leaf.requiresGrad = true;
  const y = op(leaf);
  const gt = cg.fromArray(g, y.shape, y.dtype);
  cg.backward(cg.sum(cg.mul(y, gt)));
  return { y, dx: leaf.grad!, yh: await y.data(), dxh: await leaf.grad!.data() };
}

describe('f16 storage ops', () => {
  it('dtype rules as PyTorch', () => {
    if (!f16) return;
    const a = cg.cast(cg.fromArray([1, 2, 3]), 'f16');
    const b = cg.cast(cg.fromArray([4, 5, 6]), 'f16');
    expect(cg.add(a, b).dtype).toBe('f16');
    expect(cg.mul(a, cg.fromArray([1, 1, 1])).dtype).toBe('f32');
    expect(cg.mul(a, 2).dtype).toBe('f16');
    expect(cg.mul(a, cg.full([], 2)).dtype).toBe('f16');
    expect(cg.relu(a).dtype).toBe('f16');
    expect(cg.sigmoid(a).dtype).toBe('f16');
    expect(cg.sum(a).dtype).toBe('f32');
    expect(cg.cat([a, b]).dtype).toBe('f16');
  });

  it('elementwise: relu, sigmoid, add and broadcast mul against float64, gradients in f16', async () => {
    if (!f16) return;
    const seed = testSeed();
    const shape: [number, number, number, number] = [2, 3, 5, 7];
    const { h: xh, t: x } = input(shape, seed);
    const { h: wh } = input([1, 3, 1, 1], seed + 1);
    const w = cg.fromArray(wh, [1, 3, 1, 1], 'f16');
    const g = round(new Rng(seed + 2).uniformArray(xh.length, -1, 1));
    const hw = 35;
    const cases: [string, (t: cg.Tensor) => cg.Tensor, (v: number, c: number) => number, (v: number, c: number, gv: number) => number][] = [
      ['relu', (t) => cg.relu(t), (v) => Math.max(v, 0), (v, _c, gv) => (v > 0 ? gv : 0)],
      ['sigmoid', (t) => cg.sigmoid(t), (v) => 1 / (1 + Math.exp(-v)), (v, _c, gv) => { const s = 1 / (1 + Math.exp(-v)); return gv * s * (1 - s); }],
      ['add self', (t) => cg.add(t, t), (v) => 2 * v, (_v, _c, gv) => 2 * gv],
      ['mul by channel', (t) => cg.mul(t, w), (v, c) => v * wh[c]!, (_v, c, gv) => gv * wh[c]!],
    ];
    for (const [name, op, f, df] of cases) {
      const r = await forwardBackward(op, x, g);
      expect(r.y.dtype, name).toBe('f16');
      expect(r.dx.dtype, name).toBe('f16');
      const c = (i: number) => Math.floor(i / hw) % 3;
      expectClose(r.yh, Array.from(xh, (v, i) => f(v, c(i))), { ...TOL, what: `${name} forward (seed ${seed})` });
      expectClose(r.dxh, Array.from(xh, (v, i) => df(v, c(i), g[i]!)), { ...TOL, what: `${name} backward (seed ${seed})` });
    }
  });

  it('elementwise on contiguous f16 with inner size a multiple of 4 (vec4<f16> loads and stores), broadcast and offset', async () => {
    if (!f16) return;
    const rng = new Rng(testSeed());
    const ah = round(rng.uniformArray(2 * 3 * 8, -2, 2));
    const bh = round(rng.uniformArray(8, -2, 2));
    const a = cg.fromArray(ah, [2, 3, 8], 'f16');
    const b = cg.fromArray(bh, [8], 'f16');
    const y = cg.mul(cg.relu(a), b);
    expect(y.dtype).toBe('f16');
    expectClose(await y.data(), Array.from(ah, (v, i) => Math.max(v, 0) * bh[i % 8]!), { ...TOL, what: 'relu(a) * b' });
    // A view starting 4 elements in (8-byte aligned) and a copy of it.
    const tail = cg.narrow(cg.reshape(a, [48]), 0, 4, 40);
    expectClose(await cg.contiguous(cg.sigmoid(tail)).data(), Array.from(ah.subarray(4, 44), (v) => 1 / (1 + Math.exp(-v))), { ...TOL, what: 'sigmoid of an offset view' });
  });

  for (const kind of ['groupNorm', 'batchNorm', 'frozenBatchNorm'] as const) {
    it(`${kind}: f16 in and out, f32 statistics and affine, against float64`, async () => {
      if (!f16) return;
      const seed = testSeed();
      const [N, C, H, W] = [3, 6, 5, 3];
      const G = 3;
      const { h: xh, t: x } = input([N, C, H, W], seed);
      const rng = new Rng(seed + 1);
      const wh = Float64Array.from(Float32Array.from(rng.uniformArray(C, 0.5, 1.5)));
      const bh = Float64Array.from(Float32Array.from(rng.uniformArray(C, -0.5, 0.5)));
      const g = round(rng.uniformArray(xh.length, -1, 1));
      const weight = cg.fromArray(wh);
      const bias = cg.fromArray(bh);
      weight.requiresGrad = true;
      bias.requiresGrad = true;
      const eps = 1e-5;
      const hw = H * W;
      if (kind === 'frozenBatchNorm') {
        const mh = Float64Array.from(Float32Array.from(rng.uniformArray(C, -0.3, 0.3)));
        const vh = Float64Array.from(Float32Array.from(rng.uniformArray(C, 0.5, 2)));
        const p = { weight, bias, runningMean: cg.fromArray(mh), runningVar: cg.fromArray(vh) };
        const r = await forwardBackward((t) => cg.frozenBatchNorm2d(t, p, { relu: true }), x, g);
        expect([r.y.dtype, r.dx.dtype]).toEqual(['f16', 'f16']);
        const sc = (c: number) => wh[c]! / Math.sqrt(vh[c]! + eps);
        const yv = Array.from(xh, (v, i) => { const c = Math.floor(i / hw) % C; return v * sc(c) + bh[c]! - mh[c]! * sc(c); });
        expectClose(r.yh, yv.map((v) => Math.max(v, 0)), { ...TOL, what: `frozenBN forward (seed ${seed})` });
        expectClose(r.dxh, Array.from(xh, (_v, i) => (yv[i]! > 0 ? g[i]! * sc(Math.floor(i / hw) % C) : 0)), { ...TOL, what: `frozenBN backward (seed ${seed})` });
        return;
      }
      const bn = kind === 'batchNorm';
      const rows = bn ? C : N * G;
      const statOf = bn ? (_n: number, c: number) => c : (n: number, c: number) => n * G + Math.floor(c / (C / G));
      const op = bn
        ? (t: cg.Tensor) => cg.batchNorm2d(t, { weight, bias, training: true, eps })
        : (t: cg.Tensor) => cg.groupNorm(t, G, { weight, bias, eps });
      const r = await forwardBackward(op, x, g);
      expect([r.y.dtype, r.dx.dtype, weight.grad!.dtype]).toEqual(['f16', 'f16', 'f32']);
      const ref = refNorm(xh, [N, C, hw], rows, statOf, wh, bh, eps);
      const [dx, dw, db] = refNormBackward(xh, g, [N, C, hw], rows, statOf, wh, eps);
      expectClose(r.yh, ref.y, { ...TOL, what: `${kind} forward (seed ${seed})` });
      expectClose(r.dxh, dx!, { ...TOL, what: `${kind} grad x (seed ${seed})` });
      expectClose(await weight.grad!.data(), dw!, { atol: 1e-3 * N * hw, rtol: 3e-3, what: `${kind} grad w (seed ${seed})` });
      expectClose(await bias.grad!.data(), db!, { atol: 1e-3 * N * hw, rtol: 3e-3, what: `${kind} grad b (seed ${seed})` });
    });
  }

  const pools: [string, (t: cg.Tensor) => cg.Tensor][] = [
    ['maxPool2d 3x3 s2 p1 ceil', (t) => cg.maxPool2d(t, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true })],
    ['avgPool2d 2x2', (t) => cg.avgPool2d(t, { kernelSize: 2 })],
    ['adaptiveAvgPool2d 1x1 (eSE)', (t) => cg.adaptiveAvgPool2d(t, 1)],
    ['upsampleNearest2d x2 (FPN)', (t) => cg.upsampleNearest2d(t, 2)],
    ['interpolateBilinear 1.7x', (t) => cg.interpolateBilinear(t, { scaleFactor: 1.7 })],
    ['cat along channels with itself', (t) => cg.cat([t, cg.relu(t)], 1)],
  ];
  for (const [name, op] of pools) {
    it(`${name}: f16 equals the f32 op on the same values`, async () => {
      if (!f16) return;
      const seed = testSeed();
      const shape: [number, number, number, number] = [2, 3, 7, 9];
      const { h, t: x16 } = input(shape, seed, 'f16');
      const { t: x32 } = input(shape, seed, 'f32');
      const y32 = op(x32);
      const g = round(new Rng(seed + 3).uniformArray(y32.numel, -1, 1));
      const a = await forwardBackward(op, x16, g);
      const b = await forwardBackward(op, x32, g);
      expect([a.y.dtype, a.dx.dtype]).toEqual(['f16', 'f16']);
      expect(h.length).toBe(x16.numel);
      expectClose(a.yh, b.yh, { ...TOL, what: `${name} forward (seed ${seed})` });
      expectClose(a.dxh, b.dxh, { ...TOL, what: `${name} backward (seed ${seed})` });
    });
  }
});
