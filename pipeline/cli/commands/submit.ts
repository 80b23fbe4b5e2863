import type { Command } from 'commander';
import { readCocoResults } from '../../data/coco/read';
import { readImagesList, sartoriusId } from '../../data/image-list';
import { progress } from '../../io/progress';
import { DEFAULT_POSTPROCESS } from '../../post/postprocess';
import { writeSubmissionFromResults } from '../../post/submission-from-results';
import { readShapeData } from '../../shape/analyze';
import { parseFeatureList, parsePerType } from '../args';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('submit')
    .description('post-process COCO-results predictions (thresholds, optional hole filling, shape filter, overlap removal, min pixels, single-contour check) into submission.csv')
    .requiredOption('--pred <file>', 'COCO results JSON with RLE segmentations')
    .requiredOption('--images <file>', 'test images list (test_images.json from `cellseg coco`)')
    .option('--out <file>', 'submission CSV', 'output/submission.csv')
    .option('--thresholds <a,b,c>', 'score thresholds for shsy5y,astro,cort', '0.15,0.35,0.55')
    .option('--min-pixels <a,b,c>', 'minimum pixels after overlap removal for shsy5y,astro,cort', '75,150,75')
    .option('--shape <file>', 'shape statistics JSON from `cellseg analyze` (enables the shape filter)')
    .option('--shape-min <features>', 'features bounded below by their 1 % percentile', 'major_axis_length')
    .option('--shape-max <features>', 'features bounded above by their 99 % percentile', '')
    .option('--fill-holes', 'fill the holes of each mask before the shape filter (as the single-model notebook path)')
    .option('--no-single-contour', 'keep masks that are not exactly one contour after overlap removal (default: dropped as "chopped")')
    .action(async (o: { pred: string; images: string; out: string; thresholds: string; minPixels: string; shape?: string; shapeMin: string; shapeMax: string; fillHoles?: boolean; singleContour: boolean }) => {
      checkOutputs({ '--out': o.out });
      const list = readImagesList(o.images);
      const results = readCocoResults(o.pred, list, 'segm');
      const opts = {
        ...DEFAULT_POSTPROCESS,
        scoreThresholds: parsePerType('--thresholds', o.thresholds),
        minPixels: parsePerType('--min-pixels', o.minPixels),
        shapeData: o.shape ? readShapeData(o.shape) : undefined,
        shapeMin: parseFeatureList('--shape-min', o.shapeMin, ['major_axis_length']),
        shapeMax: parseFeatureList('--shape-max', o.shapeMax, []),
        fillHoles: !!o.fillHoles,
        singleContour: o.singleContour,
      };
      const bar = progress('submit', list.images.length);
      const images = list.images.map((im) => ({ id: im.id, sartoriusId: sartoriusId(im), width: im.width, height: im.height }));
      const r = await writeSubmissionFromResults(o.out, results, images, opts, o.pred, () => bar.tick());
      bar.stop();
      console.log(`wrote ${o.out}: ${r.images} images, ${r.kept} instances kept of ${r.predicted} predicted`);
    });
}
