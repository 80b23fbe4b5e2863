// ROIAlign (Detectron2 ROIAlignV2) against a float64 port of the reference CPU kernel, forward and
// backward (the reference backward scatters, the GPU one gathers), the reference gradient checked
// by finite differences, determinism of the GPU backward bit for bit, and torchvision parity.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, permute, roiAlign } from '../../../engine';
import { expectClose, numericGrad, Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

interface Geo {
  n: number;
  c: number;
  h: number;
  w: number;
  ph: number;
  pw: number;
  scale: number;
  sr: number;
  aligned: boolean;
}

/** Visit every (roi k, channel, bin, sample corner) with its weight: forward and backward share it. */
function visitSamples(rois: Float64Array, k: number, g: Geo, visit: (ph: number, pw: number, pos: number, weight: number, count: number) => void): void {
  const r = rois.subarray(k * 5, k * 5 + 5);
  const off = g.aligned ? 0.5 : 0;
  const sw = r[1]! * g.scale - off;
  const sh = r[2]! * g.scale - off;
  let rw = r[3]! * g.scale - off - sw;
  let rh = r[4]! * g.scale - off - sh;
  if (!g.aligned) {
    rw = Math.max(rw, 1);
    rh = Math.max(rh, 1);
  }
  const binH = rh / g.ph;
  const binW = rw / g.pw;
  const gh = g.sr > 0 ? g.sr : Math.max(Math.ceil(rh / g.ph), 0);
  const gw = g.sr > 0 ? g.sr : Math.max(Math.ceil(rw / g.pw), 0);
  const count = Math.max(gh * gw, 1);
  for (let ph = 0; ph < g.ph; ph++) for (let pw = 0; pw < g.pw; pw++) for (let iy = 0; iy < gh; iy++) {
    let y = sh + ph * binH + ((iy + 0.5) * binH) / gh;
    for (let ix = 0; ix < gw; ix++) {
      let x = sw + pw * binW + ((ix + 0.5) * binW) / gw;
      let yy = y;
      if (yy < -1 || yy > g.h || x < -1 || x > g.w) continue;
      if (yy <= 0) yy = 0;
      if (x <= 0) x = 0;
      let yl = Math.floor(yy);
      let xl = Math.floor(x);
      let yh: number;
      let xh: number;
      if (yl >= g.h - 1) {
        yh = yl = g.h - 1;
        yy = yl;
      } else yh = yl + 1;
      if (xl >= g.w - 1) {
        xh = xl = g.w - 1;
        x = xl;
      } else xh = xl + 1;
      const ly = yy - yl;
      const lx = x - xl;
      const hy = 1 - ly;
      const hx = 1 - lx;
      visit(ph, pw, yl * g.w + xl, hy * hx, count);
      visit(ph, pw, yl * g.w + xh, hy * lx, count);
      visit(ph, pw, yh * g.w + xl, ly * hx, count);
      visit(ph, pw, yh * g.w + xh, ly * lx, count);
    }
    void y;
  }
}

function refForward(feat: Float64Array, rois: Float64Array, g: Geo): Float64Array {
  const K = rois.length / 5;
  const out = new Float64Array(K * g.c * g.ph * g.pw);
  for (let k = 0; k < K; k++) {
    const b = rois[k * 5]!;
    for (let c = 0; c < g.c; c++) {
      const plane = (b * g.c + c) * g.h * g.w;
      const o = (k * g.c + c) * g.ph * g.pw;
      visitSamples(rois, k, g, (ph, pw, pos, wt, count) => (out[o + ph * g.pw + pw]! += (wt * feat[plane + pos]!) / count));
    }
  }
  return out;
}

function refBackward(gradOut: Float64Array, rois: Float64Array, g: Geo): Float64Array {
  const K = rois.length / 5;
  const gi = new Float64Array(g.n * g.c * g.h * g.w);
  for (let k = 0; k < K; k++) {
    const b = rois[k * 5]!;
    for (let c = 0; c < g.c; c++) {
      const plane = (b * g.c + c) * g.h * g.w;
      const o = (k * g.c + c) * g.ph * g.pw;
      visitSamples(rois, k, g, (ph, pw, pos, wt, count) => (gi[plane + pos]! += (gradOut[o + ph * g.pw + pw]! * wt) / count));
    }
  }
  return gi;
}

/** Random ROIs: inside, straddling the border, tiny and zero-sized, in random images. */
function randomRois(rng: Rng, k: number, n: number, imgH: number, imgW: number): Float64Array {
  const r = new Float64Array(k * 5);
  for (let i = 0; i < k; i++) {
    const x0 = rng.uniform(-0.3 * imgW, imgW);
    const y0 = rng.uniform(-0.3 * imgH, imgH);
    const kind = i % 5;
    const bw = kind === 3 ? 0 : kind === 4 ? rng.uniform(0, 0.5) : rng.uniform(0.5, 0.8 * imgW);
    const bh = kind === 3 ? rng.uniform(0, 3) : kind === 4 ? rng.uniform(0, 0.5) : rng.uniform(0.5, 0.8 * imgH);
    r.set([rng.int(0, n), x0, y0, x0 + bw, y0 + bh], i * 5);
  }
  return r;
}

describe('roiAlign reference', () => {
  it('float64 backward equals finite differences of the forward', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const g: Geo = { n: 2, c: 2, h: 5, w: 6, ph: 3, pw: 2, scale: 0.5, sr: 0, aligned: true };
    const feat = rng.uniformArray(g.n * g.c * g.h * g.w, -1, 1);
    const rois = randomRois(rng, 6, g.n, 10, 12);
    const go = rng.uniformArray(6 * g.c * g.ph * g.pw, -1, 1);
    const f = (x: Float64Array) => refForward(x, rois, g).reduce((a, v, i) => a + v * go[i]!, 0);
    expectClose(refBackward(go, rois, g), numericGrad(f, feat), { atol: 1e-7, rtol: 1e-6, what: `reference roiAlign grad (seed ${seed})` });
  });
});

describe('roiAlign', () => {
  const cases: [string, Geo, number][] = [
    ['aligned, adaptive, 4x3 output, 19 channels (channel-block tail)', { n: 2, c: 19, h: 9, w: 11, ph: 4, pw: 3, scale: 0.5, sr: 0, aligned: true }, 17],
    ['aligned, adaptive, 14x14 mask-head output', { n: 1, c: 2, h: 13, w: 10, ph: 14, pw: 14, scale: 0.25, sr: 0, aligned: true }, 9],
    ['sampling ratio 2, not aligned', { n: 3, c: 2, h: 7, w: 8, ph: 3, pw: 5, scale: 1, sr: 2, aligned: false }, 11],
  ];
  for (const [name, g, k] of cases) {
    it(`${name}: forward, backward, bit-exact determinism`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const feat = rng.uniformArray(g.n * g.c * g.h * g.w, -2, 2);
      const rois = randomRois(rng, k, g.n, g.h / g.scale, g.w / g.scale);
      const go = rng.uniformArray(k * g.c * g.ph * g.pw, -1, 1);
      // Non-contiguous input: stored as [N, H, W, C], permuted to NCHW.
      const nhwc = new Float32Array(feat.length);
      for (let n = 0; n < g.n; n++) for (let c = 0; c < g.c; c++) for (let y = 0; y < g.h; y++) for (let x = 0; x < g.w; x++) {
        nhwc[((n * g.h + y) * g.w + x) * g.c + c] = feat[((n * g.c + c) * g.h + y) * g.w + x]!;
      }
      const leaf = fromArray(nhwc, [g.n, g.h, g.w, g.c]);
      leaf.requiresGrad = true;
      const input = permute(leaf, [0, 3, 1, 2]);
      const R = fromArray(Float32Array.from(rois), [k, 5]);
      const opts = { outputSize: [g.ph, g.pw] as [number, number], spatialScale: g.scale, samplingRatio: g.sr, aligned: g.aligned };
      const what = `roiAlign ${name} (seed ${seed})`;
      const feat32 = Float64Array.from(Float32Array.from(feat));
      const rois32 = Float64Array.from(Float32Array.from(rois));
      const out = roiAlign(input, R, opts);
      expectClose(await out.data(), refForward(feat32, rois32, g), { atol: 1e-5, rtol: 1e-4, what: `${what} forward` });
      const gradRef = refBackward(go, rois32, g);
      const grads: Float32Array[] = [];
      for (let run = 0; run < 2; run++) {
        leaf.grad?.dispose();
        leaf.grad = null;
        const y = roiAlign(permute(leaf, [0, 3, 1, 2]), R, opts);
        backward(y, fromArray(Float32Array.from(go), y.shape));
        const gl = (await leaf.grad!.data()) as Float32Array;
        const gNchw = new Float32Array(gl.length);
        for (let n = 0; n < g.n; n++) for (let c = 0; c < g.c; c++) for (let yy = 0; yy < g.h; yy++) for (let x = 0; x < g.w; x++) {
          gNchw[((n * g.c + c) * g.h + yy) * g.w + x] = gl[((n * g.h + yy) * g.w + x) * g.c + c]!;
        }
        grads.push(gNchw);
      }
      expectClose(grads[0]!, gradRef, { atol: 1e-5, rtol: 1e-4, what: `${what} backward` });
      expect(Buffer.from(grads[1]!.buffer).equals(Buffer.from(grads[0]!.buffer))).toBe(true);
    });
  }

  it('rejects bad shapes with a clear message', () => {
    const x = fromArray(new Float32Array(16), [1, 1, 4, 4]);
    expect(() => roiAlign(x, fromArray(new Float32Array(8), [2, 4]), { outputSize: 2, spatialScale: 1 })).toThrow(/\[K, 5\]/);
    expect(() => roiAlign(fromArray(new Float32Array(16), [4, 4]), fromArray(new Float32Array(5), [1, 5]), { outputSize: 2, spatialScale: 1 })).toThrow(/\[N, C, H, W\]/);
  });
});

describe('roiAlign torchvision parity', () => {
  it('matches torchvision.ops.roi_align(aligned=True) forward and backward (fixture)', async () => {
    const fx = JSON.parse(readFileSync(new URL('../../fixtures/detection/roi_align.json', import.meta.url), 'utf8'));
    for (const c of fx.cases) {
      const input = fromArray(Float32Array.from(c.input), c.input_shape);
      input.requiresGrad = true;
      const R = fromArray(Float32Array.from(c.rois), [c.rois.length / 5, 5]);
      const y = roiAlign(input, R, { outputSize: c.output_size, spatialScale: c.spatial_scale, samplingRatio: c.sampling_ratio, aligned: true });
      // atol 1e-5, as torchvision's own roi_align tests: a GPU compiler may fuse the products of the
      // sample positions into adds (NVIDIA's does), moving a sample by an ulp of its coordinate;
      // on an H100 that changed an output by 1.5e-6.
      expectClose(await y.data(), c.output, { atol: 1e-5, rtol: 1e-4, what: `roi_align ${c.name} forward` });
      backward(y, fromArray(Float32Array.from(c.grad_output), y.shape));
      expectClose(await input.grad!.data(), c.grad_input, { atol: 1e-5, rtol: 1e-4, what: `roi_align ${c.name} backward` });
    }
  });
});
