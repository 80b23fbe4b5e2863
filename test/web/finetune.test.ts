// The page's fine-tune loop (web/lib/finetune.ts) run in Node: its losses equal those of the CLI's
// trainer (pipeline/engine/trainer.ts) on the same synthetic images, weights and settings, so the
// loop the page runs is the trainer's step without the files. test/web/browser.test.ts runs the
// loop in Chromium through window.cellgpu.finetune and compares its losses with this loop's in Node.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../models/config/config';
import { loadModelForInference } from '../../pipeline/engine/predictor';
import { train } from '../../pipeline/engine/trainer';
import type { TrainableModel } from '../../pipeline/engine/model';
import { finetune, synthTrainingSet } from '../../web/lib/finetune';

const CONFIG = 'configs/synth_centermask_lite_V_19_slim_scratch.yaml';
const WEIGHTS = 'models/zoo/centermask_lite_V_19_slim_synth.safetensors';

describe('the page fine-tune loop', () => {
  const out = mkdtempSync(join(tmpdir(), 'cellgpu-web-ft-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('gives the losses of the CLI trainer for 2 iterations', async () => {
    const set = synthTrainingSet({ seed: 7, images: 1, width: 256, height: 256 });
    const cfg = loadConfig(CONFIG);
    const web = await finetune({ cfg, model: (await loadModelForInference(cfg, WEIGHTS)) as TrainableModel, name: 'demo', categoryIds: [1, 2, 3] }, set, { iters: 2, seed: cfg.SEED });

    const lr = String(cfg.SOLVER.BASE_LR / 10);
    const tcfg = loadConfig(CONFIG, ['SOLVER.MAX_ITER', '2', 'SOLVER.WARMUP_ITERS', '0', 'SOLVER.STEPS', '()', 'SOLVER.IMS_PER_BATCH', '1', 'SOLVER.BASE_LR', lr, 'SOLVER.CHECKPOINT_PERIOD', '0', 'TEST.EVAL_PERIOD', '0']);
    const model = (await loadModelForInference(tcfg, WEIGHTS)) as TrainableModel;
    await train({ cfg: tcfg, model, train: { records: set.records, categoryIds: [1, 2, 3], skippedEmpty: 0 }, outputDir: out, logPeriod: 1, readGray: (f) => set.pixels.get(f)!, log: () => {}, progressBar: false });
    const cli = readFileSync(join(out, 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { total_loss?: number }).filter((r) => r.total_loss !== undefined).map((r) => r.total_loss!);

    expect(web.losses.length).toBe(2);
    expect(cli.length).toBe(2);
    for (let i = 0; i < 2; i++) expect(Math.abs(web.losses[i]! - cli[i]!)).toBeLessThan(1e-5 * Math.abs(cli[i]!));
  }, 240_000);
});
