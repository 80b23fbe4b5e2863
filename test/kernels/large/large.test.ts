// Tensors larger than one storage binding (kernels/large.ts): with the binding limit lowered by
// `rt().setBindingLimitForTests`, small tensors take the split paths (binding windows over blocks of
// leading dims). Each op is checked against a float64 host reference and against the same op run
// with the device's limit (one binding per operand), forward and backward.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as cg from '../../../engine';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../../engine/ops/conv';
import { type ConvAlgo } from '../../../kernels/conv/chooser';
import { convGeometry } from '../../../kernels/conv/geometry';
import { conv2dGradRef, conv2dRef, convOutShape, opt, type Shape4 } from '../../../kernels/conv/reference';
import { refNorm, refNormBackward } from '../../../kernels/norm/reference';
import { Rng, expectClose } from '../../util';

beforeAll(async () => {
  await cg.init();
});

afterEach(() => {
  cg.rt().setBindingLimitForTests(undefined);
});

/** Run `fn` with the storage binding limit lowered to `bytes`. */
async function withLimit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  cg.rt().setBindingLimitForTests(bytes);
  try {
    return await fn();
  } finally {
    cg.rt().setBindingLimitForTests(undefined);
  }
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

describe('binding windows', () => {
  it('the runtime refuses a binding over the (lowered) limit', async () => {
    const x = cg.fromArray(new Float32Array(4096), [4096]);
    const big = new Float32Array(4096);
    await withLimit(4096, async () => {
      // One binding of 16 KiB: the chunked map binds windows of at most 4 KiB each.
      const y = cg.mul(x, 2);
      expect(Array.from(await y.data())).toEqual(Array.from(big));
      // A raw dispatch of the whole buffer is refused with a clear message.
      const rt = cg.rt();
      const def = { key: 'large-test-copy', code: '@group(0) @binding(0) var<storage, read_write> a: array<f32>;\n@compute @workgroup_size(1) fn main() { a[0] = 1.0; }', bindings: ['rw' as const] };
      expect(() => rt.dispatch(def, [x.buffer], undefined, 1)).toThrow(/storage binding limit/);
    });
  });
});

describe('elementwise and copies over the binding limit', () => {
  it('broadcast binary op, permuted copy, cat, fills and RNG match the unsplit results', async () => {
    const rng = new Rng(7);
    const as = [3, 5, 37, 41];
    const bs = [5, 1, 41];
    const ah = f32(rng.uniformArray(prod(as), -1, 1));
    const bh = f32(rng.uniformArray(prod(bs), -1, 1));
    const a = cg.fromArray(ah, as);
    const b = cg.fromArray(bh, bs);
    const ref = new Float64Array(ah.length);
    for (let i = 0; i < ah.length; i++) {
      const w = i % 41;
      const c = Math.floor(i / (37 * 41)) % 5;
      ref[i] = ah[i]! * bh[c * 41 + w]!;
    }
    const full = {
      mul: await cg.mul(a, b).data(),
      perm: await cg.contiguous(cg.permute(a, [0, 2, 1, 3])).data(),
      cat: await cg.cat([a, cg.mul(a, 3)], 1).data(),
      arange: await cg.arange(0, 30001, 1, 'i32').data(),
      rand: await cg.rand([30001], 5).data(),
    };
    for (const limit of [4096, 8192, 65536]) {
      await withLimit(limit, async () => {
        const mul = await cg.mul(a, b).data();
        expectClose(mul, ref, { atol: 1e-6, what: `mul (limit ${limit})`, shape: as });
        expect(Array.from(mul)).toEqual(Array.from(full.mul));
        expect(Array.from(await cg.contiguous(cg.permute(a, [0, 2, 1, 3])).data())).toEqual(Array.from(full.perm));
        expect(Array.from(await cg.cat([a, cg.mul(a, 3)], 1).data())).toEqual(Array.from(full.cat));
        expect(Array.from(await cg.arange(0, 30001, 1, 'i32').data())).toEqual(Array.from(full.arange));
        expect(Array.from(await cg.rand([30001], 5).data())).toEqual(Array.from(full.rand));
      });
    }
  });

  it('autograd through a broadcast product and a cat (backward of elementwise, slices, sums)', async () => {
    const rng = new Rng(8);
    const as = [4, 6, 23, 29];
    const ah = f32(rng.uniformArray(prod(as), -1, 1));
    const run = async () => {
      const a = cg.fromArray(ah, as);
      a.requiresGrad = true;
      const y = cg.cat([cg.mul(a, a), cg.relu(a)], 1);
      const g = cg.fromArray(new Float32Array(prod(y.shape)).fill(1), y.shape);
      cg.backward(y, g);
      return a.grad!.data();
    };
    const want = await run();
    const got = await withLimit(8192, run);
    expect(Array.from(got)).toEqual(Array.from(want));
    const ref = ah.map((v) => 2 * v + (v > 0 ? 1 : 0));
    expectClose(got, ref, { atol: 1e-6, what: 'grad of cat([a*a, relu(a)])' });
  });
});

describe('conv over the binding limit: blocks of images', () => {
  const xs: Shape4 = [5, 3, 17, 19];
  const ws: Shape4 = [4, 3, 3, 3];
  const o = opt(1, 1, 1);
  const rng = new Rng(11);
  const ys = convOutShape(xs, ws, o);
  const xh = f32(rng.uniformArray(prod(xs), -1, 1));
  const wh = f32(rng.uniformArray(prod(ws), -1, 1));
  const bh = f32(rng.uniformArray(ws[0], -1, 1));
  const gh = f32(rng.uniformArray(prod(ys), -1, 1));
  const yRef = conv2dRef(xh, xs, wh, ws, bh, o).map((v) => Math.max(v, 0));
  const gRef = conv2dGradRef(xh, xs, wh, ws, gh, o);
  const tol = { atol: 1e-4, rtol: 1e-4 };

  for (const algo of ['auto', 'direct', 'packed-gemm'] as ConvAlgo[]) {
    it(`forward, dgrad, wgrad and the backward pair (${algo}) match the reference and the unsplit run`, async () => {
      const geo = convGeometry('test', xs, ws, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
      const x = cg.fromArray(xh, xs);
      const w = cg.fromArray(wh, ws);
      const b = cg.fromArray(bh, [4]);
      const dy = cg.fromArray(gh, ys);
      const run = async () => {
        const [gx, gw] = conv2dBackwardRaw(geo, dy, x, w, true, true, algo);
        return {
          y: await conv2dForwardRaw(geo, x, w, b, true, algo).data(),
          dx: await conv2dDgradRaw(geo, dy, w, algo).data(),
          dw: await conv2dWgradRaw(geo, dy, x, algo).data(),
          gx: await gx!.data(),
          gw: await gw!.data(),
        };
      };
      const want = await run();
      // 16 KiB: blocks of 3 and 2 images; 8 KiB: one image per block.
      for (const limit of [16384, 8192]) {
        const got = await withLimit(limit, run);
        const what = (t: string) => `${t} (${algo}, limit ${limit})`;
        expectClose(got.y, yRef, { ...tol, what: what('y'), shape: ys });
        expectClose(got.dx, gRef.gx, { ...tol, what: what('dx'), shape: xs });
        expectClose(got.gx, gRef.gx, { ...tol, what: what('dx (pair)'), shape: xs });
        expectClose(got.dw, gRef.gw, { ...tol, what: what('dw'), shape: ws });
        expectClose(got.gw, gRef.gw, { ...tol, what: what('dw (pair)'), shape: ws });
        expectClose(got.y, want.y, { atol: 1e-5, what: what('y vs unsplit') });
        expectClose(got.dx, want.dx, { atol: 1e-5, what: what('dx vs unsplit') });
        expectClose(got.dw, want.dw, { atol: 1e-4, what: what('dw vs unsplit') });
      }
    });
  }

  it('conv2d with autograd (strided input: the contiguous copy is split too)', async () => {
    const run = async () => {
      const x = cg.permute(cg.fromArray(xh, [xs[0], xs[2], xs[1], xs[3]]), [0, 2, 1, 3]); // values differ from xh's layout: fine, same both runs
      x.requiresGrad = true;
      const w = cg.fromArray(wh, ws);
      w.requiresGrad = true;
      const y = cg.conv2d(x, w, null, { padding: 1 });
      cg.backward(y, cg.fromArray(gh, ys));
      return { y: await y.data(), gx: await x.grad!.data(), gw: await w.grad!.data() };
    };
    const want = await run();
    const got = await withLimit(8192, run);
    expectClose(got.y, want.y, { atol: 1e-5, what: 'y' });
    expectClose(got.gx, want.gx, { atol: 1e-5, what: 'grad x' });
    expectClose(got.gw, want.gw, { atol: 1e-4, what: 'grad w' });
  });

  it('says so when one image is over the limit', async () => {
    const x = cg.fromArray(new Float32Array(2 * 16 * 16 * 16), [2, 16, 16, 16]);
    const w = cg.fromArray(new Float32Array(16 * 16), [16, 16, 1, 1]);
    await withLimit(8192, async () => {
      expect(() => cg.conv2d(x, w)).toThrow(/one image .* storage binding limit/);
    });
  });
});

describe('norms over the binding limit: blocks of images', () => {
  const xs = [5, 6, 13, 11];
  const [N, C] = [xs[0]!, xs[1]!];
  const hw = xs[2]! * xs[3]!;
  const rng = new Rng(21);
  const xh = f32(rng.uniformArray(prod(xs), -2, 3));
  const gh = f32(rng.uniformArray(prod(xs), -1, 1));
  const wh = f32(rng.uniformArray(C, 0.5, 1.5));
  const bh = f32(rng.uniformArray(C, -1, 1));
  const eps = 1e-5;

  type Norm = 'bn-train' | 'bn-eval' | 'gn' | 'frozen';
  const run = async (kind: Norm) => {
    const x = cg.fromArray(xh, xs);
    x.requiresGrad = true;
    const weight = cg.fromArray(wh, [C]);
    const bias = cg.fromArray(bh, [C]);
    weight.requiresGrad = kind !== 'frozen';
    bias.requiresGrad = kind !== 'frozen';
    const runningMean = cg.fromArray(new Float32Array(C).fill(0.25), [C]);
    const runningVar = cg.fromArray(new Float32Array(C).fill(2), [C]);
    const y =
      kind === 'gn'
        ? cg.groupNorm(x, 3, { weight, bias, eps })
        : kind === 'frozen'
          ? cg.frozenBatchNorm2d(x, { weight, bias, runningMean, runningVar, eps })
          : cg.batchNorm2d(x, { weight, bias, runningMean, runningVar, training: kind === 'bn-train', eps });
    cg.backward(y, cg.fromArray(gh, xs));
    return {
      y: await y.data(),
      dx: await x.grad!.data(),
      dw: kind === 'frozen' ? null : await weight.grad!.data(),
      db: kind === 'frozen' ? null : await bias.grad!.data(),
      rm: await runningMean.data(),
      rv: await runningVar.data(),
    };
  };

  for (const kind of ['bn-train', 'bn-eval', 'gn', 'frozen'] as Norm[]) {
    it(`${kind}: forward and backward match the reference and the unsplit run`, async () => {
      const want = await run(kind);
      // 8 KiB: blocks of 2, 2 and 1 images (3,432 bytes each).
      const got = await withLimit(8192, run.bind(null, kind));
      const tol = { atol: 2e-5, rtol: 1e-4 };
      expectClose(got.y, want.y, { ...tol, what: `${kind} y vs unsplit` });
      expectClose(got.dx, want.dx, { ...tol, what: `${kind} dx vs unsplit` });
      if (got.dw) expectClose(got.dw, want.dw!, { ...tol, what: `${kind} dw vs unsplit` });
      if (got.db) expectClose(got.db, want.db!, { ...tol, what: `${kind} db vs unsplit` });
      expectClose(got.rm, want.rm, { ...tol, what: `${kind} running mean vs unsplit` });
      expectClose(got.rv, want.rv, { ...tol, what: `${kind} running var vs unsplit` });
      if (kind === 'bn-train' || kind === 'gn') {
        const rows = kind === 'gn' ? N * 3 : C;
        const statOf = kind === 'gn' ? (n: number, c: number) => n * 3 + Math.floor(c / 2) : (_n: number, c: number) => c;
        const ref = refNorm(xh, [N, C, hw], rows, statOf, wh, bh, eps);
        const [dx, dw, db] = refNormBackward(xh, gh, [N, C, hw], rows, statOf, wh, eps);
        expectClose(got.y, ref.y, { ...tol, what: `${kind} y vs reference`, shape: xs });
        expectClose(got.dx, dx!, { ...tol, what: `${kind} dx vs reference`, shape: xs });
        expectClose(got.dw!, dw!, { atol: 1e-3, rtol: 1e-4, what: `${kind} dw vs reference` });
        expectClose(got.db!, db!, { atol: 1e-3, rtol: 1e-4, what: `${kind} db vs reference` });
      }
    });
  }
});

describe('reductions over the binding limit', () => {
  it('sum, mean, max, min over leading, middle, inner and all dims match the reference and the unsplit run', async () => {
    const xs = [5, 6, 13, 11];
    const rng = new Rng(31);
    const xh = f32(rng.uniformArray(prod(xs), -1, 1));
    const x = cg.fromArray(xh, xs);
    const xt = cg.permute(x, [1, 0, 3, 2]); // a strided view
    const cases: [string, () => cg.Tensor][] = [
      ['sum [0,2,3]', () => cg.sum(x, [0, 2, 3])],
      ['sum [3]', () => cg.sum(x, 3)],
      ['sum [1]', () => cg.sum(x, 1)],
      ['mean all', () => cg.mean(x)],
      ['max [1]', () => cg.max(x, 1)],
      ['min [0,3]', () => cg.min(x, [0, 3])],
      ['sum of a permuted view [1,2]', () => cg.sum(xt, [1, 2])],
      ['sum i32 [0,2]', () => cg.sum(cg.cast(cg.mul(x, 10), 'i32'), [0, 2])],
    ];
    const want: ArrayLike<number>[] = [];
    for (const [, f] of cases) want.push(await f().data());
    // The whole-tensor sum against float64.
    const total = xh.reduce((a, b) => a + b, 0);
    for (const limit of [4096, 8192]) {
      await withLimit(limit, async () => {
        for (let i = 0; i < cases.length; i++) {
          const [name, f] = cases[i]!;
          expectClose(await f().data(), want[i]!, { atol: 2e-5, rtol: 1e-5, what: `${name} (limit ${limit})` });
        }
        expectClose(await cg.sum(x).data(), [total], { atol: 1e-3, what: `sum all vs float64 (limit ${limit})` });
      });
    }
  });

  it('conv2d with a bias under autograd (the bias gradient is a big sum)', async () => {
    const rng = new Rng(32);
    const xs: Shape4 = [5, 3, 17, 19];
    const ws: Shape4 = [4, 3, 3, 3];
    const xh = f32(rng.uniformArray(prod(xs), -1, 1));
    const wh = f32(rng.uniformArray(prod(ws), -1, 1));
    const run = async () => {
      const x = cg.fromArray(xh, xs);
      const w = cg.fromArray(wh, ws);
      const b = cg.fromArray([0.1, -0.2, 0.3, 0], [4]);
      for (const t of [x, w, b]) t.requiresGrad = true;
      const y = cg.conv2d(x, w, b, { padding: 1, activation: 'relu' });
      cg.backward(cg.sum(cg.mul(y, y)));
      return [await y.data(), await x.grad!.data(), await w.grad!.data(), await b.grad!.data()];
    };
    const want = await run();
    const got = await withLimit(16384, run);
    ['y', 'grad x', 'grad w', 'grad b'].forEach((name, i) => expectClose(got[i]!, want[i]!, { atol: 1e-3, rtol: 1e-4, what: name }));
  });
});

describe('pooling and resampling over the binding limit: blocks of planes', () => {
  it('max/avg/adaptive/global pooling, nearest and bilinear resampling, forward and backward, match the unsplit run', async () => {
    const xs = [3, 4, 13, 11];
    const rng = new Rng(41);
    const xh = f32(rng.uniformArray(prod(xs), -1, 1));
    const ops: [string, (x: cg.Tensor) => cg.Tensor][] = [
      ['max_pool2d 3/2 pad 1', (x) => cg.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 })],
      ['avg_pool2d 2', (x) => cg.avgPool2d(x, { kernelSize: 2 })],
      ['adaptive_avg_pool2d 5x4', (x) => cg.adaptiveAvgPool2d(x, [5, 4])],
      ['global_avg_pool2d', (x) => cg.globalAvgPool2d(x)],
      ['upsample_nearest2d 2', (x) => cg.upsampleNearest2d(x, 2)],
      ['interpolate_bilinear 17x23', (x) => cg.interpolateBilinear(x, { size: [17, 23] })],
    ];
    const run = async (f: (x: cg.Tensor) => cg.Tensor) => {
      const x = cg.fromArray(xh, xs);
      x.requiresGrad = true;
      const y = f(x);
      cg.backward(cg.sum(cg.mul(y, y)));
      return [await y.data(), await x.grad!.data()];
    };
    for (const [name, f] of ops) {
      const want = await run(f);
      // 4 KiB: up to 6 planes of 13x11 per block (the upsampled planes: one).
      const got = await withLimit(4096, () => run(f));
      expectClose(got[0]!, want[0]!, { atol: 1e-6, what: `${name} y` });
      expectClose(got[1]!, want[1]!, { atol: 1e-5, what: `${name} grad x` });
    }
  });
});

describe('ROIAlign over the binding limit: blocks of images', () => {
  it('forward and feature gradient match the unsplit run (ROIs on every image, one on none)', async () => {
    const xs = [3, 8, 9, 10];
    const rng = new Rng(51);
    const xh = f32(rng.uniformArray(prod(xs), -1, 1));
    const rois: number[] = [];
    for (let k = 0; k < 7; k++) {
      const x0 = rng.uniform(0, 12);
      const y0 = rng.uniform(0, 10);
      rois.push(k === 6 ? 5 : k % 3, x0, y0, x0 + rng.uniform(1, 8), y0 + rng.uniform(1, 8));
    }
    const run = async () => {
      const x = cg.fromArray(xh, xs);
      x.requiresGrad = true;
      const y = cg.roiAlign(x, cg.fromArray(rois, [7, 5]), { outputSize: [3, 4], spatialScale: 0.5, samplingRatio: 0 });
      cg.backward(cg.sum(cg.mul(y, y)));
      return [await y.data(), await x.grad!.data()];
    };
    const want = await run();
    // 4 KiB: one image (2,880 bytes) per block.
    const got = await withLimit(4096, run);
    expectClose(got[0]!, want[0]!, { atol: 1e-6, what: 'roi_align y' });
    expectClose(got[1]!, want[1]!, { atol: 1e-6, what: 'roi_align grad x' });
    expect(Array.from(got[0]!.slice(6 * 8 * 12))).toEqual(new Array(8 * 12).fill(0)); // the ROI of image 5
  });
});
