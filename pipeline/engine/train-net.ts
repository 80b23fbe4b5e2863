// Training as Detectron2's tools/train_net.py does it for CenterMask on COCO json files: load the
// training set, build the model, write OUTPUT_DIR/config.yaml and env.json, and train with
// DefaultTrainer semantics (engine/trainer.ts), evaluating on a validation json every
// TEST.EVAL_PERIOD and at the end when one is given.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { init } from '../../runtime/runtime';
import { openDevices } from '../../runtime/devices';
import { getGpu } from '../../runtime/device';
import { UserError } from '../../runtime/errors';
import type { CfgNode } from '../../models/config/config';
import { writeFileAtomic } from '../io/atomic';
import { readCocoDataset } from '../data/coco/read';
import { loadTrainingSet } from '../data/train-loader';
import { METRICS_PLOT, writeMetricsPlot } from '../viz/plot';
import { inferenceOnDataset } from '../evaluation/evaluator';
import { buildTrainableModel, type TrainableModel } from './model';
import { imagePredictor, predictorOptionsFromConfig } from './predictor';
import { maskFormatOf, train, type TrainResult } from './trainer';

export interface TrainNetOptions {
  cfg: CfgNode;
  trainJson: string;
  valJson?: string;
  imageRoot: string;
  /** Folder the validation json's file names are relative to (default imageRoot). */
  valImageRoot?: string;
  resume?: boolean;
  /** MODEL.WEIGHTS must fit the model exactly (otherwise: skipped tensors reported, training goes on). */
  strictWeights?: boolean;
  logPeriod?: number;
  /** Profile one iteration (`--profile`): a kernel table in the log and OUTPUT_DIR/profile.json. */
  profile?: { iteration?: number };
  /** Data parallelism: devices to train on (`--num-gpus`; default 1). */
  numDevices?: number;
  /** COCOeval maxDets for the periodic evaluation (default [1, 10, 100]). */
  maxDets?: number[];
  log?: (line: string) => void;
}

/** Load data, build the model, train (with evaluation on valJson when given). */
export async function runTraining(o: TrainNetOptions): Promise<{ result: TrainResult; model: TrainableModel; categoryIds: number[] }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const set = loadTrainingSet(o.trainJson, o.imageRoot, { filterEmpty: o.cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS, maskFormat: maskFormatOf(o.cfg) });
  if (set.categoryIds.length !== o.cfg.MODEL.FCOS.NUM_CLASSES) {
    throw new UserError(`${o.trainJson} has ${set.categoryIds.length} categories but MODEL.FCOS.NUM_CLASSES is ${o.cfg.MODEL.FCOS.NUM_CLASSES}`);
  }
  log(`training set ${o.trainJson}: ${set.records.length} images${set.skippedEmpty ? ` (${set.skippedEmpty} without annotations skipped)` : ''}, ${set.records.reduce((n, r) => n + r.annotations.length, 0)} instances`);
  // Everything that can be checked is checked before OUTPUT_DIR is made (no half-made folder).
  if (o.valJson && !existsSync(o.valJson)) throw new UserError(`--val-json ${o.valJson}: no such file (pass an existing COCO json, or --no-eval to train without evaluation)`);
  const val = o.valJson ? readCocoDataset(o.valJson) : undefined;
  await init();
  const numDevices = o.numDevices ?? 1;
  const devices = numDevices > 1 ? await openDevices(numDevices) : undefined;
  const model = buildTrainableModel(o.cfg);
  const freshDir = !existsSync(o.cfg.OUTPUT_DIR);
  let result: TrainResult;
  try {
    mkdirSync(o.cfg.OUTPUT_DIR, { recursive: true });
    writeFileAtomic(join(o.cfg.OUTPUT_DIR, 'config.yaml'), o.cfg.dump());
    writeFileAtomic(join(o.cfg.OUTPUT_DIR, 'env.json'), JSON.stringify({ ...(await trainingEnv()), devices: numDevices }, null, 2) + '\n');
    const valRoot = o.valImageRoot ?? o.imageRoot;
    const predict = imagePredictor(model, predictorOptionsFromConfig(o.cfg, set.categoryIds));
    const evaluate = val ? async () => (await inferenceOnDataset(predict, val, { imageRoot: valRoot, maxDets: o.maxDets })).metrics : undefined;
    const replicas = devices ? { devices, buildReplica: () => buildTrainableModel(o.cfg) } : {};
    result = await train({ cfg: o.cfg, model, train: set, resume: o.resume, strictWeights: o.strictWeights, logPeriod: o.logPeriod, evaluate, log, profile: o.profile, ...replicas });
  } catch (err) {
    if (freshDir) removeIfOnlySetup(o.cfg.OUTPUT_DIR);
    throw err;
  }
  writeCurves(o.cfg.OUTPUT_DIR, log);
  return { result, model, categoryIds: set.categoryIds };
}

/** A folder this run made that holds nothing but its setup files (config.yaml, env.json, empty
 *  logs) is removed after a failure at start; one with checkpoints or metrics is kept. */
function removeIfOnlySetup(dir: string): void {
  try {
    const names = readdirSync(dir);
    const setup = new Set(['config.yaml', 'env.json']);
    if (names.every((n) => setup.has(n) || (n.startsWith('.') && n.endsWith('.tmp')) || (statSync(join(dir, n)).isFile() && statSync(join(dir, n)).size === 0))) {
      rmSync(dir, { recursive: true, force: true });
    }
  } catch {
    // best effort: the original error is the one to report
  }
}

/** Where a run trained (Detectron2 logs collect_env_info at start): the adapter, the host, Node. */
export async function trainingEnv(): Promise<Record<string, unknown>> {
  const gpu = await getGpu();
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    adapter: `${gpu.adapter.description || gpu.adapter.device || '?'} (vendor ${gpu.adapter.vendor || '?'}, ${gpu.runtime})`,
    host_cpu: `${cpu[0]?.model ?? '?'} x ${cpu.length}`,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** OUTPUT_DIR/metrics.png from OUTPUT_DIR/metrics.json at the end of training (as `cellseg
 *  plot-metrics OUTPUT_DIR`); a failure to draw is a warning, not a failed training. */
function writeCurves(outputDir: string, log: (line: string) => void): void {
  const metrics = join(outputDir, 'metrics.json');
  if (!existsSync(metrics)) return;
  try {
    writeMetricsPlot(metrics, join(outputDir, METRICS_PLOT));
    log(`training curves: ${join(outputDir, METRICS_PLOT)}`);
  } catch (err) {
    log(`warning: could not draw ${join(outputDir, METRICS_PLOT)}: ${(err as Error).message}`);
  }
}
