// The Sartorius recipe configs (V-39 from scratch 14,000 -> 24,000; V-39 from the LIVECell model
// 7,000 -> 15,000; V-19-slim 14,000) load with their key values, and resuming with a larger
// SOLVER.MAX_ITER continues the LR schedule exactly: the learning rate of every iteration of
// "0..N, then --resume to M" equals that of one uninterrupted run to M (warmup and steps are
// functions of the iteration only, as in Detectron2).
import { describe, expect, it } from 'vitest';
import { loadConfig, type CfgNode } from '../../../models/config/config';
import type { SGD } from '../../../engine/optim/sgd';
import { buildLrScheduler } from '../../../pipeline/engine/solver';

const SCRATCH = 'configs/sartorius_centermask_lite_V_39_scratch.yaml';
const LIVECELL = 'configs/sartorius_centermask_lite_V_39_from_livecell.yaml';
const V19 = 'configs/sartorius_centermask_lite_V_19_slim_14k.yaml';

describe('Sartorius recipe configs', () => {
  it('V-39 from scratch: 14,000 iterations, no weights, 3 classes, lite V-39-eSE', () => {
    const c = loadConfig(SCRATCH);
    expect(c.MODEL.VOVNET.CONV_BODY).toBe('V-39-eSE');
    expect(c.MODEL.WEIGHTS).toBe('');
    expect(c.MODEL.FCOS.NUM_CLASSES).toBe(3);
    expect(c.MODEL.ROI_HEADS.NUM_CLASSES).toBe(3);
    expect(c.MODEL.FPN.OUT_CHANNELS).toBe(128); // lite
    expect(c.SOLVER.MAX_ITER).toBe(14000);
    expect(c.SOLVER.STEPS).toEqual([18000, 22000]);
    expect(c.SOLVER.IMS_PER_BATCH).toBe(8);
    expect(c.SOLVER.BASE_LR).toBe(0.01);
    expect(c.OUTPUT_DIR).toBe('output/sartorius_centermask_lite_V_39_scratch');
  });

  it('V-39 from LIVECell: the LIVECell checkpoint as MODEL.WEIGHTS, 7,000 iterations; LIVECell config present', () => {
    const c = loadConfig(LIVECELL);
    expect(c.MODEL.VOVNET.CONV_BODY).toBe('V-39-eSE');
    expect(c.MODEL.WEIGHTS).toBe('models/livecell/LIVECell_anchor_free_shsy5y_model.safetensors');
    expect(c.MODEL.FCOS.NUM_CLASSES).toBe(3);
    expect(c.SOLVER.MAX_ITER).toBe(7000);
    expect(c.SOLVER.STEPS).toEqual([11000, 13500]);
    expect(c.OUTPUT_DIR).toBe('output/sartorius_centermask_lite_V_39_from_livecell');
    const lc = loadConfig('configs/livecell_anchor_free_shsy5y.yaml');
    expect(lc.MODEL.VOVNET.CONV_BODY).toBe('V-99-eSE');
    expect(lc.MODEL.FCOS.NUM_CLASSES).toBe(1);
  });

  it('V-19-slim: 14,000 iterations', () => {
    const c = loadConfig(V19);
    expect(c.MODEL.VOVNET.CONV_BODY).toBe('V-19-slim-eSE');
    expect(c.SOLVER.MAX_ITER).toBe(14000);
    expect(c.MODEL.FCOS.NUM_CLASSES).toBe(3);
  });
});

/** The lr of iterations start..cfg.SOLVER.MAX_ITER-1 as the trainer sees them (scheduler built at
 *  the resume iteration, step() after each iteration). */
function lrs(cfg: CfgNode, start: number): number[] {
  const opt = { paramGroups: [{ lr: cfg.SOLVER.BASE_LR, initialLr: cfg.SOLVER.BASE_LR }] };
  const sched = buildLrScheduler(cfg, opt as unknown as SGD, start);
  const out: number[] = [];
  for (let i = start; i < cfg.SOLVER.MAX_ITER; i++) {
    out.push(opt.paramGroups[0]!.lr);
    sched.step();
  }
  return out;
}

describe('resume with a larger SOLVER.MAX_ITER', () => {
  it.each([
    [SCRATCH, 14000, 24000],
    [LIVECELL, 7000, 15000],
    [SCRATCH, 500, 1500], // inside the warmup
  ])('%s: 0..%i then resume to %i = uninterrupted', (file, n, m) => {
    const warn = console.warn;
    console.warn = () => {}; // steps beyond the first run's MAX_ITER: Detectron2's warning
    try {
      const first = lrs(loadConfig(file, ['SOLVER.MAX_ITER', String(n)]), 0);
      const resumed = lrs(loadConfig(file, ['SOLVER.MAX_ITER', String(m)]), n);
      const whole = lrs(loadConfig(file, ['SOLVER.MAX_ITER', String(m)]), 0);
      expect(first.length + resumed.length).toBe(m);
      expect([...first, ...resumed]).toEqual(whole);
      const cfg = loadConfig(file);
      // warmup from BASE_LR * WARMUP_FACTOR, then the steps of the larger schedule
      expect(whole[0]).toBeCloseTo(cfg.SOLVER.BASE_LR * cfg.SOLVER.WARMUP_FACTOR, 12);
      expect(whole[cfg.SOLVER.WARMUP_ITERS]).toBeCloseTo(cfg.SOLVER.BASE_LR, 12);
      for (const [k, s] of cfg.SOLVER.STEPS.entries()) if (s < m) expect(whole[s]).toBeCloseTo(cfg.SOLVER.BASE_LR * 0.1 ** (k + 1), 12);
    } finally {
      console.warn = warn;
    }
  });
});
