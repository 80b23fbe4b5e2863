import { basename } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../../runtime/errors';
import { COCO_CATEGORIES } from '../../data/cell-types';
import { readCocoResults, readJsonFile } from '../../data/coco/read';
import type { CocoDataset, CocoImage } from '../../data/coco/types';
import { DEFAULT_POSTPROCESS } from '../../post/postprocess';
import { writeSubmissionFromResults } from '../../post/submission-from-results';
import { readShapeData } from '../../shape/analyze';
import { SHAPE_FEATURES, type ShapeFeatures } from '../../shape/region-props';
import { parsePerType, progress } from '../args';

/** The Sartorius id of a COCO image entry: `sartorius_id`, else the file name's stem. */
function sartoriusId(im: CocoImage): string {
  return typeof im.sartorius_id === 'string' ? im.sartorius_id : basename(im.file_name).replace(/\.png$/i, '');
}

function readImagesList(file: string): CocoDataset {
  const raw = readJsonFile(file) as { images?: unknown };
  if (typeof raw !== 'object' || raw === null || !Array.isArray(raw.images)) {
    throw new InputError(file, 'key "images"', 'is missing; expected the test_images.json that `cellseg coco` writes');
  }
  const images = raw.images as CocoImage[];
  images.forEach((im, i) => {
    if (typeof im?.id !== 'number' || typeof im.width !== 'number' || typeof im.height !== 'number' || typeof im.file_name !== 'string') {
      throw new InputError(file, `images[${i}]`, 'needs id, width, height and file_name');
    }
  });
  return { images, annotations: [], categories: COCO_CATEGORIES };
}

function featureList(name: string, v: string | undefined, dflt: (keyof ShapeFeatures)[]): (keyof ShapeFeatures)[] {
  if (v === undefined) return dflt;
  if (v.trim() === '') return [];
  const list = v.split(',').map((s) => s.trim());
  for (const f of list) {
    if (!(SHAPE_FEATURES as readonly string[]).includes(f)) throw new InputError(name, undefined, `unknown feature "${f}"; expected ${SHAPE_FEATURES.join(', ')}`);
  }
  return list as (keyof ShapeFeatures)[];
}

export function register(program: Command): void {
  program
    .command('submit')
    .description('post-process COCO-results predictions (thresholds, shape filter, overlap removal, min pixels) into submission.csv')
    .requiredOption('--pred <file>', 'COCO results JSON with RLE segmentations')
    .requiredOption('--images <file>', 'test images list (test_images.json from `cellseg coco`)')
    .option('--out <file>', 'submission CSV', 'output/submission.csv')
    .option('--thresholds <a,b,c>', 'score thresholds for shsy5y,astro,cort', '0.15,0.35,0.55')
    .option('--min-pixels <a,b,c>', 'minimum pixels after overlap removal for shsy5y,astro,cort', '75,150,75')
    .option('--shape <file>', 'shape statistics JSON from `cellseg analyze` (enables the shape filter)')
    .option('--shape-min <features>', 'features bounded below by their 1 % percentile', 'major_axis_length')
    .option('--shape-max <features>', 'features bounded above by their 99 % percentile', '')
    .action(async (o: { pred: string; images: string; out: string; thresholds: string; minPixels: string; shape?: string; shapeMin: string; shapeMax: string }) => {
      const list = readImagesList(o.images);
      const results = readCocoResults(o.pred, list, 'segm');
      const opts = {
        ...DEFAULT_POSTPROCESS,
        scoreThresholds: parsePerType('--thresholds', o.thresholds),
        minPixels: parsePerType('--min-pixels', o.minPixels),
        shapeData: o.shape ? readShapeData(o.shape) : undefined,
        shapeMin: featureList('--shape-min', o.shapeMin, ['major_axis_length']),
        shapeMax: featureList('--shape-max', o.shapeMax, []),
      };
      const bar = progress('submit', list.images.length);
      const images = list.images.map((im) => ({ id: im.id, sartoriusId: sartoriusId(im), width: im.width, height: im.height }));
      const r = await writeSubmissionFromResults(o.out, results, images, opts, o.pred, () => bar.tick());
      bar.stop();
      console.log(`wrote ${o.out}: ${r.images} images, ${r.kept} instances kept of ${r.predicted} predicted`);
    });
}
