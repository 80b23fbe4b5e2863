// Benchmark suite `step`: what one whole training step costs, and where the time goes. For
// CenterMask-Lite V-19-slim and V-39 (losses with FCOS proposals and ROI sampling, backward, SGD):
// the wall time of an unprofiled step (median of the repeats), then one step under rt().profile():
// dispatches, submits, readbacks and pipeline compilations per step, host milliseconds (the
// JavaScript that records the step, waits excluded) and host µs per dispatch, device milliseconds
// from timestamp queries, and the five kernels with the most device time.
//
// Sizes: BENCH_STEP=tiny (default: 128x128, batch 1, 6 cells; host-bound, shows per-op overhead),
// full (512x512, batch 2, 40 cells: the size of the PyTorch CPU anchors) or both.
// BENCH_MODEL_CONFIGS=V19slim,V39 picks models. `--repeats N` timed steps after one warm-up step.
// BENCH_STEP_FOLD_AB=1: the conv + FrozenBN fold (setConvBnFold) on and off on the same model, the
// steps interleaved (on, off, on, ...) so that load drifts hit both; one row per arm with the
// median and the minimum of the N steps and the profiled step's dispatches.
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { median } from '../harness';
import { add, backward, formatProfile, init, rt, scopeAsync, setConvBnFold } from '../../engine';
import { SGD } from '../../engine/optim';
import { CenterMask } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { makeScene, MODELS, type ModelBenchOptions, type ModelSpec } from './model';

export interface StepSize {
  name: 'tiny' | 'full';
  size: number;
  batch: number;
  cellsPerImage: number;
}

export const SIZES: Record<StepSize['name'], StepSize> = {
  tiny: { name: 'tiny', size: 128, batch: 1, cellsPerImage: 6 },
  full: { name: 'full', size: 512, batch: 2, cellsPerImage: 40 },
};

function sizesFromEnv(): StepSize[] {
  const v = process.env.BENCH_STEP ?? 'tiny';
  if (v === 'both') return [SIZES.tiny, SIZES.full];
  if (v !== 'tiny' && v !== 'full') throw new Error(`BENCH_STEP must be tiny, full or both, got '${v}'`);
  return [SIZES[v]];
}

/** One training step of `spec` at size `sz` (model, scene and optimizer made once): losses,
 *  backward, SGD step, zeroGrad. Also used by the `host` suite. */
export function buildStep(spec: ModelSpec, sz: StepSize): () => Promise<void> {
  const cfg = loadConfig(spec.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3']);
  const model = new CenterMask(cfg);
  model.train();
  const o = { size: sz.size, batch: sz.batch, cellsPerImage: sz.cellsPerImage, roisPerImage: 0 } as ModelBenchOptions;
  const scene = makeScene(o, 7);
  const opt = new SGD(
    model.parameters().filter((p) => p.requiresGrad),
    { lr: cfg.SOLVER.BASE_LR * cfg.SOLVER.WARMUP_FACTOR, momentum: cfg.SOLVER.MOMENTUM, weightDecay: cfg.SOLVER.WEIGHT_DECAY },
  );
  return () =>
    scopeAsync(async () => {
      const losses = await model.losses(scene.inputs, scene.gts);
      backward(Object.values(losses).reduce((a, b) => add(a, b)));
      opt.step();
      model.zeroGrad();
    });
}

async function benchStep(spec: ModelSpec, sz: StepSize, repeats: number, log: (m: string) => void): Promise<BenchRow[]> {
  const step = buildStep(spec, sz);
  const where = `${sz.size}x${sz.size} b${sz.batch}`;
  const arms = process.env.BENCH_STEP_FOLD_AB === '1' ? [true, false] : [undefined];
  const wall = arms.map(() => [] as number[]);
  try {
    for (const fold of arms) {
      if (fold !== undefined) setConvBnFold(fold);
      await step();
      await rt().sync();
    }
    for (let i = 0; i < repeats; i++) {
      for (const [a, fold] of arms.entries()) {
        if (fold !== undefined) setConvBnFold(fold);
        const t0 = performance.now();
        await step();
        await rt().sync();
        wall[a]!.push(performance.now() - t0);
      }
    }
    const rows: BenchRow[] = [];
    for (const [a, fold] of arms.entries()) {
      if (fold !== undefined) setConvBnFold(fold);
      const { report } = await rt().profile(step);
      const arm = fold === undefined ? '' : ` (conv-bn fold ${fold ? 'on' : 'off'})`;
      log(`${spec.name} ${where}${arm}\n${formatProfile(report, 10)}`);
      rows.push({
        suite: 'step',
        case: `${spec.name} ${where} train step${arm}`,
        ms: median(wall[a]!),
        ...(fold === undefined ? {} : { ms_min: Math.round(Math.min(...wall[a]!) * 10) / 10, steps: wall[a]!.map((t) => Math.round(t)).join(' ') }),
        dispatches: report.dispatches,
        submits: report.submits,
        readbacks: report.readbacks,
        pipelines_compiled: report.pipelinesCompiled,
        bind_groups_created: report.bindGroupsCreated,
        host_ms: Math.round(report.hostMs * 10) / 10,
        host_us_per_dispatch: Math.round((1000 * report.hostMs) / Math.max(1, report.dispatches) * 10) / 10,
        ...(report.deviceMs === undefined ? {} : { device_ms: Math.round(report.deviceMs * 10) / 10 }),
        top_kernels: report.kernels.slice(0, 5).map((k) => `${k.name} ${(k.deviceMs ?? k.dispatchMs).toFixed(1)}`).join('; '),
      });
    }
    return rows;
  } finally {
    setConvBnFold(true);
  }
}

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => {
  await init();
  const names = (process.env.BENCH_MODEL_CONFIGS ?? 'V19slim,V39').split(',').map((s) => s.trim());
  const rows: BenchRow[] = [];
  for (const sz of sizesFromEnv()) {
    for (const n of names) {
      const spec = MODELS.find((m) => m.name === n);
      if (!spec) throw new Error(`unknown model '${n}' (have: ${MODELS.map((m) => m.name).join(', ')})`);
      rows.push(...(await benchStep(spec, sz, ctx.repeats ?? 2, ctx.log)));
    }
  }
  return rows;
};
