// `cellseg train`: Detectron2's train_net.py for CenterMask on COCO json files
//   cellseg train --config-file configs/sartorius_centermask_lite_V_19_slim.yaml [--resume] SOLVER.MAX_ITER 50
// DATASETS.TRAIN / TEST name datasets; here the files behind them are --train-json / --val-json.
import type { Command } from 'commander';
import { loadConfig } from '../../../models/config/config';
import { runTraining } from '../../engine/train-net';
import { parseIntOption, parseMaxDets } from '../args';
import { checkOutputDir } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('train')
    .description('train CenterMask (Detectron2 DefaultTrainer semantics: SGD, warmup schedule, checkpoints, metrics.json, --resume)')
    .requiredOption('--config-file <file>', 'YAML config (with _BASE_ inheritance)')
    .option('--resume', 'continue from OUTPUT_DIR/last_checkpoint (weights, optimizer, schedule, iteration)')
    .option('--profile', 'profile one iteration (the third of this run, when the pipelines are compiled): per kernel calls, host and device time, printed and written to OUTPUT_DIR/profile.json')
    .option('--profile-iter <n>', 'with --profile: the iteration to profile', parseIntOption('--profile-iter', 0))
    .option('--strict', 'MODEL.WEIGHTS must fit the model exactly: fail on any tensor of another shape, missing or unused (default: skip those, report them in OUTPUT_DIR/weights_report.json)')
    .option('--num-gpus <n>', 'data parallelism: N WebGPU devices in this process, IMS_PER_BATCH / N images each (several devices on one adapter when WebGPU offers only one)', parseIntOption('--num-gpus', 1), 1)
    .option('--train-json <file>', 'COCO json behind DATASETS.TRAIN', 'output/folds/train_fold_0.json')
    .option('--val-json <file>', 'COCO json behind DATASETS.TEST (evaluated every TEST.EVAL_PERIOD and at the end)', 'output/folds/val_fold_0.json')
    .option('--image-root <dir>', 'folder the COCO file_name entries are relative to', 'datasets/synth')
    .option('--val-image-root <dir>', 'folder the validation json file_name entries are relative to (default: --image-root)')
    .option('--no-eval', 'train without the periodic evaluation')
    .option('--max-dets <list>', 'COCO maxDets of the evaluation, e.g. 1,100,1000 for images with hundreds of cells', '1,10,100')
    .option('--log-period <n>', 'iterations between metrics lines', parseIntOption('--log-period', 1), 20)
    .argument('[overrides...]', 'KEY VALUE config overrides, e.g. SOLVER.MAX_ITER 100')
    .action(async (overrides: string[], o: { configFile: string; resume?: boolean; strict?: boolean; trainJson: string; valJson: string; valImageRoot?: string; eval: boolean; maxDets: string; imageRoot: string; logPeriod: number; numGpus: number; profile?: boolean; profileIter?: number }) => {
      const cfg = loadConfig(o.configFile, overrides);
      checkOutputDir(cfg.OUTPUT_DIR, 'OUTPUT_DIR');
      const { result } = await runTraining({
        cfg,
        trainJson: o.trainJson,
        valJson: o.eval ? o.valJson : undefined,
        imageRoot: o.imageRoot,
        valImageRoot: o.valImageRoot,
        resume: o.resume,
        strictWeights: o.strict,
        logPeriod: o.logPeriod,
        numDevices: o.numGpus,
        profile: o.profile || o.profileIter !== undefined ? { iteration: o.profileIter } : undefined,
        maxDets: parseMaxDets(o.maxDets),
      });
      console.log(`trained iterations ${result.startIter}..${result.startIter + result.iterations - 1} in ${result.seconds.toFixed(1)} s; final weights ${result.finalCheckpoint ?? '(none)'}`);
    });
}

