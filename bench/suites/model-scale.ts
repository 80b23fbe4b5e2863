// Benchmark suite `model-scale` (`npm run bench -- model-scale`): one training step
// per SCALE_CASES entry, lite V-39 at LIVECell's sizes (704x520 batch 2, 800x800 batch 1), whose
// activations exceed one storage binding (see kernels/README.md, "Large tensors"), in f32 and under
// AMP (BENCH_SCALE_PRECISION=f32|amp|both); --repeats N steps, no warm-up. Rows keep suite 'model',
// so records compare with the model suite's.
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { init } from '../../engine';
import { GradScaler, SGD } from '../../engine/optim';
import { autocastAvailable } from '../../engine/amp/autocast';
import { CenterMask } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { FULL, makeScene, mb, MODELS, type ModelBenchOptions, type ModelSpec, type Samples, summarize, trainStep } from './model';

/** One model-scale case: a training step of a model at an image size whose activations are larger
 *  than one storage binding (128 MiB on lavapipe), so the ops' split paths run. */
export interface ScaleCase {
  model: ModelSpec['name'];
  width: number;
  height: number;
  batch: number;
  /** 'f32', or 'amp' (mixed precision: SOLVER.AMP.ENABLED; autocast + GradScaler). */
  precision: 'f32' | 'amp';
}

/** LIVECell's 704x520 at batch 2 and 800x800 at batch 1, each in f32 and under AMP (the AMP
 *  rows are skipped on adapters without shader-f16). BENCH_SCALE_PRECISION=f32 or amp keeps one. */
export const SCALE_CASES: ScaleCase[] = [
  { model: 'V39', width: 704, height: 520, batch: 2, precision: 'f32' },
  { model: 'V39', width: 704, height: 520, batch: 2, precision: 'amp' },
  { model: 'V39', width: 800, height: 800, batch: 1, precision: 'f32' },
  { model: 'V39', width: 800, height: 800, batch: 1, precision: 'amp' },
];

/** SCALE_CASES filtered by BENCH_SCALE_PRECISION (f32, amp or both: the default). */
export function scaleCasesFromEnv(): ScaleCase[] {
  const v = process.env.BENCH_SCALE_PRECISION ?? 'both';
  if (v !== 'f32' && v !== 'amp' && v !== 'both') throw new Error(`BENCH_SCALE_PRECISION must be f32, amp or both, got '${v}'`);
  return SCALE_CASES.filter((c) => v === 'both' || c.precision === v);
}

/** `repeats` training steps (no warm-up: one step takes minutes on lavapipe) per case: the median
 *  wall time and the peak live GPU memory. */
export async function runScaleBench(cases: ScaleCase[], repeats: number, log: (m: string) => void = () => {}): Promise<BenchRow[]> {
  await init();
  const rows: BenchRow[] = [];
  for (const c of cases) {
    if (c.precision === 'amp' && !autocastAvailable()) {
      log(`${c.model} ${c.width}x${c.height} b${c.batch} amp: this adapter has no shader-f16; no AMP row`);
      continue;
    }
    const spec = MODELS.find((m) => m.name === c.model)!;
    const cfg = loadConfig(spec.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3', 'SOLVER.AMP.ENABLED', String(c.precision === 'amp')]);
    const model = new CenterMask(cfg);
    model.train();
    const o: ModelBenchOptions = { ...FULL, models: [c.model], size: c.width, height: c.height, batch: c.batch, repeats, warmup: 0 };
    const scene = makeScene(o, 7);
    const opt = new SGD(
      model.parameters().filter((p) => p.requiresGrad),
      { lr: cfg.SOLVER.BASE_LR * cfg.SOLVER.WARMUP_FACTOR, momentum: cfg.SOLVER.MOMENTUM, weightDecay: cfg.SOLVER.WEIGHT_DECAY },
    );
    const where = `${c.width}x${c.height} b${c.batch} ${c.precision}`;
    const scaler = c.precision === 'amp' ? new GradScaler() : null;
    const st: Samples = {};
    for (let i = 0; i < repeats; i++) {
      await trainStep(model, opt, scene, st, scaler);
      log(`${c.model} ${where} train step ${i + 1}/${repeats}: ${(st.step!.at(-1)!.ms / 1e3).toFixed(1)} s, peak ${mb(st.step!.at(-1)!.peakBytes)} MB`);
    }
    const r = summarize(st.step!);
    rows.push({ suite: 'model', case: `${c.model} ${where} train step end to end (losses+backward+SGD, ${o.cellsPerImage} cells/img, no warm-up)`, ms: r.ms, min_ms: r.min, peak_mb: r.peak_mb, forward_mb: r.forward_mb });
    // Free this case's weights and momentum so that the next case's peak is its own.
    scaler?.dispose();
    opt.dispose();
    model.dispose();
  }
  return rows;
}

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => runScaleBench(scaleCasesFromEnv(), ctx.repeats ?? 1, ctx.log);
