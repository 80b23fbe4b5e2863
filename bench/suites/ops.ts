// Benchmark suite `ops`: GroupNorm forward/backward, ROIAlign forward/backward (a few hundred
// ROIs on a P3-like map, 14x14 output) and NMS (a few thousand boxes). Small and fast on lavapipe.
// Each case: warm-up, then the median of `repeats` timed iterations ending in rt().sync().
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { backward, batchedNms, fromArray, groupNorm, init, nms, rand, roiAlign, rt, scopeAsync, type Tensor } from '../../engine';
import { Rng } from '../../runtime/rng';

async function timeIt(repeats: number, fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up: pipeline compiles
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    await rt().sync();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function randomRois(rng: Rng, k: number, imgH: number, imgW: number): Tensor {
  const r = new Float32Array(k * 5);
  for (let i = 0; i < k; i++) {
    const x = rng.uniform(0, imgW * 0.9), y = rng.uniform(0, imgH * 0.9);
    r.set([0, x, y, x + rng.uniform(8, 96), y + rng.uniform(8, 96)], i * 5);
  }
  return fromArray(r, [k, 5]);
}

function randomBoxes(rng: Rng, n: number): { boxes: Tensor; scores: Tensor; idxs: Tensor } {
  const b = new Float32Array(n * 4);
  const s = new Float32Array(n);
  const c = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform(0, 480), y = rng.uniform(0, 480);
    b.set([x, y, x + rng.uniform(4, 40), y + rng.uniform(4, 40)], i * 4);
    s[i] = rng.next();
    c[i] = rng.int(0, 3);
  }
  return { boxes: fromArray(b, [n, 4]), scores: fromArray(s, [n]), idxs: fromArray(c, [n], 'i32') };
}

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => {
  await init();
  const repeats = ctx.repeats ?? 5;
  const rows: BenchRow[] = [];
  const rng = new Rng(7);

  // GroupNorm: FCOS-tower-like [2, 128, 64, 64], 32 groups.
  {
    const shape = [2, 128, 64, 64];
    const numel = shape.reduce((a, b) => a * b, 1);
    const x = rand(shape, 1);
    x.requiresGrad = true;
    const w = rand([128], 2);
    const b = rand([128], 3);
    const fwd = await timeIt(repeats, () => scopeAsync(async () => void groupNorm(x, 32, { weight: w, bias: b })));
    const fb = await timeIt(repeats, () =>
      scopeAsync(async () => {
        const y = groupNorm(x, 32, { weight: w, bias: b });
        backward(y, rand(shape, 4));
        x.grad?.dispose();
        x.grad = null;
      }),
    );
    const bytes = numel * 4 * 3; // read twice for statistics, write once
    rows.push({ suite: 'ops', case: `groupNorm fwd [${shape}] G=32`, ms: fwd, gbps: bytes / fwd / 1e6 });
    rows.push({ suite: 'ops', case: `groupNorm fwd+bwd [${shape}] G=32`, ms: fb });
    ctx.log(`groupNorm fwd ${fwd.toFixed(2)} ms, fwd+bwd ${fb.toFixed(2)} ms`);
  }

  // ROIAlign: 300 ROIs on a P3 map of a 512x512 image ([1, 128, 64, 64], scale 1/8), 14x14.
  {
    const feat = rand([1, 128, 64, 64], 5);
    feat.requiresGrad = true;
    const rois = randomRois(rng, 300, 512, 512);
    const opts = { outputSize: 14, spatialScale: 1 / 8, samplingRatio: 0, aligned: true };
    const fwd = await timeIt(repeats, () => scopeAsync(async () => void roiAlign(feat, rois, opts)));
    const fb = await timeIt(repeats, () =>
      scopeAsync(async () => {
        const y = roiAlign(feat, rois, opts);
        backward(y, rand(y.shape, 6));
        feat.grad?.dispose();
        feat.grad = null;
      }),
    );
    rows.push({ suite: 'ops', case: 'roiAlign fwd 300 ROIs C=128 14x14', ms: fwd, rois_per_s: 300 / (fwd / 1e3) });
    rows.push({ suite: 'ops', case: 'roiAlign fwd+bwd 300 ROIs C=128 14x14', ms: fb, rois_per_s: 300 / (fb / 1e3) });
    ctx.log(`roiAlign fwd ${fwd.toFixed(2)} ms, fwd+bwd ${fb.toFixed(2)} ms`);
  }

  // NMS: 3000 boxes, single class and 3 classes (IoU 0.6).
  {
    const { boxes, scores, idxs } = randomBoxes(rng, 3000);
    const single = await timeIt(repeats, () => scopeAsync(async () => void (await nms(boxes, scores, 0.6))));
    const batched = await timeIt(repeats, () => scopeAsync(async () => void (await batchedNms(boxes, scores, idxs, 0.6))));
    rows.push({ suite: 'ops', case: 'nms 3000 boxes', ms: single, boxes_per_s: 3000 / (single / 1e3) });
    rows.push({ suite: 'ops', case: 'batchedNms 3000 boxes 3 classes', ms: batched, boxes_per_s: 3000 / (batched / 1e3) });
    ctx.log(`nms ${single.toFixed(2)} ms, batchedNms ${batched.toFixed(2)} ms`);
  }
  return rows;
};
