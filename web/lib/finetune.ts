// Fine-tuning in the page: a small synthetic data set made in memory by pipeline/data/synth (the
// generator behind `cellseg synth`), then N iterations of the training step of
// pipeline/engine/trainer.ts, re-stated here: the same TrainLoader (seeded batches, resize, crop,
// flip), model.losses, sum of the losses, backward, gradient clipping, SGD step and LR schedule
// built by pipeline/engine/solver.ts from the config. trainer.ts itself is not used because it
// writes checkpoints and metrics.json to files; this loop keeps everything in memory.
import { backward, noGrad } from '../../engine/autograd';
import { scopeAsync } from '../../engine/tensor';
import { add } from '../../engine/ops/elementwise';
import { rt } from '../../runtime/runtime';
import { CELL_TYPES, categoryIdOf } from '../../pipeline/data/cell-types';
import { synthImages } from '../../pipeline/data/synth/dataset';
import { bitmaskBox } from '../../pipeline/data/transforms';
import { TrainLoader, type TrainRecord } from '../../pipeline/data/train-loader';
import { buildGradientClipper, buildLrScheduler, buildOptimizer } from '../../pipeline/engine/solver';
import { cropOf } from '../../pipeline/engine/trainer';
import type { LoadedModel } from './core';

export interface SynthSet {
  records: TrainRecord[];
  pixels: Map<string, Uint8Array>;
}

/** `images` synthetic images of width x height (cell types cycle), as training records. */
export function synthTrainingSet(o: { seed: number; images: number; width: number; height: number }): SynthSet {
  const records: TrainRecord[] = [];
  const pixels = new Map<string, Uint8Array>();
  let id = 0;
  for (const im of synthImages({ seed: o.seed, trainImages: o.images, testImages: 0, width: o.width, height: o.height }, 'train')) {
    const file = `synth/${im.meta.id}.png`;
    pixels.set(file, im.pixels);
    const category = categoryIdOf(im.meta.cellType) - 1;
    const annotations = im.masks.map((mask) => ({ box: bitmaskBox(mask), category, polygons: [], mask }));
    if (annotations.length) records.push({ imageId: ++id, file, width: o.width, height: o.height, annotations });
  }
  return { records, pixels };
}

export interface FinetuneOptions {
  iters: number;
  /** The loader's seed (default cfg.SEED, as the trainer; the ROI sampling follows cfg.SEED). */
  seed?: number;
  /** Training scale: INPUT.MIN_SIZE_TRAIN and the square crop (default the config's; the demo's
   *  recipe is 256). Smaller is faster, e.g. on a software adapter. */
  size?: number;
  /** Learning rate (the schedule's base; default cfg.SOLVER.BASE_LR / 10: fine-tuning). */
  lr?: number;
  onIteration?: (iter: number, loss: number, losses: Record<string, number>) => void;
}

/** Train `m.model` in place for `iters` iterations; the total loss of each iteration. */
export async function finetune(m: LoadedModel, set: SynthSet, o: FinetuneOptions): Promise<{ losses: number[]; seconds: number }> {
  const cfg = m.cfg.clone();
  cfg.SOLVER.MAX_ITER = o.iters;
  cfg.SOLVER.WARMUP_ITERS = 0;
  cfg.SOLVER.STEPS = [];
  cfg.SOLVER.IMS_PER_BATCH = 1;
  cfg.SOLVER.BASE_LR = o.lr ?? m.cfg.SOLVER.BASE_LR / 10;
  if (o.size !== undefined) {
    if (!Number.isInteger(o.size) || o.size < 32) throw new Error(`fine-tune size must be an integer of at least 32, got ${o.size}`);
    cfg.INPUT.MIN_SIZE_TRAIN = [o.size];
    cfg.INPUT.CROP.SIZE = [o.size, o.size];
  }
  const t0 = performance.now();
  const model = m.model;
  model.train();
  const { optimizer } = buildOptimizer(cfg, model);
  const params = optimizer.paramGroups.flatMap((g) => g.params);
  const clipper = buildGradientClipper(cfg);
  const scheduler = buildLrScheduler(cfg, optimizer, 0);
  const loader = new TrainLoader(
    set.records,
    {
      crop: cropOf(cfg),
      minSizes: cfg.INPUT.MIN_SIZE_TRAIN,
      sampling: cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING === 'range' ? 'range' : 'choice',
      maxSize: cfg.INPUT.MAX_SIZE_TRAIN,
      randomFlip: cfg.INPUT.RANDOM_FLIP as 'horizontal' | 'vertical' | 'none',
      batchSize: 1,
      seed: o.seed ?? cfg.SEED, // as the trainer: its batches follow SEED
      aspectRatioGrouping: cfg.DATALOADER.ASPECT_RATIO_GROUPING,
    },
    (file) => set.pixels.get(file)!,
  );
  const losses: number[] = [];
  try {
    for (let iter = 0; iter < o.iters; iter++) {
      const batch = loader.batch(iter);
      const values = await scopeAsync(async () => {
        const ls = await model.losses(batch.inputs, batch.gts);
        const names = Object.keys(ls).sort();
        let total = ls[names[0]!]!;
        for (const n of names.slice(1)) total = add(total, ls[n]!);
        optimizer.zeroGrad();
        backward(total);
        clipper?.(params);
        optimizer.step();
        const read = await Promise.all([...names, 'total'].map(async (n) => [n, ((await noGrad(() => (n === 'total' ? total : ls[n]!).detach()).data()) as Float32Array)[0]!] as const));
        return Object.fromEntries(read);
      });
      scheduler.step();
      await rt().sync();
      const total = values.total!;
      if (!Number.isFinite(total)) throw new Error(`the loss became ${total} at iteration ${iter}`);
      losses.push(total);
      o.onIteration?.(iter, total, values);
    }
  } finally {
    optimizer.dispose();
    model.eval();
  }
  return { losses, seconds: (performance.now() - t0) / 1000 };
}

export { CELL_TYPES };
