// Soak: 200 iterations of the real training loop (engine/trainer.ts: loader, forward, backward,
// clipping, SGD, LR schedule, metrics every 10 iterations, a checkpoint every 50) on the stand-in
// model with 128x128 images, sampling live GPU memory (the buffer pool's live bytes) and the
// process's RSS after every metrics write. Live GPU memory must be exactly the same at every
// sample after warm-up: anything a step leaves alive (a tensor, an optimizer slot) shows at once.
// RSS must grow by less than 30 MB from iteration 50 to 200: one batch of input images is
// 2 x 3 x 128 x 128 float32 = 384 KiB, so a loop that kept a single batch (or anything of that
// size) per iteration would add 56 MiB over those 150 iterations (such a leak, injected, raised RSS
// by 44 MB here); without one, RSS grew 3 MB (it is read after a full GC).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init, rt } from '../../../runtime/runtime';
import { loadConfig } from '../../../models/config/config';
import { train } from '../../../pipeline/engine/trainer';
import type { TrainingSet } from '../../../pipeline/data/train-loader';
import { StandInModel } from './standin';

const ITERS = 200;
const SAMPLE_EVERY = 10;
const WARMUP = 50;
const RSS_BOUND_MB = 30;
const W = 128;
const H = 128;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const IMAGES = new Map<string, Uint8Array>();
function makeSet(): TrainingSet {
  const records = [0, 1, 2, 3].map((i) => {
    const img = new Uint8Array(W * H).fill(20 + i);
    const x0 = 10 + 20 * i;
    for (let y = 30; y < 70; y++) for (let x = x0; x < x0 + 25; x++) img[y * W + x] = 220;
    IMAGES.set(`img${i}`, img);
    return {
      imageId: i + 1,
      file: `img${i}`,
      width: W,
      height: H,
      annotations: [{ box: [x0, 30, x0 + 25, 70] as [number, number, number, number], category: i % 3, polygons: [[x0, 30, x0 + 25, 30, x0 + 25, 70, x0, 70]] }],
    };
  });
  return { records, categoryIds: [1, 2, 3], skippedEmpty: 0 };
}

let dir: string;
beforeAll(async () => {
  await init();
  dir = mkdtempSync(join(tmpdir(), 'cellgpu-soak-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`soak: ${ITERS} training iterations`, () => {
  it(`live GPU memory exactly flat after iteration ${WARMUP}, RSS growth under ${RSS_BOUND_MB} MB`, async () => {
    const cfg = loadConfig('configs/sartorius_centermask_lite_V_19_slim.yaml', [
      'INPUT.MIN_SIZE_TRAIN', `(${H},)`, 'INPUT.MAX_SIZE_TRAIN', String(W), 'INPUT.RANDOM_FLIP', 'horizontal',
      'SOLVER.IMS_PER_BATCH', '2', 'SOLVER.BASE_LR', '0.01', 'SOLVER.STEPS', '(150,)', 'SOLVER.WARMUP_ITERS', '20',
      'SOLVER.MAX_ITER', String(ITERS), 'SOLVER.CHECKPOINT_PERIOD', '50',
      'SOLVER.CLIP_GRADIENTS.ENABLED', 'True', 'SOLVER.CLIP_GRADIENTS.CLIP_TYPE', 'norm', 'SOLVER.CLIP_GRADIENTS.CLIP_VALUE', '1.0',
      'TEST.EVAL_PERIOD', '0', 'SEED', '3',
    ]);
    const samples: { iter: number; live: number; buffers: number; rss: number }[] = [];
    const log = (line: string) => {
      const m = / iter: (\d+) /.exec(line);
      if (!m) return;
      gc();
      const s = rt().pool.getStats();
      samples.push({ iter: Number(m[1]), live: s.liveBytes, buffers: s.liveBuffers, rss: process.memoryUsage.rss() });
    };
    const t0 = performance.now();
    const r = await train({ cfg, model: new StandInModel(), train: makeSet(), outputDir: join(dir, 'out'), logPeriod: SAMPLE_EVERY, readGray: (f) => IMAGES.get(f)!, log, progressBar: false });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.iterations).toBe(ITERS);
    expect(samples.map((s) => s.iter)).toEqual(Array.from({ length: ITERS / SAMPLE_EVERY }, (_, i) => (i + 1) * SAMPLE_EVERY - 1));

    const after = samples.filter((s) => s.iter >= WARMUP - 1);
    const mb = (b: number) => (b / 2 ** 20).toFixed(1);
    console.log(
      `soak: ${ITERS} iterations in ${seconds.toFixed(1)} s; live GPU ${after[0]!.live} B in ${after[0]!.buffers} buffers from iteration ${after[0]!.iter}; ` +
        `RSS ${samples.map((s) => mb(s.rss)).join(' ')} MB`,
    );
    for (const s of after) expect({ iter: s.iter, live: s.live, buffers: s.buffers }).toEqual({ iter: s.iter, live: after[0]!.live, buffers: after[0]!.buffers });
    const growth = (after.at(-1)!.rss - after[0]!.rss) / 1e6;
    expect(growth, `RSS grew ${growth.toFixed(1)} MB from iteration ${after[0]!.iter} to ${after.at(-1)!.iter}`).toBeLessThan(RSS_BOUND_MB);
  }, 600_000);
});
