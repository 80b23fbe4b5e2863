// `cellseg predict`: COCO results json for a folder of images (PNG or TIFF; ids in sorted file
// order, the same ids `cellseg coco` gives test_images.json) or for the images of a COCO json.
// Several --weights make an ensemble: every model predicts (with its TTA under --tta) and all
// passes of all models are fused with Weighted Segments Fusion, each model's passes weighted by
// --model-weights.
//   cellseg predict --config-file F --weights output/.../model_final.safetensors --images datasets/synth/test --out results.json --tta
//   cellseg predict --config-file A.yaml --weights a.safetensors --config-file B.yaml --weights b.safetensors --model-weights 2,1 --images DIR
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { loadConfig } from '../../../models/config/config';
import { listImages } from '../../data/image-list';
import { writeOverlayPng } from '../../viz/overlay';
import { predictEnsemble, type EnsembleMember } from '../../engine/ensemble';
import { loadModelForInference, predictImages, predictorOptionsFromConfig, type OnImagePredicted } from '../../engine/predictor';
import { writeJsonAtomic } from '../../io/atomic';
import { collectOption, parseModelWeights, parsePerType, pairConfigs, parseFraction } from '../args';
import { checkOutputDir, checkOutputs } from '../../io/output-path';

interface PredictOptions {
  configFile: string[];
  weights: string[];
  modelWeights?: string;
  images: string;
  imageRoot: string;
  out: string;
  tta?: boolean;
  wsfSkip: string;
  overlay?: string;
  overlayScoreThresh: number;
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('run CenterMask on images and write COCO results (segm RLE, bbox, score = mask score); --tta fuses 4 flips with WSF; several --weights fuse an ensemble with WSF')
    .option('--config-file <file>', 'YAML config (with _BASE_ inheritance); repeat once per --weights (matched by position), or give one for all', collectOption, [])
    .option('--weights <file>', 'model weights (.safetensors from training, or .pth/.pkl); repeat for an ensemble', collectOption, [])
    .option('--model-weights <w,...>', 'ensemble: WSF weight of each model (comma-separated, one per --weights; default all 1)')
    .requiredOption('--images <dir|json>', 'folder of PNG/TIFF images, or a COCO json whose images to predict')
    .option('--image-root <dir>', 'folder the COCO file_name entries are relative to (with a json --images)', '.')
    .option('--out <file>', 'COCO results json', 'output/results.json')
    .option('--tta', 'test-time augmentation: original, h-flip, v-flip, both; fused with Weighted Segments Fusion')
    .option('--wsf-skip <a,b,c>', 'WSF raw-score skip thresholds for shsy5y,astro,cort', '0.53,0.45,0.55')
    .option('--overlay <dir>', 'also write one overlay PNG per image (its predicted masks over the image) into this folder')
    .option('--overlay-score-thresh <x>', 'instances drawn in --overlay pictures score at least this', parseFraction('--overlay-score-thresh'), 0.3)
    .argument('[overrides...]', 'KEY VALUE config overrides (applied to every config)')
    .action(async (overrides: string[], o: PredictOptions) => {
      checkOutputs({ '--out': o.out });
      if (o.overlay !== undefined) checkOutputDir(o.overlay, '--overlay');
      if (o.weights.length === 0) throw new UserError("required option '--weights <file>' not specified");
      if (o.configFile.length === 0) throw new UserError("required option '--config-file <file>' not specified");
      const configs = pairConfigs(o.configFile, o.weights.length);
      const modelWeights = o.modelWeights === undefined ? o.weights.map(() => 1) : parseModelWeights(o.modelWeights, o.weights.length);
      const { entries, categoryIds } = listImages(o.images, o.imageRoot);
      const wsf = { skipThresholds: parsePerType('--wsf-skip', o.wsfSkip) };
      const members: EnsembleMember[] = [];
      for (let i = 0; i < o.weights.length; i++) {
        const cfg = loadConfig(configs[i]!, overrides);
        const ids = categoryIds ?? Array.from({ length: cfg.MODEL.FCOS.NUM_CLASSES }, (_, k) => k + 1);
        members.push({ model: await loadModelForInference(cfg, o.weights[i]!), opts: { ...predictorOptionsFromConfig(cfg, ids, !!o.tta), wsf }, weight: modelWeights[i] });
      }
      let onImage: OnImagePredicted | undefined;
      if (o.overlay) {
        const dir = o.overlay;
        mkdirSync(dir, { recursive: true });
        onImage = (e, img, preds) => writeOverlayPng(join(dir, `${e.name}.png`), img.data, img.width, img.height, preds.map((p) => ({ categoryId: p.categoryId, mask: p.mask, score: p.maskScore })), { scoreThresh: o.overlayScoreThresh });
      }
      const t0 = performance.now();
      const results = members.length === 1 ? await predictImages(members[0]!.model, entries, members[0]!.opts, onImage) : await predictEnsemble(members, entries, wsf, onImage);
      writeJsonAtomic(o.out, results, 0);
      const how = members.length > 1 ? ` (ensemble of ${members.length} models, weights ${modelWeights.join(',')}${o.tta ? ', TTA' : ''}, WSF)` : o.tta ? ' (TTA + WSF)' : '';
      console.log(`wrote ${o.out}: ${results.length} instances on ${entries.length} images in ${((performance.now() - t0) / 1000).toFixed(1)} s${how}${o.overlay ? `; overlays in ${o.overlay}` : ''}`);
    });
}
