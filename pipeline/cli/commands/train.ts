// `cellseg train`: Detectron2's train_net.py for CenterMask on COCO json files
//   cellseg train --config-file configs/sartorius_centermask_lite_V_19_slim.yaml [--resume] SOLVER.MAX_ITER 50
// DATASETS.TRAIN / TEST name datasets; here the files behind them are --train-json / --val-json.
import { existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { init } from '../../../runtime/runtime';
import { getGpu } from '../../../runtime/device';
import { UserError } from '../../../runtime/errors';
import { loadConfig, type CfgNode } from '../../../models/config/config';
import { readCocoDataset } from '../../data/coco/read';
import { writeFileAtomic } from '../../io/atomic';
import { loadTrainingSet } from '../../data/train-loader';
import { buildTrainableModel } from '../../engine/build-model';
import { maskFormatOf, train, type TrainResult } from '../../engine/trainer';
import type { TrainableModel } from '../../engine/model';
import { evaluateModel } from '../../evaluation/evaluator';
import { predictorOptionsFromConfig } from '../../engine/predictor';
import { parseIntOption, parseMaxDets } from '../args';

export interface TrainCommandOptions {
  cfg: CfgNode;
  trainJson: string;
  valJson?: string;
  imageRoot: string;
  /** Folder the validation json's file names are relative to (default imageRoot). */
  valImageRoot?: string;
  resume?: boolean;
  logPeriod?: number;
  /** COCOeval maxDets for the periodic evaluation (default [1, 10, 100]). */
  maxDets?: number[];
  log?: (line: string) => void;
}

/** Load data, build the model, train (with evaluation on valJson when given). */
export async function runTraining(o: TrainCommandOptions): Promise<{ result: TrainResult; model: TrainableModel; categoryIds: number[] }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const set = loadTrainingSet(o.trainJson, o.imageRoot, { filterEmpty: o.cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS, maskFormat: maskFormatOf(o.cfg) });
  if (set.categoryIds.length !== o.cfg.MODEL.FCOS.NUM_CLASSES) {
    throw new UserError(`${o.trainJson} has ${set.categoryIds.length} categories but MODEL.FCOS.NUM_CLASSES is ${o.cfg.MODEL.FCOS.NUM_CLASSES}`);
  }
  log(`training set ${o.trainJson}: ${set.records.length} images${set.skippedEmpty ? ` (${set.skippedEmpty} without annotations skipped)` : ''}, ${set.records.reduce((n, r) => n + r.annotations.length, 0)} instances`);
  await init();
  const model = buildTrainableModel(o.cfg);
  mkdirSync(o.cfg.OUTPUT_DIR, { recursive: true });
  writeFileAtomic(join(o.cfg.OUTPUT_DIR, 'config.yaml'), o.cfg.dump());
  writeFileAtomic(join(o.cfg.OUTPUT_DIR, 'env.json'), JSON.stringify(await trainingEnv(), null, 2) + '\n');
  if (o.valJson && !existsSync(o.valJson)) throw new UserError(`--val-json ${o.valJson}: no such file (pass an existing COCO json, or --no-eval to train without evaluation)`);
  const val = o.valJson ? readCocoDataset(o.valJson) : undefined;
  const valRoot = o.valImageRoot ?? o.imageRoot;
  const evaluate = val
    ? async () => (await evaluateModel(model, val, { imageRoot: valRoot, predictor: predictorOptionsFromConfig(o.cfg, set.categoryIds), maxDets: o.maxDets })).metrics
    : undefined;
  const result = await train({ cfg: o.cfg, model, train: set, resume: o.resume, logPeriod: o.logPeriod, evaluate, log });
  return { result, model, categoryIds: set.categoryIds };
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

export function register(program: Command): void {
  program
    .command('train')
    .description('train CenterMask (Detectron2 DefaultTrainer semantics: SGD, warmup schedule, checkpoints, metrics.json, --resume)')
    .requiredOption('--config-file <file>', 'YAML config (with _BASE_ inheritance)')
    .option('--resume', 'continue from OUTPUT_DIR/last_checkpoint (weights, optimizer, schedule, iteration)')
    .option('--num-gpus <n>', 'accepted for Detectron2 compatibility and ignored (one WebGPU device)')
    .option('--train-json <file>', 'COCO json behind DATASETS.TRAIN', 'output/folds/train_fold_0.json')
    .option('--val-json <file>', 'COCO json behind DATASETS.TEST (evaluated every TEST.EVAL_PERIOD and at the end)', 'output/folds/val_fold_0.json')
    .option('--image-root <dir>', 'folder the COCO file_name entries are relative to', 'datasets/synth')
    .option('--val-image-root <dir>', 'folder the validation json file_name entries are relative to (default: --image-root)')
    .option('--no-eval', 'train without the periodic evaluation')
    .option('--max-dets <list>', 'COCO maxDets of the evaluation, e.g. 1,100,1000 for images with hundreds of cells', '1,10,100')
    .option('--log-period <n>', 'iterations between metrics lines', parseIntOption('--log-period', 1), 20)
    .argument('[overrides...]', 'KEY VALUE config overrides, e.g. SOLVER.MAX_ITER 100')
    .action(async (overrides: string[], o: { configFile: string; resume?: boolean; trainJson: string; valJson: string; valImageRoot?: string; eval: boolean; maxDets: string; imageRoot: string; logPeriod: number }) => {
      const cfg = loadConfig(o.configFile, overrides);
      const { result } = await runTraining({
        cfg,
        trainJson: o.trainJson,
        valJson: o.eval ? o.valJson : undefined,
        imageRoot: o.imageRoot,
        valImageRoot: o.valImageRoot,
        resume: o.resume,
        logPeriod: o.logPeriod,
        maxDets: parseMaxDets(o.maxDets),
      });
      console.log(`trained iterations ${result.startIter}..${result.startIter + result.iterations - 1} in ${result.seconds.toFixed(1)} s; final weights ${result.finalCheckpoint ?? '(none)'}`);
    });
}
