// `cellseg predict`: COCO results json for a folder of PNGs (ids in sorted file order, the same
// ids `cellseg coco` gives test_images.json) or for the images of a COCO json.
//   cellseg predict --config-file F --weights output/.../model_final.safetensors --images datasets/synth/test --out results.json --tta
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { init } from '../../../runtime/runtime';
import { UserError } from '../../../runtime/errors';
import { loadConfig, type CfgNode } from '../../../models/config/config';
import { readCocoDataset } from '../../data/coco/read';
import type { CocoResult } from '../../data/coco/types';
import { writeJsonAtomic } from '../../io/atomic';
import { readPngGray } from '../../io/png';
import { resolveImage } from '../../data/train-loader';
import { buildTrainableModel } from '../../engine/build-model';
import { loadPretrainedWeights } from '../../engine/checkpoint';
import type { InstanceSegmenter } from '../../engine/model';
import { predictGray, predictorOptionsFromConfig, toCocoResults, type PredictorOptions } from '../../engine/predictor';
import { listPngIds } from './coco';
import { parsePerType, progress } from '../args';

export interface ImageEntry {
  id: number;
  file: string;
  name: string;
}

/** A folder of PNGs (ids 1.. in sorted order) or the images of a COCO json. */
export function listImages(images: string, imageRoot?: string): { entries: ImageEntry[]; categoryIds?: number[] } {
  if (!existsSync(images)) throw new UserError(`--images ${images} does not exist`);
  if (statSync(images).isDirectory()) {
    return { entries: listPngIds(images).map((id, i) => ({ id: i + 1, file: join(images, `${id}.png`), name: id })) };
  }
  const ds = readCocoDataset(images);
  const root = imageRoot ?? '.';
  return {
    entries: ds.images.map((im) => ({ id: im.id, file: resolveImage(root, im.file_name), name: basename(im.file_name).replace(/\.png$/i, '') })),
    categoryIds: ds.categories.length ? ds.categories.map((c) => c.id).sort((a, b) => a - b) : undefined,
  };
}

export async function predictImages(model: InstanceSegmenter, entries: readonly ImageEntry[], opts: PredictorOptions): Promise<CocoResult[]> {
  const results: CocoResult[] = [];
  const bar = progress(opts.tta ? 'predict (TTA x4)' : 'predict', entries.length);
  try {
    for (const e of entries) {
      const img = readPngGray(e.file);
      results.push(...toCocoResults(e.id, await predictGray(model, img.data, img.width, img.height, opts)));
      bar.tick();
    }
  } finally {
    bar.stop();
  }
  return results;
}

/** Build the model of `cfg` and load `weights` (all model tensors must be present). */
export async function loadModelForInference(cfg: CfgNode, weights: string): Promise<InstanceSegmenter> {
  await init();
  const model = buildTrainableModel(cfg);
  const r = await loadPretrainedWeights(weights, model);
  if (r.missing.length || r.skippedShape.length) {
    throw new UserError(`${weights} does not fit the model of this config: ${r.missing.length} tensors missing, ${r.skippedShape.length} of another shape (${[...r.missing, ...r.skippedShape].slice(0, 5).join(', ')}...)`);
  }
  model.eval();
  return model;
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('run CenterMask on images and write COCO results (segm RLE, bbox, score = mask score); --tta fuses 4 flips with WSF')
    .requiredOption('--config-file <file>', 'YAML config (with _BASE_ inheritance)')
    .requiredOption('--weights <file>', 'model weights (.safetensors from training, or .pth/.pkl)')
    .requiredOption('--images <dir|json>', 'folder of PNGs, or a COCO json whose images to predict')
    .option('--image-root <dir>', 'folder the COCO file_name entries are relative to (with a json --images)', '.')
    .option('--out <file>', 'COCO results json', 'output/results.json')
    .option('--tta', 'test-time augmentation: original, h-flip, v-flip, both; fused with Weighted Segments Fusion')
    .option('--wsf-skip <a,b,c>', 'WSF raw-score skip thresholds for shsy5y,astro,cort', '0.53,0.45,0.55')
    .argument('[overrides...]', 'KEY VALUE config overrides')
    .action(async (overrides: string[], o: { configFile: string; weights: string; images: string; imageRoot: string; out: string; tta?: boolean; wsfSkip: string }) => {
      const cfg = loadConfig(o.configFile, overrides);
      const { entries, categoryIds } = listImages(o.images, o.imageRoot);
      const ids = categoryIds ?? Array.from({ length: cfg.MODEL.FCOS.NUM_CLASSES }, (_, k) => k + 1);
      const model = await loadModelForInference(cfg, o.weights);
      const opts = { ...predictorOptionsFromConfig(cfg, ids, !!o.tta), wsf: { skipThresholds: parsePerType('--wsf-skip', o.wsfSkip) } };
      const t0 = performance.now();
      const results = await predictImages(model, entries, opts);
      writeJsonAtomic(o.out, results, 0);
      console.log(`wrote ${o.out}: ${results.length} instances on ${entries.length} images in ${((performance.now() - t0) / 1000).toFixed(1)} s${o.tta ? ' (TTA + WSF)' : ''}`);
    });
}
