// `cellseg train`: Detectron2's train_net.py for CenterMask on COCO json files
//   cellseg train --config-file configs/sartorius_centermask_lite_V_19_slim.yaml [--resume] SOLVER.MAX_ITER 50
// DATASETS.TRAIN / TEST name datasets; here the files behind them are --train-json / --val-json.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { init } from '../../core/runtime';
import { UserError } from '../../core/errors';
import { loadConfig, type CfgNode } from '../../models/config/config';
import { readCocoDataset } from '../coco/read';
import { writeFileAtomic } from '../io/atomic';
import { loadTrainingSet } from '../train/dataset';
import { buildTrainableModel } from '../train/build-model';
import { train, type TrainResult } from '../train/trainer';
import type { TrainableModel } from '../train/model';
import { evaluateModel } from '../predict/evaluate';
import { predictorOptionsFromConfig } from '../predict/predictor';
import { parseIntOption } from './progress';

export interface TrainCommandOptions {
  cfg: CfgNode;
  trainJson: string;
  valJson?: string;
  imageRoot: string;
  resume?: boolean;
  logPeriod?: number;
  log?: (line: string) => void;
}

/** Load data, build the model, train (with evaluation on valJson when given). */
export async function runTraining(o: TrainCommandOptions): Promise<{ result: TrainResult; model: TrainableModel; categoryIds: number[] }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const set = loadTrainingSet(o.trainJson, o.imageRoot, { filterEmpty: o.cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS });
  if (set.categoryIds.length !== o.cfg.MODEL.FCOS.NUM_CLASSES) {
    throw new UserError(`${o.trainJson} has ${set.categoryIds.length} categories but MODEL.FCOS.NUM_CLASSES is ${o.cfg.MODEL.FCOS.NUM_CLASSES}`);
  }
  log(`training set ${o.trainJson}: ${set.records.length} images${set.skippedEmpty ? ` (${set.skippedEmpty} without annotations skipped)` : ''}, ${set.records.reduce((n, r) => n + r.annotations.length, 0)} instances`);
  await init();
  const model = buildTrainableModel(o.cfg);
  mkdirSync(o.cfg.OUTPUT_DIR, { recursive: true });
  writeFileAtomic(join(o.cfg.OUTPUT_DIR, 'config.yaml'), o.cfg.dump());
  const val = o.valJson && existsSync(o.valJson) ? readCocoDataset(o.valJson) : undefined;
  const evaluate = val
    ? async () => (await evaluateModel(model, val, { imageRoot: o.imageRoot, predictor: predictorOptionsFromConfig(o.cfg, set.categoryIds) })).metrics
    : undefined;
  const result = await train({ cfg: o.cfg, model, train: set, resume: o.resume, logPeriod: o.logPeriod, evaluate, log });
  return { result, model, categoryIds: set.categoryIds };
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
    .option('--log-period <n>', 'iterations between metrics lines', parseIntOption('--log-period', 1), 20)
    .argument('[overrides...]', 'KEY VALUE config overrides, e.g. SOLVER.MAX_ITER 100')
    .action(async (overrides: string[], o: { configFile: string; resume?: boolean; trainJson: string; valJson: string; imageRoot: string; logPeriod: number }) => {
      const cfg = loadConfig(o.configFile, overrides);
      const { result } = await runTraining({ cfg, trainJson: o.trainJson, valJson: o.valJson, imageRoot: o.imageRoot, resume: o.resume, logPeriod: o.logPeriod });
      console.log(`trained iterations ${result.startIter}..${result.startIter + result.iterations - 1} in ${result.seconds.toFixed(1)} s; final weights ${result.finalCheckpoint ?? '(none)'}`);
    });
}
