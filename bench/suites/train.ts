// Benchmark suite `train`: seconds per iteration of the training recipe as `cellseg train` runs it
// (data loading and augmentation, losses, backward, clipping, SGD, lr schedule, the trainer's one
// wait per iteration), on a synthetic set in the Sartorius layout, for the ways a user can spend
// the same batch differently:
//   base   the recipe as configured (configs/synth_centermask_lite_V_19_slim_scratch.yaml:
//          V-19-slim with a BN backbone, 4 crops of 256², ROI batch 64)
//   accum  the same batch in micro-batches of one image (SOLVER.MICRO_BATCH_SIZE 1): the cost of
//          gradient accumulation
//   dp2    the same batch over 2 devices (--num-gpus 2; two devices on one adapter where WebGPU has
//          only one, so on a CPU driver the two halves share the same cores)
//   amp    mixed precision (SOLVER.AMP.ENABLED; skipped without shader-f16)
// Each row: median and min seconds per iteration over the timed iterations (after BENCH_TRAIN_WARMUP
// iterations that compile the pipelines), and the peak GPU memory the trainer reports.
// BENCH_TRAIN=base,accum,dp2,amp picks variants; BENCH_TRAIN_CONFIG another recipe; `--repeats N`
// timed iterations (default 4).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { median } from '../harness';
import { init } from '../../runtime/runtime';
import { autocastAvailable } from '../../engine/amp/autocast';
import { loadConfig } from '../../models/config/config';
import { writeSynthDataset } from '../../pipeline/data/synth/dataset';
import { readTrainCsvAll } from '../../pipeline/data/train-csv';
import { buildCocoDataset } from '../../pipeline/data/coco/build';
import { writeJsonAtomic } from '../../pipeline/io/atomic';
import { runTraining } from '../../pipeline/engine/train-net';

type Variant = 'base' | 'accum' | 'dp2' | 'amp';
const VARIANTS: Record<Variant, { overrides: string[]; devices: number; what: string }> = {
  base: { overrides: [], devices: 1, what: 'as configured' },
  accum: { overrides: ['SOLVER.MICRO_BATCH_SIZE', '1'], devices: 1, what: 'micro-batches of 1 image (gradient accumulation)' },
  dp2: { overrides: [], devices: 2, what: '2 devices on one adapter (--num-gpus 2)' },
  amp: { overrides: ['SOLVER.AMP.ENABLED', 'True'], devices: 1, what: 'mixed precision (SOLVER.AMP.ENABLED)' },
};

const DEFAULT_CONFIG = 'configs/synth_centermask_lite_V_19_slim_scratch.yaml';

export function variantsFromEnv(): Variant[] {
  const names = (process.env.BENCH_TRAIN ?? 'base,accum,dp2,amp').split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(n in VARIANTS)) throw new Error(`BENCH_TRAIN: unknown variant '${n}' (have: ${Object.keys(VARIANTS).join(', ')})`);
  return names as Variant[];
}

export function warmupFromEnv(): number {
  const v = process.env.BENCH_TRAIN_WARMUP ?? '2';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_TRAIN_WARMUP must be a positive integer, got '${v}'`);
  return n;
}

/** A synthetic training set (704x520, 8 images) under `dir`, as COCO json with RLE masks. */
async function makeDataset(dir: string): Promise<{ json: string; root: string }> {
  const root = join(dir, 'data');
  writeSynthDataset(root, { seed: 9137, trainImages: 8, testImages: 0, width: 704, height: 520 }, true);
  const { dataset } = buildCocoDataset(await readTrainCsvAll(join(root, 'train.csv')), { segmentation: 'rle', imageDir: 'train' });
  const json = join(dir, 'coco.json');
  writeJsonAtomic(json, dataset, 0);
  return { json, root };
}

/** The real CenterMask2's seconds per iteration on the default recipe (bench/results/pytorch-cpu-anchors.json). */
function recipeAnchor(): { ms: number; note: string } | null {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'pytorch-cpu-anchors.json');
  const rows = (JSON.parse(readFileSync(file, 'utf8')) as { rows: { suite: string; kind?: string; config?: string; ms: number; note?: string }[] }).rows;
  const r = rows.find((x) => x.suite === 'train' && x.kind === 'train iteration' && `configs/${x.config}.yaml` === DEFAULT_CONFIG);
  return r ? { ms: r.ms, note: r.note ?? '' } : null;
}

const PEAK = /peak GPU memory over the first \d+ iterations?: ([\d.]+) MiB of live tensors/;

export const run: BenchSuite = async (ctx: BenchContext) => {
  await init();
  const config = process.env.BENCH_TRAIN_CONFIG ?? DEFAULT_CONFIG;
  const warmup = warmupFromEnv();
  const timed = ctx.repeats ?? 4;
  const dir = mkdtempSync(join(tmpdir(), 'cellgpu-bench-train-'));
  const rows: BenchRow[] = [];
  try {
    const data = await makeDataset(dir);
    for (const v of variantsFromEnv()) {
      const spec = VARIANTS[v];
      if (v === 'amp' && !autocastAvailable()) {
        ctx.log('train amp: this adapter has no shader-f16; no AMP row');
        continue;
      }
      const out = join(dir, `out-${v}`);
      const cfg = loadConfig(config, [
        ...spec.overrides,
        'SOLVER.MAX_ITER', String(warmup + timed),
        'SOLVER.CHECKPOINT_PERIOD', '0',
        'TEST.EVAL_PERIOD', '0',
        'OUTPUT_DIR', out,
      ]);
      let peakMiB: number | undefined;
      const log = (l: string) => {
        const m = PEAK.exec(l);
        if (m) peakMiB = Number(m[1]);
      };
      const t0 = performance.now();
      await runTraining({ cfg, trainJson: data.json, imageRoot: data.root, logPeriod: 1, numDevices: spec.devices, log });
      const wall = (performance.now() - t0) / 1000;
      const times = readFileSync(join(out, 'metrics.json'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number>)
        .filter((r) => r.iteration !== undefined && r.time !== undefined && r.iteration >= warmup)
        .map((r) => r.time!);
      if (times.length === 0) throw new Error(`train ${v}: metrics.json has no timed iterations`);
      const anchor = v === 'base' && config === DEFAULT_CONFIG ? recipeAnchor() : null;
      const row: BenchRow = {
        suite: 'train',
        case: `${v}: ${config.replace(/^configs\//, '')}, IMS_PER_BATCH ${cfg.SOLVER.IMS_PER_BATCH}, ${spec.what}`,
        ms: median(times) * 1000,
        min_ms: Math.min(...times) * 1000,
        s_per_iter: Math.round(median(times) * 100) / 100,
        iterations: times.length,
        warmup,
        peak_mib: peakMiB,
        run_s: Math.round(wall),
        ...(anchor ? { peer: 'pytorch-cpu', peer_ms: anchor.ms, ratio: anchor.ms / (median(times) * 1000) } : {}),
      };
      ctx.log(`train ${v}: ${row.s_per_iter} s/iter (min ${(row.min_ms as number / 1000).toFixed(2)}), peak ${peakMiB ?? '?'} MiB`);
      rows.push(row);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
};
