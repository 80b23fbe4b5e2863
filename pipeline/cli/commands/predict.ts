// `cellseg predict`: COCO results json for a folder of PNGs (ids in sorted file order, the same
// ids `cellseg coco` gives test_images.json) or for the images of a COCO json.
//   cellseg predict --config-file F --weights output/.../model_final.safetensors --images datasets/synth/test --out results.json --tta
import type { Command } from 'commander';
import { loadConfig } from '../../../models/config/config';
import { listImages } from '../../data/image-list';
import { loadModelForInference, predictImages, predictorOptionsFromConfig } from '../../engine/predictor';
import { writeJsonAtomic } from '../../io/atomic';
import { parsePerType } from '../args';
import { checkOutputs } from '../../io/output-path';

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
      checkOutputs({ '--out': o.out });
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
