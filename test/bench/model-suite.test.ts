// The `model` benchmark suite: its options (env knobs, quick/full sizes, bad input) and the rows of
// one tiny run (V-19-slim, 64x64, batch 1, 2 ROIs, 1 repeat, no warm-up, no end-to-end step: ~20 s
// on lavapipe; the default quick size, 256x256, takes minutes and is not run here). Only the rows'
// shape and fields are checked: benchmarks are never timed tests.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { init, rt } from '../../engine';
import { FULL, QUICK, optionsFromEnv, runModelBench } from '../../bench/suites/model';
import { scaleCasesFromEnv } from '../../bench/suites/model-scale';
import { variantsFromEnv, warmupFromEnv } from '../../bench/suites/train';

const KNOBS = ['BENCH_MODEL', 'BENCH_MODEL_CONFIGS', 'BENCH_MODEL_SIZE', 'BENCH_MODEL_BATCH', 'BENCH_MODEL_ROIS', 'BENCH_MODEL_CELLS', 'BENCH_MODEL_STEP', 'BENCH_MODEL_INFER', 'BENCH_MODEL_MODULES', 'BENCH_MODEL_AMP'];

describe('model suite options', () => {
  const saved = Object.fromEntries(KNOBS.map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const k of KNOBS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('defaults to the quick size and offers the spec size as full', () => {
    for (const k of KNOBS) delete process.env[k];
    const q = optionsFromEnv(undefined, undefined);
    expect([q.size, q.batch, q.roisPerImage, q.models]).toEqual([QUICK.size, QUICK.batch, QUICK.roisPerImage, ['V19slim', 'V39']]);
    expect([FULL.size, FULL.batch, FULL.roisPerImage]).toEqual([512, 2, 50]);
    process.env.BENCH_MODEL = 'full';
    const f = optionsFromEnv(undefined, 5);
    expect([f.size, f.batch, f.repeats, f.step, f.inference]).toEqual([512, 2, 5, true, true]);
  });

  it('applies the env overrides', () => {
    Object.assign(process.env, { BENCH_MODEL_CONFIGS: 'V39', BENCH_MODEL_SIZE: '96', BENCH_MODEL_BATCH: '3', BENCH_MODEL_ROIS: '7', BENCH_MODEL_CELLS: '5', BENCH_MODEL_STEP: '0', BENCH_MODEL_INFER: '0' });
    const o = optionsFromEnv('quick', undefined);
    expect([o.models, o.size, o.batch, o.roisPerImage, o.cellsPerImage, o.step, o.inference]).toEqual([['V39'], 96, 3, 7, 5, false, false]);
    expect([o.modules, o.amp]).toEqual([true, false]);
    Object.assign(process.env, { BENCH_MODEL_MODULES: '0', BENCH_MODEL_AMP: '1' });
    const a = optionsFromEnv('quick', undefined);
    expect([a.modules, a.amp]).toEqual([false, true]);
  });

  it('rejects bad knobs with a clear message', () => {
    process.env.BENCH_MODEL = 'huge';
    expect(() => optionsFromEnv(undefined, undefined)).toThrow(/BENCH_MODEL must be 'quick' or 'full' \(the LIVECell-size steps are the suite model-scale/);
    delete process.env.BENCH_MODEL;
    expect(() => optionsFromEnv('quick', undefined, 'V57')).toThrow(/unknown model 'V57'.*V19slim, V39/);
    process.env.BENCH_MODEL_SIZE = '100';
    expect(() => optionsFromEnv('quick', undefined)).toThrow(/multiple of 32/);
    process.env.BENCH_MODEL_SIZE = '-1';
    expect(() => optionsFromEnv('quick', undefined)).toThrow(/positive integer/);
  });
});

describe('model suite rows (tiny configuration)', () => {
  beforeAll(async () => {
    await init();
  });

  it('gives fwd / bwd / fwd+bwd rows for every module, noGrad forward rows and totals', async () => {
    const rows = await runModelBench({ models: ['V19slim'], size: 64, batch: 1, roisPerImage: 2, cellsPerImage: 2, step: false, inference: true, repeats: 1, warmup: 0 });
    const cases = rows.map((r) => r.case);
    const modules = ['backbone', 'fpn', 'fcos_head', 'mask_head (2 ROIs/img)', 'maskiou_head (2 ROIs/img)', 'losses'];
    const expected = [
      ...modules.filter((m) => m !== 'losses').map((m) => `fwd (noGrad) ${m}`),
      'fwd (noGrad) total of modules (2 ROIs/img)',
      ...modules.flatMap((m) => [`fwd ${m}`, `bwd ${m}`, `fwd+bwd ${m}`]),
      'fwd total of modules (2 ROIs/img)',
      'fwd+bwd total of modules (2 ROIs/img)',
    ].map((c) => `V19slim 64x64 b1 ${c}`);
    expect(cases).toEqual(expected);
    for (const r of rows) {
      expect(r.suite).toBe('model');
      expect(Number.isFinite(r.ms) && r.ms > 0, `${r.case}: ms ${r.ms}`).toBe(true);
      // Timed phases carry their peak live GPU bytes; sums do not (except the whole chain's peak).
      if (!r.case.includes('total') && !r.case.includes('fwd+bwd')) expect(r.peak_mb as number, r.case).toBeGreaterThan(0);
      // The PyTorch anchor exists for 512x512 batch 2 only.
      expect(r.peer, r.case).toBeUndefined();
      expect(r.ratio, r.case).toBeUndefined();
    }
    const byCase = new Map(rows.map((r) => [r.case, r.ms]));
    const sumOf = (prefix: string) => modules.reduce((a, m) => a + byCase.get(`V19slim 64x64 b1 ${prefix} ${m}`)!, 0);
    expect(byCase.get('V19slim 64x64 b1 fwd+bwd total of modules (2 ROIs/img)')).toBeCloseTo(sumOf('fwd') + sumOf('bwd'), 6);
  }, 120_000);

  it('with amp and without modules: the f32 and the AMP training step, with their memory fields', async () => {
    const rows = await runModelBench({ models: ['V19slim'], size: 64, batch: 1, roisPerImage: 2, cellsPerImage: 2, step: true, inference: false, modules: false, amp: true, repeats: 1, warmup: 0 });
    expect(rows.map((r) => r.case)).toEqual([
      'V19slim 64x64 b1 train step end to end (losses+backward+SGD, 2 cells/img)',
      // Only where the adapter has shader-f16 (lavapipe has).
      ...(rt().gpu.features.f16 ? ['V19slim 64x64 b1 train step end to end, AMP (autocast+GradScaler: losses+backward+SGD, 2 cells/img)'] : []),
    ]);
    for (const r of rows) for (const f of ['peak_mb', 'above_start_mb', 'forward_mb']) expect(r[f] as number, `${r.case} ${f}`).toBeGreaterThan(0);
  }, 120_000);
});

describe('scale and train suite options', () => {
  const KEYS = ['BENCH_SCALE_PRECISION', 'BENCH_TRAIN', 'BENCH_TRAIN_WARMUP'];
  const saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]));
  afterEach(() => {
    for (const k of KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('runs each scale case in f32 and under AMP unless BENCH_SCALE_PRECISION keeps one', () => {
    delete process.env.BENCH_SCALE_PRECISION;
    const all = scaleCasesFromEnv();
    expect(all.map((c) => `${c.width}x${c.height}b${c.batch}:${c.precision}`)).toEqual(['704x520b2:f32', '704x520b2:amp', '800x800b1:f32', '800x800b1:amp']);
    process.env.BENCH_SCALE_PRECISION = 'amp';
    expect(scaleCasesFromEnv().every((c) => c.precision === 'amp')).toBe(true);
    process.env.BENCH_SCALE_PRECISION = 'f16';
    expect(() => scaleCasesFromEnv()).toThrow(/BENCH_SCALE_PRECISION must be f32, amp or both, got 'f16'/);
  });

  it('picks the train variants and warm-up from the environment', () => {
    delete process.env.BENCH_TRAIN;
    delete process.env.BENCH_TRAIN_WARMUP;
    expect(variantsFromEnv()).toEqual(['base', 'accum', 'dp2', 'amp']);
    expect(warmupFromEnv()).toBe(2);
    process.env.BENCH_TRAIN = 'accum, dp2';
    expect(variantsFromEnv()).toEqual(['accum', 'dp2']);
    process.env.BENCH_TRAIN = 'base,fast';
    expect(() => variantsFromEnv()).toThrow(/unknown variant 'fast'/);
    process.env.BENCH_TRAIN_WARMUP = '0';
    expect(() => warmupFromEnv()).toThrow(/BENCH_TRAIN_WARMUP must be a positive integer/);
  });
});
