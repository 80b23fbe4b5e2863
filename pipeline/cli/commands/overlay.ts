// `cellseg overlay`: the instances of one image from a COCO results JSON, drawn over the image.
//   cellseg overlay --image datasets/synth/test/ID.png --pred output/results.json --score-thresh 0.5 --out overlay.png
// Which image_id of the results is the image: --image-id, else --coco (match by file name), else
// the only id in the results, else its position among the sorted PNGs of its folder (the ids
// `cellseg predict --images DIR` gives).
import type { Command } from 'commander';
import { UserError } from '../../../runtime/errors';
import { writeOverlayFromFiles } from '../../viz/overlay';
import { parseFraction, parseIntOption } from '../args';
import { checkOutputs } from '../../io/output-path';

export function register(program: Command): void {
  program
    .command('overlay')
    .description('draw predicted instance masks (COCO results, RLE segmentation) over a grayscale image as a PNG, coloured by class')
    .requiredOption('--image <file>', 'grayscale PNG the predictions are for')
    .requiredOption('--pred <file>', 'COCO results JSON [{image_id, category_id, score, segmentation: RLE}]')
    .option('--out <file>', 'PNG to write', 'overlay.png')
    .option('--image-id <n>', 'image_id of the image in the results', parseIntOption('--image-id', 0))
    .option('--coco <json>', 'COCO json whose images numbered the results (e.g. output/test_images.json): the id of the image with the same file name')
    .option('--score-thresh <x>', 'leave out instances scoring below this', parseFraction('--score-thresh'))
    .option('--alpha <x>', 'fill opacity', parseFraction('--alpha'), 0.4)
    .option('--stretch', 'stretch the gray range (0.5-99.5 percentile) before drawing')
    .option('--no-legend', 'no class legend')
    .action((o: { image: string; pred: string; out: string; imageId?: number; coco?: string; scoreThresh?: number; alpha: number; stretch?: boolean; legend: boolean }) => {
      if (!o.out.toLowerCase().endsWith('.png')) throw new UserError(`--out ${o.out} must end in .png`);
      checkOutputs({ '--out': o.out });
      const s = writeOverlayFromFiles({ ...o });
      console.log(`wrote ${o.out}: ${s.drawn} of ${s.total} instances of image_id ${s.imageId} (${s.idFrom})${o.scoreThresh !== undefined ? ` (score >= ${o.scoreThresh})` : ''}`);
    });
}
