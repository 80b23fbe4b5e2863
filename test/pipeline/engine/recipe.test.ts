// The shipped training recipe (configs/synth_centermask_lite_V_19_slim_scratch.yaml: BN backbone from
// scratch, absolute crops at native scale, bitmask GT, per-parameter clipping) trained by
// `runTraining` — the code behind `cellseg train` — for a few iterations on a tiny synthetic set in
// the Sartorius layout: the loss must drop, the final checkpoint must hold the BN state, and loading
// it into a fresh model must reproduce every tensor exactly.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { loadConfig } from '../../../models/config/config';
import { writeSynthDataset } from '../../../pipeline/data/synth/dataset';
import { readTrainCsvAll } from '../../../pipeline/data/train-csv';
import { buildCocoDataset } from '../../../pipeline/data/coco/build';
import { writeJsonAtomic } from '../../../pipeline/io/atomic';
import { runTraining } from '../../../pipeline/engine/train-net';
import { loadPretrainedWeights, modelStateToHost } from '../../../pipeline/engine/checkpoint';
import type { TrainResult } from '../../../pipeline/engine/trainer';
import { buildTrainableModel, type TrainableModel } from '../../../pipeline/engine/model';

const RECIPE = 'configs/synth_centermask_lite_V_19_slim_scratch.yaml';
const ITERS = 12;

describe('the from-scratch recipe trains through cellseg train', () => {
  let dir: string;
  let result: TrainResult;
  let model: TrainableModel;
  let overrides: string[];
  beforeAll(async () => {
    await init();
    dir = mkdtempSync(join(tmpdir(), 'cellgpu-recipe-'));
    const data = join(dir, 'data');
    writeSynthDataset(data, { seed: 5, trainImages: 3, testImages: 0, width: 160, height: 128 }, true);
    const { dataset } = buildCocoDataset(await readTrainCsvAll(join(data, 'train.csv')), { segmentation: 'rle', imageDir: 'train' });
    writeJsonAtomic(join(dir, 'coco.json'), dataset, 0);
    overrides = [
      'INPUT.CROP.SIZE', '[96, 96]',
      'INPUT.MIN_SIZE_TRAIN', '(96,)',
      'SOLVER.IMS_PER_BATCH', '2',
      'SOLVER.MAX_ITER', String(ITERS),
      'SOLVER.WARMUP_ITERS', '2',
      'SOLVER.STEPS', '(100,)',
      'SOLVER.CHECKPOINT_PERIOD', '6',
      'OUTPUT_DIR', join(dir, 'out'),
    ];
    const cfg = loadConfig(RECIPE, overrides);
    const r = await runTraining({ cfg, trainJson: join(dir, 'coco.json'), imageRoot: data, logPeriod: 3, log: () => {} });
    result = r.result;
    model = r.model;
  }, 1_800_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the recipe: BN backbone, bitmask masks, crops, per-parameter clipping', () => {
    const cfg = loadConfig(RECIPE);
    expect(cfg.MODEL.VOVNET.NORM).toBe('BN');
    expect(cfg.INPUT.MASK_FORMAT).toBe('bitmask');
    expect(cfg.INPUT.CROP.ENABLED).toBe(true);
    expect(cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE).toBe('norm');
    expect(cfg.SOLVER.MAX_ITER).toBe(600);
  });

  it('brings the loss down', () => {
    const lines = readFileSync(join(dir, 'out', 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const losses = lines.filter((l) => 'total_loss' in l).map((l) => l.total_loss!);
    expect(losses.length).toBe(ITERS / 3);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(0.8 * losses[0]!);
    expect(result.iterations).toBe(ITERS);
  });

  it('checkpoints the BN state and loads back exactly', async () => {
    const saved = await modelStateToHost(model);
    const bn = 'backbone.bottom_up.stage2.OSA2_1.layers.0.OSA2_1_0/norm';
    for (const k of ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']) expect(saved.has(`${bn}.${k}`), `${bn}.${k}`).toBe(true);
    // One training forward per iteration.
    const count = saved.get(`${bn}.num_batches_tracked`)!;
    expect(count.dtype).toBe('I64'); // as PyTorch keeps it
    expect(Array.from(count.data as BigInt64Array, Number)).toEqual([ITERS]);
    const fresh = buildTrainableModel(loadConfig(RECIPE, overrides));
    const rep = await loadPretrainedWeights(result.finalCheckpoint!, fresh, () => {});
    expect(rep.missing).toEqual([]);
    expect(rep.skippedShape).toEqual([]);
    const loaded = await modelStateToHost(fresh);
    expect([...loaded.keys()].sort()).toEqual([...saved.keys()].sort());
    for (const [k, t] of saved) {
      const a = loaded.get(k)!.data;
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
    }
  });
});
