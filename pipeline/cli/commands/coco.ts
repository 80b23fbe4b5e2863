import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError, UserError } from '../../../runtime/errors';
import { COCO_CATEGORIES } from '../../data/cell-types';
import { readTrainCsv, type TrainImage } from '../../data/train-csv';
import { writeJsonAtomic } from '../../io/atomic';
import { readPngGray } from '../../io/png';
import { buildCocoDataset, type SegmentationFormat } from '../../data/coco/build';
import { progress } from '../args';

/** Sorted test image ids of a folder of PNGs. */
export function listPngIds(dir: string): string[] {
  if (!existsSync(dir)) throw new InputError(dir, undefined, 'folder is missing');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .map((f) => f.slice(0, -4))
    .sort();
}

export function register(program: Command): void {
  program
    .command('coco')
    .description('convert train.csv to COCO ground truth (categories shsy5y=1, astro=2, cort=3) and list the test images')
    .requiredOption('--data <dir>', 'dataset folder with train.csv, train/ and test/')
    .option('--out <file>', 'COCO JSON of all training images', 'output/annotations_all.json')
    .option('--test-out <file>', 'COCO images list of test/ (what `cellseg submit --images` reads)', 'output/test_images.json')
    .option('--segmentation <kind>', 'rle (compressed, exact) or polygon', 'rle')
    .option('--check-images', 'open every train PNG and check its size against train.csv')
    .action(async (o: { data: string; out: string; testOut: string; segmentation: string; checkImages?: boolean }) => {
      if (o.segmentation !== 'rle' && o.segmentation !== 'polygon') {
        throw new UserError(`--segmentation must be rle or polygon, got "${o.segmentation}"`);
      }
      const csv = join(o.data, 'train.csv');
      const images: TrainImage[] = [];
      for await (const img of readTrainCsv(csv)) {
        const png = join(o.data, 'train', `${img.id}.png`);
        if (!existsSync(png)) throw new InputError(png, undefined, `PNG of image ${img.id} (train.csv line ${img.instances[0]?.line ?? '?'}) is missing`);
        if (o.checkImages) readPngGray(png, { width: img.width, height: img.height });
        images.push(img);
      }
      const bar = progress('coco', images.length);
      const { dataset, dropped } = buildCocoDataset(images, { segmentation: o.segmentation as SegmentationFormat, imageDir: 'train' });
      bar.stop();
      writeJsonAtomic(o.out, dataset, 0);
      const testDir = join(o.data, 'test');
      const testIds = existsSync(testDir) ? listPngIds(testDir) : [];
      const testImages = testIds.map((id, i) => {
        const img = readPngGray(join(testDir, `${id}.png`));
        return { id: i + 1, width: img.width, height: img.height, file_name: `test/${id}.png`, sartorius_id: id };
      });
      writeJsonAtomic(o.testOut, { images: testImages, annotations: [], categories: COCO_CATEGORIES });
      console.log(
        `wrote ${o.out}: ${dataset.images.length} images, ${dataset.annotations.length} annotations` +
          (dropped ? ` (${dropped} without a polygon left out)` : '') +
          `; ${o.testOut}: ${testImages.length} test images`,
      );
    });
}
