// The `model` benchmark suite's options: env knobs, quick/full sizes, bad input. The suite itself is
// not run here: its smallest quick configuration (V-19-slim, 256x256, batch 1) takes minutes on
// lavapipe, over the 60 s a test may take (bench/README.md, model section). Benchmarks are never tests.
import { afterEach, describe, expect, it } from 'vitest';
import { FULL, QUICK, optionsFromEnv } from '../../bench/suites/model';

const KNOBS = ['BENCH_MODEL', 'BENCH_MODEL_CONFIGS', 'BENCH_MODEL_SIZE', 'BENCH_MODEL_BATCH', 'BENCH_MODEL_ROIS', 'BENCH_MODEL_CELLS', 'BENCH_MODEL_STEP', 'BENCH_MODEL_INFER'];

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
  });

  it('rejects bad knobs with a clear message', () => {
    process.env.BENCH_MODEL = 'huge';
    expect(() => optionsFromEnv(undefined, undefined)).toThrow(/BENCH_MODEL must be 'quick' or 'full'/);
    delete process.env.BENCH_MODEL;
    expect(() => optionsFromEnv('quick', undefined, 'V57')).toThrow(/unknown model 'V57'.*V19slim, V39/);
    process.env.BENCH_MODEL_SIZE = '100';
    expect(() => optionsFromEnv('quick', undefined)).toThrow(/multiple of 32/);
    process.env.BENCH_MODEL_SIZE = '-1';
    expect(() => optionsFromEnv('quick', undefined)).toThrow(/positive integer/);
  });
});
