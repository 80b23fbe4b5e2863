// The training loop of Detectron2's DefaultTrainer (SimpleTrainer.run_step + the default hooks)
// for any model with CenterMask's `losses` entry point:
//   per iteration: batch (seeded, resumable) -> losses -> total -> backward -> clip -> SGD step ->
//   lr schedule step, all inside scopeAsync so live memory stays flat; with SOLVER.AMP.ENABLED the
//   forward runs under autocast and the loss is scaled by a GradScaler (unscaled before clipping;
//   a step with inf/NaN gradients is skipped on the GPU), f32 with a warning where the adapter has
//   no f16 (amp.ts); with SOLVER.MICRO_BATCH_SIZE
//   the batch is split into micro-batches whose weighted gradients add up (gradient accumulation);
//   after the first iterations the peak GPU memory is logged, and a step that does not fit the
//   device fails with a UserError naming its largest tensor and what to change (memory.ts);
//   every LOG period (and before checkpoints/evaluation): the window's loss rows are read back in
//   one transfer, checked for NaN/inf (FloatingPointError naming the iteration, as Detectron2) and
//   written to metrics.json (medians over the window) and the console;
//   PeriodicCheckpointer (model_{iter:07d} every CHECKPOINT_PERIOD, model_final at the end);
//   EvalHook (every TEST.EVAL_PERIOD and after the last iteration).
// `resume` continues from last_checkpoint (weights, optimizer, schedule, iteration, seed) exactly,
// after dropping metrics.json's lines of later iterations; temporary files of a killed checkpoint
// write are removed at every start. Otherwise MODEL.WEIGHTS, if set, is loaded non-strictly for fine-tuning.
import cliProgress from 'cli-progress';
import { join } from 'node:path';
import type { CfgNode } from '../../models/config/config';
import { noGrad } from '../../engine/autograd';
import { rt, type Runtime } from '../../runtime/runtime';
import { formatProfile } from '../../runtime/profiler';
import { writeJsonAtomic } from '../io/atomic';
import { scopeAsync, type Tensor } from '../../engine/tensor';
import { add } from '../../engine/ops/elementwise';
import { cat } from '../../engine/ops/join';
import { UserError } from '../../runtime/errors';
import type { LRScheduler } from '../../engine/optim/lr-scheduler';
import { checkCropOptions, TrainLoader, type CropOptions, type TrainingSet, type TrainBatch } from '../data/train-loader';
import type { TrainableModel } from './model';
import { buildGradientClipper, buildLrScheduler, buildOptimizer } from './solver';
import { checkpointName, lastCheckpoint, loadWeightsForTraining, removeStaleCheckpointTemps, resumeFromCheckpoint, saveCheckpoint } from './checkpoint';
import { formatDuration, median, MetricsWriter, trimMetricsAfter } from './metrics';
import { lossesAndBackward, microBatches } from './trainer-step';
import { DataParallel } from './data-parallel';
import { explainMemoryError, memoryReport, type MemorySnapshot } from './memory';
import { gradScalerOf } from './amp';

export { lossesAndBackward, microBatches };

/** `cellseg train` reports the peak GPU memory after this many iterations (or fewer, if it runs fewer). */
const MEMORY_REPORT_ITERS = 3;

/** Detectron2 raises FloatingPointError when a loss is NaN or infinite; so do we. */
export class FloatingPointError extends UserError {
  override name = 'FloatingPointError';
  constructor(
    readonly iteration: number,
    readonly losses: Record<string, number>,
  ) {
    super(`Loss became infinite or NaN at iteration=${iteration}!\nloss_dict = ${JSON.stringify(losses)}`);
  }
}

export interface TrainerOptions {
  cfg: CfgNode;
  model: TrainableModel;
  train: TrainingSet;
  /** Default cfg.OUTPUT_DIR. */
  outputDir?: string;
  resume?: boolean;
  /** MODEL.WEIGHTS must fit the model exactly (cellseg train --strict); default: skip and report. */
  strictWeights?: boolean;
  /** Iterations between metrics read-backs and metrics.json lines (Detectron2: 20). */
  logPeriod?: number;
  /** Evaluation hook: metric name -> value (e.g. "segm/AP"); called with the model in eval mode. */
  evaluate?: (iteration: number) => Promise<Record<string, number>>;
  /** Image reader (tests pass in-memory images). */
  readGray?: (file: string, width: number, height: number) => Uint8Array;
  log?: (line: string) => void;
  /** Show a progress bar on stderr (default: when stderr is a terminal). */
  progressBar?: boolean;
  /** Data parallelism (`--num-gpus`): the devices (runtime.ts openDevices; `model` lives on the
   *  first) and how to build a replica of the model on each of the others. */
  devices?: readonly Runtime[];
  buildReplica?: () => TrainableModel;
  /** Profile one iteration (`cellseg train --profile`; default: the third of this run, when the
   *  pipelines are compiled): per kernel calls, host dispatch time and device time, printed as a
   *  table and written to OUTPUT_DIR/profile.json. */
  profile?: { iteration?: number };
}

export interface TrainResult {
  startIter: number;
  /** Iterations run by this call. */
  iterations: number;
  seed: number;
  outputDir: string;
  finalCheckpoint: string | null;
  /** The last metrics.json training line written. */
  lastMetrics: Record<string, number> | null;
  /** Evaluation results by iteration. */
  evals: { iteration: number; results: Record<string, number> }[];
  seconds: number;
}

interface PendingRow {
  iteration: number;
  row: Tensor;
  lr: number;
  time: number;
  dataTime: number;
}

/** The lr Detectron2 logs: that of the group with the most parameters. */
function loggedLr(groups: readonly { lr: number; params: readonly unknown[] }[]): number {
  let best = groups[0]!;
  for (const g of groups) if (g.params.length > best.params.length) best = g;
  return best.lr;
}

export async function train(o: TrainerOptions): Promise<TrainResult> {
  const cfg = o.cfg;
  const log = o.log ?? ((l: string) => console.log(l));
  const outputDir = o.outputDir ?? cfg.OUTPUT_DIR;
  const logPeriod = o.logPeriod ?? 20;
  const maxIter = cfg.SOLVER.MAX_ITER;
  const started = performance.now();
  const model = o.model;
  model.train();

  const { optimizer } = buildOptimizer(cfg, model);
  const params = optimizer.paramGroups.flatMap((g) => g.params);
  const clipper = buildGradientClipper(cfg);
  const scaler = gradScalerOf(cfg, log);
  if (scaler) log('mixed precision (SOLVER.AMP.ENABLED): f16 activations under autocast, GradScaler initial scale 65536');

  let startIter = 0;
  let seed = cfg.SEED >= 0 ? cfg.SEED : Math.floor(Math.random() * 2 ** 31);
  const stale = removeStaleCheckpointTemps(outputDir);
  if (stale.length) log(`removed ${stale.length} temporary file${stale.length === 1 ? '' : 's'} of an interrupted checkpoint write: ${stale.join(', ')}`);
  const last = o.resume ? await lastCheckpoint(outputDir) : null;
  if (last) {
    const st = await resumeFromCheckpoint(last, model, optimizer, scaler);
    startIter = st.iteration + 1;
    seed = st.seed;
    log(`resumed from ${last}: continuing at iteration ${startIter} of ${maxIter}`);
  } else {
    if (o.resume) log(`--resume: no ${join(outputDir, 'last_checkpoint')} yet, starting from scratch`);
    if (cfg.MODEL.WEIGHTS) {
      await loadWeightsForTraining(cfg.MODEL.WEIGHTS, model, outputDir, { strict: o.strictWeights, log });
    }
  }
  if (o.resume) {
    const dropped = trimMetricsAfter(join(outputDir, 'metrics.json'), startIter - 1);
    if (dropped) log(`metrics.json: dropped ${dropped} line${dropped === 1 ? '' : 's'} of the interrupted run after iteration ${startIter - 1} (they are computed again)`);
  }
  const scheduler: LRScheduler = buildLrScheduler(cfg, optimizer, startIter);
  let dp: DataParallel | null = null;
  if (o.devices && o.devices.length > 1) {
    if (!o.buildReplica) throw new Error('train: several devices need buildReplica');
    if (o.devices[0] !== rt()) throw new Error('train: the model must live on the first device');
    dp = DataParallel.create(cfg, o.devices, model, optimizer, o.buildReplica, scaler);
    await dp.broadcast();
    log(`data parallel: ${dp.size} devices, ${cfg.SOLVER.IMS_PER_BATCH / dp.size} images each per iteration`);
  }

  const loader = new TrainLoader(
    o.train.records,
    {
      crop: cropOf(cfg),
      minSizes: cfg.INPUT.MIN_SIZE_TRAIN,
      sampling: samplingOf(cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING),
      maxSize: cfg.INPUT.MAX_SIZE_TRAIN,
      randomFlip: flipOf(cfg.INPUT.RANDOM_FLIP),
      batchSize: cfg.SOLVER.IMS_PER_BATCH,
      seed,
      aspectRatioGrouping: cfg.DATALOADER.ASPECT_RATIO_GROUPING,
    },
    o.readGray,
  );

  const perDevice = cfg.SOLVER.IMS_PER_BATCH / (dp?.size ?? 1);
  const parts = microBatches(perDevice, cfg.SOLVER.MICRO_BATCH_SIZE, dp ? `the ${perDevice} images per device` : undefined);
  if (parts.length > 1) log(`gradient accumulation: ${parts.length} micro-batches of ${cfg.SOLVER.MICRO_BATCH_SIZE} images per iteration${dp ? ' and device' : ''} (SOLVER.MICRO_BATCH_SIZE)`);

  const metrics = new MetricsWriter(join(outputDir, 'metrics.json'));
  const result: TrainResult = { startIter, iterations: 0, seed, outputDir, finalCheckpoint: null, lastMetrics: null, evals: [], seconds: 0 };
  let lossNames: string[] | null = null;
  let pending: PendingRow[] = [];

  const showBar = o.progressBar ?? !!process.stderr.isTTY;
  const bar = showBar
    ? new cliProgress.SingleBar(
        { format: 'train [{bar}] {value}/{total} | loss {loss} | lr {lr} | eta {eta_formatted}', stream: process.stderr, hideCursor: true, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(maxIter, startIter, { loss: '-', lr: '-' });

  /** Read the pending loss rows back in one transfer, check them, write metrics. */
  const flushMetrics = async () => {
    if (pending.length === 0 || !lossNames) return;
    const rows = pending;
    pending = [];
    const all = noGrad(() => cat(rows.map((r) => r.row)));
    let values: Float32Array;
    try {
      values = (await all.data()) as Float32Array;
    } finally {
      all.dispose();
      for (const r of rows) r.row.dispose();
    }
    const k = lossNames.length + 1;
    rows.forEach((r, i) => {
      const vals = values.subarray(i * k, (i + 1) * k);
      if (vals.some((v) => !Number.isFinite(v))) {
        const d: Record<string, number> = {};
        lossNames!.forEach((n, j) => (d[n] = vals[j]!));
        throw new FloatingPointError(r.iteration, d);
      }
    });
    const lastRow = rows[rows.length - 1]!;
    const scalars: Record<string, number> = {};
    lossNames.forEach((n, j) => (scalars[n] = median(rows.map((_, i) => values[i * k + j]!))));
    scalars.total_loss = median(rows.map((_, i) => values[i * k + k - 1]!));
    scalars.lr = lastRow.lr;
    scalars.time = median(rows.map((r) => r.time));
    scalars.data_time = median(rows.map((r) => r.dataTime));
    scalars.eta_seconds = (maxIter - lastRow.iteration - 1) * scalars.time;
    metrics.write(lastRow.iteration, scalars);
    result.lastMetrics = { iteration: lastRow.iteration, ...scalars };
    const losses = [['total_loss', scalars.total_loss], ...lossNames.map((n) => [n, scalars[n]!] as const)].map(([n, v]) => `${n}: ${(v as number).toFixed(4)}`);
    const line = ` eta: ${formatDuration(scalars.eta_seconds)}  iter: ${lastRow.iteration}  ${losses.join('  ')}  time: ${scalars.time.toFixed(4)}  data_time: ${scalars.data_time.toFixed(4)}  lr: ${scalars.lr.toExponential(3)}`;
    if (bar) bar.update({ loss: scalars.total_loss.toFixed(3), lr: scalars.lr.toExponential(2) });
    else log(line);
  };

  const runEval = async (iteration: number) => {
    if (!o.evaluate) return;
    await flushMetrics();
    model.eval();
    try {
      const results = await o.evaluate(iteration);
      metrics.write(iteration, results);
      result.evals.push({ iteration, results });
      log(`evaluation at iteration ${iteration}: ${Object.entries(results).map(([n, v]) => `${n} ${Number.isFinite(v) ? v.toFixed(4) : v}`).join(', ')}`);
    } finally {
      model.train();
    }
  };

  const save = async (iteration: number, name: string) => {
    await flushMetrics(); // never checkpoint weights that a NaN loss has already corrupted unnoticed
    const file = await saveCheckpoint({ dir: outputDir, name, model, optimizer, gradScaler: scaler, state: { iteration, seed, schedulerIter: scheduler.lastIter } });
    if (!bar) log(`saved ${file}`);
    return file;
  };

  /** The losses' names must be the same at every call. */
  const checkNames = (iter: number) => (names: string[]) => {
    if (!lossNames) lossNames = names;
    else if (names.join() !== lossNames.join()) throw new Error(`model.losses returned [${names}] at iteration ${iter}, earlier [${lossNames}]`);
  };
  /** One iteration's update: zero the gradients, forward and backward per micro-batch (gradients
   *  add up), clip, SGD step; over all devices with data parallelism. Returns the loss row
   *  [each loss..., total] of the whole batch. */
  const step = (batch: TrainBatch, iter: number): Promise<Tensor> =>
    dp ? dp.step(batch, checkNames(iter)) : scopeAsync(async () => {
      optimizer.zeroGrad();
      let acc: Tensor | null = null;
      for (const [s, e] of parts) {
        const part = await lossesAndBackward(model, batch.inputs.slice(s, e), batch.gts.slice(s, e), (e - s) / batch.inputs.length, checkNames(iter), scaler);
        acc = acc ? noGrad(() => add(acc!, part)) : part;
      }
      if (scaler) {
        // torch's order: unscale, clip the unscaled gradients, step (skipped on the GPU when they
        // hold inf/NaN), update the scale.
        scaler.unscale(optimizer);
        clipper?.(params);
        scaler.step(optimizer);
        scaler.update();
      } else {
        clipper?.(params);
        optimizer.step();
      }
      return acc!;
    });

  const memoryNow = (): MemorySnapshot => {
    const r = rt();
    const s = r.pool.getStats();
    return { peakBytes: s.peakBytes, allocatedBytes: s.allocatedBytes, largest: r.pool.largestAcquired(), maxBindingBytes: r.gpu.limits.maxStorageBufferBindingSize, maxBufferBytes: r.gpu.limits.maxBufferSize };
  };
  const reportAfter = Math.min(maxIter, startIter + MEMORY_REPORT_ITERS) - 1;
  const profileAt = o.profile ? (o.profile.iteration ?? Math.min(startIter + 2, maxIter - 1)) : -1;
  if (o.profile && (profileAt < startIter || profileAt >= maxIter)) log(`--profile: iteration ${profileAt} is not in this run (${startIter}..${maxIter - 1}); nothing is profiled`);
  rt().pool.resetPeak();

  try {
    for (let iter = startIter; iter < maxIter; iter++) {
      const t0 = performance.now();
      const batch: TrainBatch = loader.batch(iter);
      const dataTime = (performance.now() - t0) / 1000;
      let row: Tensor;
      try {
        if (iter === profileAt) {
          const { result: r, report } = await rt().profile(() => step(batch, iter));
          row = r;
          log(`profile of iteration ${iter}${dp ? ' (device 0)' : ''}:\n${formatProfile(report, 25)}`);
          writeJsonAtomic(join(outputDir, 'profile.json'), { iteration: iter, ...report });
        } else {
          row = await step(batch, iter);
        }
        await rt().sync(); // bounds the queue (and memory) to one iteration and makes `time` honest
      } catch (err) {
        throw explainMemoryError(err, iter, cfg, memoryNow()) ?? err;
      }
      if (iter === reportAfter) log(memoryReport(iter - startIter + 1, memoryNow()));
      const lr = loggedLr(optimizer.paramGroups);
      scheduler.step();
      pending.push({ iteration: iter, row, lr, time: (performance.now() - t0) / 1000, dataTime });
      result.iterations++;
      bar?.update(iter + 1);

      if ((iter + 1) % logPeriod === 0 || iter === maxIter - 1) await flushMetrics();
      const period = cfg.SOLVER.CHECKPOINT_PERIOD;
      if (period > 0 && (iter + 1) % period === 0) await save(iter, checkpointName(iter));
      if (iter === maxIter - 1) result.finalCheckpoint = await save(iter, checkpointName('final'));
      const evalPeriod = cfg.TEST.EVAL_PERIOD;
      if (evalPeriod > 0 && (iter + 1) % evalPeriod === 0 && iter + 1 !== maxIter) await runEval(iter);
    }
    await flushMetrics();
    if (result.iterations > 0) await runEval(maxIter - 1);
  } finally {
    bar?.stop();
    for (const r of pending) r.row.dispose();
    dp?.dispose();
    optimizer.dispose();
    scaler?.dispose();
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/** INPUT.CROP as loader options (undefined when disabled). */
export function cropOf(cfg: CfgNode): CropOptions | undefined {
  if (!cfg.INPUT.CROP.ENABLED) return undefined;
  const c: CropOptions = { type: cfg.INPUT.CROP.TYPE as CropOptions['type'], size: cfg.INPUT.CROP.SIZE };
  checkCropOptions(c);
  return c;
}

/** INPUT.MASK_FORMAT as the training set's mask form. */
export function maskFormatOf(cfg: CfgNode): 'polygon' | 'bitmask' {
  const f = cfg.INPUT.MASK_FORMAT;
  if (f === 'polygon' || f === 'bitmask') return f;
  throw new UserError(`INPUT.MASK_FORMAT '${f}' is not supported (polygon or bitmask)`);
}

function samplingOf(s: string): 'choice' | 'range' {
  if (s === 'choice' || s === 'range') return s;
  throw new UserError(`INPUT.MIN_SIZE_TRAIN_SAMPLING '${s}' is not supported (choice or range)`);
}

function flipOf(s: string): 'horizontal' | 'vertical' | 'none' {
  if (s === 'horizontal' || s === 'vertical' || s === 'none') return s;
  throw new UserError(`INPUT.RANDOM_FLIP '${s}' is not supported (horizontal, vertical or none)`);
}
